//! Lexical similarity: BM25 of every window's identifier bag against the query's terms (binary term
//! frequency: windows are short, presence is what matters — the scheme of Copilot's Jaccard windows, with
//! BM25's idf so that ubiquitous terms like `self` or `return` do not dominate).

use qwen_index::identifiers::{for_each_term, TermId};
use qwen_index::{FileIndex, IndexSnapshot, Window, WindowRef};

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

/// Lines of one file whose windows are left out of the ranking (the cursor's own neighbourhood).
#[derive(Clone, Copy, Debug)]
pub struct Excluded<'a> {
    /// Workspace-relative path.
    pub path: &'a str,
    /// First line (0-based).
    pub start_line: u32,
    /// Last line (inclusive).
    pub end_line: u32,
}

impl Excluded<'_> {
    fn covers(&self, path: &str, window: &Window) -> bool {
        path == self.path
            && window.start_line <= self.end_line
            && self.start_line <= window.end_line
    }
}

/// The `limit` best windows for `terms` (distinct, as [`query_terms`] returns them), best first (ties:
/// path, then line). Windows overlapping `excluded` are left out, and do not count in document frequencies.
///
/// Exact BM25 top-k from the index's postings, touching only windows that can make the top `limit`
/// (MaxScore): a first pass scores the windows of the rarest terms, whose `limit`-th best score θ bounds
/// the answer from below; every term whose largest possible contribution, summed with those of all
/// commoner terms, stays below θ is then *non-essential* — a window holding only such terms cannot reach
/// θ — so only the postings of the essential terms are read, and each candidate is scored on its whole bag
/// exactly as a full scan would. Common terms (`self`, `let`, `fn`) are nearly always non-essential: their
/// document frequencies come from the list lengths, their postings are never walked.
pub fn rank_windows<'s>(
    snapshot: &'s IndexSnapshot,
    terms: &[TermId],
    limit: usize,
    excluded: Excluded<'_>,
) -> Vec<ScoredWindow<'s>> {
    if terms.is_empty() || limit == 0 {
        return Vec::new();
    }
    let postings = snapshot.postings();
    let query = QueryFilter::new(terms);
    let mut document_frequency: Vec<usize> = terms
        .iter()
        .map(|&t| postings.windows_with(t).len())
        .collect();
    if let Some(file) = snapshot.file(excluded.path) {
        for window in file
            .windows
            .iter()
            .filter(|w| excluded.covers(excluded.path, w))
        {
            let mut bits = query.matched_mask(&window.terms);
            while bits != 0 {
                document_frequency[bits.trailing_zeros() as usize] -= 1;
                bits &= bits - 1;
            }
        }
    }
    let n = postings.window_count() as f64;
    let idf: Vec<f64> = document_frequency
        .iter()
        .map(|&df| (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln())
        .collect();
    let average = (postings.total_length() as f64 / n.max(1.0)).max(1.0);
    let scorer = Scorer {
        snapshot,
        query: &query,
        idf: &idf,
        average,
        excluded,
    };
    // Terms by idf, rarest first; the first pass reads their postings until it has 2 × limit windows.
    let mut by_idf: Vec<usize> = (0..terms.len()).collect();
    by_idf.sort_by(|&a, &b| idf[b].total_cmp(&idf[a]).then(a.cmp(&b)));
    let mut first: Vec<&WindowRef> = Vec::new();
    for &i in &by_idf {
        if first.len() >= 2 * limit {
            break;
        }
        first.extend(postings.windows_with(terms[i]));
    }
    let threshold = {
        let mut scored = scorer.score(first);
        if scored.len() >= limit {
            scored.select_nth_unstable_by(limit - 1, order);
            scored[limit - 1].score
        } else {
            0.0
        }
    };
    // The largest contribution a term can make: its idf at the shortest possible bag (one term). The margin
    // covers rounding in the sums, so that a pruned window's score is certainly below θ.
    let best_per_term = (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B / average));
    let bound = |i: usize| idf[i] * best_per_term * (1.0 + 1e-9);
    let mut by_bound: Vec<usize> = (0..terms.len()).collect();
    by_bound.sort_by(|&a, &b| bound(a).total_cmp(&bound(b)).then(a.cmp(&b)));
    let mut non_essential = 0.0;
    let mut candidates: Vec<&WindowRef> = Vec::new();
    for &i in &by_bound {
        if non_essential + bound(i) < threshold {
            non_essential += bound(i);
        } else {
            candidates.extend(postings.windows_with(terms[i]));
        }
    }
    let mut scored = scorer.score(candidates);
    // A total order (no two windows share path and start line), so selecting the best `limit` first and
    // sorting only those gives exactly the full sort's prefix, without sorting every hit.
    if scored.len() > limit {
        scored.select_nth_unstable_by(limit - 1, order);
        scored.truncate(limit);
    }
    scored.sort_by(order);
    scored
}

/// Best first; ties by path, then start line.
fn order(a: &ScoredWindow<'_>, b: &ScoredWindow<'_>) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.file.path.cmp(&b.file.path))
        .then_with(|| a.window.start_line.cmp(&b.window.start_line))
}

/// BM25 of one window against the query (binary term frequency).
struct Scorer<'q, 's> {
    snapshot: &'s IndexSnapshot,
    query: &'q QueryFilter,
    idf: &'q [f64],
    average: f64,
    excluded: Excluded<'q>,
}

impl<'s> Scorer<'_, 's> {
    /// Scores the distinct windows of `refs`, leaving out excluded ones.
    fn score(&self, mut refs: Vec<&WindowRef>) -> Vec<ScoredWindow<'s>> {
        refs.sort_unstable_by_key(|r| r.key());
        refs.dedup_by_key(|r| r.key());
        let mut scored = Vec::with_capacity(refs.len());
        let mut file: Option<&'s FileIndex> = None;
        for r in refs {
            if file.is_none_or(|f| f.path != r.path) {
                file = self.snapshot.file(&r.path).map(|f| &**f);
            }
            let Some(f) = file else { continue };
            let Some(window) = f.windows.get(r.window as usize) else {
                continue;
            };
            if self.excluded.covers(&f.path, window) {
                continue;
            }
            let mask = self.query.matched_mask(&window.terms);
            let norm = K1 * (1.0 - B + B * window.terms.len() as f64 / self.average);
            let per_term = (K1 + 1.0) / (1.0 + norm);
            let mut score = 0.0;
            let mut bits = mask;
            while bits != 0 {
                score += self.idf[bits.trailing_zeros() as usize] * per_term;
                bits &= bits - 1;
            }
            scored.push(ScoredWindow {
                file: f,
                window,
                score,
            });
        }
        scored
    }
}

/// The query's terms, for matching one window's bag: a 4096-bit filter on each term id's low bits (ids are
/// hashes) in front of a sorted list. Almost every term of a bag misses the filter with one load and no
/// branch misprediction (a merge join of the two sorted lists is mostly mispredicted comparisons).
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
    use qwen_index::{Change, IndexConfig, IndexHost, TextEdit};

    /// The definition of the ranking: BM25 over every window of the snapshot (the scan the postings
    /// replaced), kept as the oracle for `rank_windows`.
    fn full_scan<'s>(
        snapshot: &'s IndexSnapshot,
        terms: &[TermId],
        limit: usize,
        excluded: Excluded<'_>,
    ) -> Vec<ScoredWindow<'s>> {
        let query = QueryFilter::new(terms);
        let (mut total_windows, mut total_length) = (0usize, 0usize);
        let mut hits = Vec::new();
        for file in snapshot.files() {
            for window in &file.windows {
                total_windows += 1;
                total_length += window.terms.len();
                let mask = query.matched_mask(&window.terms);
                if mask != 0 && !excluded.covers(&file.path, window) {
                    hits.push((&**file, window, mask));
                }
            }
        }
        let mut df = vec![0usize; terms.len()];
        for &(_, _, mask) in &hits {
            for (i, d) in df.iter_mut().enumerate() {
                *d += ((mask >> i) & 1) as usize;
            }
        }
        let n = total_windows as f64;
        let idf: Vec<f64> = df
            .iter()
            .map(|&d| (1.0 + (n - d as f64 + 0.5) / (d as f64 + 0.5)).ln())
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
        scored.sort_by(order);
        scored.truncate(limit);
        scored
    }

    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// A random line over a Zipf-ish vocabulary: a few words everywhere, many rare ones.
    fn random_line(next: &mut impl FnMut() -> u64) -> String {
        let words = 1 + next() % 8;
        (0..words)
            .map(|_| {
                let r = next() % 1000;
                let rank = (r * r * r) / 1_000_000; // skewed towards 0
                format!("w{}", rank % 400)
            })
            .collect::<Vec<_>>()
            .join(" ")
            + "\n"
    }

    /// The postings-based MaxScore ranking returns exactly the full scan's windows and scores (bit for bit),
    /// on a random corpus after random edits (so the postings are the incrementally maintained ones).
    #[test]
    fn postings_ranking_equals_the_full_scan() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let dir = tempfile::tempdir().expect("tempdir");
        for f in 0..40 {
            let lines = 1 + next() % 120;
            let text: String = (0..lines).map(|_| random_line(&mut next)).collect();
            std::fs::write(dir.path().join(format!("f{f:02}.txt")), text).expect("write");
        }
        let (mut host, _) =
            IndexHost::load(dir.path(), IndexConfig::default(), None).expect("load");
        for f in 0..5 {
            let path = format!("f{f:02}.txt");
            let text = std::fs::read_to_string(dir.path().join(&path)).expect("read");
            host.apply_change(Change::Open {
                path: path.clone(),
                version: 1,
                text: text.clone(),
            })
            .expect("open");
            let mut len = text.len();
            for version in 2..32 {
                let at = (next() as usize % (len + 1)).min(len);
                let new_text = random_line(&mut next);
                len += new_text.len();
                host.apply_change(Change::Edit {
                    path: path.clone(),
                    version,
                    edits: vec![TextEdit {
                        range: at..at,
                        new_text,
                    }],
                })
                .expect("edit");
            }
        }
        let snapshot = host.snapshot();
        for round in 0..300 {
            let query = (0..1 + next() % 6)
                .map(|_| random_line(&mut next))
                .collect::<String>();
            let terms = query_terms(&query);
            let limit = [1, 5, 20, 256][round % 4];
            let excluded = Excluded {
                path: "f01.txt",
                start_line: (next() % 60) as u32,
                end_line: (next() % 60 + 60) as u32,
            };
            let fast = rank_windows(&snapshot, &terms, limit, excluded);
            let slow = full_scan(&snapshot, &terms, limit, excluded);
            let key = |v: &[ScoredWindow<'_>]| {
                v.iter()
                    .map(|w| {
                        (
                            w.file.path.to_string(),
                            w.window.start_line,
                            w.score.to_bits(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&fast), key(&slow), "query {query:?}, limit {limit}");
        }
    }

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
