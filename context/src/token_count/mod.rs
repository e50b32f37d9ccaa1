//! Exact token counts for the Qwen vocabulary (Qwen2.5, Qwen3 and Qwen3-Coder share it), without the
//! `tokenizers` crate: the same pipeline, specialised to what a count needs.
//!
//! `tokenizers` (`Tokenizer::encode_with_specials` in the engine) does, per text: split out added tokens
//! (leftmost-longest, verbatim), NFC-normalize each remaining segment, split it with Qwen2's regex, map bytes
//! to the byte-level alphabet, and run BPE on every piece, building an `Encoding` with strings and offsets on
//! the way (~0.5M tokens/s per thread here). This counter does the same steps with a scan for added tokens,
//! NFC only where a segment is not already NFC (never for ASCII), a hand-written splitter
//! ([`pretokenize`]), and BPE on bytes ([`bpe`]) behind a per-thread memo of counts by piece — source code
//! repeats its words, so most pieces are a hash lookup. The vocabulary is read from the engine's embedded
//! `tokenizer.json` ([`qwen_vocab::tokenizer_json`]): one copy in the binary.
//!
//! Counts equal the reference's exactly (`server/tests/it/token_count.rs` compares them on corpora, source
//! trees and random text); the engine's `tokenizers`-based tokenizer is only that test's oracle.

mod bpe;
mod pretokenize;
mod vocab;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rustc_hash::FxBuildHasher;
use unicode_normalization_alignments::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::TokenCounter;

/// Why the counter could not be built from a `tokenizer.json`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CounterError {
    /// The file is not JSON of the expected shape.
    #[error("tokenizer.json cannot be read: {0}")]
    Json(String),
    /// The file describes a pipeline this counter does not implement.
    #[error("tokenizer.json's {field} is {found}; the exact counter implements only {expected}")]
    Unsupported {
        /// The field.
        field: &'static str,
        /// What the file says.
        found: String,
        /// What would be accepted.
        expected: String,
    },
    /// A byte has no token in the vocabulary.
    #[error("tokenizer.json's vocabulary has no token for byte {0:#04x}")]
    MissingByte(u8),
    /// A merge names a token that is not in the vocabulary.
    #[error(
        "tokenizer.json's merge #{rank} `{left} {right}` names a token outside the vocabulary"
    )]
    BadMerge {
        /// Position in the merge list.
        rank: usize,
        /// Left part.
        left: String,
        /// Right part.
        right: String,
    },
    /// A Unicode class of the pre-tokenizer could not be built.
    #[error("pre-tokenizer class: {0}")]
    Unicode(String),
}

/// Counts tokens exactly as the Qwen tokenizer encodes text, special-token markup (`<|file_sep|>`) counting as
/// the one token it stands for (as in the packed context, whose renderer writes those tokens as text).
pub struct QwenTokenCounter {
    /// Identifies this counter's entries in the per-thread memo.
    id: u64,
    bpe: bpe::Bpe,
    classes: pretokenize::Classes,
    /// Added-token contents, longest first (so the first that matches at a position is the longest).
    added: Vec<String>,
    /// Whether a byte can start an added token.
    added_first: [bool; 256],
}

impl QwenTokenCounter {
    /// The process-wide counter over the built-in vocabulary (built on first use).
    pub fn builtin() -> Result<&'static Self, String> {
        static INSTANCE: OnceLock<Result<QwenTokenCounter, String>> = OnceLock::new();
        INSTANCE
            .get_or_init(|| {
                QwenTokenCounter::from_json(qwen_vocab::tokenizer_json())
                    .map_err(|e| format!("built-in Qwen token counter failed to load: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A counter for the vocabulary of a `tokenizer.json` whose pipeline is Qwen2's (see [`CounterError`]).
    /// Each counter has its own memo.
    pub fn from_json(json: &[u8]) -> Result<Self, CounterError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let vocab = vocab::Vocabulary::from_json(json)?;
        let mut added = vocab.added;
        added.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let mut added_first = [false; 256];
        for token in &added {
            if let Some(&first) = token.as_bytes().first() {
                added_first[usize::from(first)] = true;
            }
        }
        Ok(QwenTokenCounter {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            bpe: vocab.bpe,
            classes: pretokenize::Classes::new()?,
            added,
            added_first,
        })
    }

    /// Counts `text` with this thread's memo.
    fn count_with(&self, memo: &mut Memo, text: &str) -> usize {
        if memo.owner != self.id {
            memo.counts.clear();
            memo.owner = self.id;
        }
        let bytes = text.as_bytes();
        let mut total = 0;
        let mut segment_start = 0;
        let mut at = 0;
        while let Some(found) = bytes
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| self.added_first[usize::from(b)]))
        {
            let start = at + found;
            let rest = bytes.get(start..).unwrap_or_default();
            match self.added.iter().find(|t| rest.starts_with(t.as_bytes())) {
                Some(token) => {
                    // An added token starts with a whole character, so `start` is a character boundary.
                    total += self.count_segment(memo, text.get(segment_start..start).unwrap_or(""));
                    total += 1;
                    at = start + token.len();
                    segment_start = at;
                }
                None => at = start + 1,
            }
        }
        total + self.count_segment(memo, text.get(segment_start..).unwrap_or(""))
    }

    /// Counts text that contains no added token: NFC, pre-tokenize, BPE each piece.
    fn count_segment(&self, memo: &mut Memo, segment: &str) -> usize {
        let normalized = nfc(segment);
        let Memo {
            counts, scratch, ..
        } = memo;
        let mut total = 0;
        for piece in pretokenize::pieces(&normalized, &self.classes) {
            let bytes = piece.as_bytes();
            if bytes.len() <= 2 || bytes.len() > MEMO_MAX_PIECE {
                total += self.bpe.count(bytes, scratch);
                continue;
            }
            if let Some(&count) = counts.get(bytes) {
                total += count as usize;
                continue;
            }
            let count = self.bpe.count(bytes, scratch);
            if counts.len() >= MEMO_MAX_ENTRIES {
                counts.clear();
            }
            // A piece has at most as many tokens as bytes, and it is at most MEMO_MAX_PIECE bytes.
            counts.insert(bytes.into(), count as u32);
            total += count;
        }
        total
    }
}

/// Pieces longer than this are not memoized (rare, and they would bloat the memo).
const MEMO_MAX_PIECE: usize = 256;
/// The per-thread memo is cleared when it reaches this many pieces (~10–20 MB).
const MEMO_MAX_ENTRIES: usize = 1 << 18;

/// Per-thread state: piece counts of one counter, and BPE buffers.
#[derive(Default)]
struct Memo {
    owner: u64,
    counts: HashMap<Box<[u8]>, u32, FxBuildHasher>,
    scratch: bpe::Scratch,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// `tokenizers`' NFC normalizer (unicode-normalization-alignments, the crate it uses), skipped where the quick
/// check proves the text is already NFC.
fn nfc(text: &str) -> Cow<'_, str> {
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfc().map(|(c, _)| c).collect())
    }
}

impl TokenCounter for QwenTokenCounter {
    fn count(&self, text: &str) -> usize {
        let memoized = MEMO.try_with(|memo| {
            memo.try_borrow_mut()
                .ok()
                .map(|mut memo| self.count_with(&mut memo, text))
        });
        match memoized {
            Ok(Some(count)) => count,
            // During thread teardown (or a re-entrant call, which does not happen): a memo for this call only.
            _ => self.count_with(&mut Memo::default(), text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_tokens_count_as_one() {
        let counter = QwenTokenCounter::builtin().expect("counter loads");
        assert_eq!(counter.count("<|file_sep|>"), 1);
        assert_eq!(counter.count("<|repo_name|>"), 1);
        assert_eq!(counter.count("<|file_sep|><|file_sep|>"), 2);
        assert_eq!(counter.count(""), 0);
        assert!(counter.count("fn main() {}\n") > 3);
    }
}
