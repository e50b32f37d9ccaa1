//! Token counting behind a trait (so the packer does not depend on a tokenizer implementation), and a memo of
//! exact counts by content hash: consecutive requests pack mostly the same chunks, and tokenizing a million
//! tokens costs far more than hashing them.

use std::collections::HashMap;
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_64;

/// Counts tokens exactly as the model's tokenizer would encode `text` (special-token markup such as
/// `<|file_sep|>` counts as the single special token).
pub trait TokenCounter: Sync {
    /// The number of tokens of `text`.
    fn count(&self, text: &str) -> usize;
}

/// Beyond this many entries the memo is cleared (a crude bound; entries are 12 bytes).
const MAX_ENTRIES: usize = 4 << 20;

/// Memoized exact token counts, keyed by the xxh3 of the text. Thread-safe; shared across requests.
#[derive(Default)]
pub struct TokenCountCache {
    counts: Mutex<HashMap<u64, u32>>,
}

impl TokenCountCache {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// The exact count of `text`, from the memo or from `counter`.
    pub fn count(&self, counter: &dyn TokenCounter, text: &str) -> usize {
        let key = xxh3_64(text.as_bytes());
        if let Some(&count) = self.counts.lock().ok().as_ref().and_then(|m| m.get(&key)) {
            return count as usize;
        }
        let count = counter.count(text);
        if let Ok(mut counts) = self.counts.lock() {
            if counts.len() >= MAX_ENTRIES {
                counts.clear();
            }
            counts.insert(key, u32::try_from(count).unwrap_or(u32::MAX));
        }
        count
    }

    /// Counts many texts on the rayon pool, filling the memo (used before a large pack).
    pub fn prefill(&self, counter: &dyn TokenCounter, texts: &[String]) {
        use rayon::prelude::*;
        let missing: Vec<&String> = match self.counts.lock() {
            Ok(counts) => texts
                .iter()
                .filter(|t| !counts.contains_key(&xxh3_64(t.as_bytes())))
                .collect(),
            Err(_) => return,
        };
        let counted: Vec<(u64, u32)> = missing
            .par_iter()
            .map(|t| {
                let count = counter.count(t);
                (
                    xxh3_64(t.as_bytes()),
                    u32::try_from(count).unwrap_or(u32::MAX),
                )
            })
            .collect();
        if let Ok(mut counts) = self.counts.lock() {
            if counts.len() + counted.len() >= MAX_ENTRIES {
                counts.clear();
            }
            counts.extend(counted);
        }
    }

    /// Number of memoized counts.
    pub fn len(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.len())
    }

    /// Whether the memo is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
