//! Packing: choose candidates best-first under the token budget, then order them for the prompt.
//!
//! Every chunk is counted exactly (memoized by content hash), and a candidate is accepted only if the exact
//! new total fits, so the budget is never exceeded. Snippets of one file that touch or overlap are merged
//! into one item; a file can be upgraded to whole when the budget allows. Items are emitted least relevant
//! first with the current file last, so consecutive requests share a long common prefix.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::candidates::collect_signals;
use super::rank::{fuse, sort_best_first, Candidate, Ranking};
use super::render::{header_text, item_text, PackedContext, PackedItem, Reason};
use super::tokens::{TokenCountCache, TokenCounter};
use super::{ContextRequest, PackConfig};
use crate::index::{FileIndex, IndexSnapshot};

/// Conservative bytes per token for prefetching counts (code averages ~3.5).
const ESTIMATED_BYTES_PER_TOKEN: usize = 3;
/// Source code averages 3–4 bytes per Qwen token and is practically never denser than this: a chunk of more
/// than `6 × available` bytes is skipped without tokenizing it. (A rare chunk denser than that could have
/// fitted and is skipped anyway: a small loss of recall, never a budget overrun, and still deterministic.)
const MAX_BYTES_PER_TOKEN: usize = 6;
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
    let header_tokens = cache.count(counter, &header_text(&packed.repo_name));
    if header_tokens > request.budget {
        return packed;
    }
    packed.header_tokens = header_tokens;
    let current = snapshot.file(&request.path).map(Arc::as_ref);
    let signals = collect_signals(snapshot, request, config, current);
    let Ranking {
        mut background,
        foreground: mut candidates,
    } = fuse(&signals, config);
    background.retain(|c| *c.path != *request.path);
    candidates.retain(|c| *c.path != *request.path);
    if let Some(file) = current {
        candidates.extend(current_file_candidates(file, cursor_window, &signals));
        sort_best_first(&mut candidates);
    }
    let remaining = request.budget - header_tokens;
    let foreground_reserve = remaining.min(config.foreground_reserve(remaining));
    let mut packer = Packer {
        snapshot,
        request,
        counter,
        cache,
        cursor_window,
        remaining,
        slots: BTreeMap::new(),
    };
    // Background: whole files by cursor-independent score, within the budget minus the foreground reserve.
    // The same files in the same order come first in every request from this file (KV-cache prefix).
    let background_budget = remaining - foreground_reserve;
    packer.remaining = background_budget;
    packer.prefetch(&background);
    let share_limit = (background_budget as f64 * config.whole_file_share) as usize;
    for candidate in &background {
        if packer.remaining < MIN_USEFUL_TOKENS {
            break;
        }
        packer.consider(candidate, Some(share_limit), Tier::Background);
    }
    // Foreground: definitions, similar windows, the current file; then upgrades to whole files.
    packer.remaining += foreground_reserve;
    packer.prefetch(&candidates);
    let share_limit = (request.budget as f64 * config.whole_file_share) as usize;
    for candidate in &candidates {
        if packer.remaining < MIN_USEFUL_TOKENS {
            break;
        }
        packer.consider(candidate, Some(share_limit), Tier::Foreground);
    }
    for candidate in candidates.iter().filter(|c| c.lines.is_none()) {
        if packer.remaining < MIN_USEFUL_TOKENS {
            break;
        }
        packer.consider(candidate, None, Tier::Foreground);
    }
    packed.used_tokens = request.budget - packer.remaining;
    packed.items = packer.into_items(&request.path);
    packed
}

/// For the current file: the parts outside the cursor window as one "whole" candidate (scored above
/// everything: it is the most relevant file) and its snippets, all reported as `current`.
fn current_file_candidates(
    file: &FileIndex,
    (window_start, window_end): (u32, u32),
    signals: &super::candidates::Signals,
) -> Vec<Candidate> {
    let mut out = vec![Candidate {
        path: file.path.clone(),
        lines: None,
        score: 1.0,
        reason: Reason::Current,
    }];
    let spans = signals.definitions.iter().chain(&signals.similar);
    for (rank, span) in spans.enumerate() {
        let overlaps = span.start_line <= window_end && window_start <= span.end_line;
        if *span.path == *file.path && !overlaps {
            out.push(Candidate {
                path: span.path.clone(),
                lines: Some((span.start_line, span.end_line)),
                score: 0.5 / (rank as f64 + 1.0),
                reason: Reason::Current,
            });
        }
    }
    out
}

/// Which phase chose a file: background items precede foreground items in the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Background,
    Foreground,
}

/// A chosen line range of a file.
#[derive(Clone, Debug)]
struct Range {
    start: u32,
    end: u32,
    score: f64,
    reason: Reason,
}

/// What has been chosen from one file.
struct Slot<'s> {
    file: &'s FileIndex,
    /// Computed on first use: whole files (the bulk of large budgets) never need it.
    line_starts: std::cell::OnceCell<Vec<usize>>,
    /// What "whole" means: the full file, or the current file minus the cursor window.
    segments: Vec<(u32, u32)>,
    whole: Option<(f64, Reason)>,
    tier: Tier,
    ranges: Vec<Range>,
    tokens: usize,
}

struct Packer<'s, 'r> {
    snapshot: &'s IndexSnapshot,
    request: &'r ContextRequest,
    counter: &'r dyn TokenCounter,
    cache: &'r TokenCountCache,
    cursor_window: (u32, u32),
    remaining: usize,
    slots: BTreeMap<Arc<str>, Slot<'s>>,
}

impl<'s> Packer<'s, '_> {
    /// Counts, in parallel, the chunks the budget will probably reach (the sequential pass then hits the
    /// memo). Only a speed-up: results do not depend on it.
    fn prefetch(&mut self, candidates: &[Candidate]) {
        let available = self.remaining;
        let target = available.saturating_mul(3) / 2;
        let mut estimated = 0usize;
        let mut texts = Vec::new();
        for candidate in candidates {
            if estimated >= target {
                break;
            }
            let Some(slot) = self.slot(&candidate.path) else {
                continue;
            };
            let pieces = match candidate.lines {
                None => slot.segments.clone(),
                Some(lines) => vec![lines],
            };
            let bytes: usize = pieces.iter().map(|&(s, e)| byte_len(slot, s, e)).sum();
            if bytes / MAX_BYTES_PER_TOKEN > available {
                continue;
            }
            for (start, end) in pieces {
                let text = unit_text(slot, start, end);
                estimated += text.len() / ESTIMATED_BYTES_PER_TOKEN;
                texts.push(text);
            }
        }
        self.cache.prefill(self.counter, &texts);
    }

    fn slot(&mut self, path: &Arc<str>) -> Option<&mut Slot<'s>> {
        if !self.slots.contains_key(path) {
            let file = self.snapshot.file(path)?;
            let segments = if *file.path == *self.request.path {
                outside_window(file.line_count, self.cursor_window)
            } else if file.line_count > 0 {
                vec![(0, file.line_count - 1)]
            } else {
                Vec::new()
            };
            self.slots.insert(
                path.clone(),
                Slot {
                    file,
                    line_starts: std::cell::OnceCell::new(),
                    segments,
                    whole: None,
                    tier: Tier::Foreground,
                    ranges: Vec::new(),
                    tokens: 0,
                },
            );
        }
        self.slots.get_mut(path)
    }

    /// Accepts `candidate` if its exact extra cost fits (and, with `share_limit`, a whole file is small
    /// enough for the first pass).
    fn consider(&mut self, candidate: &Candidate, share_limit: Option<usize>, tier: Tier) {
        let remaining = self.remaining;
        let (counter, cache) = (self.counter, self.cache);
        let Some(slot) = self.slot(&candidate.path) else {
            return;
        };
        if slot.whole.is_some() || slot.segments.is_empty() {
            return;
        }
        let pieces: Vec<Range> = match candidate.lines {
            None => slot
                .segments
                .iter()
                .map(|&(start, end)| Range {
                    start,
                    end,
                    score: candidate.score,
                    reason: candidate.reason,
                })
                .collect(),
            Some((start, end)) => {
                let Some(clamped) = clamp_to_segments(&slot.segments, start, end) else {
                    return;
                };
                let mut merged = slot.ranges.clone();
                let before = covered_lines(&merged);
                merged.push(Range {
                    start: clamped.0,
                    end: clamped.1,
                    score: candidate.score,
                    reason: candidate.reason,
                });
                let merged = merge(merged, &slot.segments);
                if covered_lines(&merged) == before {
                    return;
                }
                merged
            }
        };
        let bytes: usize = pieces.iter().map(|r| byte_len(slot, r.start, r.end)).sum();
        let limit = share_limit.map_or(usize::MAX, |l| l.max(1));
        if bytes / MAX_BYTES_PER_TOKEN > remaining + slot.tokens
            || (candidate.lines.is_none() && bytes / MAX_BYTES_PER_TOKEN > limit)
        {
            return;
        }
        let cost: usize = pieces
            .iter()
            .map(|r| cache.count(counter, &unit_text(slot, r.start, r.end)))
            .sum();
        if cost > remaining + slot.tokens || (candidate.lines.is_none() && cost > limit) {
            return;
        }
        let left = remaining + slot.tokens - cost;
        slot.tokens = cost;
        if candidate.lines.is_none() {
            slot.whole = Some((candidate.score, candidate.reason));
        }
        slot.tier = tier;
        slot.ranges = pieces;
        self.remaining = left;
    }

    /// The chosen items in prompt order: background files, then foreground items, then the current file's;
    /// least relevant first within each group.
    fn into_items(self, current: &str) -> Vec<PackedItem> {
        let mut items = Vec::new();
        let mut tiers = std::collections::HashMap::new();
        for slot in self.slots.values() {
            for range in &slot.ranges {
                let text = unit_text(slot, range.start, range.end);
                let tokens = self.cache.count(self.counter, &text);
                let is_current = *slot.file.path == *current;
                tiers.insert(slot.file.path.clone(), slot.tier);
                let (score, reason) = slot.whole.unwrap_or((range.score, range.reason));
                items.push(PackedItem {
                    path: slot.file.path.clone(),
                    start_line: range.start,
                    end_line: range.end,
                    whole_file: slot.whole.is_some(),
                    tokens,
                    score,
                    reason: if is_current { Reason::Current } else { reason },
                    background: slot.tier == Tier::Background,
                    text: content(slot, range.start, range.end),
                });
            }
        }
        let group = |item: &PackedItem| {
            let is_current = *item.path == *current;
            (is_current, tiers.get(&item.path).copied())
        };
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

/// The current file's lines outside the cursor window, as up to two segments.
fn outside_window(line_count: u32, (start, end): (u32, u32)) -> Vec<(u32, u32)> {
    let mut segments = Vec::new();
    if line_count == 0 {
        return segments;
    }
    if start > 0 {
        segments.push((0, (start - 1).min(line_count - 1)));
    }
    if end + 1 < line_count {
        segments.push((end + 1, line_count - 1));
    }
    segments
}

/// Clamps a span to the first segment it overlaps (snippets never reach into the cursor window).
fn clamp_to_segments(segments: &[(u32, u32)], start: u32, end: u32) -> Option<(u32, u32)> {
    segments
        .iter()
        .find(|&&(s, e)| start <= e && s <= end)
        .map(|&(s, e)| (start.max(s), end.min(e)))
}

/// Merges overlapping or adjacent ranges (within one segment), keeping the best score and its reason.
fn merge(mut ranges: Vec<Range>, segments: &[(u32, u32)]) -> Vec<Range> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let segment_of = |line: u32| segments.iter().position(|&(s, e)| s <= line && line <= e);
    let mut merged: Vec<Range> = Vec::with_capacity(ranges.len());
    for range in ranges {
        if let Some(last) = merged.last_mut() {
            if range.start <= last.end + 1 && segment_of(range.start) == segment_of(last.end) {
                last.end = last.end.max(range.end);
                if range.score > last.score {
                    last.score = range.score;
                    last.reason = range.reason;
                }
                continue;
            }
        }
        merged.push(range);
    }
    merged
}

fn covered_lines(ranges: &[Range]) -> u64 {
    ranges.iter().map(|r| u64::from(r.end - r.start + 1)).sum()
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

fn byte_len(slot: &Slot, start: u32, end: u32) -> usize {
    let (from, to) = byte_range(slot, start, end);
    to - from
}

fn byte_range(slot: &Slot, start: u32, end: u32) -> (usize, usize) {
    let text_len = slot.file.text.len();
    if start == 0 && end + 1 >= slot.file.line_count {
        return (0, text_len);
    }
    let starts = slot
        .line_starts
        .get_or_init(|| line_starts(&slot.file.text));
    let at = |line: u32| {
        starts
            .get(line as usize)
            .copied()
            .unwrap_or(text_len)
            .min(text_len)
    };
    (at(start), at(end + 1))
}

/// Lines `start..=end`, each ending with a newline.
fn content(slot: &Slot, start: u32, end: u32) -> String {
    let (from, to) = byte_range(slot, start, end);
    let mut text = slot.file.text[from..to].to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn unit_text(slot: &Slot, start: u32, end: u32) -> String {
    item_text(&slot.file.path, &content(slot, start, end))
}
