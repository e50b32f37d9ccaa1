//! The generation loop: prefill with prefix reuse → sample → stop checks → stream a text delta → decode step.
//!
//! One loop serves every caller (CLI, language server, benchmarks). It stops on a stop token (EOS and friends,
//! chosen per prompt kind by the caller), a stop string (cut from the output and never streamed in part), the
//! token budget, the context window, or the cancel token (checked between prefill chunks and every step).

use std::time::Instant;

use candle_core::Tensor;

use crate::cancel::CancelToken;
use crate::model::Model;
use crate::sampling::{log_softmax_at, Sampler, SamplingParams};
use crate::sequence::{Sequence, SequenceError, DEFAULT_PREFILL_CHUNK};
use crate::speculative::{Drafter, Speculation};
use crate::stop::StopScanner;
use crate::tokenizer::Tokenizer;

/// What to generate and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Token selection.
    pub sampling: SamplingParams,
    /// Token ids that end generation (not included in the output).
    pub stop_tokens: Vec<u32>,
    /// Strings that end generation (cut from the output).
    pub stop_strings: Vec<String>,
    /// Prefill chunk size in tokens.
    pub prefill_chunk: usize,
    /// Speculative decoding (drafts verified in one pass; output unchanged).
    pub speculation: Speculation,
    /// Tokens drafted per pass; `None`: adapted to the measured acceptance rate and pass cost.
    pub draft_tokens: Option<usize>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            stop_tokens: Vec::new(),
            stop_strings: Vec::new(),
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            speculation: Speculation::Off,
            draft_tokens: None,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A stop token was sampled (its id).
    StopToken(u32),
    /// A stop string appeared in the text (the string).
    StopString(String),
    /// `max_tokens` were generated.
    MaxTokens,
    /// The sequence reached `max_position_embeddings`.
    ContextFull,
    /// The cancel token fired.
    Cancelled,
}

/// Counters and speeds of one generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationStats {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens reused from the sequence's cache.
    pub reused_tokens: usize,
    /// Prompt tokens run through the model.
    pub prefilled_tokens: usize,
    /// Tokens generated (excluding a final stop token).
    pub generated_tokens: usize,
    /// Forward passes of the model while decoding (one token each, or one token and its drafts).
    pub decode_steps: usize,
    /// Tokens drafted for verification (speculative decoding).
    pub drafted_tokens: usize,
    /// Drafted tokens that were accepted: each is a token decoded without a pass of its own.
    pub accepted_tokens: usize,
    /// Wall time of the prefill, seconds.
    pub prefill_secs: f64,
    /// Wall time from the end of prefill to the end of generation, seconds.
    pub decode_secs: f64,
    /// `prefilled_tokens / prefill_secs`.
    pub prefill_tok_s: f64,
    /// Tokens the decode passes yielded per second: `(decode_steps + accepted_tokens) / decode_secs`.
    pub decode_tok_s: f64,
    /// Sum of the model's log-probabilities (natural log, before temperature) of the generated tokens: divided
    /// by `generated_tokens`, how sure the model was of the text (callers rank alternatives by it).
    pub logprob_sum: f64,
}

impl GenerationStats {
    /// Tokens each decode pass yielded on average (1 without speculation).
    pub fn tokens_per_pass(&self) -> f64 {
        if self.decode_steps == 0 {
            return 0.0;
        }
        (self.decode_steps + self.accepted_tokens) as f64 / self.decode_steps as f64
    }
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The generated text (stop string and stop token excluded).
    pub text: String,
    /// The generated token ids (stop token excluded; tokens of a cut stop string included).
    pub token_ids: Vec<u32>,
    /// Why generation ended.
    pub stop_reason: StopReason,
    /// Counters and speeds.
    pub stats: GenerationStats,
}

/// Why generation failed (cancellation is not a failure: it is a [`StopReason`]).
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The sequence could not advance (model error, empty or too long prompt).
    #[error(transparent)]
    Sequence(SequenceError),
    /// The prompt could not be tokenized (e.g. the tokenizer lacks a special token it uses).
    #[error(transparent)]
    Prompt(crate::tokenizer::TokenizerError),
    /// The draft model failed (speculative decoding).
    #[error("draft model: {0}")]
    Draft(SequenceError),
    /// Reading the logits back failed.
    #[error("sampling failed: {0}")]
    Sampling(Box<candle_core::Error>),
}

fn rate(tokens: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        tokens as f64 / secs
    } else {
        0.0
    }
}

/// Generates a continuation of `prompt` in `seq`, streaming text deltas to `on_delta`.
///
/// `seq` keeps the prompt and the generated tokens that were fed back, so the next call with a prompt sharing a
/// prefix reuses their KV entries.
///
/// Every pass runs the last chosen token (and, with [`GenerateParams::speculation`], the tokens drafted after
/// it) through the model; tokens are then chosen position by position from the pass's logits, through the same
/// stop checks, until a choice differs from the draft at that position. Without drafts this is plain one-token
/// decoding; with them, greedy output is unchanged (see [`crate::speculative`]).
pub fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    seq: &mut Sequence,
    prompt: &[u32],
    params: &GenerateParams,
    cancel: &CancelToken,
    on_delta: &mut dyn FnMut(&str),
) -> Result<Generation, GenerateError> {
    let mut stats = GenerationStats {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    let finish = |text: String, token_ids, stop_reason, stats| Generation {
        text,
        token_ids,
        stop_reason,
        stats,
    };
    let cancelled = |stats| {
        Ok(finish(
            String::new(),
            Vec::new(),
            StopReason::Cancelled,
            stats,
        ))
    };
    let started = Instant::now();
    let prefill = match seq.prefill(model, prompt, params.prefill_chunk, cancel) {
        Ok(p) => p,
        Err(SequenceError::Cancelled) => return cancelled(stats),
        Err(e) => return Err(GenerateError::Sequence(e)),
    };
    let mut drafter = Drafter::new(&params.speculation, params.draft_tokens);
    match drafter.prefill(seq, prompt, params.prefill_chunk, cancel) {
        Ok(()) => {}
        Err(SequenceError::Cancelled) => return cancelled(stats),
        Err(e) => return Err(GenerateError::Draft(e)),
    }
    stats.prefill_secs = started.elapsed().as_secs_f64();
    stats.reused_tokens = prefill.reused;
    stats.prefilled_tokens = prefill.prefilled;
    stats.prefill_tok_s = rate(prefill.prefilled, stats.prefill_secs);

    let decode_started = Instant::now();
    let _span = tracing::debug_span!("decode").entered();
    let mut sampler = Sampler::new(&params.sampling);
    let mut detok = tokenizer.stream();
    let mut stops = StopScanner::new(&params.stop_strings);
    let mut token_ids = Vec::new();
    let vocab = model.config().vocab_size;
    let max_positions = model.config().max_position_embeddings;
    // The logits of the last pass, one row per position, and the drafts that pass ran (row `i + 1` follows
    // draft `i`).
    let mut rows = host_logits(&prefill.logits)?;
    let mut drafts: Vec<u32> = Vec::new();
    let mut pass_started = Instant::now();
    let stop_reason = 'generation: loop {
        // Choose tokens from the pass's rows while they agree with the drafts.
        let mut accepted = 0;
        let mut chosen = None;
        for (i, row) in rows.chunks_exact(vocab).enumerate() {
            if token_ids.len() >= params.max_tokens {
                break 'generation StopReason::MaxTokens;
            }
            if cancel.is_cancelled() {
                break 'generation StopReason::Cancelled;
            }
            let draft = drafts.get(i).copied();
            let token = sampler.choose(row, draft);
            if params.stop_tokens.contains(&token) {
                break 'generation StopReason::StopToken(token);
            }
            token_ids.push(token);
            stats.logprob_sum += f64::from(log_softmax_at(row, token));
            let released = stops.push(&detok.push(token));
            if !released.text.is_empty() {
                on_delta(&released.text);
            }
            if let Some(stop) = released.stop {
                break 'generation StopReason::StopString(stop);
            }
            chosen = Some(token);
            if draft != Some(token) {
                break;
            }
            accepted += 1;
        }
        if !drafts.is_empty() {
            // Drop the rejected drafts' KV entries: the sequence keeps the pass's first token and the accepted
            // drafts; the token chosen last is run by the next pass.
            seq.truncate(seq.len() - (drafts.len() - accepted));
            stats.accepted_tokens += accepted;
            tracing::trace!(drafted = drafts.len(), accepted, "verified");
            drafter.record(drafts.len(), accepted, pass_started.elapsed().as_secs_f64());
        } else if stats.decode_steps > 0 {
            drafter.record(0, 0, pass_started.elapsed().as_secs_f64());
        }
        let Some(token) = chosen else {
            // Unreachable: a pass has at least one row, and every exit above leaves the loop.
            break StopReason::MaxTokens;
        };
        if token_ids.len() >= params.max_tokens {
            break StopReason::MaxTokens;
        }
        if cancel.is_cancelled() {
            break StopReason::Cancelled;
        }
        pass_started = Instant::now();
        // Drafts beyond the tokens still wanted, or the context, would be wasted work.
        let room = max_positions.saturating_sub(seq.len() + 1);
        let wanted = params.max_tokens - token_ids.len() - 1;
        let mut context = Vec::with_capacity(seq.len() + 1);
        context.extend_from_slice(seq.tokens());
        context.push(token);
        drafts = match drafter.propose(
            seq,
            &context,
            room.min(wanted),
            params.prefill_chunk,
            cancel,
        ) {
            Ok(p) => p.tokens,
            Err(SequenceError::Cancelled) => break StopReason::Cancelled,
            Err(e) => return Err(GenerateError::Draft(e)),
        };
        stats.drafted_tokens += drafts.len();
        let pass = if drafts.is_empty() {
            seq.append(model, token)
        } else {
            let mut tokens = Vec::with_capacity(drafts.len() + 1);
            tokens.push(token);
            tokens.extend_from_slice(&drafts);
            seq.verify(model, &tokens)
        };
        rows = match pass {
            Ok(l) => host_logits(&l)?,
            Err(SequenceError::ContextFull { .. }) => break StopReason::ContextFull,
            Err(e) => return Err(GenerateError::Sequence(e)),
        };
        stats.decode_steps += 1;
    };
    // Keep only positions that hold the generated text: an interrupted pass may have run drafts that were not
    // taken.
    let fed = seq.tokens()[prompt.len().min(seq.len())..]
        .iter()
        .zip(&token_ids)
        .take_while(|(a, b)| a == b)
        .count();
    seq.truncate(prompt.len() + fed);
    if !matches!(stop_reason, StopReason::StopString(_)) {
        let tail = stops.push(&detok.finish());
        let mut rest = tail.text;
        if tail.stop.is_none() {
            rest.push_str(&stops.finish());
        }
        if !rest.is_empty() {
            on_delta(&rest);
        }
    }
    stats.generated_tokens = token_ids.len();
    stats.decode_secs = decode_started.elapsed().as_secs_f64();
    stats.decode_tok_s = rate(
        stats.decode_steps + stats.accepted_tokens,
        stats.decode_secs,
    );
    Ok(finish(
        stops.text().to_string(),
        token_ids,
        stop_reason,
        stats,
    ))
}

/// Logits `[vocab]` or `[rows, vocab]` as one host vector, rows back to back.
fn host_logits(logits: &Tensor) -> Result<Vec<f32>, GenerateError> {
    logits
        .to_dtype(candle_core::DType::F32)
        .and_then(|l| l.flatten_all())
        .and_then(|l| l.to_vec1())
        .map_err(|e| GenerateError::Sampling(Box::new(e)))
}
