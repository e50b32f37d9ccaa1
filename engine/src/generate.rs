//! The generation loop: prefill with prefix reuse → sample → stop checks → stream a text delta → decode step.
//!
//! One loop serves every caller (CLI, language server, benchmarks). It stops on a stop token (EOS and friends,
//! chosen per prompt kind by the caller), a stop string (cut from the output and never streamed in part), the
//! token budget, the context window, or the cancel token (checked between prefill chunks and every step).

use std::time::Instant;

use crate::cancel::CancelToken;
use crate::model::Model;
use crate::sampling::{Sampler, SamplingParams};
use crate::sequence::{Sequence, SequenceError, DEFAULT_PREFILL_CHUNK};
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
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            stop_tokens: Vec::new(),
            stop_strings: Vec::new(),
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
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
    /// Single-token forward passes run while decoding.
    pub decode_steps: usize,
    /// Wall time of the prefill, seconds.
    pub prefill_secs: f64,
    /// Wall time from the end of prefill to the end of generation, seconds.
    pub decode_secs: f64,
    /// `prefilled_tokens / prefill_secs`.
    pub prefill_tok_s: f64,
    /// `decode_steps / decode_secs`.
    pub decode_tok_s: f64,
    /// Sum of the model's log-probabilities (natural log, before temperature) of the generated tokens: divided
    /// by `generated_tokens`, how sure the model was of the text (callers rank alternatives by it).
    pub logprob_sum: f64,
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
    let started = Instant::now();
    let prefill = match seq.prefill(model, prompt, params.prefill_chunk, cancel) {
        Ok(p) => p,
        Err(SequenceError::Cancelled) => {
            return Ok(finish(
                String::new(),
                Vec::new(),
                StopReason::Cancelled,
                stats,
            ))
        }
        Err(e) => return Err(GenerateError::Sequence(e)),
    };
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
    let mut logits = prefill.logits;
    let stop_reason = loop {
        if token_ids.len() >= params.max_tokens {
            break StopReason::MaxTokens;
        }
        if cancel.is_cancelled() {
            break StopReason::Cancelled;
        }
        let (token, logprob) = sampler
            .sample_scored(&logits)
            .map_err(|e| GenerateError::Sampling(Box::new(e)))?;
        if params.stop_tokens.contains(&token) {
            break StopReason::StopToken(token);
        }
        token_ids.push(token);
        stats.logprob_sum += f64::from(logprob);
        let released = stops.push(&detok.push(token));
        if !released.text.is_empty() {
            on_delta(&released.text);
        }
        if let Some(stop) = released.stop {
            break StopReason::StopString(stop);
        }
        if token_ids.len() >= params.max_tokens {
            break StopReason::MaxTokens;
        }
        if cancel.is_cancelled() {
            break StopReason::Cancelled;
        }
        logits = match seq.append(model, token) {
            Ok(l) => l,
            Err(SequenceError::ContextFull { .. }) => break StopReason::ContextFull,
            Err(e) => return Err(GenerateError::Sequence(e)),
        };
        stats.decode_steps += 1;
    };
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
    stats.decode_tok_s = rate(stats.decode_steps, stats.decode_secs);
    Ok(finish(
        stops.text().to_string(),
        token_ids,
        stop_reason,
        stats,
    ))
}
