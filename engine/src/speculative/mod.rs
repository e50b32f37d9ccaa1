//! Speculative decoding: guess several next tokens cheaply, check them all in one pass of the model.
//!
//! Decoding one token reads every weight once, so on a CPU its speed is bounded by memory bandwidth. A pass over
//! `k + 1` positions reads the weights once too: when the guesses ("drafts") are right, one pass yields several
//! tokens. Drafts come from the text itself ([`Speculation::Lookup`], prompt lookup: edits and explanations copy
//! their prompt) or from a smaller model with the same vocabulary ([`Speculation::Draft`]).
//!
//! Architecture invariants:
//! - **Output is unchanged.** Greedy decoding emits exactly the tokens plain decoding emits: drafts are only
//!   proposals, each position's token is chosen from the target model's logits for that position, and those
//!   logits are bit-identical to a one-token step's ([`crate::model::Rows::AsDecode`]). With sampling, the
//!   standard acceptance rule ([`crate::sampling::Sampler::choose`]) keeps the target distribution exactly.
//! - **Rejected drafts leave nothing behind.** Their KV entries are truncated away (O(1)) before the next pass;
//!   the sequence ends holding only the prompt and generated tokens, like plain decoding.
//! - The draft model's own sequence lives inside the target's [`crate::Sequence`] and is brought up to date with
//!   prefix reuse before each drafting run, so it follows the target's prefix reuse across requests.

pub mod draft_len;
pub mod lookup;

use std::str::FromStr;
use std::sync::Arc;

use crate::cancel::CancelToken;
use crate::model::{Model, ModelError};
use crate::sampling::argmax;
use crate::sequence::{Sequence, SequenceError};
use draft_len::DraftLength;

/// Most tokens drafted per pass.
pub const MAX_DRAFT: usize = 16;

/// Which speculative decoding to use, as a user names it (`off`, `lookup`, `draft`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpeculativeMode {
    /// One token per pass.
    #[default]
    Off,
    /// Prompt-lookup drafts.
    Lookup,
    /// Drafts from a smaller model of the same vocabulary.
    Draft,
}

impl SpeculativeMode {
    /// The name [`SpeculativeMode::from_str`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            SpeculativeMode::Off => "off",
            SpeculativeMode::Lookup => "lookup",
            SpeculativeMode::Draft => "draft",
        }
    }
}

impl FromStr for SpeculativeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "false" => Ok(SpeculativeMode::Off),
            "lookup" | "prompt-lookup" | "on" | "true" => Ok(SpeculativeMode::Lookup),
            "draft" | "draft-model" => Ok(SpeculativeMode::Draft),
            other => Err(format!(
                "unknown speculative mode {other:?}: expected off, lookup or draft"
            )),
        }
    }
}

/// Speculative decoding for one generation.
#[derive(Debug, Clone, Default)]
pub enum Speculation {
    /// Plain decoding: one token per pass.
    #[default]
    Off,
    /// Prompt lookup: drafts copied from where the text's last tokens occurred before.
    Lookup,
    /// Drafts from this smaller model (same vocabulary as the target), greedily, with its own KV cache kept in
    /// the target's [`Sequence`].
    Draft(Arc<Model>),
}

impl PartialEq for Speculation {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Speculation::Off, Speculation::Off) | (Speculation::Lookup, Speculation::Lookup) => {
                true
            }
            (Speculation::Draft(a), Speculation::Draft(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Speculation {
    /// The mode's name.
    pub fn mode(&self) -> SpeculativeMode {
        match self {
            Speculation::Off => SpeculativeMode::Off,
            Speculation::Lookup => SpeculativeMode::Lookup,
            Speculation::Draft(_) => SpeculativeMode::Draft,
        }
    }
}

/// Prior acceptance rate of a draft source before any pass was seen.
const PRIOR_ACCEPTANCE: f64 = 0.6;
/// Prior cost of one verified draft token relative to a one-token pass (prompt lookup: verification only).
/// A starting guess, not a measurement: the estimate moves toward the measured cost once passes with and without
/// drafts were timed, and back toward this prior during passes without drafts.
const PRIOR_ALPHA_LOOKUP: f64 = 0.4;
/// The same for a draft model, whose every drafted token also costs a step of the draft model.
const PRIOR_ALPHA_DRAFT: f64 = 0.5;

/// Proposes drafts for one generation and learns how many to propose.
pub(crate) struct Drafter {
    speculation: Speculation,
    length: DraftLength,
    /// A fixed draft length instead of the adaptive one.
    fixed: Option<usize>,
    /// Source of the last proposal, for [`Drafter::record`].
    source: usize,
    /// Whether the last pass took every draft it verified: inside a copied run the next drafts are far more
    /// likely right than after a miss, so acceptance is learned separately for the two cases.
    streak: bool,
}

/// Drafted tokens and what it took to draft them.
pub(crate) struct Proposal {
    /// The drafts (possibly none).
    pub tokens: Vec<u32>,
}

impl Drafter {
    /// A drafter for `speculation`, drafting `fixed` tokens per pass (at most [`MAX_DRAFT`]) or, with `None`,
    /// as many as the measured acceptance rate and pass cost say pay off.
    pub fn new(speculation: &Speculation, fixed: Option<usize>) -> Self {
        let (sources, alpha) = match speculation {
            // One acceptance class per n-gram length, after a full acceptance or not.
            Speculation::Lookup => (2 * lookup::MAX_NGRAM, PRIOR_ALPHA_LOOKUP),
            Speculation::Off | Speculation::Draft(_) => (2, PRIOR_ALPHA_DRAFT),
        };
        Drafter {
            speculation: speculation.clone(),
            length: DraftLength::new(MAX_DRAFT, sources, PRIOR_ACCEPTANCE, alpha),
            fixed: fixed.map(|k| k.min(MAX_DRAFT)),
            source: 0,
            streak: false,
        }
    }

    /// The acceptance class of drafts from `base` (an n-gram length, or the draft model) right now.
    fn class(&self, base: usize) -> usize {
        2 * base + usize::from(self.streak)
    }

    /// How many of `available` tokens to draft from `source`.
    fn length(&self, source: usize, available: usize) -> usize {
        match self.fixed {
            Some(k) => k.min(available),
            None => self.length.choose(source, available),
        }
    }

    /// Brings the draft model's sequence up to `prompt` (prefix reuse), so drafting later only runs the new
    /// tokens. No-op without a draft model.
    pub fn prefill(
        &self,
        seq: &mut Sequence,
        prompt: &[u32],
        chunk: usize,
        cancel: &CancelToken,
    ) -> Result<(), SequenceError> {
        if let Speculation::Draft(model) = &self.speculation {
            // A prompt longer than the draft model's context is not an error: it just cannot draft.
            if prompt.len() <= model.config().max_position_embeddings {
                seq.draft_sequence(model)
                    .prefill(model, prompt, chunk, cancel)?;
            }
        }
        Ok(())
    }

    /// Up to `available` drafts to follow `context` (every token so far, the last one not yet run through the
    /// target).
    pub fn propose(
        &mut self,
        seq: &mut Sequence,
        context: &[u32],
        available: usize,
        chunk: usize,
        cancel: &CancelToken,
    ) -> Result<Proposal, SequenceError> {
        let none = Proposal { tokens: Vec::new() };
        match &self.speculation {
            Speculation::Off => Ok(none),
            Speculation::Lookup => {
                let Some(found) = lookup::lookup(context, available.min(MAX_DRAFT)) else {
                    return Ok(none);
                };
                self.source = self.class(found.ngram - 1);
                let k = self.length(self.source, found.tokens.len());
                tracing::trace!(
                    ngram = found.ngram,
                    found = found.tokens.len(),
                    k,
                    acceptance = self.length.acceptance(self.source),
                    alpha = self.length.alpha(),
                    "lookup draft"
                );
                let mut tokens = found.tokens;
                tokens.truncate(k);
                Ok(Proposal { tokens })
            }
            Speculation::Draft(model) => {
                self.source = self.class(0);
                let room = model
                    .config()
                    .max_position_embeddings
                    .saturating_sub(context.len());
                let k = self.length(self.source, available.min(room));
                if k == 0 {
                    return Ok(none);
                }
                let draft = seq.draft_sequence(model);
                let mut logits = draft.prefill(model, context, chunk, cancel)?.logits;
                let mut tokens = Vec::with_capacity(k);
                loop {
                    let host: Vec<f32> =
                        logits
                            .flatten_all()
                            .and_then(|l| l.to_vec1())
                            .map_err(|e| {
                                SequenceError::Model(ModelError::Tensor {
                                    context: "draft model logits".into(),
                                    source: Box::new(e),
                                })
                            })?;
                    let token = argmax(&host);
                    tokens.push(token);
                    if tokens.len() == k {
                        break;
                    }
                    logits = draft.append(model, token)?;
                }
                Ok(Proposal { tokens })
            }
        }
    }

    /// Records how the last proposal fared: `accepted` of its `drafted` tokens were taken, and the pass
    /// (drafting and verification) took `secs`.
    pub fn record(&mut self, drafted: usize, accepted: usize, secs: f64) {
        self.length.record(self.source, drafted, accepted, secs);
        self.streak = drafted > 0 && accepted == drafted;
    }
}
