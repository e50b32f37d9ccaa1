//! Prompt-lookup drafts: the tokens that followed the most recent earlier occurrence of the text's last n-gram.
//!
//! Edits and explanations copy long runs of their prompt (SEARCH blocks, unchanged lines of a rewritten
//! function, identifiers); when the last few tokens already occurred, what followed them then is a cheap, often
//! exact guess. Longer n-grams are tried first (a longer match is a more specific context); among matches of one
//! length the most recent wins (the text being copied is usually the one just quoted). The scan is linear in the
//! context, a few microseconds per pass for thousands of tokens: nothing is indexed, so nothing goes stale when
//! the sequence is truncated.

/// Longest n-gram tried.
pub const MAX_NGRAM: usize = 4;

/// A draft found by lookup: the tokens, and the length of the n-gram match that found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupDraft {
    /// Proposed tokens (at most the number asked for).
    pub tokens: Vec<u32>,
    /// Length of the matched n-gram (1..=[`MAX_NGRAM`]).
    pub ngram: usize,
}

/// Up to `max` tokens that followed the latest earlier occurrence of `context`'s last n-gram, for the longest
/// `n ≤ MAX_NGRAM` that occurs; `None` when not even the last token occurred before (or `max` is 0).
pub fn lookup(context: &[u32], max: usize) -> Option<LookupDraft> {
    let len = context.len();
    if max == 0 || len < 2 {
        return None;
    }
    for n in (1..=MAX_NGRAM.min(len - 1)).rev() {
        let tail = &context[len - n..];
        // Start positions of earlier occurrences, latest first; the continuation must have at least one token.
        let found = (0..len - n)
            .rev()
            .find(|&start| &context[start..start + n] == tail);
        if let Some(start) = found {
            let from = start + n;
            let to = (from + max).min(len);
            return Some(LookupDraft {
                tokens: context[from..to].to_vec(),
                ngram: n,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_and_latest_match_wins() {
        // "a b c d | x b c d | ... b c" → the 2-gram "b c" last occurred before "d" at index 5.
        let ctx = [1, 2, 3, 4, 9, 2, 3, 4, 7, 2, 3];
        let d = lookup(&ctx, 3).expect("match");
        assert_eq!(d.ngram, 2);
        assert_eq!(d.tokens, [4, 7, 2]);
        // A 3-gram match beats the later 2-gram one.
        let ctx = [5, 2, 3, 8, 6, 2, 3, 9, 5, 2, 3];
        let d = lookup(&ctx, 2).expect("match");
        assert_eq!((d.ngram, d.tokens.as_slice()), (3, [8, 6].as_slice()));
    }

    #[test]
    fn drafts_stop_at_the_end_and_need_a_previous_occurrence() {
        assert_eq!(lookup(&[1, 2, 3], 4), None);
        assert_eq!(lookup(&[1, 2, 1], 0), None);
        // The continuation may run into the tail itself (a repeating pattern).
        let d = lookup(&[7, 7, 7], 5).expect("match");
        assert_eq!((d.ngram, d.tokens.as_slice()), (2, [7].as_slice()));
        let d = lookup(&[1, 2, 3, 1], 8).expect("match");
        assert_eq!((d.ngram, d.tokens.as_slice()), (1, [2, 3, 1].as_slice()));
    }
}
