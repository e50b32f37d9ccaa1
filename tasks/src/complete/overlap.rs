//! Reconciling the completion with the text already after the cursor: typing over auto-closed brackets
//! (extending the replace range over them) and dropping the part of the completion that repeats what follows.
//!
//! Every rule refuses to drop or replace a closer that would close an opener the completion keeps: a
//! completion `check(b)` before a suffix `) {` keeps its `)`, because that one closes `check(`.

use super::context::{is_auto_closed_char, CursorContext};
use super::lexer::{is_closer, Event};
use super::text::is_blank;

/// How many following lines of the document a completion's last lines are compared with.
const MAX_OVERLAP_LINES: usize = 8;

/// Whether any closer in `text[cut..]` closes an opener in `text[..cut]`. Lexing starts in the prefix's
/// state at the cursor so that strings the cursor is inside are respected.
pub(crate) fn closes_kept_opener(ctx: &CursorContext<'_>, text: &str, cut: usize) -> bool {
    let mut lexer = ctx.lexer_at_cursor.clone();
    let mut openers: Vec<usize> = Vec::new();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        match lexer.feed(b) {
            Event::Open => openers.push(i),
            Event::CloseInner => {
                if let Some(opened) = openers.pop() {
                    if i >= cut && opened < cut {
                        return true;
                    }
                }
            }
            Event::None | Event::CloseOuter(_) => {}
        }
    }
    false
}

/// Closers in `text` with no opener in it, in order.
fn outer_closers(ctx: &CursorContext<'_>, text: &str) -> Vec<u8> {
    ctx.lexer_at_cursor.clone().feed_str(text)
}

/// Char boundaries of `s` from the longest non-empty prefix down to the shortest.
fn prefix_lengths(s: &str) -> impl Iterator<Item = usize> + '_ {
    s.char_indices().map(|(i, c)| i + c.len_utf8()).rev()
}

/// How many bytes of the line suffix the completion replaces: the auto-closed characters after the cursor
/// (`)`, `]`, `}`, quotes, `;`, `,`) that the completion typed itself. Applies only when the line suffix is
/// made of such characters. Either the completion ends with a prefix of them (`a, b)` before `)`), or its
/// unmatched closers are the first closers of the suffix (`a).unwrap()` before `)`).
pub(crate) fn extend_over_auto_closed(ctx: &CursorContext<'_>, text: &str) -> usize {
    let suffix = ctx.line_suffix.trim_end();
    if suffix.is_empty() || !suffix.chars().all(is_auto_closed_char) {
        return 0;
    }
    for k in prefix_lengths(suffix) {
        let typed = &suffix[..k];
        if text.ends_with(typed) && !closes_kept_opener(ctx, text, text.len() - k) {
            return k;
        }
    }
    let outer = outer_closers(ctx, text);
    let auto_closed = ctx.auto_closed_brackets();
    if outer.is_empty() || !auto_closed.starts_with(&outer) {
        return 0;
    }
    // Replace through the suffix's closer matching the completion's last unmatched closer.
    suffix
        .bytes()
        .enumerate()
        .filter(|(_, b)| is_closer(*b))
        .nth(outer.len() - 1)
        .map_or(0, |(i, _)| i + 1)
}

/// Drops the end of the completion when it repeats the start of what remains of the line after the replaced
/// range (`y + 1;` before ` + 1;` becomes `y`). A partial repeat must span at least two non-blank chars,
/// so a lone `)` or `;` the completion legitimately ends with is kept.
pub(crate) fn trim_same_line_overlap<'t>(
    ctx: &CursorContext<'_>,
    text: &'t str,
    replaced: usize,
) -> &'t str {
    let rest = ctx.line_suffix.get(replaced..).unwrap_or("").trim_end();
    if is_blank(rest) {
        return text;
    }
    for k in prefix_lengths(rest) {
        let repeated = &rest[..k];
        let long_enough =
            k == rest.len() || repeated.chars().filter(|c| !c.is_whitespace()).count() >= 2;
        let cut = text.len().wrapping_sub(k);
        if long_enough && text.ends_with(repeated) && !closes_kept_opener(ctx, text, cut) {
            return &text[..cut];
        }
    }
    text
}

/// Drops the completion's last lines when they equal the document's next non-blank lines (compared without
/// surrounding whitespace): the model wrote past the cursor into code that is already there. Applies only
/// when nothing follows the cursor on its line.
pub(crate) fn trim_line_overlap<'t>(
    ctx: &CursorContext<'_>,
    text: &'t str,
    replaced: usize,
) -> &'t str {
    if !is_blank(ctx.line_suffix.get(replaced..).unwrap_or("")) || !text.contains('\n') {
        return text;
    }
    let after_line = ctx
        .suffix()
        .find('\n')
        .map_or("", |nl| &ctx.suffix()[nl + 1..]);
    let following: Vec<&str> = after_line
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(MAX_OVERLAP_LINES)
        .collect();
    // (start offset, trimmed content) of the completion's non-blank whole lines; the first line continues
    // the cursor's line and is only a whole line when the cursor is at the line start.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut start = 0;
    for (index, line) in text.split('\n').enumerate() {
        if !is_blank(line) && (index > 0 || ctx.line_prefix_blank()) {
            lines.push((start, line.trim()));
        }
        start += line.len() + 1;
    }
    for k in (1..=following.len().min(lines.len())).rev() {
        let tail = &lines[lines.len() - k..];
        if tail
            .iter()
            .map(|(_, l)| *l)
            .eq(following[..k].iter().copied())
        {
            let cut = text[..tail[0].0]
                .trim_end_matches([' ', '\t'])
                .trim_end_matches('\n')
                .len();
            if !closes_kept_opener(ctx, text, cut) {
                return &text[..cut];
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::language::Lang;
    use super::*;

    fn with<R>(doc: &str, f: impl FnOnce(&CursorContext<'_>) -> R) -> R {
        let offset = doc.find("$0").expect("cursor marker");
        let text = doc.replacen("$0", "", 1);
        f(&CursorContext::new(&text, offset, Lang::from_id("rust")))
    }

    #[test]
    fn extension_over_auto_closed_brackets() {
        with("foo($0);", |c| {
            assert_eq!(extend_over_auto_closed(c, "a, b)"), 1);
            assert_eq!(extend_over_auto_closed(c, "a, b);"), 2);
            assert_eq!(extend_over_auto_closed(c, "a).unwrap()"), 1);
            assert_eq!(extend_over_auto_closed(c, "g(x)"), 0, "the `)` closes `g(`");
            assert_eq!(extend_over_auto_closed(c, "a, b"), 0);
        });
        with("let x = $0a + b;", |c| {
            assert_eq!(extend_over_auto_closed(c, "1;"), 0)
        });
        with("let s = \"$0\";", |c| {
            assert_eq!(extend_over_auto_closed(c, "héllo\";"), 2)
        });
    }

    #[test]
    fn same_line_overlap() {
        with("let x = $0 + 1;", |c| {
            assert_eq!(trim_same_line_overlap(c, "y + 1;", 0), "y")
        });
        with("if ($0) {", |c| {
            assert_eq!(trim_same_line_overlap(c, "a) {", 0), "a");
            assert_eq!(trim_same_line_overlap(c, "check(b)", 0), "check(b)");
        });
        with("call($0, b)", |c| {
            assert_eq!(trim_same_line_overlap(c, "a, b", 0), "a")
        });
    }

    #[test]
    fn line_overlap() {
        let doc = "fn f() {\n    $0\n    return x;\n}\n";
        with(doc, |c| {
            assert_eq!(
                trim_line_overlap(c, "let y = 1;\n    return x;\n}", 0),
                "let y = 1;"
            );
            assert_eq!(
                trim_line_overlap(c, "if a {\n        b();\n    }", 0),
                "if a {\n        b();\n    }"
            );
        });
        with("fn f() {\n    if a {$0\n}\n", |c| {
            assert_eq!(
                trim_line_overlap(c, "\n        b();\n    }\n}", 0),
                "\n        b();\n    }"
            );
        });
    }
}
