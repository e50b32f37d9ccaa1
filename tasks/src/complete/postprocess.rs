//! The post-processing pipeline: from the (stop-rule-cut) generated text to the edit shown as ghost text, or
//! a reason not to show anything.
//!
//! Steps, in this order (each a small function below):
//! 1. [`strip_think`](super::markers::strip_think): reasoning blocks go first, everything else is about code.
//! 2. [`cut_at_special_marker`](super::markers::cut_at_special_marker): leaked `<|…|>` tokens end the text.
//! 3. `to_lf`: work on `\n` internally; step 11 restores the document's line ending.
//! 4. `fix_indentation`: drop doubled first-line indentation; match the document's tabs/spaces.
//! 5. `trim_trailing_whitespace`: drop trailing blank lines (keeping the line break that puts an auto-closed
//!    bracket after the cursor on its own line).
//! 6. reject empty, whitespace-only and repetitive text.
//! 7. [`extend_over_auto_closed`]: the replace range grows over auto-closed characters the completion typed.
//! 8. [`trim_same_line_overlap`]: drop a tail that repeats the rest of the cursor's line.
//! 9. [`trim_line_overlap`]: drop last lines that repeat the document's next lines.
//! 10. `close_on_own_line`: a multi-line completion before an auto-closed `}` ends with a line break.
//! 11. reject what became empty or changes nothing, then `restore_line_endings`.
//!
//! Overlap trimming comes after the extension so that it compares against what remains of the line.

use std::ops::Range;

use super::context::{CursorContext, LineEnding};
use super::lexer::is_closer;
use super::markers::{cut_at_special_marker, strip_think};
use super::overlap::{extend_over_auto_closed, trim_line_overlap, trim_same_line_overlap};
use super::repetition::is_repetitive;
use super::text::{
    floor_char_boundary, indent_width, is_blank, leading_whitespace, line_start, TAB_WIDTH,
};

/// Bytes on each side of the cursor looked at to detect the indentation style.
const STYLE_WINDOW: usize = 4 * 1024;

/// A completion ready to show: replace `range` (bytes of the document; starts at the cursor) with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Byte range of the document replaced; empty for a plain insertion at the cursor.
    pub range: Range<usize>,
    /// The text to insert, in the document's line ending.
    pub text: String,
}

impl Completion {
    /// The document with this completion applied, or `None` if the range does not fit the document.
    pub fn apply(&self, document: &str) -> Option<String> {
        let before = document.get(..self.range.start)?;
        let after = document.get(self.range.end..)?;
        Some(format!("{before}{}{after}", self.text))
    }
}

/// Why nothing is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Nothing but whitespace was left.
    Empty,
    /// The text loops (repeated lines or n-grams).
    Repetitive,
    /// Applying it would not change the document (it only retyped what follows the cursor).
    NoChange,
}

/// Runs the pipeline on `generated` (already cut by the stop rules) for the cursor in `ctx`.
pub fn postprocess(ctx: &CursorContext<'_>, generated: &str) -> Result<Completion, Rejection> {
    let text = strip_think(generated);
    let text = cut_at_special_marker(&text);
    let text = to_lf(text);
    let text = fix_indentation(ctx, &text);
    let text = trim_trailing_whitespace(ctx, &text);
    if is_blank(&text) {
        return Err(Rejection::Empty);
    }
    // With the cursor after indentation, the first line lacks the indentation the others carry.
    let indent = if ctx.line_prefix_blank() {
        ctx.line_prefix
    } else {
        ""
    };
    if is_repetitive(&format!("{indent}{text}")) {
        return Err(Rejection::Repetitive);
    }
    let replaced = extend_over_auto_closed(ctx, &text);
    let text = trim_same_line_overlap(ctx, &text, replaced);
    let text = trim_line_overlap(ctx, text, replaced);
    let text = close_on_own_line(ctx, text, replaced);
    if is_blank(&text) {
        return Err(Rejection::Empty);
    }
    if ctx.line_suffix.get(..replaced) == Some(text.as_str()) {
        return Err(Rejection::NoChange);
    }
    Ok(Completion {
        range: ctx.offset..ctx.offset + replaced,
        text: restore_line_endings(ctx, text),
    })
}

fn to_lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

fn restore_line_endings(ctx: &CursorContext<'_>, text: String) -> String {
    match ctx.line_ending {
        LineEnding::Lf => text,
        LineEnding::CrLf => text.replace('\n', "\r\n"),
    }
}

/// Indentation style of the code around the cursor: `Some(true)` for tabs, `Some(false)` for spaces (with the
/// unit), `None` when the nearby lines are not indented.
fn indent_style(ctx: &CursorContext<'_>) -> Option<(bool, usize)> {
    // Lines near the cursor are enough, and keep this cheap in huge regions.
    let start = line_start(
        ctx.text,
        floor_char_boundary(ctx.text, ctx.offset.saturating_sub(STYLE_WINDOW)),
    );
    let end = floor_char_boundary(ctx.text, ctx.offset.saturating_add(STYLE_WINDOW));
    let nearby = ctx
        .text
        .get(start.max(ctx.region.start)..end.min(ctx.region.end))
        .unwrap_or("");
    let indents = nearby
        .lines()
        .map(leading_whitespace)
        .filter(|ws| !ws.is_empty());
    let mut tabs = false;
    let mut unit = usize::MAX;
    for ws in indents {
        tabs |= ws.starts_with('\t');
        if !ws.contains('\t') {
            unit = unit.min(ws.len());
        }
    }
    match (tabs, unit) {
        (true, _) => Some((true, TAB_WIDTH)),
        (false, usize::MAX) => None,
        (false, unit) => Some((false, unit)),
    }
}

/// Re-indents `line`'s leading whitespace in the document's style.
fn reindent(line: &str, tabs: bool, unit: usize) -> String {
    let ws = leading_whitespace(line);
    let width = indent_width(ws);
    let new_ws = if tabs {
        format!(
            "{}{}",
            "\t".repeat(width / TAB_WIDTH),
            " ".repeat(width % TAB_WIDTH)
        )
    } else {
        // Model tabs become document units; the width of a tab is the document's unit here.
        let levels = ws.chars().filter(|&c| c == '\t').count();
        let spaces = ws.chars().filter(|&c| c == ' ').count();
        " ".repeat(levels * unit + spaces)
    };
    format!("{new_ws}{}", &line[ws.len()..])
}

/// Step 4. When the line prefix is whitespace that already reaches the block's indentation, leading
/// whitespace on the model's first line would indent it twice: drop it. Lines indented with the other
/// character than the document's (spaces in a tab-indented file, or tabs in a space-indented one) are
/// re-indented in the document's style.
fn fix_indentation(ctx: &CursorContext<'_>, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let style = indent_style(ctx);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let mut line = line;
        if index == 0 && ctx.prefix_already_indented() {
            line = line.trim_start_matches([' ', '\t']);
        }
        let whole_line = index > 0 || ctx.line_prefix.is_empty();
        let ws = leading_whitespace(line);
        match style {
            Some((true, _)) if whole_line && ws.contains(' ') && indent_width(ws) >= TAB_WIDTH => {
                out.push_str(&reindent(line, true, TAB_WIDTH));
            }
            Some((false, unit)) if whole_line && ws.contains('\t') => {
                out.push_str(&reindent(line, false, unit))
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Step 5. Trailing blank lines and trailing whitespace go; but when text follows the cursor on its line and
/// the completion ends with a line break, one break and the last line's indentation stay: they put the
/// following text (an auto-closed `}`) on its own, correctly indented line.
fn trim_trailing_whitespace(ctx: &CursorContext<'_>, text: &str) -> String {
    let trimmed = text.trim_end();
    if is_blank(ctx.line_suffix) || trimmed.is_empty() {
        return trimmed.to_string();
    }
    let tail = &text[trimmed.len()..];
    match tail.rfind('\n') {
        Some(last) => format!("{trimmed}\n{}", &tail[last + 1..]),
        None => text.to_string(),
    }
}

/// Step 10. A multi-line completion written between a block opener and its auto-closed closer (`{$0}`) must
/// leave that closer on its own line, at the opener line's indentation.
fn close_on_own_line(ctx: &CursorContext<'_>, text: &str, replaced: usize) -> String {
    let rest = ctx.line_suffix.get(replaced..).unwrap_or("").trim_start();
    let closer_follows = rest.bytes().next().is_some_and(is_closer);
    let last_line = text.rsplit('\n').next().unwrap_or("");
    if closer_follows && ctx.after_opener && text.contains('\n') && !is_blank(last_line) {
        format!("{text}\n{}", ctx.indent)
    } else {
        text.to_string()
    }
}
