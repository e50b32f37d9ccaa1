//! Ranking: the signals fused into two budget-independent sequences of *increments* (lines to add to one
//! file's chunk), best first. The packer takes the longest prefix of each that fits, which is what makes a
//! larger budget always contain a smaller one's context.
//!
//! - **Foreground** (cursor-dependent): pieces of the definitions of the current file's names (those near the
//!   cursor first), windows similar to the text before the cursor, and the current file outside the cursor
//!   window, nearest pieces first. Reciprocal-rank fusion: an item ranked r by a signal of weight w gains
//!   w / (k + r + 1).
//! - **Background** (cursor-independent): a repository map. Each candidate file has a score fused from the
//!   files the current file imports (4), the files defining the names it uses (2), personalised PageRank (1),
//!   recency (1) and directory distance (0.5). Each of its definitions is an increment showing its signature
//!   (under its enclosing definitions'), worth the file's score times the definition's own weight (kind; how
//!   often other files reference the name; 4× when the current file imports it by name, 2× when it uses it).
//!   Each file is also a run of whole-file blocks worth a fraction of its score: maps first, bodies after.
//!   Library code of the current language comes first; tests, examples, benchmarks, fixtures, vendored and
//!   generated code after all of it (unless the current file is one of them).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use super::candidates::{NameUse, Signals};
use super::chunk::block_starts;
use super::outline::{kind_weight, visible_from_elsewhere, FileOutline};
use super::{PackConfig, Reason};
use qwen_index::{FileIndex, IndexSnapshot};

/// Definition-snippet weight.
pub const DEFINITION_WEIGHT: f64 = 3.0;
/// Similar-window weight.
pub const SIMILAR_WEIGHT: f64 = 3.0;
/// Current-file weight (its pieces by distance from the cursor window).
pub const CURRENT_WEIGHT: f64 = 1.0;
/// Imported-file weight.
pub const IMPORT_WEIGHT: f64 = 4.0;
/// Weight of the files defining the names the current file uses.
pub const USES_WEIGHT: f64 = 2.0;
/// PageRank weight.
pub const GRAPH_WEIGHT: f64 = 1.0;
/// Recency weight.
pub const RECENT_WEIGHT: f64 = 1.0;
/// Directory-distance weight.
pub const NEARBY_WEIGHT: f64 = 0.5;
/// A whole-file piece is worth this share of its file's score (a signature is worth up to
/// [`MAX_DEFINITION_FACTOR`] times it).
const WHOLE_FACTOR: f64 = 0.03;
/// How much more a definition whose name the current file's neighbours use most is worth.
const NEIGHBOUR_BOOST: f64 = 3.0;
/// What a definition code elsewhere cannot name (a private Rust item, an unexported Go name) is worth.
const INVISIBLE_FACTOR: f64 = 0.2;
/// The largest factor [`definition_factor`] gives (kind 1 × imported 4 × popularity 1.25 × neighbours 4).
const MAX_DEFINITION_FACTOR: f64 = 4.0 * 1.25 * (1.0 + NEIGHBOUR_BOOST);
/// Names defined in more files than this are ambiguous.
const AMBIGUOUS_DEFINERS: usize = 5;

/// Lines to add to one file's chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Increment {
    /// The file.
    pub path: Arc<str>,
    /// Line ranges (0-based, inclusive), ascending.
    pub ranges: Vec<(u32, u32)>,
    /// Its worth (higher first).
    pub score: f64,
    /// The signal behind it.
    pub reason: Reason,
}

/// The fused score of a background candidate file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileScore {
    /// Fused score.
    pub score: f64,
    /// The signal that contributed most.
    pub reason: Reason,
}

/// Every file named by a file-level signal, with its fused score.
pub fn file_scores(signals: &Signals, config: &PackConfig) -> HashMap<Arc<str>, FileScore> {
    let k = config.rrf_k;
    let mut files: HashMap<Arc<str>, (FileScore, f64)> = HashMap::new();
    let mut add = |list: &[Arc<str>], weight: f64, reason: Reason| {
        for (rank, path) in list.iter().enumerate() {
            let gain = weight / (k + rank as f64 + 1.0);
            let entry = files
                .entry(path.clone())
                .or_insert((FileScore { score: 0.0, reason }, 0.0));
            entry.0.score += gain;
            if gain > entry.1 {
                entry.0.reason = reason;
                entry.1 = gain;
            }
        }
    };
    add(&signals.imported, IMPORT_WEIGHT, Reason::Import);
    add(&signals.uses, USES_WEIGHT, Reason::Definition);
    add(&signals.graph, GRAPH_WEIGHT, Reason::Graph);
    add(&signals.recent, RECENT_WEIGHT, Reason::Recent);
    // Directory distance is structural proximity: reported as "graph".
    add(&signals.nearby, NEARBY_WEIGHT, Reason::Graph);
    files
        .into_iter()
        .map(|(path, (score, _))| (path, score))
        .collect()
}

/// The foreground sequence, best first. `admit` says which files may contribute; `current` is the current
/// file, whose pieces never reach into `window` (the lines the caller sends itself).
pub fn foreground(
    signals: &Signals,
    current: Option<&FileIndex>,
    window: (u32, u32),
    config: &PackConfig,
    admit: impl Fn(&str) -> bool,
) -> Vec<Increment> {
    let k = config.rrf_k;
    let rrf = |weight: f64, rank: usize| weight / (k + rank as f64 + 1.0);
    let current_path = current.map(|f| &*f.path);
    let mut out = Vec::new();
    let mut push = |path: &Arc<str>, start: u32, end: u32, score: f64, reason: Reason| {
        let is_current = Some(&**path) == current_path;
        let (start, end) = if is_current {
            match clip_to_outside(start, end, window) {
                Some(range) => range,
                None => return,
            }
        } else {
            (start, end)
        };
        if !is_current && !admit(path) {
            return;
        }
        out.push(Increment {
            path: path.clone(),
            ranges: vec![(start, end)],
            score,
            reason: if is_current { Reason::Current } else { reason },
        });
    };
    let piece = config.snippet_piece_lines.max(1);
    for (rank, span) in signals.definitions.iter().enumerate() {
        let score = rrf(DEFINITION_WEIGHT, rank);
        let mut start = span.start_line;
        let mut index = 0u32;
        while start <= span.end_line {
            let end = span.end_line.min(start + piece - 1);
            push(
                &span.path,
                start,
                end,
                score / f64::from(index + 1),
                Reason::Definition,
            );
            start = end + 1;
            index += 1;
        }
    }
    for (rank, span) in signals.similar.iter().enumerate() {
        push(
            &span.path,
            span.start_line,
            span.end_line,
            rrf(SIMILAR_WEIGHT, rank),
            Reason::Similar,
        );
    }
    if let Some(file) = current {
        for (rank, (start, end)) in
            current_pieces(file.line_count, window, config.current_piece_lines)
                .into_iter()
                .enumerate()
        {
            push(
                &file.path,
                start,
                end,
                rrf(CURRENT_WEIGHT, rank),
                Reason::Current,
            );
        }
    }
    sort_best_first(&mut out);
    out
}

/// The current file outside the cursor window in pieces: its first piece (imports, declarations) first, then
/// by distance from the window.
fn current_pieces(line_count: u32, (start, end): (u32, u32), size: u32) -> Vec<(u32, u32)> {
    let size = size.max(1);
    let mut pieces: Vec<(u32, (u32, u32))> = Vec::new();
    if line_count == 0 {
        return Vec::new();
    }
    let last = line_count - 1;
    // Before the window, walking up from it.
    let mut to = start;
    while to > 0 {
        let from = to.saturating_sub(size);
        pieces.push((start - to, (from, to - 1)));
        to = from;
    }
    // After the window, walking down.
    let mut from = end.saturating_add(1);
    while from <= last {
        let to = last.min(from + size - 1);
        pieces.push((from - end, (from, to)));
        from = to + 1;
    }
    pieces.sort_by_key(|&(distance, (from, _))| (from != 0, distance, from));
    pieces.into_iter().map(|(_, range)| range).collect()
}

/// `start..=end` without the part inside `window`, when something is left (the part before it if any).
fn clip_to_outside(start: u32, end: u32, (w_start, w_end): (u32, u32)) -> Option<(u32, u32)> {
    if end < w_start || start > w_end {
        Some((start, end))
    } else if start < w_start {
        Some((start, w_start - 1))
    } else if end > w_end {
        Some((w_end + 1, end))
    } else {
        None
    }
}

/// Highest score first; ties by path, then first line, so the order is total and deterministic.
pub fn sort_best_first(increments: &mut [Increment]) {
    increments.sort_by(order);
}

fn order(a: &Increment, b: &Increment) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.path.cmp(&b.path))
        .then_with(|| a.ranges.cmp(&b.ranges))
}

/// How much one definition's signature is worth, relative to its file's score.
fn definition_factor(
    snapshot: &IndexSnapshot,
    definition: &qwen_syntax::Definition,
    names: &HashMap<Box<str>, NameUse>,
    neighbour_uses: &HashMap<Box<str>, f64>,
    reference_files: u32,
) -> f64 {
    let name = &*definition.name;
    let kind = definition.kind;
    // A member of a type the current file imports or uses (`impl Arg { fn get_short }` when it uses `Arg`)
    // is about as likely to be called next as the type itself is to be named.
    let member_of = definition
        .scope
        .as_deref()
        .and_then(|scope| names.get(scope))
        .map_or(1.0, |how| match how {
            NameUse::Imported => 3.0,
            NameUse::Used => 2.0,
        });
    let mention = match names.get(name) {
        Some(NameUse::Imported) => 4.0,
        Some(NameUse::Used) => 2.0,
        None => member_of,
    };
    let popularity = 0.25 + 0.25 * f64::from(reference_files).ln_1p().min(4.0);
    let ambiguous = if snapshot.definers(name).len() > AMBIGUOUS_DEFINERS {
        0.5
    } else {
        1.0
    };
    // Python's convention only: elsewhere a leading underscore is often public API.
    let python = definition.name.starts_with('_')
        && snapshot
            .definers(name)
            .first()
            .is_some_and(|path| path.ends_with(".py"));
    let private = if python { 0.5 } else { 1.0 };
    let neighbours = 1.0 + NEIGHBOUR_BOOST * neighbour_uses.get(name).copied().unwrap_or(0.0);
    kind_weight(kind) * mention * popularity * ambiguous * private * neighbours
}

/// The background sequence, generated lazily best first: files are expanded into their increments only when
/// their score could still beat what is queued, so the work follows what the budget reaches. The order is
/// exactly that of sorting every increment of every file, tier by tier.
pub struct Background<'s> {
    snapshot: &'s IndexSnapshot,
    names: &'s HashMap<Box<str>, NameUse>,
    neighbour_uses: &'s HashMap<Box<str>, f64>,
    /// The current file's directory (Go: names need not be exported within a package).
    directory: &'s str,
    /// Candidate files per tier, best first.
    tiers: Vec<Vec<(FileScore, &'s Arc<FileIndex>)>>,
    tier: usize,
    next: usize,
    queue: BinaryHeap<Queued>,
}

/// A queued increment, ordered so that the heap pops the best first.
struct Queued(Increment);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        order(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        order(&other.0, &self.0)
    }
}

impl<'s> Background<'s> {
    /// The sequence over `tiers` (each a list of candidate files; earlier tiers entirely first).
    pub fn new(
        snapshot: &'s IndexSnapshot,
        signals: &'s Signals,
        current: &'s str,
        mut tiers: Vec<Vec<(FileScore, &'s Arc<FileIndex>)>>,
    ) -> Self {
        for tier in &mut tiers {
            tier.sort_by(|a, b| {
                b.0.score
                    .total_cmp(&a.0.score)
                    .then_with(|| a.1.path.cmp(&b.1.path))
            });
        }
        Self {
            snapshot,
            names: &signals.names,
            neighbour_uses: &signals.neighbour_uses,
            directory: current.rfind('/').map_or("", |i| &current[..i]),
            tiers,
            tier: 0,
            next: 0,
            queue: BinaryHeap::new(),
        }
    }

    fn expand(&mut self, score: FileScore, file: &Arc<FileIndex>) {
        if score.score <= 0.0 {
            return;
        }
        let outline = FileOutline::of(file);
        let graph = self.snapshot.graph();
        let directory = file.path.rfind('/').map_or("", |i| &file.path[..i]);
        let same_directory = directory == self.directory;
        for (index, (definition, lines)) in file.definitions.iter().zip(&outline.lines).enumerate()
        {
            let visible = if visible_from_elsewhere(file, index, &outline, same_directory) {
                1.0
            } else {
                INVISIBLE_FACTOR
            };
            let factor = visible
                * definition_factor(
                    self.snapshot,
                    definition,
                    self.names,
                    self.neighbour_uses,
                    graph.reference_files(&definition.name),
                );
            let reason = if self.names.contains_key(&*definition.name) {
                Reason::Definition
            } else {
                score.reason
            };
            self.queue.push(Queued(Increment {
                path: file.path.clone(),
                ranges: ranges_of(lines),
                score: score.score * factor,
                reason,
            }));
        }
        // The whole file, block by block (each block is tokenized once, whatever else is shown).
        let Some(last) = file.line_count.checked_sub(1) else {
            return;
        };
        let mut start = 0;
        for next in block_starts(&file.text).into_iter().chain([last + 1]) {
            self.queue.push(Queued(Increment {
                path: file.path.clone(),
                ranges: vec![(start, next - 1)],
                score: score.score * WHOLE_FACTOR,
                reason: score.reason,
            }));
            start = next;
        }
    }
}

impl Iterator for Background<'_> {
    type Item = Increment;

    fn next(&mut self) -> Option<Increment> {
        loop {
            let tier = self.tiers.get(self.tier)?;
            let bound = tier
                .get(self.next)
                .map(|(score, _)| score.score * MAX_DEFINITION_FACTOR);
            let top = self.queue.peek().map(|q| q.0.score);
            match (bound, top) {
                (Some(bound), top) if top.is_none_or(|score| score <= bound) => {
                    let (score, file) = tier[self.next];
                    self.next += 1;
                    self.expand(score, file);
                }
                (None, None) => {
                    self.tier += 1;
                    self.next = 0;
                }
                _ => return self.queue.pop().map(|q| q.0),
            }
        }
    }
}

/// Single lines merged into ranges.
fn ranges_of(lines: &[u32]) -> Vec<(u32, u32)> {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for &line in lines {
        match ranges.last_mut() {
            Some(last) if last.1 + 1 == line => last.1 = line,
            _ => ranges.push((line, line)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_pieces_start_with_the_top_then_go_outward() {
        // 100 lines, window 40..=60, pieces of 10.
        let pieces = current_pieces(100, (40, 60), 10);
        assert_eq!(pieces[0], (0, 9));
        assert_eq!(pieces[1], (30, 39));
        assert_eq!(pieces[2], (61, 70));
        let covered: u32 = pieces.iter().map(|(a, b)| b - a + 1).sum();
        assert_eq!(covered, 100 - 21);
    }

    #[test]
    fn clipping_keeps_what_lies_outside_the_window() {
        assert_eq!(clip_to_outside(1, 5, (10, 20)), Some((1, 5)));
        assert_eq!(clip_to_outside(5, 15, (10, 20)), Some((5, 9)));
        assert_eq!(clip_to_outside(15, 25, (10, 20)), Some((21, 25)));
        assert_eq!(clip_to_outside(12, 18, (10, 20)), None);
    }
}
