//! Token counting behind a trait (so the packer does not depend on a tokenizer implementation), and a memo of
//! exact counts by content hash: consecutive requests pack mostly the same chunks, and tokenizing a million
//! tokens costs far more than hashing them.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_64;

const MEMO_MAGIC: &[u8; 8] = b"QWLSTOK1";

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

    /// Loads a memo saved by [`TokenCountCache::save`]. Counts depend on the tokenizer: keep one file per
    /// vocabulary. A missing, corrupt or truncated file gives an empty memo (with a log line if corrupt).
    pub fn load(path: &Path) -> Self {
        let memo = Self::new();
        let Ok(bytes) = std::fs::read(path) else {
            return memo;
        };
        let valid = bytes.len() >= 16
            && &bytes[..8] == MEMO_MAGIC
            && (bytes.len() - 16) % 12 == 0
            && bytes[8..16] == xxh3_64(&bytes[16..]).to_le_bytes();
        if !valid {
            tracing::warn!("discarding corrupt token-count memo {}", path.display());
            return memo;
        }
        let counts: HashMap<u64, u32> = bytes[16..]
            .chunks_exact(12)
            .map(|c| {
                let mut key = [0u8; 8];
                key.copy_from_slice(&c[..8]);
                let mut count = [0u8; 4];
                count.copy_from_slice(&c[8..]);
                (u64::from_le_bytes(key), u32::from_le_bytes(count))
            })
            .collect();
        if let Ok(mut memo_counts) = memo.counts.lock() {
            *memo_counts = counts;
        }
        memo
    }

    /// Saves the memo atomically (temporary file + rename), so that the next process starts warm.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut payload = Vec::new();
        if let Ok(counts) = self.counts.lock() {
            let mut entries: Vec<(&u64, &u32)> = counts.iter().collect();
            entries.sort_unstable();
            payload.reserve(entries.len() * 12);
            for (key, count) in entries {
                payload.extend_from_slice(&key.to_le_bytes());
                payload.extend_from_slice(&count.to_le_bytes());
            }
        }
        if let Some(dir) = path.parent() {
            qwen_index::cache::create_private_dir(dir)?;
        }
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(MEMO_MAGIC)?;
        out.write_all(&xxh3_64(&payload).to_le_bytes())?;
        out.write_all(&payload)?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&temporary, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bytes;
    impl TokenCounter for Bytes {
        fn count(&self, text: &str) -> usize {
            text.len()
        }
    }

    #[test]
    fn the_memo_round_trips_and_rejects_corruption() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("memo.bin");
        let memo = TokenCountCache::new();
        memo.prefill(&Bytes, &["abc".to_owned(), "hello".to_owned()]);
        memo.save(&path).expect("saves");
        let loaded = TokenCountCache::load(&path);
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded.count(&Bytes, "hello"), 5);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        assert!(TokenCountCache::load(&path).is_empty());
    }
}
