//! Fusion of the signals into scored candidates with reciprocal-rank fusion: an item ranked r (0-based) by
//! a signal of weight w gains w / (k + r + 1). Weights (documented in README): definitions 3, similar windows
//! 1.5, PageRank 1, recency 1, directory distance 0.5. Snippets also inherit half of their file's score; a
//! whole file scores its file signals plus the scores of all its snippets, so a file holding several useful
//! pieces is preferred whole when the budget allows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::candidates::{Signals, Span};
use super::{PackConfig, Reason};

/// Signal weights.
pub const DEFINITION_WEIGHT: f64 = 3.0;
/// Similar-window weight.
pub const SIMILAR_WEIGHT: f64 = 1.5;
/// PageRank weight.
pub const GRAPH_WEIGHT: f64 = 1.0;
/// Recency weight.
pub const RECENT_WEIGHT: f64 = 1.0;
/// Directory-distance weight.
pub const NEARBY_WEIGHT: f64 = 0.5;
/// Share of its file's score a snippet inherits.
const FILE_SHARE: f64 = 0.5;

/// Something the packer may include: a snippet (a span) or a whole file.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Path.
    pub path: Arc<str>,
    /// `None` for the whole file, else the snippet's lines.
    pub lines: Option<(u32, u32)>,
    /// Fused score (higher is better).
    pub score: f64,
    /// The signal that contributed most.
    pub reason: Reason,
}

/// The fused candidates, in two tiers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranking {
    /// Whole files by their file-level score alone (PageRank, recency, directory distance): independent of
    /// the cursor position, so the background they form stays identical while the user moves within a file.
    pub background: Vec<Candidate>,
    /// Snippets and whole files including cursor-dependent signals (definitions, similar windows).
    pub foreground: Vec<Candidate>,
}

/// All candidates, best first in each tier (ties broken by path and line so the order is total).
pub fn fuse(signals: &Signals, config: &PackConfig) -> Ranking {
    let k = config.rrf_k;
    let rrf = |weight: f64, rank: usize| weight / (k + rank as f64 + 1.0);
    // Per file: (score, best reason, best contribution).
    let mut files: HashMap<Arc<str>, (f64, Reason, f64)> = HashMap::new();
    let mut add_file = |path: &Arc<str>, gain: f64, reason: Reason| {
        let entry = files.entry(path.clone()).or_insert((0.0, reason, 0.0));
        entry.0 += gain;
        if gain > entry.2 {
            entry.1 = reason;
            entry.2 = gain;
        }
    };
    for (rank, path) in signals.graph.iter().enumerate() {
        add_file(path, rrf(GRAPH_WEIGHT, rank), Reason::Graph);
    }
    for (rank, path) in signals.recent.iter().enumerate() {
        add_file(path, rrf(RECENT_WEIGHT, rank), Reason::Recent);
    }
    // Directory distance is structural proximity: reported as "graph".
    for (rank, path) in signals.nearby.iter().enumerate() {
        add_file(path, rrf(NEARBY_WEIGHT, rank), Reason::Graph);
    }
    let file_score = |files: &HashMap<Arc<str>, (f64, Reason, f64)>, path: &Arc<str>| {
        files.get(path).map_or(0.0, |f| f.0)
    };

    let mut snippets: BTreeMap<Span, (f64, Reason)> = BTreeMap::new();
    let mut add_snippet = |span: &Span, gain: f64, reason: Reason| {
        let entry = snippets.entry(span.clone()).or_insert((0.0, reason));
        if gain > entry.0 {
            entry.1 = reason;
        }
        entry.0 += gain;
    };
    for (rank, span) in signals.definitions.iter().enumerate() {
        add_snippet(span, rrf(DEFINITION_WEIGHT, rank), Reason::Definition);
    }
    for (rank, span) in signals.similar.iter().enumerate() {
        add_snippet(span, rrf(SIMILAR_WEIGHT, rank), Reason::Similar);
    }

    let mut candidates = Vec::with_capacity(snippets.len() + files.len());
    let mut whole_bonus: HashMap<Arc<str>, (f64, Reason, f64)> = HashMap::new();
    for (span, (score, reason)) in &snippets {
        let bonus = whole_bonus
            .entry(span.path.clone())
            .or_insert((0.0, *reason, 0.0));
        bonus.0 += score;
        if *score > bonus.2 {
            bonus.1 = *reason;
            bonus.2 = *score;
        }
        candidates.push(Candidate {
            path: span.path.clone(),
            lines: Some((span.start_line, span.end_line)),
            score: score + FILE_SHARE * file_score(&files, &span.path),
            reason: *reason,
        });
    }
    let mut background: Vec<Candidate> = files
        .iter()
        .map(|(path, &(score, reason, _))| Candidate {
            path: path.clone(),
            lines: None,
            score,
            reason,
        })
        .collect();
    sort_best_first(&mut background);
    let mut paths: Vec<&Arc<str>> = files.keys().chain(whole_bonus.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let (file_part, file_reason, file_best) =
            files
                .get(path)
                .copied()
                .unwrap_or((0.0, Reason::Graph, 0.0));
        let (snippet_part, snippet_reason, snippet_best) = whole_bonus
            .get(path)
            .copied()
            .unwrap_or((0.0, Reason::Graph, 0.0));
        let reason = if snippet_best > file_best {
            snippet_reason
        } else {
            file_reason
        };
        candidates.push(Candidate {
            path: path.clone(),
            lines: None,
            score: file_part + snippet_part,
            reason,
        });
    }
    sort_best_first(&mut candidates);
    Ranking {
        background,
        foreground: candidates,
    }
}

/// Highest score first; ties by path, then lines, so the order is total and deterministic.
pub fn sort_best_first(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.lines.cmp(&b.lines))
    });
}
