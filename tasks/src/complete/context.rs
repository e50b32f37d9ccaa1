//! What the cursor is surrounded by: the current line split at the cursor, indentation, the enclosing block's
//! indentation, the item region around the cursor and its bracket balance, and from those the decision between
//! a single-line and a multi-line completion.
//!
//! Everything is computed once per request from the document text and a byte offset, and is then shared by the
//! streaming stop rules and the final post-processing, so both judge the completion against the same facts.

use std::ops::Range;

use super::language::Lang;
use super::lexer::{is_closer, Lexer};
use super::text::{
    ends_with_opener, floor_char_boundary, indent_width, is_blank, leading_whitespace, line_end,
    line_start, strip_cr,
};

/// How far from the cursor the item region's boundaries are looked for. A pathological file (one item of
/// megabytes) gets a region cut at a line boundary instead.
const MAX_REGION_SIDE: usize = 1024 * 1024;
/// How much of the region on each side of the cursor is lexed for the bracket balance. Items larger than
/// this are judged on a window, which keeps a request's cost bounded on huge generated files.
const MAX_BALANCE_SIDE: usize = 64 * 1024;

/// Whether a completion may span several lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stop at the first newline: there is text after the cursor the completion must fit in front of, or the
    /// cursor is at the end of a line that does not open a block.
    SingleLine,
    /// The cursor is on a blank line or after a block opener: the completion may fill a block.
    MultiLine,
}

/// Where the cursor sits on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinePosition {
    /// Only whitespace on the line.
    EmptyLine,
    /// Only whitespace before the cursor, text after it.
    StartOfLine,
    /// Text before the cursor, only whitespace after it.
    EndOfLine,
    /// Text on both sides.
    MidLine,
}

/// The document's line ending, taken from the cursor's line (or the first line break when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
}

/// Characters an editor typically inserts by itself after the cursor (auto-closed pairs and the punctuation
/// that follows them). A line suffix made of these alone does not force a single-line completion, and the
/// replace range may be extended over them.
pub(crate) fn is_auto_closed_char(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '"' | '\'' | '`' | ';' | ',') || c.is_whitespace()
}

/// The facts about the cursor that completion post-processing needs. Offsets are bytes into `text`.
#[derive(Debug, Clone)]
pub struct CursorContext<'a> {
    /// The whole document.
    pub text: &'a str,
    /// The cursor, clamped into the text and onto a char boundary.
    pub offset: usize,
    /// The document's language.
    pub lang: Lang,
    /// The cursor's line up to the cursor.
    pub line_prefix: &'a str,
    /// The cursor's line after the cursor, without the line ending.
    pub line_suffix: &'a str,
    /// The leading whitespace of the cursor's line.
    pub indent: &'a str,
    /// Where the cursor sits on its line.
    pub position: LinePosition,
    /// Whether the text before the cursor on its line ends with a block opener (`{`, `(`, `[`, `:`, `=>`) and
    /// only auto-closed characters follow the cursor.
    pub after_opener: bool,
    /// Indentation width (tabs count 4) a line of the enclosing block has: the cursor line's own when it has
    /// text before the cursor, otherwise derived from the previous non-blank line (one deeper after an opener).
    pub block_indent: usize,
    /// Single-line or multi-line completion.
    pub mode: Mode,
    /// The document's line ending.
    pub line_ending: LineEnding,
    /// Byte range of the item region around the cursor: from the start of the top-level item containing the
    /// cursor (a line starting in column 0) to the start of the next one.
    pub(crate) region: Range<usize>,
    /// Lexer state at the cursor (string/comment state of the prefix), with an empty bracket stack.
    pub(crate) lexer_at_cursor: Lexer,
    /// Brackets opened in the region before the cursor (at most [`MAX_BALANCE_SIDE`] of it) and not closed
    /// there, innermost last.
    pub(crate) unclosed_before: Vec<u8>,
    /// Closers in the region after the cursor that close something opened before it, in order.
    pub(crate) closed_after: Vec<u8>,
}

impl<'a> CursorContext<'a> {
    /// Analyses the cursor at byte `offset` of `text`. Out-of-range offsets are clamped and offsets inside a
    /// character move back to its start: this never panics.
    pub fn new(text: &'a str, offset: usize, lang: Lang) -> CursorContext<'a> {
        let offset = floor_char_boundary(text, offset);
        let start = line_start(text, offset);
        let end = line_end(text, offset);
        let line = strip_cr(&text[start..end]);
        let line_prefix = &text[start..offset];
        let line_suffix = text.get(offset..start + line.len()).unwrap_or("");
        let indent = leading_whitespace(line);
        let prefix_blank = is_blank(line_prefix);
        let suffix_blank = is_blank(line_suffix);
        let position = match (prefix_blank, suffix_blank) {
            (true, true) => LinePosition::EmptyLine,
            (true, false) => LinePosition::StartOfLine,
            (false, true) => LinePosition::EndOfLine,
            (false, false) => LinePosition::MidLine,
        };
        let suffix_auto_closed = line_suffix.chars().all(is_auto_closed_char);
        let after_opener =
            !prefix_blank && suffix_auto_closed && ends_with_opener(line_prefix.trim_end());
        let mode = if !suffix_auto_closed {
            Mode::SingleLine
        } else if prefix_blank || after_opener {
            Mode::MultiLine
        } else {
            Mode::SingleLine
        };
        let block_indent = if prefix_blank {
            indent_after_previous_line(text, start)
        } else {
            indent_width(indent)
        };
        let line_ending = detect_line_ending(text, end);
        let region = item_region(text, offset, lang, MAX_REGION_SIDE);
        let balance = item_region(text, offset, lang, MAX_BALANCE_SIDE);
        let mut lexer = Lexer::new(lang);
        lexer.feed_str(&text[balance.start..offset]);
        let unclosed_before = lexer.open_brackets().to_vec();
        let lexer_at_cursor = lexer.with_empty_stack();
        let closed_after = lexer_at_cursor.clone().feed_str(&text[offset..balance.end]);
        CursorContext {
            text,
            offset,
            lang,
            line_prefix,
            line_suffix,
            indent,
            position,
            after_opener,
            block_indent,
            mode,
            line_ending,
            region,
            lexer_at_cursor,
            unclosed_before,
            closed_after,
        }
    }

    /// The document before the cursor.
    pub fn prefix(&self) -> &'a str {
        &self.text[..self.offset]
    }

    /// The document after the cursor.
    pub fn suffix(&self) -> &'a str {
        &self.text[self.offset..]
    }

    /// Indentation width of the cursor's line.
    pub fn indent_width(&self) -> usize {
        indent_width(self.indent)
    }

    /// Whether the line before the cursor holds only whitespace.
    pub fn line_prefix_blank(&self) -> bool {
        is_blank(self.line_prefix)
    }

    /// Whether the region after the cursor leaves brackets of the region before it unclosed, so a completion
    /// may close the innermost of them itself (typing a new function at the end of a file).
    pub(crate) fn may_close_enclosing(&self) -> bool {
        self.unclosed_before.len() > self.closed_after.len()
    }

    /// The closers among the auto-closed characters at the start of the line suffix (`)]` in `foo([$0]);`,
    /// `)` in `f("$0")`): brackets the editor inserted, which a completion may type over.
    pub(crate) fn auto_closed_brackets(&self) -> Vec<u8> {
        self.line_suffix
            .chars()
            .take_while(|&c| is_auto_closed_char(c))
            .filter_map(|c| u8::try_from(c).ok().filter(|&b| is_closer(b)))
            .collect()
    }

    /// Whether the line prefix is whitespace that already reaches the block's indentation, so leading
    /// whitespace the model puts on its first line would indent it twice.
    pub(crate) fn prefix_already_indented(&self) -> bool {
        self.line_prefix_blank()
            && !self.line_prefix.is_empty()
            && indent_width(self.line_prefix) >= self.block_indent
    }
}

/// Indentation a new line after the previous non-blank line before `line_start` should have: the same, or
/// one level deeper (+1, as a strict lower bound) when that line ends with a block opener.
fn indent_after_previous_line(text: &str, line_start: usize) -> usize {
    let before = &text[..line_start];
    let Some(previous) = before.lines().rev().find(|l| !is_blank(l)) else {
        return 0;
    };
    let width = indent_width(leading_whitespace(previous));
    if ends_with_opener(previous.trim_end()) {
        width + 1
    } else {
        width
    }
}

fn detect_line_ending(text: &str, cursor_line_end: usize) -> LineEnding {
    let bytes = text.as_bytes();
    let newline = if bytes.get(cursor_line_end) == Some(&b'\n') {
        Some(cursor_line_end)
    } else {
        bytes.iter().position(|&b| b == b'\n')
    };
    match newline {
        Some(i) if i > 0 && bytes[i - 1] == b'\r' => LineEnding::CrLf,
        _ => LineEnding::Lf,
    }
}

/// Whether a line starts a top-level item: text in column 0 that is not a closer, a comment, a string, a
/// continuation (`else`, `elif`, …) or a preprocessor-like attribute continuation.
fn starts_item(line: &str, lang: Lang) -> bool {
    let Some(first) = line.bytes().next() else {
        return false;
    };
    if first.is_ascii_whitespace()
        || is_closer(first)
        || matches!(first, b'"' | b'\'' | b'`' | b'*')
    {
        return false;
    }
    if line.starts_with("//") || line.starts_with("/*") || (lang.hash_comments() && first == b'#') {
        return false;
    }
    !lang.continuation_keywords().iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with([' ', ':', '{']) || rest.is_empty())
    })
}

/// The item region around `offset` (see [`CursorContext::region`]), at most `max_side` bytes (rounded to
/// lines) on each side of the cursor.
fn item_region(text: &str, offset: usize, lang: Lang, max_side: usize) -> Range<usize> {
    let cursor_line = line_start(text, offset);
    let lower = floor_char_boundary(text, offset.saturating_sub(max_side));
    let mut start = line_start(text, lower);
    if start < lower {
        // The window starts mid-line; begin at the next full line instead.
        start = (line_end(text, lower) + 1).min(cursor_line);
    }
    // The cursor's own line counts when the cursor is past its first column.
    let mut probe = if offset > cursor_line {
        cursor_line
    } else {
        cursor_line.saturating_sub(1)
    };
    let region_start = loop {
        let ls = line_start(text, probe);
        if ls < start {
            break start;
        }
        if starts_item(strip_cr(&text[ls..line_end(text, ls)]), lang) {
            break ls;
        }
        if ls == 0 {
            break 0;
        }
        probe = ls - 1;
    };
    let upper = floor_char_boundary(text, offset.saturating_add(max_side));
    let mut next = line_end(text, offset);
    let region_end = loop {
        if next >= text.len() {
            break text.len();
        }
        if next >= upper {
            break line_start(text, upper).max(offset);
        }
        let ls = next + 1;
        let le = line_end(text, ls);
        if starts_item(strip_cr(&text[ls..le]), lang) {
            break ls;
        }
        next = le;
    };
    region_start..region_end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(doc: &str, lang: Lang) -> (String, CursorContext<'static>) {
        let offset = doc.find("$0").expect("cursor marker");
        let text: &'static str = Box::leak(doc.replacen("$0", "", 1).into_boxed_str());
        (text.to_string(), CursorContext::new(text, offset, lang))
    }

    #[test]
    fn modes_follow_the_line_around_the_cursor() {
        let (_, c) = at("fn f() {\n    $0\n}\n", Lang::from_id("rust"));
        assert_eq!(
            (c.position, c.mode),
            (LinePosition::EmptyLine, Mode::MultiLine)
        );
        assert_eq!(c.block_indent, 1);
        let (_, c) = at("fn f() {$0}\n", Lang::from_id("rust"));
        assert!(c.after_opener);
        assert_eq!(c.mode, Mode::MultiLine);
        let (_, c) = at("let x = foo($0, b);\n", Lang::from_id("rust"));
        assert_eq!(
            (c.position, c.mode),
            (LinePosition::MidLine, Mode::SingleLine)
        );
        let (_, c) = at("let x = foo($0);\n", Lang::from_id("rust"));
        assert_eq!(
            c.mode,
            Mode::MultiLine,
            "after `(` with only auto-closed text after"
        );
        let (_, c) = at("    x = 1$0\n", Lang::from_id("python"));
        assert_eq!(
            (c.position, c.mode),
            (LinePosition::EndOfLine, Mode::SingleLine)
        );
        let (_, c) = at("def f():$0\n", Lang::from_id("python"));
        assert_eq!(c.mode, Mode::MultiLine);
        let (_, c) = at("    $0return x\n", Lang::from_id("python"));
        assert_eq!(
            (c.position, c.mode),
            (LinePosition::StartOfLine, Mode::SingleLine)
        );
    }

    #[test]
    fn regions_and_bracket_balance() {
        let doc = "use a;\n\nfn one() {\n    x();\n}\n\nfn two() {\n    $0\n}\n\nfn three() {}\n";
        let (text, c) = at(doc, Lang::from_id("rust"));
        assert_eq!(&text[c.region.clone()], "fn two() {\n    \n}\n\n");
        assert_eq!(c.unclosed_before, b"{");
        assert_eq!(c.closed_after, b"}");
        assert!(!c.may_close_enclosing());
        let (_, c) = at("fn two() {\n    if x {$0\n}\n", Lang::from_id("rust"));
        assert!(c.may_close_enclosing());
        let (_, c) = at(
            "class A:\n    def f(self):\n        $0\n\nclass B:\n    pass\n",
            Lang::from_id("python"),
        );
        assert_eq!(
            &c.text[c.region.clone()],
            "class A:\n    def f(self):\n        \n\n"
        );
    }

    #[test]
    fn offsets_are_clamped_and_crlf_detected() {
        let text = "é\r\nb";
        let c = CursorContext::new(text, 1, Lang::OTHER);
        assert_eq!(c.offset, 0);
        assert_eq!(c.line_ending, LineEnding::CrLf);
        assert_eq!(c.line_suffix, "é");
        let c = CursorContext::new(text, 999, Lang::OTHER);
        assert_eq!(c.offset, text.len());
        assert_eq!(c.line_prefix, "b");
    }
}
