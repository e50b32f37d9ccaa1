//! Streaming stop rules: fed the model's text deltas, say "stop here, cut at byte N" as early as possible, so
//! generation ends as soon as the rest could never be shown.
//!
//! Rules, cheapest first (all offsets are bytes of the raw generated text; cuts land on ASCII bytes, hence on
//! char boundaries):
//! - **special marker**: a leaked `<|…|>` token ends the completion where it starts;
//! - **newline** in single-line mode;
//! - **brackets** (every byte, via the lexer): a closer with no opener in the completion closes something
//!   before the cursor. Closers the editor auto-inserted after the cursor may be typed over; when the document
//!   lacks closers (a new function at the end of a file) the completion may close the innermost block itself
//!   and stops at that line's end; any other such closer stops the completion before it;
//! - **stop words** at column 0 (`fn `, `def `, …) once the completion has produced text;
//! - **indentation scope** (line ends): a line dedented below the block the completion writes in;
//! - **sibling item** (line ends with balanced brackets, tree-sitter): see `sibling.rs`;
//! - **repetition** (line ends, and every 64 bytes of a long line).
//!
//! A leading `<think>` block is skipped: rules apply only to the text after it.

use qwen_syntax::LanguageSpec;

use super::context::{CursorContext, Mode};
use super::language::Lang;
use super::lexer::{is_closer, Event, Lexer};
use super::markers::{find_special_marker, visible_start};
use super::repetition::{line_loops, lines_loop_at};
use super::sibling::SiblingCheck;
use super::text::{floor_char_boundary, indent_width, is_blank, leading_whitespace, strip_cr};

/// Longest marker, so a marker split across deltas is still found.
const MARKER_LOOKBACK: usize = 48;
/// How often (in bytes) a long line is checked for a looping n-gram.
const LOOP_CHECK_INTERVAL: usize = 64;
/// How many completed lines are kept for the repeated-block check.
const RECENT_LINES: usize = 24;

/// Why the completion was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A special-token marker appeared in the text.
    SpecialToken,
    /// Single-line mode reached a newline.
    Newline,
    /// The completion closed a bracket opened before the cursor.
    ClosesBlock,
    /// A line started with a language stop word at column 0.
    StopWord,
    /// A line was indented less than the block the completion writes in.
    Dedent,
    /// A second item started at the level of the first (tree-sitter).
    Sibling,
    /// The completion loops; post-processing drops it.
    Repetition,
}

/// A decision to stop: keep the raw text before byte `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Byte offset into the raw generated text; the completion is `raw[..at]`.
    pub at: usize,
    /// Which rule fired.
    pub reason: StopReason,
}

/// The streaming checker; see the module documentation. Feed deltas with [`StopRules::push`] and call
/// [`StopRules::finish`] when generation ends by itself.
#[derive(Debug)]
pub struct StopRules {
    lang: Lang,
    mode: Mode,
    raw: String,
    /// Where the answer starts in `raw` (after a `<think>` block), once known.
    visible: Option<usize>,
    /// Bytes of `raw` already run through the per-byte rules.
    scanned: usize,
    lexer: Lexer,
    line_start: usize,
    line_index: usize,
    /// Lexer facts at the start of the current line.
    line_start_depth: usize,
    line_start_in_code: bool,
    /// Whether non-whitespace was produced before the current line / so far.
    content_before_line: bool,
    seen_content: bool,
    /// Indentation scope: lines must be indented at least this much (more than this when strict).
    scope: Option<(usize, bool)>,
    /// The cursor line's text before the cursor is only whitespace; its width; whether the model's own
    /// leading whitespace on the first line is dropped by post-processing.
    line_prefix_blank: bool,
    line_prefix_is_empty: bool,
    auto_closed: Vec<u8>,
    auto_closed_used: usize,
    may_close_enclosing: bool,
    /// The completion closed the enclosing block; stop at the end of this line.
    closing_line: bool,
    sibling: Option<SiblingCheck>,
    /// Recently completed non-blank lines, without trailing whitespace; the first one with the cursor
    /// line's indentation in front when the cursor is at the line start, so it compares like the others.
    recent_lines: Vec<String>,
    /// The cursor line's text before the cursor when it is only whitespace.
    blank_line_prefix: String,
    first_line_indent: FirstLineIndent,
    stopped: Option<Stop>,
    /// `finish` ran (it is idempotent; pushing after it is a caller error and finds nothing new).
    finished: bool,
}

/// How to measure the first line's indentation when the cursor line prefix is blank.
#[derive(Debug, Clone, Copy)]
struct FirstLineIndent {
    prefix_width: usize,
    keep_model_ws: bool,
}

impl StopRules {
    /// Rules for a completion at `ctx`. With a `grammar`, the sibling-item rule is on.
    pub fn new(ctx: &CursorContext<'_>, grammar: Option<&'static LanguageSpec>) -> StopRules {
        let line_prefix_blank = ctx.line_prefix_blank();
        let scope = if ctx.after_opener {
            Some((ctx.indent_width(), true))
        } else if line_prefix_blank {
            // Set by the first line with text.
            None
        } else {
            Some((ctx.indent_width(), false))
        };
        let sibling = match (ctx.mode, grammar) {
            (Mode::MultiLine, Some(grammar)) => SiblingCheck::new(grammar, ctx),
            _ => None,
        };
        StopRules {
            lang: ctx.lang,
            mode: ctx.mode,
            raw: String::new(),
            visible: None,
            scanned: 0,
            lexer: ctx.lexer_at_cursor.clone(),
            line_start: 0,
            line_index: 0,
            line_start_depth: 0,
            line_start_in_code: ctx.lexer_at_cursor.in_code(),
            content_before_line: false,
            seen_content: false,
            scope,
            line_prefix_blank,
            line_prefix_is_empty: ctx.line_prefix.is_empty(),
            auto_closed: ctx.auto_closed_brackets(),
            auto_closed_used: 0,
            may_close_enclosing: ctx.may_close_enclosing(),
            closing_line: false,
            sibling,
            recent_lines: Vec::new(),
            blank_line_prefix: if line_prefix_blank {
                ctx.line_prefix.to_string()
            } else {
                String::new()
            },
            first_line_indent: FirstLineIndent {
                prefix_width: indent_width(ctx.line_prefix),
                keep_model_ws: !ctx.prefix_already_indented(),
            },
            stopped: None,
            finished: false,
        }
    }

    /// The raw text received so far.
    pub fn text(&self) -> &str {
        &self.raw
    }

    /// The stop decision, if one was made.
    pub fn stopped(&self) -> Option<Stop> {
        self.stopped
    }

    /// Feeds a delta of generated text. Returns a stop as soon as one applies (and the same stop on every
    /// later call): the caller should end generation and keep `text()[..at]`.
    pub fn push(&mut self, delta: &str) -> Option<Stop> {
        if self.stopped.is_some() {
            return self.stopped;
        }
        let old_len = self.raw.len();
        self.raw.push_str(delta);
        let search_from = floor_char_boundary(&self.raw, old_len.saturating_sub(MARKER_LOOKBACK));
        let marker = self
            .raw
            .get(search_from..)
            .and_then(find_special_marker)
            .map(|at| search_from + at);
        let limit = marker.unwrap_or(self.raw.len());
        if let Some(stop) = self.advance(limit, marker.is_some()) {
            return self.stop(stop);
        }
        match marker {
            Some(at) => self.stop(Stop {
                at,
                reason: StopReason::SpecialToken,
            }),
            None => None,
        }
    }

    /// Generation ended by itself (end-of-text token or max tokens): applies the line-end rules to the last,
    /// unterminated line. Returns the stop if any rule fires, or `None` to keep all the text.
    pub fn finish(&mut self) -> Option<Stop> {
        if self.stopped.is_some() || self.finished {
            return self.stopped;
        }
        self.finished = true;
        let len = self.raw.len();
        if let Some(stop) = self.advance(len, true) {
            return self.stop(stop);
        }
        if self.closing_line {
            return self.stop(Stop {
                at: len,
                reason: StopReason::ClosesBlock,
            });
        }
        None
    }

    fn stop(&mut self, stop: Stop) -> Option<Stop> {
        self.stopped = Some(stop);
        self.stopped
    }

    /// Runs the per-byte rules over `raw[scanned..limit]`; with `last`, also the line-end rules for the final
    /// partial line.
    fn advance(&mut self, limit: usize, last: bool) -> Option<Stop> {
        if self.visible.is_none() {
            let start = visible_start(self.raw.get(..limit)?, last)?;
            self.visible = Some(start);
            self.scanned = start;
            self.line_start = start;
        }
        while self.scanned < limit {
            let i = self.scanned;
            self.scanned += 1;
            let b = self.raw.as_bytes()[i];
            if b == b'\n' {
                if self.mode == Mode::SingleLine {
                    return Some(Stop {
                        at: self.trim_cr(i),
                        reason: StopReason::Newline,
                    });
                }
                if let Some(stop) = self.end_of_line(i) {
                    return Some(stop);
                }
                self.lexer.feed(b);
                self.line_index += 1;
                self.line_start = i + 1;
                self.line_start_depth = self.lexer.open_brackets().len();
                self.line_start_in_code = self.lexer.in_code();
                self.content_before_line = self.seen_content;
                continue;
            }
            if let Some(stop) = self.stop_word(i) {
                return Some(stop);
            }
            if !b.is_ascii_whitespace() {
                self.seen_content = true;
            }
            if let Event::CloseOuter(closer) = self.lexer.feed(b) {
                if let Some(stop) = self.outer_close(i, closer) {
                    return Some(stop);
                }
            }
            let column = i - self.line_start;
            // `get`: byte `i` may be inside a multi-byte character; the check then waits for the next interval.
            if column % LOOP_CHECK_INTERVAL == LOOP_CHECK_INTERVAL - 1
                && self.raw.get(self.line_start..=i).is_some_and(line_loops)
            {
                return Some(Stop {
                    at: i + 1,
                    reason: StopReason::Repetition,
                });
            }
        }
        // A marker may start inside bytes scanned with the previous delta; the last line ends at it.
        let end = self.scanned.min(limit);
        if last && end > self.line_start {
            return self.end_of_line(end);
        }
        None
    }

    /// `at` moved before a `\r` that precedes it, so a cut never leaves half a CRLF.
    fn trim_cr(&self, at: usize) -> usize {
        let floor = self.visible.unwrap_or(0);
        if at > floor && self.raw.as_bytes().get(at - 1) == Some(&b'\r') {
            at - 1
        } else {
            at
        }
    }

    /// Where to cut to drop the current line: the end of the previous line, or the line start for the first.
    fn before_current_line(&self) -> usize {
        if self.line_index == 0 {
            self.line_start
        } else {
            self.trim_cr(self.line_start - 1)
        }
    }

    fn stop_word(&self, i: usize) -> Option<Stop> {
        let at_column_zero = self.line_index > 0 || self.line_prefix_is_empty;
        if !at_column_zero
            || !self.content_before_line
            || !self.line_start_in_code
            || self.line_start_depth > 0
        {
            return None;
        }
        let so_far = self.raw.get(self.line_start..=i)?;
        self.lang.line_stop_words().contains(&so_far).then(|| Stop {
            at: self.before_current_line(),
            reason: StopReason::StopWord,
        })
    }

    fn outer_close(&mut self, i: usize, closer: u8) -> Option<Stop> {
        if self.auto_closed.get(self.auto_closed_used) == Some(&closer) {
            // Typing over a bracket the editor inserted after the cursor; post-processing extends the
            // replace range over it.
            self.auto_closed_used += 1;
            return None;
        }
        if self.may_close_enclosing && !self.closing_line {
            self.closing_line = true;
            return None;
        }
        let before = &self.raw[self.line_start..i];
        let at = if is_blank(before) {
            self.before_current_line()
        } else {
            i
        };
        Some(Stop {
            at,
            reason: StopReason::ClosesBlock,
        })
    }

    /// Rules for the line `raw[line_start..end]`, run when its newline arrives (or the text ends).
    fn end_of_line(&mut self, end: usize) -> Option<Stop> {
        if self.closing_line {
            return Some(Stop {
                at: self.trim_cr(end),
                reason: StopReason::ClosesBlock,
            });
        }
        let (line_len, ws_width, starts_with_closer) = {
            let line = strip_cr(&self.raw[self.line_start..end]);
            if is_blank(line) {
                return None;
            }
            let closer = line.trim_start().bytes().next().is_some_and(is_closer);
            (line.len(), indent_width(leading_whitespace(line)), closer)
        };
        if let Some(stop) = self.dedent(ws_width, starts_with_closer) {
            return Some(stop);
        }
        if let Some(stop) = self.sibling(end) {
            return Some(stop);
        }
        let line = self.raw[self.line_start..self.line_start + line_len].trim_end();
        let indent = if self.line_index == 0 {
            self.blank_line_prefix.as_str()
        } else {
            ""
        };
        self.recent_lines.push(format!("{indent}{line}"));
        if self.recent_lines.len() > RECENT_LINES {
            self.recent_lines.remove(0);
        }
        let recent: Vec<&str> = self.recent_lines.iter().map(String::as_str).collect();
        if lines_loop_at(&recent) || line_loops(line) {
            return Some(Stop {
                at: self.trim_cr(end),
                reason: StopReason::Repetition,
            });
        }
        None
    }

    /// The indentation-scope rule for a non-blank line whose leading whitespace is `ws_width` wide.
    fn dedent(&mut self, ws_width: usize, starts_with_closer: bool) -> Option<Stop> {
        let first = self.line_index == 0;
        if first && !self.line_prefix_blank {
            // The cursor's own line: its indentation is the document's.
            return None;
        }
        let width = if first {
            let FirstLineIndent {
                prefix_width,
                keep_model_ws,
            } = self.first_line_indent;
            prefix_width + if keep_model_ws { ws_width } else { 0 }
        } else {
            ws_width
        };
        // Inside brackets or a string the layout is free; closers are the bracket rule's business.
        if !self.line_start_in_code || self.line_start_depth > 0 || starts_with_closer {
            return None;
        }
        match self.scope {
            None => {
                self.scope = Some((width, false));
                None
            }
            Some((scope, strict)) if width < scope || (strict && width == scope) => Some(Stop {
                at: self.before_current_line(),
                reason: StopReason::Dedent,
            }),
            Some(_) => None,
        }
    }

    fn sibling(&mut self, end: usize) -> Option<Stop> {
        if !self.lexer.open_brackets().is_empty() || !self.lexer.at_statement_boundary() {
            return None;
        }
        let visible = self.visible?;
        let check = self.sibling.as_mut()?;
        let completion = self.raw.get(visible..end)?;
        let at = check.check(completion)?;
        // Cut at the end of the line before the sibling (or drop everything if it is on the first line).
        let line_start = completion.get(..at)?.rfind('\n').map_or(0, |nl| nl + 1);
        let cut = if line_start == 0 {
            visible
        } else {
            self.trim_cr(visible + line_start - 1)
        };
        Some(Stop {
            at: cut,
            reason: StopReason::Sibling,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::CursorContext;
    use super::*;

    /// Pushes `deltas` one by one; returns the index of the delta that produced the stop, and the stop.
    fn stream(
        doc: &str,
        lang: Lang,
        grammar: Option<&'static LanguageSpec>,
        deltas: &[&str],
    ) -> Option<(usize, Stop)> {
        let offset = doc.find("$0").expect("cursor marker");
        let text = doc.replacen("$0", "", 1);
        let ctx = CursorContext::new(&text, offset, lang);
        let mut rules = StopRules::new(&ctx, grammar);
        for (index, delta) in deltas.iter().enumerate() {
            if let Some(stop) = rules.push(delta) {
                assert_eq!(rules.push("more"), Some(stop), "a stop is final");
                return Some((index, stop));
            }
        }
        rules.finish().map(|stop| (deltas.len(), stop))
    }

    #[test]
    fn single_line_stops_at_the_delta_with_the_newline() {
        let got = stream(
            "let x = foo($0, b);",
            Lang::from_id("rust"),
            None,
            &["a", "bc", "\r\n  ", "never"],
        );
        assert_eq!(
            got,
            Some((
                2,
                Stop {
                    at: 3,
                    reason: StopReason::Newline
                }
            ))
        );
    }

    #[test]
    fn closing_the_enclosing_block_stops_before_the_rest_arrives() {
        let doc = "fn main() {\n    $0\n}\n";
        let got = stream(
            doc,
            Lang::from_id("rust"),
            None,
            &["run();", "\n", "}", "\n\nfn other() {}"],
        );
        assert_eq!(
            got,
            Some((
                2,
                Stop {
                    at: 6,
                    reason: StopReason::ClosesBlock
                }
            ))
        );
    }

    #[test]
    fn an_unclosed_document_lets_the_completion_close_one_block() {
        let doc = "fn main() {\n    if ready {$0";
        let deltas = ["\n        go();\n    }", " // done", "\n    later();\n}"];
        let got = stream(doc, Lang::from_id("rust"), None, &deltas);
        assert_eq!(
            got,
            Some((
                2,
                Stop {
                    at: 28,
                    reason: StopReason::ClosesBlock
                }
            ))
        );
    }

    #[test]
    fn rules_ignore_a_leading_think_block_until_it_ends() {
        let doc = "x = compute($0, 1)";
        // Newlines and brackets inside the reasoning must not trigger the single-line or bracket rules.
        let deltas = ["<thi", "nk>a) b\n}", "</think>", "\n", "y", "\nz"];
        let got = stream(doc, Lang::from_id("python"), None, &deltas);
        assert_eq!(
            got,
            Some((
                5,
                Stop {
                    at: 23,
                    reason: StopReason::Newline
                }
            ))
        );
    }

    #[test]
    fn a_marker_split_across_deltas_is_found() {
        let got = stream(
            "fn f() {\n    $0\n}\n",
            Lang::from_id("rust"),
            None,
            &["g()<|endo", "ftext|>h()"],
        );
        assert_eq!(
            got,
            Some((
                1,
                Stop {
                    at: 3,
                    reason: StopReason::SpecialToken
                }
            ))
        );
    }

    #[test]
    fn stop_words_apply_only_after_content() {
        let got = stream(
            "$0",
            Lang::from_id("python"),
            None,
            &["def a():\n    pass\n", "\ndef b():\n"],
        );
        assert_eq!(
            got,
            Some((
                1,
                Stop {
                    at: 18,
                    reason: StopReason::StopWord
                }
            ))
        );
    }

    #[test]
    fn indentation_scope_in_python() {
        let doc = "def f():\n    if x:\n        $0\n";
        let got = stream(
            doc,
            Lang::from_id("python"),
            None,
            &["a()\n        b()\n", "    c()\n"],
        );
        assert_eq!(
            got,
            Some((
                1,
                Stop {
                    at: 15,
                    reason: StopReason::Dedent
                }
            ))
        );
    }

    #[test]
    fn repetition_stops_generation_early() {
        let deltas = [
            "tick();\n",
            "    tick();\n",
            "    tick();\n",
            "    tick();\n",
        ];
        let got = stream(
            "fn f() {\n    $0\n}\n",
            Lang::from_id("rust"),
            None,
            &deltas,
        );
        assert_eq!(
            got.map(|(index, stop)| (index, stop.reason)),
            Some((2, StopReason::Repetition))
        );
    }

    #[test]
    fn natural_end_without_a_rule_keeps_everything() {
        assert_eq!(
            stream(
                "fn f() {\n    $0\n}\n",
                Lang::from_id("rust"),
                None,
                &["let a = 1;", "\n    a"]
            ),
            None
        );
    }
}
