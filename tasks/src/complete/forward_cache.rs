//! Typing through a shown suggestion: when the user types characters that match the start of the suggestion
//! on screen, the rest of it is still right, so it is answered from here without a new generation.
//!
//! An LRU of completions keyed by hashes of the text before and after the cursor (the caller decides which
//! text: the whole document or the prompt's prefix/suffix windows; the same choice must be used for insert
//! and lookup). A lookup for a prefix `P` hits an entry whose prefix `P0` satisfies `P = P0 + typed` where
//! `typed` is a proper prefix of the entry's text, with an identical suffix. Backspacing back towards `P0`
//! keeps hitting; any other edit misses. Keys are 64-bit hashes plus lengths: a collision would need two
//! texts of equal length with equal hashes, and only ever shows a suggestion for the wrong text — the typed
//! part is compared byte for byte, never hashed.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

/// A completion answered from the cache, relative to the current cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedCompletion {
    /// The part of the cached text not typed yet: insert at the cursor.
    pub text: String,
    /// Bytes after the cursor the insertion replaces (auto-closed brackets the completion types over).
    pub replace_len: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    prefix_hash: u64,
    prefix_len: usize,
    suffix_hash: u64,
    suffix_len: usize,
    text: String,
    replace_len: usize,
}

/// The forward cache; see the module documentation.
#[derive(Debug, Clone)]
pub struct ForwardCache {
    capacity: usize,
    /// Most recently used first.
    entries: VecDeque<Entry>,
}

fn hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

impl ForwardCache {
    /// A cache holding at most `capacity` completions (at least one).
    pub fn new(capacity: usize) -> ForwardCache {
        ForwardCache {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
        }
    }

    /// Number of cached completions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (e.g. when the model or configuration changes).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Remembers that `text` (replacing `replace_len` bytes after the cursor) was shown for the cursor
    /// between `prefix` and `suffix`. An empty text is not stored.
    pub fn insert(&mut self, prefix: &str, suffix: &str, text: &str, replace_len: usize) {
        if text.is_empty() {
            return;
        }
        let prefix_hash = hash(prefix);
        let suffix_hash = hash(suffix);
        self.entries.retain(|e| {
            !(e.prefix_len == prefix.len()
                && e.prefix_hash == prefix_hash
                && e.suffix_hash == suffix_hash)
        });
        self.entries.push_front(Entry {
            prefix_hash,
            prefix_len: prefix.len(),
            suffix_hash,
            suffix_len: suffix.len(),
            text: text.to_string(),
            replace_len,
        });
        self.entries.truncate(self.capacity);
    }

    /// The rest of a cached completion the text before the cursor has typed into, if any (and marks it as
    /// recently used). Never answers with an empty text: a fully typed suggestion is gone.
    pub fn get(&mut self, prefix: &str, suffix: &str) -> Option<CachedCompletion> {
        let mut suffix_hash = None;
        let found = self.entries.iter().position(|e| {
            let Some(typed) = prefix.get(e.prefix_len..) else {
                return false;
            };
            if e.suffix_len != suffix.len()
                || typed.len() >= e.text.len()
                || !e.text.starts_with(typed)
            {
                return false;
            }
            // Hash only for candidates whose cheap checks passed.
            *suffix_hash.get_or_insert_with(|| hash(suffix)) == e.suffix_hash
                && prefix
                    .get(..e.prefix_len)
                    .is_some_and(|p| hash(p) == e.prefix_hash)
        })?;
        let entry = self.entries.remove(found)?;
        let typed = prefix.len() - entry.prefix_len;
        let answer = CachedCompletion {
            text: entry.text[typed..].to_string(),
            replace_len: entry.replace_len,
        };
        self.entries.push_front(entry);
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "fn main() {\n    let v = ";
    const SUFFIX: &str = "\n}\n";

    fn cache() -> ForwardCache {
        let mut cache = ForwardCache::new(4);
        cache.insert(PREFIX, SUFFIX, "vec![1, 2, 3];", 0);
        cache
    }

    fn get(cache: &mut ForwardCache, typed: &str) -> Option<String> {
        cache
            .get(&format!("{PREFIX}{typed}"), SUFFIX)
            .map(|c| c.text)
    }

    #[test]
    fn typing_through_reuses_the_rest() {
        let mut cache = cache();
        assert_eq!(get(&mut cache, "").as_deref(), Some("vec![1, 2, 3];"));
        assert_eq!(get(&mut cache, "v").as_deref(), Some("ec![1, 2, 3];"));
        assert_eq!(get(&mut cache, "vec![1, ").as_deref(), Some("2, 3];"));
        assert_eq!(get(&mut cache, "vec![1, 2, 3];"), None, "fully typed");
    }

    #[test]
    fn backspace_and_mismatch() {
        let mut cache = cache();
        assert!(get(&mut cache, "vec![1").is_some());
        // Backspace within the typed part still hits; past the original prefix it misses.
        assert_eq!(get(&mut cache, "vec!").as_deref(), Some("[1, 2, 3];"));
        assert_eq!(cache.get(&PREFIX[..PREFIX.len() - 1], SUFFIX), None);
        assert_eq!(get(&mut cache, "vecx"), None, "typed something else");
        assert_eq!(
            cache.get(&format!("{PREFIX}v"), "\n}\n// changed\n"),
            None,
            "suffix changed"
        );
        assert_eq!(
            cache.get(&format!("x{PREFIX}"), SUFFIX),
            None,
            "prefix changed before the cursor"
        );
    }

    #[test]
    fn bounded_lru_keeps_recently_used() {
        let mut cache = ForwardCache::new(2);
        cache.insert("a", "", "1", 0);
        cache.insert("b", "", "2", 0);
        assert!(cache.get("a", "").is_some());
        cache.insert("c", "", "3", 0);
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get("b", "").is_none(),
            "least recently used was evicted"
        );
        assert!(cache.get("a", "").is_some());
        cache.insert("a", "", "4", 1);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get("a", ""),
            Some(CachedCompletion {
                text: "4".into(),
                replace_len: 1
            })
        );
    }

    #[test]
    fn multibyte_typing_never_splits_chars() {
        let mut cache = ForwardCache::new(2);
        cache.insert("s = \"", "\"", "héllo", 1);
        assert_eq!(
            cache.get("s = \"h", "\"").map(|c| c.text).as_deref(),
            Some("éllo")
        );
        assert_eq!(
            cache.get("s = \"hé", "\"").map(|c| c.text).as_deref(),
            Some("llo")
        );
        // A prefix that ends inside the cached text's multi-byte char cannot match it.
        assert_eq!(cache.get("s = \"h\u{00c3}", "\""), None);
    }
}
