//! `LocalGenerator`: the in-process engine behind the [`Generator`] boundary.
//!
//! - **Sessions**: a pool of engine `Sequence`s keyed by [`SessionKey`], least recently used evicted first,
//!   bounded by the bytes their KV caches hold (and a session count). A request takes its session's sequence
//!   out of the pool while it runs and puts it back after, so the next request with the same key prefills
//!   only the tokens after the common prefix.
//! - **One generation at a time**: the CPU is saturated by one forward pass, so requests wait in a
//!   [`FairQueue`] (arrival order); a request cancelled while it waits never starts.
//! - **Early stop**: the streaming callback's [`Flow::Stop`] cancels a child of the request's token, so the
//!   engine stops at the next token without the caller's token being touched.

use std::sync::Mutex;
use std::time::Instant;

use qwen_engine::{
    generate, CancelToken, GenerateError, GenerateParams, LoadedModel, SamplingParams, Sequence,
    StopReason, DEFAULT_PREFILL_CHUNK,
};

use super::queue::FairQueue;
use super::{
    FinishReason, Flow, GenError, GenOutput, GenRequest, GenStats, Generator, GeneratorInfo,
    SessionKey,
};

/// Limits of the session pool and prefill chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// KV-cache bytes kept warm across sessions (the session just used is always kept).
    pub max_kv_bytes: u64,
    /// Sessions kept at most.
    pub max_sessions: usize,
    /// Prefill chunk in tokens (cancellation is checked between chunks).
    pub prefill_chunk: usize,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            max_kv_bytes: 1 << 30,
            max_sessions: 8,
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
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
    options: LocalOptions,
    queue: FairQueue,
    /// Least recently used first.
    pool: Mutex<Vec<PoolEntry>>,
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
            options,
            queue: FairQueue::default(),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The model.
    pub fn model(&self) -> &LoadedModel {
        &self.model
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
        sequence.cache().bytes() as u64
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
        let queued = Instant::now();
        let Some(_slot) = self.queue.acquire(cancel) else {
            return Ok(GenOutput {
                text: String::new(),
                finish: FinishReason::Cancelled,
                stats: GenStats {
                    queue_secs: queued.elapsed().as_secs_f64(),
                    ..GenStats::default()
                },
            });
        };
        let queue_secs = queued.elapsed().as_secs_f64();
        let session = request.session.as_ref().map_or("", |s| s.0.as_str());
        let _span = tracing::debug_span!("generate", session, queue_secs).entered();
        let prompt = request.prompt.to_prompt();
        let tokenizer = &self.model.tokenizer;
        let ids = prompt
            .to_ids(tokenizer)
            .map_err(|e| GenError::Prompt(e.to_string()))?;
        let window = self.model.model.config().max_position_embeddings;
        if ids.len() >= window {
            return Err(GenError::PromptTooLong {
                tokens: ids.len(),
                window,
            });
        }
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
        Ok(GenOutput {
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
                mean_logprob: (s.generated_tokens > 0)
                    .then(|| s.logprob_sum / s.generated_tokens as f64),
            },
        })
    }

    fn reset_sessions(&self) {
        self.lock_pool().clear();
    }
}
