//! `Sequence`: the tokens one request has run through a model, and their KV cache.
//!
//! Prefix reuse is the default path: [`Sequence::prefill`] keeps the longest common prefix of the cached tokens
//! and the new prompt, truncates the rest, and runs only the new suffix, in chunks (bounded memory;
//! cancellation is checked before every layer of every chunk, so a cancelled prefill stops within one layer's
//! time and keeps the chunks it finished). Invariant: `tokens` are exactly the positions held by `cache`.

use candle_core::Tensor;

use crate::cache::{KvCache, KvCacheKind};
use crate::cancel::CancelToken;
use crate::model::{Logits, Model, ModelError};

/// Default prefill chunk, in tokens.
pub const DEFAULT_PREFILL_CHUNK: usize = 512;

/// Why a sequence could not advance.
#[derive(Debug, thiserror::Error)]
pub enum SequenceError {
    /// The forward pass failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The cancel token fired (checked before every layer of a prefill chunk). The sequence holds the chunks
    /// computed so far.
    #[error("cancelled")]
    Cancelled,
    /// The prompt has no tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The sequence would exceed the model's context window.
    #[error("{needed} tokens exceed the model's context of {max} (max_position_embeddings)")]
    ContextFull {
        /// Tokens the operation needs.
        needed: usize,
        /// `max_position_embeddings`.
        max: usize,
    },
}

/// Result of a prefill.
#[derive(Debug)]
pub struct Prefill {
    /// Logits `[vocab]` f32 after the last prompt token.
    pub logits: Tensor,
    /// Prompt tokens whose KV entries were reused from the cache.
    pub reused: usize,
    /// Prompt tokens run through the model.
    pub prefilled: usize,
}

/// Tokens plus KV cache of one request (or one editor document kept warm across requests).
#[derive(Debug)]
pub struct Sequence {
    tokens: Vec<u32>,
    cache: KvCache,
    /// The draft model's sequence for speculative decoding, kept with the target's so that both follow the
    /// same prefix reuse (created on first use).
    draft: Option<Box<Sequence>>,
}

impl Sequence {
    /// An empty sequence for `model` (use it only with that model).
    pub fn new(model: &Model) -> Self {
        Sequence {
            tokens: Vec::new(),
            cache: model.new_cache(),
            draft: None,
        }
    }

    /// An empty sequence for `model` whose KV cache is of `kind` (e.g. [`KvCacheKind::Q8`] for long contexts).
    pub fn with_cache_kind(model: &Model, kind: KvCacheKind) -> Self {
        Sequence {
            tokens: Vec::new(),
            cache: model.new_cache_of(kind),
            draft: None,
        }
    }

    /// The tokens held (prompt and fed-back generated tokens).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The KV cache.
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// Bytes of KV cache held, the draft model's sequence included.
    pub fn bytes(&self) -> usize {
        self.cache.bytes() + self.draft.as_ref().map_or(0, |d| d.bytes())
    }

    /// The draft model's sequence kept with this one, created empty (with this cache's kind) on first use.
    /// Use it only with one draft model.
    pub fn draft_sequence(&mut self, draft: &Model) -> &mut Sequence {
        let kind = self.cache.kind();
        self.draft
            .get_or_insert_with(|| Box::new(Sequence::with_cache_kind(draft, kind)))
    }

    /// Keeps only the first `n` tokens.
    pub fn truncate(&mut self, n: usize) {
        self.tokens.truncate(n);
        self.cache.truncate(n);
    }

    /// Length of the longest common prefix of the held tokens and `prompt`.
    pub fn common_prefix(&self, prompt: &[u32]) -> usize {
        self.tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// Makes the sequence hold exactly `prompt`, reusing the common prefix and running the rest in chunks of
    /// `chunk_size` tokens. If the whole prompt is already held, its last token is recomputed for the logits.
    pub fn prefill(
        &mut self,
        model: &Model,
        prompt: &[u32],
        chunk_size: usize,
        cancel: &CancelToken,
    ) -> Result<Prefill, SequenceError> {
        if prompt.is_empty() {
            return Err(SequenceError::EmptyPrompt);
        }
        let max = model.config().max_position_embeddings;
        if prompt.len() > max {
            return Err(SequenceError::ContextFull {
                needed: prompt.len(),
                max,
            });
        }
        let reused = self.common_prefix(prompt).min(prompt.len() - 1);
        self.truncate(reused);
        let _span = tracing::debug_span!("prefill", reused, new = prompt.len() - reused).entered();
        let mut logits = None;
        for chunk in prompt[reused..].chunks(chunk_size.max(1)) {
            logits = Some(
                model
                    .forward_cancellable(chunk, &mut self.cache, Logits::Last, cancel)
                    .map_err(|e| match e {
                        ModelError::Cancelled => SequenceError::Cancelled,
                        other => SequenceError::Model(other),
                    })?,
            );
            self.tokens.extend_from_slice(chunk);
        }
        // `reused < prompt.len()`, so at least one chunk ran.
        let logits = logits.ok_or(SequenceError::EmptyPrompt)?;
        Ok(Prefill {
            logits,
            reused,
            prefilled: prompt.len() - reused,
        })
    }

    /// Runs `tokens` (the last chosen token and the tokens drafted after it) in one pass and returns logits
    /// `[len, vocab]` f32 for every position, each row bit-identical to what [`Sequence::append`] of the same
    /// tokens one by one returns ([`Model::verify`]). Truncate afterwards to drop the rejected drafts.
    pub fn verify(&mut self, model: &Model, tokens: &[u32]) -> Result<Tensor, SequenceError> {
        let max = model.config().max_position_embeddings;
        if self.tokens.len() + tokens.len() > max {
            return Err(SequenceError::ContextFull {
                needed: self.tokens.len() + tokens.len(),
                max,
            });
        }
        let logits = model.verify(tokens, &mut self.cache)?;
        self.tokens.extend_from_slice(tokens);
        Ok(logits)
    }

    /// Runs one more token (a decode step) and returns the logits `[vocab]` f32 after it.
    pub fn append(&mut self, model: &Model, token: u32) -> Result<Tensor, SequenceError> {
        let max = model.config().max_position_embeddings;
        if self.tokens.len() >= max {
            return Err(SequenceError::ContextFull {
                needed: self.tokens.len() + 1,
                max,
            });
        }
        let logits = model.forward(&[token], &mut self.cache)?;
        self.tokens.push(token);
        Ok(logits)
    }
}
