//! Lexical similarity: BM25 of every window's identifier bag against the query's terms (binary term
//! frequency: windows are short, presence is what matters — the scheme of Copilot's Jaccard windows, with
//! BM25's idf so that ubiquitous terms like `self` or `return` do not dominate).

use crate::index::identifiers::{for_each_term, TermId};
use crate::index::{FileIndex, IndexSnapshot, Window};

/// At most this many distinct query terms (a bitmask per window records which ones matched).
const MAX_QUERY_TERMS: usize = 64;
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// A window that shares terms with the query.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredWindow<'s> {
    /// Its file.
    pub file: &'s FileIndex,
    /// The window.
    pub window: &'s Window,
    /// BM25 score (> 0).
    pub score: f64,
}

/// The distinct terms of a query text, in first-seen order, at most [`MAX_QUERY_TERMS`].
pub fn query_terms(text: &str) -> Vec<TermId> {
    let mut terms = Vec::new();
    for_each_term(text, |t| {
        if terms.len() < MAX_QUERY_TERMS && !terms.contains(&t) {
            terms.push(t);
        }
    });
    terms
}

/// The `limit` best windows for `terms`, best first (ties: path, then line). `skip` excludes windows (the
/// cursor's own neighbourhood).
pub fn rank_windows<'s>(
    snapshot: &'s IndexSnapshot,
    terms: &[TermId],
    limit: usize,
    skip: impl Fn(&FileIndex, &Window) -> bool,
) -> Vec<ScoredWindow<'s>> {
    if terms.is_empty() || limit == 0 {
        return Vec::new();
    }
    let query = QueryFilter::new(terms);
    let mut total_windows = 0usize;
    let mut total_length = 0usize;
    let mut hits: Vec<(&FileIndex, &Window, u64)> = Vec::new();
    for file in snapshot.files() {
        for window in &file.windows {
            total_windows += 1;
            total_length += window.terms.len();
            let mask = query.matched_mask(&window.terms);
            if mask != 0 && !skip(file, window) {
                hits.push((file, window, mask));
            }
        }
    }
    let mut document_frequency = vec![0usize; terms.len()];
    for &(_, _, mask) in &hits {
        for (i, df) in document_frequency.iter_mut().enumerate() {
            *df += ((mask >> i) & 1) as usize;
        }
    }
    let n = total_windows as f64;
    let idf: Vec<f64> = document_frequency
        .iter()
        .map(|&df| (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln())
        .collect();
    let average = (total_length as f64 / n.max(1.0)).max(1.0);
    let mut scored: Vec<ScoredWindow<'s>> = hits
        .into_iter()
        .map(|(file, window, mask)| {
            let norm = K1 * (1.0 - B + B * window.terms.len() as f64 / average);
            let per_term = (K1 + 1.0) / (1.0 + norm);
            let mut score = 0.0;
            let mut bits = mask;
            while bits != 0 {
                score += idf[bits.trailing_zeros() as usize] * per_term;
                bits &= bits - 1;
            }
            ScoredWindow {
                file,
                window,
                score,
            }
        })
        .collect();
    // A total order (no two windows share path and start line), so selecting the best `limit` first and
    // sorting only those gives exactly the full sort's prefix, without sorting every hit.
    let order = |a: &ScoredWindow<'_>, b: &ScoredWindow<'_>| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.file.path.cmp(&b.file.path))
            .then_with(|| a.window.start_line.cmp(&b.window.start_line))
    };
    if scored.len() > limit {
        scored.select_nth_unstable_by(limit - 1, order);
        scored.truncate(limit);
    }
    scored.sort_by(order);
    scored
}

/// The query's terms for the window scan: a 4096-bit filter on each term id's low bits (ids are hashes) in
/// front of a sorted list. Almost every term of a window misses the filter with one load and no branch
/// misprediction; the previous merge join of two sorted lists spent ~95% of the scan in mispredicted
/// comparisons (the scan visits every window of the repository for every completion).
struct QueryFilter {
    bits: [u64; FILTER_WORDS],
    /// (term, index in the query), sorted by term.
    sorted: Vec<(TermId, usize)>,
}

const FILTER_WORDS: usize = 64;
const FILTER_MASK: usize = FILTER_WORDS * 64 - 1;

impl QueryFilter {
    fn new(terms: &[TermId]) -> QueryFilter {
        let mut sorted: Vec<(TermId, usize)> =
            terms.iter().enumerate().map(|(i, &t)| (t, i)).collect();
        sorted.sort_unstable();
        let mut bits = [0u64; FILTER_WORDS];
        for &(t, _) in &sorted {
            let h = t as usize & FILTER_MASK;
            bits[h >> 6] |= 1 << (h & 63);
        }
        QueryFilter { bits, sorted }
    }

    /// Bit i set when query term i (by original index) occurs in the window's bag.
    fn matched_mask(&self, window: &[TermId]) -> u64 {
        let mut mask = 0u64;
        for &t in window {
            let h = t as usize & FILTER_MASK;
            if (self.bits[h >> 6] >> (h & 63)) & 1 == 1 {
                if let Ok(k) = self.sorted.binary_search_by_key(&t, |e| e.0) {
                    mask |= 1 << self.sorted[k].1;
                }
            }
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter finds exactly what a merge join of the two sorted lists finds.
    #[test]
    fn filter_matches_the_merge_join() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            // A small alphabet so that windows and queries share terms (and filter collisions happen).
            let alphabet: Vec<TermId> = (0..200).map(|_| next() as TermId).collect();
            let pick = |n: usize, next: &mut dyn FnMut() -> u64| -> Vec<TermId> {
                (0..n)
                    .map(|_| alphabet[next() as usize % alphabet.len()])
                    .collect()
            };
            let mut query = pick(1 + next() as usize % MAX_QUERY_TERMS, &mut next);
            query.dedup();
            let mut unique = Vec::new();
            for t in query {
                if !unique.contains(&t) {
                    unique.push(t);
                }
            }
            let mut window = pick(next() as usize % 80, &mut next);
            window.sort_unstable();
            window.dedup();
            let expected = unique
                .iter()
                .enumerate()
                .filter(|(_, t)| window.binary_search(t).is_ok())
                .fold(0u64, |m, (i, _)| m | 1 << i);
            assert_eq!(QueryFilter::new(&unique).matched_mask(&window), expected);
        }
    }
}
