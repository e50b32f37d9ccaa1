//! The in-process baseline: BM25 over fixed 20-line windows of every other indexed file, queried with the 20
//! lines before the cursor, packed best first while each window (as `<|file_sep|>path\nlines`) still fits.
//! Independent of the packer: its own windows, its own scoring, no graph, no symbols.

use std::collections::HashMap;
use std::sync::Arc;

use crate::context::{TokenCountCache, TokenCounter};
use crate::index::identifiers::{for_each_term, TermId};
use crate::index::IndexSnapshot;

/// Lines per window (and of the query).
pub const WINDOW_LINES: usize = 20;
const K1: f64 = 1.2;
const B: f64 = 0.75;

struct Window {
    path: Arc<str>,
    start_line: u32,
    end_line: u32,
    text: String,
    /// Term frequencies.
    terms: HashMap<TermId, u32>,
    length: u32,
}

/// The windows of one repository and their inverted index.
pub struct Bm25Index {
    windows: Vec<Window>,
    postings: HashMap<TermId, Vec<u32>>,
    average_length: f64,
}

impl Bm25Index {
    /// Cuts every indexed file into 20-line windows.
    pub fn build(snapshot: &IndexSnapshot) -> Self {
        let mut windows = Vec::new();
        for file in snapshot.files() {
            let lines: Vec<&str> = file.text.split_inclusive('\n').collect();
            for (chunk_index, chunk) in lines.chunks(WINDOW_LINES).enumerate() {
                let text: String = chunk.concat();
                let mut terms: HashMap<TermId, u32> = HashMap::new();
                let mut length = 0;
                for_each_term(&text, |t| {
                    *terms.entry(t).or_default() += 1;
                    length += 1;
                });
                let start = (chunk_index * WINDOW_LINES) as u32;
                windows.push(Window {
                    path: file.path.clone(),
                    start_line: start,
                    end_line: start + chunk.len() as u32 - 1,
                    text,
                    terms,
                    length,
                });
            }
        }
        let mut postings: HashMap<TermId, Vec<u32>> = HashMap::new();
        for (i, window) in windows.iter().enumerate() {
            for &term in window.terms.keys() {
                postings.entry(term).or_default().push(i as u32);
            }
        }
        let total: u64 = windows.iter().map(|w| u64::from(w.length)).sum();
        let average_length = (total as f64 / windows.len().max(1) as f64).max(1.0);
        Self {
            windows,
            postings,
            average_length,
        }
    }

    /// Windows by BM25 score for a query, best first (the current file left out).
    pub fn rank(&self, current: &str, query: &str) -> Vec<u32> {
        let mut query_terms: HashMap<TermId, u32> = HashMap::new();
        for_each_term(query, |t| *query_terms.entry(t).or_default() += 1);
        let n = self.windows.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for &term in query_terms.keys() {
            let Some(list) = self.postings.get(&term) else {
                continue;
            };
            let df = list.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &w in list {
                let window = &self.windows[w as usize];
                if *window.path == *current {
                    continue;
                }
                let tf = f64::from(window.terms[&term]);
                let norm = K1 * (1.0 - B + B * f64::from(window.length) / self.average_length);
                *scores.entry(w).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut ranked: Vec<(u32, f64)> = scores.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.into_iter().map(|(w, _)| w).collect()
    }

    /// Packs ranked windows best first while each still fits; returns (path, first line, last line) of each.
    pub fn pack(
        &self,
        ranked: &[u32],
        budget: usize,
        counter: &dyn TokenCounter,
        cache: &TokenCountCache,
    ) -> Vec<(Arc<str>, u32, u32)> {
        let header = cache.count(counter, "<|repo_name|>repo\n");
        let mut left = budget.saturating_sub(header);
        let mut packed = Vec::new();
        for &w in ranked {
            let window = &self.windows[w as usize];
            let cost = cache.count(
                counter,
                &format!("<|file_sep|>{}\n{}", window.path, window.text),
            );
            if cost <= left {
                left -= cost;
                packed.push((window.path.clone(), window.start_line, window.end_line));
            }
            if left < 8 {
                break;
            }
        }
        packed
    }
}

/// The query: the last [`WINDOW_LINES`] lines of the text before the cursor.
pub fn query_before(prefix: &str) -> &str {
    let mut start = prefix.len();
    for _ in 0..WINDOW_LINES {
        match prefix[..start].rfind('\n') {
            Some(i) => start = i,
            None => return prefix,
        }
    }
    &prefix[start..]
}
