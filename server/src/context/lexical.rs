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
    let mut sorted: Vec<(TermId, usize)> = terms.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    sorted.sort_unstable();
    let mut total_windows = 0usize;
    let mut total_length = 0usize;
    let mut hits: Vec<(&FileIndex, &Window, u64)> = Vec::new();
    for file in snapshot.files() {
        for window in &file.windows {
            total_windows += 1;
            total_length += window.terms.len();
            let mask = matched_mask(&window.terms, &sorted);
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
            let score: f64 = (0..terms.len())
                .filter(|i| (mask >> i) & 1 == 1)
                .map(|i| idf[i] * per_term)
                .sum();
            ScoredWindow {
                file,
                window,
                score,
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.file.path.cmp(&b.file.path))
            .then_with(|| a.window.start_line.cmp(&b.window.start_line))
    });
    scored.truncate(limit);
    scored
}

/// Bit i set when query term i (by original index) occurs in the sorted window bag.
fn matched_mask(window: &[TermId], query: &[(TermId, usize)]) -> u64 {
    let (mut i, mut j, mut mask) = (0, 0, 0u64);
    while i < window.len() && j < query.len() {
        match window[i].cmp(&query[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                mask |= 1 << query[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    mask
}
