//! Packing: the longest prefix of each ranked sequence that fits its share of the budget, then the chosen
//! chunks in prompt order.
//!
//! **Budgets only add.** Both sequences ([`super::rank`]) are independent of the budget, and each is packed
//! as a prefix: an increment that does not fit ends its sequence. The foreground (cursor-dependent) gets
//! `min(⌊budget × foreground_share⌋, max_foreground_tokens)`, or less when its whole sequence costs less;
//! the background the rest. Both shares grow with the budget, so everything packed at a budget is packed
//! again at any larger one. Other languages and non-code text are never packed unless every source file of
//! the current language fits whole: then those files are packed whole first, and the rest of the budget takes
//! the other files, best first — which still contains whatever a smaller budget packed.
//!
//! Every chunk is counted exactly (memoized by content), so `used_tokens` equals the count of the rendered
//! text and never exceeds the budget. Items come out least relevant first, background before foreground, the
//! current file last, so consecutive requests share a long common prefix.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use super::candidates::{collect_signals, Signals};
use super::chunk::{Costs, FileText, MapChunk, Snippets, MAX_BYTES_PER_TOKEN};
use super::rank::{file_scores, foreground, Background, FileScore, Increment};
use super::render::{header_text, item_text, PackedContext, PackedItem, Reason};
use super::role::{role_of, Role};
use super::tokens::{TokenCountCache, TokenCounter};
use super::{ContextRequest, PackConfig};
use qwen_index::{FileIndex, IndexSnapshot};

/// Below this many free tokens nothing useful fits (`<|file_sep|>path\n` alone takes several).
const MIN_USEFUL_TOKENS: usize = 4;

/// Ranks and packs context for `request` within `request.budget` tokens. Deterministic for a given snapshot,
/// request and config; `cache` only memoizes counts.
pub fn pack(
    snapshot: &IndexSnapshot,
    request: &ContextRequest,
    config: &PackConfig,
    counter: &dyn TokenCounter,
    cache: &TokenCountCache,
) -> PackedContext {
    let _span = tracing::debug_span!("pack", budget = request.budget).entered();
    let repo_name = snapshot.root().file_name().map_or_else(
        || "workspace".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let cursor_window = config.cursor_window(request);
    let mut packed = PackedContext {
        header_tokens: 0,
        used_tokens: 0,
        budget: request.budget,
        items: Vec::new(),
        cursor_window,
        repo_name,
    };
    let costs = Costs { counter, cache };
    let header_tokens = costs.count(&header_text(&packed.repo_name));
    if header_tokens > request.budget {
        return packed;
    }
    packed.header_tokens = header_tokens;
    let available = request.budget - header_tokens;
    let current = snapshot.file(&request.path).map(Arc::as_ref);
    let scope = Scope::new(snapshot, current);
    let mut chunks = Chunks::new(snapshot, costs, current, cursor_window);
    let signals = collect_signals(snapshot, request, config, current);
    let scores = file_scores(&signals, config);
    if let Some(left) = pack_every_source_file(&scope, &scores, &mut chunks, available) {
        pack_others(&scope, &scores, &mut chunks, left);
    } else {
        // Library code only (or code of the current file's own role): tests and the like come later.
        let sequence = foreground(&signals, current, cursor_window, config, |p| {
            scope.tier(p) == Some(0)
        });
        let cap = ((available as f64 * config.foreground_share) as usize)
            .min(config.max_foreground_tokens);
        let (_, used, exhausted) = chunks.take_prefix(sequence, cap, Tier::Foreground);
        let background_budget = available - if exhausted { used } else { cap };
        let background = background_sequence(snapshot, &scores, &scope, &signals, &request.path);
        chunks.take_prefix(background, background_budget, Tier::Background);
    }
    packed.used_tokens = header_tokens + chunks.tokens();
    packed.items = chunks.into_items(&request.path);
    packed
}

/// Which files may be packed, and in which tier.
struct Scope<'s> {
    /// Files of the current language family (all code when the current file is not code), with their tier:
    /// 0 for library code (and code of the current file's own role), 1 for tests, examples and the like.
    family: BTreeMap<&'s str, (u8, &'s Arc<FileIndex>)>,
    /// Every other indexed file: other languages, then text.
    others: Vec<&'s Arc<FileIndex>>,
    current: Option<&'s str>,
}

impl<'s> Scope<'s> {
    fn new(snapshot: &'s IndexSnapshot, current: Option<&'s FileIndex>) -> Self {
        let family_of = |file: &FileIndex| file.language.map(|l| l.family);
        let current_family = current.and_then(family_of);
        let current_role = current.map(role_of);
        let mut family = BTreeMap::new();
        let mut others = Vec::new();
        for file in snapshot.files() {
            if Some(&*file.path) == current.map(|f| &*f.path) {
                continue;
            }
            let in_family = match current_family {
                Some(name) => family_of(file) == Some(name),
                None => file.language.is_some(),
            };
            if in_family {
                let role = role_of(file);
                let tier = u8::from(role != Role::Library && Some(role) != current_role);
                family.insert(&*file.path, (tier, file));
            } else {
                others.push(file);
            }
        }
        others.sort_by_key(|f| (f.language.is_none(), f.path.clone()));
        Self {
            family,
            others,
            current: current.map(|f| &*f.path),
        }
    }

    /// The tier of a file that may be packed in the normal mode (`None`: never, unless everything fits).
    fn tier(&self, path: &str) -> Option<u8> {
        if Some(path) == self.current {
            return Some(0);
        }
        self.family.get(path).map(|&(tier, _)| tier)
    }
}

/// When every source file of the current language fits whole (with the current file outside the cursor
/// window), packs them all and returns the tokens left; else packs nothing and returns `None`. Counting
/// starts only when a lower bound by bytes says it may fit.
fn pack_every_source_file<'s>(
    scope: &Scope<'s>,
    scores: &HashMap<Arc<str>, FileScore>,
    chunks: &mut Chunks<'s, '_>,
    available: usize,
) -> Option<usize> {
    let bytes: usize = scope.family.values().map(|(_, f)| f.text.len()).sum();
    if bytes / MAX_BYTES_PER_TOKEN > available {
        return None;
    }
    let mut trial = chunks.clone_empty();
    if let Some(current) = trial.current {
        for (start, end) in outside(current.line_count, trial.window) {
            trial.add_snippet(current, start, end, Reason::Current, 1.0);
        }
    }
    for (_, file) in scope.family.values() {
        if trial.tokens() > available {
            return None;
        }
        let score = scores.get(&file.path);
        trial.add_whole(
            file,
            score.map_or(Reason::Graph, |s| s.reason),
            score.map_or(0.0, |s| s.score),
        );
    }
    if trial.tokens() > available {
        return None;
    }
    let left = available - trial.tokens();
    *chunks = trial;
    Some(left)
}

/// With the current language all packed: other languages' files, then text, best first by file score,
/// while they fit whole.
fn pack_others<'s>(
    scope: &Scope<'s>,
    scores: &HashMap<Arc<str>, FileScore>,
    chunks: &mut Chunks<'s, '_>,
    budget: usize,
) {
    if scope.others.is_empty() || budget < MIN_USEFUL_TOKENS {
        return;
    }
    let score_of = |f: &FileIndex| scores.get(&f.path).map_or(0.0, |s| s.score);
    let mut others = scope.others.clone();
    others.sort_by(|a, b| {
        a.language
            .is_none()
            .cmp(&b.language.is_none())
            .then_with(|| score_of(b).total_cmp(&score_of(a)))
            .then_with(|| a.path.cmp(&b.path))
    });
    let start = chunks.tokens();
    for file in others {
        let before = chunks.clone_file(&file.path);
        chunks.add_whole(file, Reason::Graph, score_of(file));
        if chunks.tokens() - start > budget {
            chunks.restore_file(&file.path, before);
            break;
        }
    }
}

/// The background sequence over the current language's files, library code first.
fn background_sequence<'s>(
    snapshot: &'s IndexSnapshot,
    scores: &HashMap<Arc<str>, FileScore>,
    scope: &Scope<'s>,
    signals: &'s Signals,
    current: &'s str,
) -> Background<'s> {
    let mut tiers: Vec<Vec<(FileScore, &Arc<FileIndex>)>> = vec![Vec::new(), Vec::new()];
    for (path, &(tier, file)) in &scope.family {
        if let Some(&score) = scores.get(*path) {
            tiers[usize::from(tier)].push((score, file));
        }
    }
    Background::new(snapshot, signals, current, tiers)
}

/// Which sequence chose a chunk: background chunks precede foreground ones in the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Background,
    Foreground,
}

/// What has been chosen from one file: its map chunk (background) and its snippets (foreground), each with
/// the best score and reason of what went into it.
#[derive(Clone, Default)]
struct FileChunks {
    map: Rc<MapChunk>,
    map_score: f64,
    map_reason: Option<Reason>,
    snippets: Snippets,
    snippet_score: f64,
    snippet_reason: Option<Reason>,
}

/// Every file's chunks, and their total cost.
struct Chunks<'s, 'r> {
    snapshot: &'s IndexSnapshot,
    costs: Costs<'r>,
    current: Option<&'s FileIndex>,
    window: (u32, u32),
    texts: HashMap<Arc<str>, FileText<'s>>,
    files: BTreeMap<Arc<str>, FileChunks>,
    total: usize,
}

impl<'s, 'r> Chunks<'s, 'r> {
    fn new(
        snapshot: &'s IndexSnapshot,
        costs: Costs<'r>,
        current: Option<&'s FileIndex>,
        window: (u32, u32),
    ) -> Self {
        Self {
            snapshot,
            costs,
            current,
            window,
            texts: HashMap::new(),
            files: BTreeMap::new(),
            total: 0,
        }
    }

    fn clone_empty(&self) -> Self {
        Self::new(self.snapshot, self.costs, self.current, self.window)
    }

    fn tokens(&self) -> usize {
        self.total
    }

    fn clone_file(&self, path: &Arc<str>) -> Option<FileChunks> {
        self.files.get(path).cloned()
    }

    fn restore_file(&mut self, path: &Arc<str>, before: Option<FileChunks>) {
        let now = self.files.get(path).map_or(0, cost_of);
        let then = before.as_ref().map_or(0, cost_of);
        self.total = self.total - now + then;
        match before {
            Some(before) => {
                self.files.insert(path.clone(), before);
            }
            None => {
                self.files.remove(path);
            }
        }
    }

    /// A file's text (cut into lines on first use), its chunks, and the running total.
    fn slot(&mut self, file: &'s FileIndex) -> (&FileText<'s>, &mut FileChunks, &mut usize) {
        let text = self
            .texts
            .entry(file.path.clone())
            .or_insert_with(|| FileText::new(file));
        let chunks = self.files.entry(file.path.clone()).or_default();
        (text, chunks, &mut self.total)
    }

    /// Adds lines to a file's snippets.
    fn add_snippet(
        &mut self,
        file: &'s FileIndex,
        start: u32,
        end: u32,
        reason: Reason,
        score: f64,
    ) {
        let costs = self.costs;
        let (text, entry, total) = self.slot(file);
        if let Some(next) = entry.snippets.with_lines(text, costs, start, end) {
            *total = *total - entry.snippets.tokens() + next.tokens();
            entry.snippets = next;
            if score > entry.snippet_score || entry.snippet_reason.is_none() {
                entry.snippet_score = score;
                entry.snippet_reason = Some(reason);
            }
        }
    }

    /// Makes a file's map chunk the whole file.
    fn add_whole(&mut self, file: &'s FileIndex, reason: Reason, score: f64) {
        if let Some(last) = file.line_count.checked_sub(1) {
            self.add_map_lines(file, &[(0, last)], reason, score);
        }
    }

    /// Shows more lines in a file's map chunk.
    fn add_map_lines(
        &mut self,
        file: &'s FileIndex,
        ranges: &[(u32, u32)],
        reason: Reason,
        score: f64,
    ) {
        let costs = self.costs;
        let (text, entry, total) = self.slot(file);
        let mut chunk: Option<MapChunk> = None;
        for &(start, end) in ranges {
            let base = chunk.as_ref().unwrap_or(&entry.map);
            if let Some(next) = base.with_lines(text, costs, start, end) {
                chunk = Some(next);
            }
        }
        let Some(chunk) = chunk else {
            return;
        };
        *total = *total - entry.map.tokens() + chunk.tokens();
        entry.map = Rc::new(chunk);
        if score >= entry.map_score || entry.map_reason.is_none() {
            entry.map_score = score;
            entry.map_reason = Some(reason);
        }
    }

    /// Applies `sequence` while the total added stays within `budget`; stops at the first increment that
    /// does not fit. Returns (increments taken, tokens added, whether the sequence was exhausted).
    fn take_prefix(
        &mut self,
        sequence: impl IntoIterator<Item = Increment>,
        budget: usize,
        tier: Tier,
    ) -> (usize, usize, bool) {
        let start = self.total;
        let mut taken = 0;
        for increment in sequence {
            let Some(file) = self.file(&increment.path) else {
                continue;
            };
            let before = self.clone_file(&increment.path);
            self.add_ranges(file, &increment, &increment.ranges, tier);
            if self.total.saturating_sub(start) > budget {
                self.restore_file(&increment.path, before);
                self.take_ranges_that_fit(file, &increment, tier, start, budget);
                return (taken, self.total - start, false);
            }
            taken += 1;
        }
        (taken, self.total.saturating_sub(start), true)
    }

    /// The increment that does not fit whole: its leading ranges, one by one, while they fit, then (for
    /// snippets) the leading lines of the first range that does not. Without this a large increment at the boundary would leave much
    /// of the budget empty. A larger budget takes at least these lines (and the rest of the increment), so
    /// budgets still only add.
    fn take_ranges_that_fit(
        &mut self,
        file: &'s FileIndex,
        increment: &Increment,
        tier: Tier,
        start: usize,
        budget: usize,
    ) {
        for &(first, last) in &increment.ranges {
            if !self.try_add(file, increment, (first, last), tier, start, budget) {
                if tier == Tier::Background {
                    // A map keeps whole outline ranges: a cut one would show a signature without its line.
                    return;
                }
                // The range's leading lines, as many as fit (found by bisection on the last line).
                let (mut fits, mut fails) = (None, last);
                let mut low = first;
                while low < fails {
                    let mid = low + (fails - low) / 2;
                    let before = self.clone_file(&increment.path);
                    self.add_ranges(file, increment, &[(first, mid)], tier);
                    let fit = self.total.saturating_sub(start) <= budget;
                    self.restore_file(&increment.path, before);
                    if fit {
                        fits = Some(mid);
                        low = mid + 1;
                    } else {
                        fails = mid;
                    }
                }
                if let Some(end) = fits {
                    self.add_ranges(file, increment, &[(first, end)], tier);
                }
                return;
            }
        }
    }

    /// Adds one range if the total stays within `budget`; whether it did.
    fn try_add(
        &mut self,
        file: &'s FileIndex,
        increment: &Increment,
        range: (u32, u32),
        tier: Tier,
        start: usize,
        budget: usize,
    ) -> bool {
        let before = self.clone_file(&increment.path);
        self.add_ranges(file, increment, &[range], tier);
        if self.total.saturating_sub(start) > budget {
            self.restore_file(&increment.path, before);
            return false;
        }
        true
    }

    fn add_ranges(
        &mut self,
        file: &'s FileIndex,
        increment: &Increment,
        ranges: &[(u32, u32)],
        tier: Tier,
    ) {
        match tier {
            Tier::Foreground => {
                for &(s, e) in ranges {
                    self.add_snippet(file, s, e, increment.reason, increment.score);
                }
            }
            Tier::Background => {
                self.add_map_lines(file, ranges, increment.reason, increment.score);
            }
        }
    }

    fn file(&self, path: &str) -> Option<&'s FileIndex> {
        if let Some(current) = self.current.filter(|c| &*c.path == path) {
            return Some(current);
        }
        self.snapshot.file(path).map(Arc::as_ref)
    }

    /// The chosen chunks in prompt order: background maps, then foreground snippets, then the current
    /// file's; least relevant first within each group.
    fn into_items(self, current: &str) -> Vec<PackedItem> {
        let mut items = Vec::new();
        for (path, chunks) in &self.files {
            let Some(text) = self.texts.get(path) else {
                continue;
            };
            let map = &chunks.map;
            if !map.is_empty() {
                let runs: Vec<(u32, u32)> = map.runs().collect();
                items.push(PackedItem {
                    path: path.clone(),
                    start_line: runs.first().map_or(0, |r| r.0),
                    end_line: runs.last().map_or(0, |r| r.1),
                    whole_file: map.is_whole(text),
                    tokens: map.tokens(),
                    score: chunks.map_score,
                    reason: chunks.map_reason.unwrap_or(Reason::Graph),
                    background: true,
                    text: map.content(text),
                    shown: runs,
                });
            }
            let is_current = **path == *current;
            for (start, end) in chunks.snippets.runs() {
                let content = text.lines(start, end);
                let tokens = self.costs.count(&item_text(path, &content));
                let whole_file = if is_current {
                    outside(text.file.line_count, self.window) == vec![(start, end)]
                } else {
                    start == 0 && Some(end) == text.last_line()
                };
                items.push(PackedItem {
                    path: path.clone(),
                    start_line: start,
                    end_line: end,
                    whole_file,
                    tokens,
                    score: chunks.snippet_score,
                    reason: if is_current {
                        Reason::Current
                    } else {
                        chunks.snippet_reason.unwrap_or(Reason::Definition)
                    },
                    background: false,
                    text: content,
                    shown: vec![(start, end)],
                });
            }
        }
        let group = |item: &PackedItem| (*item.path == *current, !item.background);
        items.sort_by(|a, b| {
            group(a)
                .cmp(&group(b))
                .then_with(|| a.score.total_cmp(&b.score))
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.start_line.cmp(&b.start_line))
        });
        items
    }
}

fn cost_of(chunks: &FileChunks) -> usize {
    chunks.map.tokens() + chunks.snippets.tokens()
}

/// The current file's lines outside the cursor window, as up to two ranges.
fn outside(line_count: u32, (start, end): (u32, u32)) -> Vec<(u32, u32)> {
    let mut ranges = Vec::new();
    if line_count == 0 {
        return ranges;
    }
    if start > 0 {
        ranges.push((0, (start - 1).min(line_count - 1)));
    }
    if end + 1 < line_count {
        ranges.push((end + 1, line_count - 1));
    }
    ranges
}
