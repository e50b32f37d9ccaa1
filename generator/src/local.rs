//! `LocalGenerator`: the in-process engine behind the [`Generator`] boundary.
//!
//! - **Sessions**: a pool of engine `Sequence`s keyed by [`SessionKey`], least recently used evicted first,
//!   bounded by the bytes their KV caches hold (and a session count). A request takes its session's sequence
//!   out of the pool while it runs and puts it back after, so the next request with the same key prefills
//!   only the tokens after the common prefix.
//! - **One generation at a time**: the CPU is saturated by one forward pass, so requests wait in a
//!   [`FairQueue`] (arrival order); a request cancelled while it waits never starts.
//! - **Choosing among offers** ([`Generator::generate_within`]) happens once the request holds the slot, when
//!   the session's sequence is back in the pool: the cost of an offer is its tokens after the cached prefix
//!   over the measured prefill speed.
//! - **Warm-ups** ([`Generator::warm`]) take the slot only when no request waits, prefill in small chunks and
//!   stop at the next chunk when a request arrives (the queue cancels their preemption token); they go through
//!   the same pool, so its bounds hold for them too.
//! - **Speed**: moving averages of the prefill and decode rates of recent generations and warm-ups.
//! - **Early stop**: the streaming callback's [`Flow::Stop`] cancels a child of the request's token, so the
//!   engine stops at the next token without the caller's token being touched.
//! - **Speculative decoding** as the request asks ([`GenRequest::speculation`]); a draft model, when one is
//!   loaded, keeps its KV cache inside each session's `Sequence`, so it follows the session's prefix reuse and
//!   counts against the same byte limit. Generators loaded together share one queue (one generation at a time
//!   across the main and the completion model).

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use qwen_engine::{
    generate, CancelToken, GenerateError, GenerateParams, LoadedModel, Model, Prompt,
    SamplingParams, Sequence, SequenceError, Speculation, SpeculativeMode, StopReason,
    DEFAULT_PREFILL_CHUNK,
};

use super::queue::FairQueue;
use super::{
    FinishReason, Flow, GenError, GenOutput, GenRequest, GenStats, Generator, GeneratorInfo,
    SessionKey, Speed, WarmFinish, WarmOutput,
};

/// Weight of the newest observation in the speed averages.
const SPEED_WEIGHT: f64 = 0.3;
/// Prefills shorter than this say more about fixed costs than about speed: not averaged.
const MIN_PREFILL_SAMPLE: usize = 8;
/// Decodes shorter than this are not averaged.
const MIN_DECODE_SAMPLE: usize = 4;

/// Limits of the session pool and prefill chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// KV-cache bytes kept warm across sessions (the session just used is always kept).
    pub max_kv_bytes: u64,
    /// Sessions kept at most.
    pub max_sessions: usize,
    /// Prefill chunk in tokens (cancellation is checked between chunks).
    pub prefill_chunk: usize,
    /// Prefill chunk of warm-ups. A request that arrives waits for one layer of the chunk running, and a
    /// preempted warm-up loses the chunk's work; each chunk's matrix products regroup their weights for the
    /// row-group kernels once, which smaller chunks pay more often (AVX2: 32 tokens ran ~30% slower than 512).
    pub warm_chunk: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            max_kv_bytes: 1 << 30,
            max_sessions: 8,
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            warm_chunk: 64,
        }
    }
}

struct PoolEntry {
    key: SessionKey,
    sequence: Sequence,
}

/// The in-process generator; see the module documentation.
pub struct LocalGenerator {
    model: LoadedModel,
    /// The draft model of [`SpeculativeMode::Draft`] requests.
    draft: Option<Arc<Model>>,
    options: LocalOptions,
    queue: Arc<FairQueue>,
    /// Least recently used first.
    pool: Mutex<Vec<PoolEntry>>,
    speed: Mutex<SpeedMeter>,
}

/// Moving averages of (seconds, tokens): their ratio weighs long runs more than short ones.
#[derive(Debug, Default)]
struct SpeedMeter {
    prefill: Option<(f64, f64)>,
    decode: Option<(f64, f64)>,
}

fn average_in(average: &mut Option<(f64, f64)>, secs: f64, tokens: usize) {
    let sample = (secs, tokens as f64);
    *average = Some(match *average {
        None => sample,
        Some((s, t)) => (
            s + SPEED_WEIGHT * (sample.0 - s),
            t + SPEED_WEIGHT * (sample.1 - t),
        ),
    });
}

fn rate_of(average: Option<(f64, f64)>) -> Option<f64> {
    average.and_then(|(secs, tokens)| (secs > 0.0).then(|| tokens / secs))
}

impl SpeedMeter {
    fn prefilled(&mut self, tokens: usize, secs: f64) {
        if tokens >= MIN_PREFILL_SAMPLE && secs > 0.0 {
            average_in(&mut self.prefill, secs, tokens);
        }
    }

    fn decoded(&mut self, steps: usize, secs: f64) {
        if steps >= MIN_DECODE_SAMPLE && secs > 0.0 {
            average_in(&mut self.decode, secs, steps);
        }
    }

    fn speed(&self) -> Option<Speed> {
        Some(Speed {
            prefill_tok_s: rate_of(self.prefill)?,
            decode_tok_s: rate_of(self.decode),
        })
    }
}

impl std::fmt::Debug for LocalGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGenerator")
            .field("model", &self.model.source)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LocalGenerator {
    /// A generator over a loaded model.
    pub fn new(model: LoadedModel, options: LocalOptions) -> LocalGenerator {
        LocalGenerator {
            model,
            draft: None,
            options,
            queue: Arc::new(FairQueue::default()),
            pool: Mutex::new(Vec::new()),
            speed: Mutex::new(SpeedMeter::default()),
        }
    }

    /// Uses `draft` (same vocabulary: see `check_draft_vocabulary`) for requests that ask for a draft model.
    pub fn with_draft(mut self, draft: Arc<Model>) -> LocalGenerator {
        self.draft = Some(draft);
        self
    }

    /// Waits in `other`'s queue: the two never generate at the same time (they would share the same cores).
    pub fn sharing_queue_with(mut self, other: &LocalGenerator) -> LocalGenerator {
        self.queue = Arc::clone(&other.queue);
        self
    }

    /// What a request's speculative mode runs as on this generator.
    fn speculation(&self, mode: SpeculativeMode) -> Speculation {
        match (mode, &self.draft) {
            (SpeculativeMode::Off, _) => Speculation::Off,
            (SpeculativeMode::Lookup, _) => Speculation::Lookup,
            (SpeculativeMode::Draft, Some(draft)) => Speculation::Draft(Arc::clone(draft)),
            (SpeculativeMode::Draft, None) => {
                static WARNED: Once = Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(
                        "a request asked for a draft model but none is loaded; using prompt lookup"
                    )
                });
                Speculation::Lookup
            }
        }
    }

    /// The model.
    pub fn model(&self) -> &LoadedModel {
        &self.model
    }

    /// Whether a warm-up holds the engine now.
    pub fn warming(&self) -> bool {
        self.queue.background_running()
    }

    /// Sessions currently kept warm.
    pub fn session_count(&self) -> usize {
        self.lock_pool().len()
    }

    /// KV-cache bytes held by the sessions kept warm.
    pub fn kv_bytes(&self) -> u64 {
        self.lock_pool()
            .iter()
            .map(|e| self.sequence_bytes(&e.sequence))
            .sum()
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Vec<PoolEntry>> {
        // Entries are whole values: a panic elsewhere cannot leave one half-written.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sequence_bytes(&self, sequence: &Sequence) -> u64 {
        sequence.bytes() as u64
    }

    fn lock_speed(&self) -> std::sync::MutexGuard<'_, SpeedMeter> {
        self.speed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The prompt's token ids, refused when they fill the context window.
    fn tokenize(&self, prompt: &Prompt) -> Result<Vec<u32>, GenError> {
        let ids = prompt
            .to_ids(&self.model.tokenizer)
            .map_err(|e| GenError::Prompt(e.to_string()))?;
        let window = self.model.model.config().max_position_embeddings;
        if ids.len() >= window {
            return Err(GenError::PromptTooLong {
                tokens: ids.len(),
                window,
            });
        }
        Ok(ids)
    }

    /// Tokens of `ids` the session's sequence holds (0 for a session not in the pool).
    fn cached_prefix(&self, key: Option<&SessionKey>, ids: &[u32]) -> usize {
        let Some(key) = key else { return 0 };
        self.lock_pool()
            .iter()
            .find(|e| &e.key == key)
            .map_or(0, |e| e.sequence.common_prefix(ids))
    }

    /// The offer to run (see [`Generator::generate_within`]) and its prompt and ids: the first whose
    /// uncached tokens fit `prefill_limit` at the measured speed, else the one with the fewest uncached
    /// tokens (the earlier on a tie; with no speed measured yet, always this one).
    fn choose(
        &self,
        offers: &[GenRequest],
        prefill_limit: Duration,
    ) -> Result<(usize, Prompt, Vec<u32>), GenError> {
        let speed = self.speed();
        let mut cheapest: Option<(usize, Prompt, Vec<u32>, usize)> = None;
        for (index, offer) in offers.iter().enumerate() {
            let prompt = offer.prompt.to_prompt();
            let ids = self.tokenize(&prompt)?;
            let uncached = ids.len()
                - self
                    .cached_prefix(offer.session.as_ref(), &ids)
                    .min(ids.len());
            let fits = speed
                .is_some_and(|s| uncached as f64 / s.prefill_tok_s <= prefill_limit.as_secs_f64());
            if fits {
                return Ok((index, prompt, ids));
            }
            if cheapest.as_ref().is_none_or(|c| uncached < c.3) {
                cheapest = Some((index, prompt, ids, uncached));
            }
        }
        cheapest
            .map(|(index, prompt, ids, _)| (index, prompt, ids))
            .ok_or_else(|| GenError::Prompt("no prompt was offered".to_string()))
    }

    fn take(&self, key: Option<&SessionKey>) -> Sequence {
        let found = key.and_then(|key| {
            let mut pool = self.lock_pool();
            let at = pool.iter().position(|e| &e.key == key)?;
            Some(pool.remove(at).sequence)
        });
        found.unwrap_or_else(|| self.model.new_sequence())
    }

    fn put(&self, key: Option<SessionKey>, sequence: Sequence) {
        let Some(key) = key else { return };
        let mut pool = self.lock_pool();
        pool.retain(|e| e.key != key);
        pool.push(PoolEntry { key, sequence });
        let mut total: u64 = pool.iter().map(|e| self.sequence_bytes(&e.sequence)).sum();
        while pool.len() > 1
            && (total > self.options.max_kv_bytes || pool.len() > self.options.max_sessions)
        {
            let evicted = pool.remove(0);
            total -= self.sequence_bytes(&evicted.sequence);
            tracing::debug!(session = %evicted.key.0, "evicted a KV-cache session");
        }
    }
}

impl Generator for LocalGenerator {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            backend: "local",
            model: self.model.source.display().to_string(),
            context_window: Some(self.model.model.config().max_position_embeddings),
        }
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        self.generate_within(
            std::slice::from_ref(request),
            Duration::MAX,
            cancel,
            on_text,
        )
        .map(|(_, output)| output)
    }

    fn generate_within(
        &self,
        offers: &[GenRequest],
        prefill_limit: Duration,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<(usize, GenOutput), GenError> {
        let queued = Instant::now();
        let Some(_slot) = self.queue.acquire(cancel) else {
            return Ok((
                0,
                GenOutput {
                    text: String::new(),
                    finish: FinishReason::Cancelled,
                    stats: GenStats {
                        queue_secs: queued.elapsed().as_secs_f64(),
                        ..GenStats::default()
                    },
                },
            ));
        };
        let queue_secs = queued.elapsed().as_secs_f64();
        let (chosen, prompt, ids) = self.choose(offers, prefill_limit)?;
        let request = &offers[chosen];
        let session = request.session.as_ref().map_or("", |s| s.0.as_str());
        let _span = tracing::debug_span!("generate", session, queue_secs, offer = chosen).entered();
        let tokenizer = &self.model.tokenizer;
        let window = self.model.model.config().max_position_embeddings;
        let params = GenerateParams {
            max_tokens: request.max_tokens.min(window - ids.len()),
            sampling: SamplingParams {
                temperature: request.sampling.temperature,
                top_k: None,
                top_p: request.sampling.top_p,
                seed: request.sampling.seed,
            },
            stop_tokens: prompt.stop_tokens(tokenizer.specials()),
            stop_strings: request.stop.clone(),
            prefill_chunk: self.options.prefill_chunk,
            speculation: self.speculation(request.speculation),
            draft_tokens: None,
        };
        let early_stop = cancel.child();
        let mut stopped = false;
        let mut text = String::new();
        let mut sequence = self.take(request.session.as_ref());
        let result = generate(
            &self.model.model,
            tokenizer,
            &mut sequence,
            &ids,
            &params,
            &early_stop,
            &mut |delta| {
                if stopped {
                    return;
                }
                text.push_str(delta);
                if on_text(delta) == Flow::Stop {
                    stopped = true;
                    early_stop.cancel();
                }
            },
        );
        // The sequence is consistent even after an error or a cancelled prefill (the engine commits positions
        // only after a successful forward pass): keep it warm either way.
        self.put(request.session.clone(), sequence);
        let generation = result.map_err(|e| match e {
            GenerateError::Prompt(e) => GenError::Prompt(e.to_string()),
            other => GenError::Backend(other.to_string()),
        })?;
        let finish = match generation.stop_reason {
            StopReason::StopToken(_) => FinishReason::EndOfText,
            StopReason::StopString(s) => FinishReason::StopString(s),
            StopReason::MaxTokens => FinishReason::MaxTokens,
            StopReason::ContextFull => FinishReason::ContextFull,
            StopReason::Cancelled if stopped && !cancel.is_cancelled() => FinishReason::Stopped,
            StopReason::Cancelled => FinishReason::Cancelled,
        };
        let s = generation.stats;
        {
            let mut speed = self.lock_speed();
            speed.prefilled(s.prefilled_tokens, s.prefill_secs);
            speed.decoded(s.decode_steps, s.decode_secs);
        }
        Ok((
            chosen,
            GenOutput {
                text,
                finish,
                stats: GenStats {
                    prompt_tokens: s.prompt_tokens,
                    reused_tokens: s.reused_tokens,
                    cached_tokens: None,
                    prefilled_tokens: s.prefilled_tokens,
                    generated_tokens: s.generated_tokens,
                    queue_secs,
                    prefill_secs: s.prefill_secs,
                    decode_secs: s.decode_secs,
                    prefill_tok_s: s.prefill_tok_s,
                    decode_tok_s: s.decode_tok_s,
                    decode_passes: s.decode_steps,
                    accepted_tokens: s.accepted_tokens,
                    mean_logprob: (s.generated_tokens > 0)
                        .then(|| s.logprob_sum / s.generated_tokens as f64),
                },
            },
        ))
    }

    fn warm(&self, request: &GenRequest, cancel: &CancelToken) -> Result<WarmOutput, GenError> {
        let queued = Instant::now();
        let preempt = cancel.child();
        let Some(_slot) = self.queue.acquire_background(cancel, &preempt) else {
            return Ok(WarmOutput::nothing(WarmFinish::Cancelled));
        };
        let queue_secs = queued.elapsed().as_secs_f64();
        let ids = self.tokenize(&request.prompt.to_prompt())?;
        let mut sequence = self.take(request.session.as_ref());
        let held = sequence.common_prefix(&ids);
        let mut output = WarmOutput {
            finish: WarmFinish::AlreadyWarm,
            prompt_tokens: ids.len(),
            reused_tokens: held,
            prefilled_tokens: 0,
            queue_secs,
            prefill_secs: 0.0,
        };
        if held == ids.len() {
            self.put(request.session.clone(), sequence);
            return Ok(output);
        }
        let session = request.session.as_ref().map_or("", |s| s.0.as_str());
        let _span = tracing::debug_span!("warm", session, held, tokens = ids.len()).entered();
        let started = Instant::now();
        let result = sequence.prefill(&self.model.model, &ids, self.options.warm_chunk, &preempt);
        output.prefill_secs = started.elapsed().as_secs_f64();
        output.prefilled_tokens = sequence.len().saturating_sub(held);
        self.put(request.session.clone(), sequence);
        output.finish = match result {
            Ok(_) => {
                // A stopped warm-up's time includes the chunk it dropped: only finished ones are a speed.
                self.lock_speed()
                    .prefilled(output.prefilled_tokens, output.prefill_secs);
                WarmFinish::Done
            }
            Err(SequenceError::Cancelled) if cancel.is_cancelled() => WarmFinish::Cancelled,
            Err(SequenceError::Cancelled) => WarmFinish::Preempted,
            Err(e) => return Err(GenError::Backend(e.to_string())),
        };
        Ok(output)
    }

    fn keeps_sessions(&self) -> bool {
        true
    }

    fn speed(&self) -> Option<Speed> {
        self.lock_speed().speed()
    }

    fn reset_sessions(&self) {
        self.lock_pool().clear();
    }
}
