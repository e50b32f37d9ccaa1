//! The tree-sitter stop rule: a completion that wrote one item (a function, a method, a class, an impl…) and
//! starts another at the same level has gone past what the user is writing.
//!
//! Cost is the point of the design. Parsing prefix + completion + suffix of a large file on every token would
//! dominate a completion's overhead, so this check
//! - runs only at line ends where the completion's own brackets are balanced (the stream decides when),
//! - parses a small window, not the document: the item region's header (`impl Big {`, `class A:`) plus at
//!   most [`WINDOW`] bytes before the cursor, cut where an item at the body's level starts, followed by the
//!   completion — the suffix is left out, since only the completion's own items are compared;
//! - reparses incrementally: the completion only grows at the end of the window, so each check is an append
//!   edit on the last tree.
//!
//! The parsing and the item kinds are the syntax layer's ([`qwen_syntax::AppendedItems`]); this module picks
//! the window.

use std::borrow::Cow;

use qwen_syntax::{AppendedItems, LanguageSpec};

use super::context::CursorContext;
use super::text::{ends_with_opener, indent_width, is_blank, leading_whitespace, line_start};

/// Most bytes of the region before the cursor that are parsed (besides the region's header).
const WINDOW: usize = 8 * 1024;
/// Most lines a region header (`impl<T> Foo<T>\nwhere …\n{`) may span.
const MAX_HEADER_LINES: usize = 8;

/// The window before the cursor with the completion appended, parsed incrementally.
#[derive(Debug)]
pub(crate) struct SiblingCheck {
    items: AppendedItems,
}

impl SiblingCheck {
    /// A check for the cursor in `ctx`, or `None` when the grammar cannot be loaded or no small window
    /// around the cursor parses on its own.
    pub(crate) fn new(language: &LanguageSpec, ctx: &CursorContext<'_>) -> Option<SiblingCheck> {
        let items = AppendedItems::new(language, &window(ctx)?)?;
        Some(SiblingCheck { items })
    }

    /// Parses the window with `completion` (the completion so far, ending at a line end; it must extend the
    /// text given to the previous call) and returns the byte offset in `completion` where a second item at
    /// the level of the first one starts, if any.
    pub(crate) fn check(&mut self, completion: &str) -> Option<usize> {
        self.items.second_item(completion)
    }
}

/// The text parsed before the completion: the item region before the cursor, or, when that is longer than
/// [`WINDOW`], the region's header followed by the region from the first line within the window that
/// starts an item at the header body's indentation. `None` when a long region has no such line (deep inside
/// a huge function body, where items are rare anyway).
fn window<'a>(ctx: &CursorContext<'a>) -> Option<Cow<'a, str>> {
    let before = ctx.text.get(ctx.region.start..ctx.offset)?;
    if before.len() <= WINDOW {
        return Some(Cow::Borrowed(before));
    }
    // A region cut by the size limit starts mid-item, indented: there is no header to keep.
    if before.starts_with([' ', '\t']) {
        return None;
    }
    let mut header_len = 0;
    for (index, line) in before.split_inclusive('\n').enumerate() {
        if index >= MAX_HEADER_LINES {
            return None;
        }
        header_len += line.len();
        if ends_with_opener(line.trim_end()) {
            break;
        }
    }
    let header = &before[..header_len];
    let body = &before[header_len..];
    let body_indent = body
        .lines()
        .find(|l| !is_blank(l))
        .map(|l| indent_width(leading_whitespace(l)))?;
    let from = line_start(body, body.len().saturating_sub(WINDOW));
    let mut offset = from;
    for line in body[from..].split_inclusive('\n') {
        let content = line.trim_start();
        let starts_item = !content.is_empty()
            && indent_width(leading_whitespace(line)) == body_indent
            && !content.starts_with(['}', ')', ']', '/', '#', '*', '"', '\'']);
        if starts_item && offset > from {
            return Some(Cow::Owned(format!("{header}{}", &body[offset..])));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_regions_are_windowed_at_an_item_boundary() {
        let mut doc = String::from("impl Big {\n");
        for i in 0..400 {
            doc.push_str(&format!(
                "    fn f{i}(&self) -> u32 {{\n        {i}\n    }}\n\n"
            ));
        }
        doc.push_str("    ");
        let offset = doc.len();
        doc.push_str("\n}\n");
        let ctx = CursorContext::new(&doc, offset, super::super::language::Lang::from_id("rust"));
        let window = window(&ctx).expect("windowed");
        assert!(
            window.starts_with("impl Big {\n    fn f"),
            "{}",
            &window[..40]
        );
        assert!(window.len() <= WINDOW + 11, "{}", window.len());
        assert!(window.ends_with("    }\n\n    "));
        let rust = qwen_syntax::language_for_name("rust").expect("in the syntax table");
        let mut check = SiblingCheck::new(rust, &ctx).expect("check");
        assert_eq!(check.check("fn a() {}\n"), None);
        assert_eq!(check.check("fn a() {}\n    fn b() {}\n"), Some(14));
    }
}
