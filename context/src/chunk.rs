//! Chunks and their exact token costs. A file's *map* chunk shows chosen lines of the file in order, each run
//! of hidden lines replaced by one `⋮` line; once showing it costs as much as the whole file, it becomes the
//! whole file. *Snippet* chunks are runs of whole lines, one chunk per run.
//!
//! Costs are exact and additive. A chunk starts with the special token `<|file_sep|>`. Inside a chunk, no
//! pre-token of the Qwen tokenizer crosses a newline unless what follows it is another line break or
//! whitespace before one (a blank line): so a text splits, for counting, right after a newline followed by
//! a line with visible characters — before every `⋮`, and before each file's *block* starts (the first
//! non-blank line at or after every [`BLOCK_LINES`]th line). A chunk's cost is the sum of the counts of its
//! units (memoized by content), and making a file whole block by block tokenizes each block once.

use std::cell::OnceCell;

use super::render::item_text;
use super::tokens::{TokenCountCache, TokenCounter};
use qwen_index::FileIndex;

/// The line that stands for hidden lines in a map chunk.
pub const ELISION: &str = "⋮\n";
/// Source code is practically never denser than this many bytes per token: a whole file of `n` bytes costs
/// at least `n / MAX_BYTES_PER_TOKEN` tokens (used to skip counting whole files that cannot be cheaper).
pub const MAX_BYTES_PER_TOKEN: usize = 6;
/// Lines per block: the unit of counting, and of making a file whole piece by piece.
pub const BLOCK_LINES: u32 = 20;

/// Counting: the tokenizer and its memo.
#[derive(Clone, Copy)]
pub struct Costs<'r> {
    /// The tokenizer.
    pub counter: &'r dyn TokenCounter,
    /// The memo.
    pub cache: &'r TokenCountCache,
}

impl Costs<'_> {
    /// Exact tokens of `text`.
    pub fn count(&self, text: &str) -> usize {
        self.cache.count(self.counter, text)
    }
}

/// A run of shown lines (0-based, inclusive) and the tokens of its piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// First line.
    pub start: u32,
    /// Last line.
    pub end: u32,
    tokens: usize,
    /// Whether its piece was counted as the chunk's first (with the header).
    first: bool,
}

/// The lines of one file and how to cut them.
pub struct FileText<'s> {
    /// The file.
    pub file: &'s FileIndex,
    starts: OnceCell<Vec<usize>>,
    blocks: OnceCell<Vec<u32>>,
}

impl<'s> FileText<'s> {
    /// Wraps a file.
    pub fn new(file: &'s FileIndex) -> Self {
        Self {
            file,
            starts: OnceCell::new(),
            blocks: OnceCell::new(),
        }
    }

    /// The first line of every block after the first (ascending).
    pub fn block_starts(&self) -> &[u32] {
        self.blocks.get_or_init(|| block_starts(&self.file.text))
    }

    /// Exact tokens of `prefix` followed by lines `start..=end`, counted in units cut at block starts.
    pub fn cost(&self, costs: Costs, prefix: &str, start: u32, end: u32) -> usize {
        let blocks = self.block_starts();
        let from = blocks.partition_point(|&b| b <= start);
        let mut unit_start = start;
        let mut total = 0;
        let mut first = true;
        for &cut in blocks[from..].iter().take_while(|&&b| b <= end) {
            total += self.unit(costs, if first { prefix } else { "" }, unit_start, cut - 1);
            first = false;
            unit_start = cut;
        }
        total + self.unit(costs, if first { prefix } else { "" }, unit_start, end)
    }

    fn unit(&self, costs: Costs, prefix: &str, start: u32, end: u32) -> usize {
        let lines = self.lines(start, end);
        if prefix.is_empty() {
            costs.count(&lines)
        } else {
            costs.count(&format!("{prefix}{lines}"))
        }
    }

    /// Last line (0-based); `None` for an empty file.
    pub fn last_line(&self) -> Option<u32> {
        self.file.line_count.checked_sub(1)
    }

    /// Bytes of lines `start..=end`.
    pub fn byte_len(&self, start: u32, end: u32) -> usize {
        let (from, to) = self.byte_range(start, end);
        to - from
    }

    fn byte_range(&self, start: u32, end: u32) -> (usize, usize) {
        let text_len = self.file.text.len();
        if start == 0 && end + 1 >= self.file.line_count {
            return (0, text_len);
        }
        let starts = self.starts.get_or_init(|| line_starts(&self.file.text));
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
    pub fn lines(&self, start: u32, end: u32) -> String {
        let (from, to) = self.byte_range(start, end);
        let mut text = self.file.text[from..to].to_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

/// A map chunk under construction.
#[derive(Default)]
pub struct MapChunk {
    runs: Vec<Run>,
    /// Tokens of the trailing `⋮` when the last run ends before the file does.
    trailing: usize,
}

impl MapChunk {
    /// Exact tokens of the chunk (0 when empty).
    pub fn tokens(&self) -> usize {
        self.runs.iter().map(|r| r.tokens).sum::<usize>() + self.trailing
    }

    /// Whether it shows nothing.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The shown runs, in order.
    pub fn runs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.runs.iter().map(|r| (r.start, r.end))
    }

    /// Whether it shows the whole file.
    pub fn is_whole(&self, text: &FileText) -> bool {
        matches!(self.runs.as_slice(), [run] if run.start == 0 && Some(run.end) == text.last_line())
    }

    /// The chunk after also showing lines `start..=end` (clamped to the file), or `None` when that adds
    /// nothing. Becomes the whole file as soon as that is no more expensive.
    pub fn with_lines(&self, text: &FileText, costs: Costs, start: u32, end: u32) -> Option<Self> {
        let last = text.last_line()?;
        let (mut runs, merged, at) = merge_run(&self.runs, start.min(last), end.min(last))?;
        runs.insert(
            at,
            Run {
                start: merged.0,
                end: merged.1,
                tokens: 0,
                first: false,
            },
        );
        let mut chunk = Self { runs, trailing: 0 };
        chunk.recount(text, costs, Some(at));
        let whole_at_least = text.file.text.len() / MAX_BYTES_PER_TOKEN;
        if chunk.tokens() >= whole_at_least && !chunk.is_whole(text) {
            let whole = text.cost(costs, &item_text(&text.file.path, ""), 0, last);
            if whole <= chunk.tokens() {
                return Some(Self {
                    runs: vec![Run {
                        start: 0,
                        end: last,
                        tokens: whole,
                        first: true,
                    }],
                    trailing: 0,
                });
            }
        }
        Some(chunk)
    }

    /// Counts the runs whose piece changed: the new one at `changed`, and any whose "first" status changed.
    fn recount(&mut self, text: &FileText, costs: Costs, changed: Option<usize>) {
        for (i, run) in self.runs.iter_mut().enumerate() {
            let first = i == 0;
            if Some(i) == changed || run.first != first || run.tokens == 0 {
                run.first = first;
                run.tokens = text.cost(costs, &prefix(text, run.start, first), run.start, run.end);
            }
        }
        let open_end = self
            .runs
            .last()
            .is_some_and(|r| Some(r.end) != text.last_line());
        self.trailing = if open_end { costs.count(ELISION) } else { 0 };
    }

    /// The chunk's content after its `<|file_sep|>path\n` header.
    pub fn content(&self, text: &FileText) -> String {
        let mut out = String::new();
        for (i, run) in self.runs.iter().enumerate() {
            if i > 0 || run.start > 0 {
                out.push_str(ELISION);
            }
            out.push_str(&text.lines(run.start, run.end));
        }
        if self.trailing > 0 {
            out.push_str(ELISION);
        }
        out
    }
}

/// What precedes a run's lines: the header before the first run, `⋮` before any run after hidden lines.
fn prefix(text: &FileText, start: u32, first: bool) -> String {
    match (first, start > 0) {
        (true, false) => item_text(&text.file.path, ""),
        (true, true) => item_text(&text.file.path, ELISION),
        (false, _) => ELISION.to_owned(),
    }
}

/// Snippet chunks of one file: merged runs of whole lines, each its own `<|file_sep|>` chunk.
#[derive(Default, Clone)]
pub struct Snippets {
    runs: Vec<Run>,
}

impl Snippets {
    /// Exact tokens of all the chunks.
    pub fn tokens(&self) -> usize {
        self.runs.iter().map(|r| r.tokens).sum()
    }

    /// The runs, in order.
    pub fn runs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.runs.iter().map(|r| (r.start, r.end))
    }

    /// The snippets after also taking lines `start..=end` (merged with runs they overlap or touch), or `None`
    /// when that adds nothing.
    pub fn with_lines(&self, text: &FileText, costs: Costs, start: u32, end: u32) -> Option<Self> {
        let last = text.last_line()?;
        let (mut runs, merged, at) = merge_run(&self.runs, start.min(last), end.min(last))?;
        let tokens = text.cost(costs, &item_text(&text.file.path, ""), merged.0, merged.1);
        runs.insert(
            at,
            Run {
                start: merged.0,
                end: merged.1,
                tokens,
                first: true,
            },
        );
        Some(Self { runs })
    }
}

/// `runs` without those that `start..=end` overlaps or touches, the merged run, and where it goes; `None` when
/// the lines are all in one run already (or the range is empty).
fn merge_run(runs: &[Run], start: u32, end: u32) -> Option<(Vec<Run>, (u32, u32), usize)> {
    if start > end || runs.iter().any(|r| r.start <= start && end <= r.end) {
        return None;
    }
    let mut kept = Vec::with_capacity(runs.len() + 1);
    let mut merged = (start, end);
    for run in runs {
        if run.end + 1 < merged.0 || merged.1 + 1 < run.start {
            kept.push(*run);
        } else {
            merged = (merged.0.min(run.start), merged.1.max(run.end));
        }
    }
    let at = kept.partition_point(|r| r.start < merged.0);
    Some((kept, merged, at))
}

/// The first line of every block after the first: the first line with visible characters at or after every
/// [`BLOCK_LINES`]th line.
pub fn block_starts(text: &str) -> Vec<u32> {
    let mut starts = Vec::new();
    let mut next = BLOCK_LINES;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let number = number as u32;
        if number >= next && !line.trim().is_empty() {
            starts.push(number);
            next = number + BLOCK_LINES;
        }
    }
    starts
}

/// Byte offset of every line's start (the first is 0).
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}
