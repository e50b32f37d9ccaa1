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
//! Item kinds are matched by node kind names shared across the supported grammars; a grammar without any of
//! them simply never triggers this rule.

use std::borrow::Cow;

use tree_sitter::{InputEdit, Language, Node, Parser, Point, Tree};

use super::context::CursorContext;
use super::text::{ends_with_opener, indent_width, is_blank, leading_whitespace, line_start};

/// Most bytes of the region before the cursor that are parsed (besides the region's header).
const WINDOW: usize = 8 * 1024;
/// Most lines a region header (`impl<T> Foo<T>\nwhere …\n{`) may span.
const MAX_HEADER_LINES: usize = 8;

/// Node kinds that are items: definitions a completion should write one of at a time.
const ITEM_KINDS: &[&str] = &[
    // Rust
    "function_item",
    "function_signature_item",
    "impl_item",
    "struct_item",
    "enum_item",
    "union_item",
    "trait_item",
    "mod_item",
    "macro_definition",
    // Python
    "function_definition",
    "class_definition",
    "decorated_definition",
    // JavaScript / TypeScript
    "function_declaration",
    "generator_function_declaration",
    "class_declaration",
    "abstract_class_declaration",
    "method_definition",
    "interface_declaration",
    "type_alias_declaration",
    "enum_declaration",
    "export_statement",
    // Go (function_declaration above)
    "method_declaration",
    "type_declaration",
];

/// Kinds that belong to the item after them (attributes, decorators) or to nothing (comments).
fn is_trivia(kind: &str) -> bool {
    kind.contains("comment") || kind.contains("attribute") || kind.contains("decorator")
}

/// Incrementally parsed window with the completion appended.
pub(crate) struct SiblingCheck {
    parser: Parser,
    tree: Option<Tree>,
    /// Window before the cursor + completion so far.
    text: String,
    /// Where the completion starts in `text`.
    insert_at: usize,
    /// Position of `insert_at`.
    insert_point: Point,
    /// Bytes of completion currently inserted.
    inserted: usize,
}

impl std::fmt::Debug for SiblingCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiblingCheck")
            .field("insert_at", &self.insert_at)
            .field("inserted", &self.inserted)
            .finish()
    }
}

/// The position reached after `text`, starting at `start`.
fn advance(start: Point, text: &str) -> Point {
    match text.rfind('\n') {
        Some(last) => Point {
            row: start.row + text.matches('\n').count(),
            column: text.len() - last - 1,
        },
        None => Point {
            row: start.row,
            column: start.column + text.len(),
        },
    }
}

impl SiblingCheck {
    /// A check for the cursor in `ctx`, or `None` when the grammar cannot be loaded or no small window
    /// around the cursor parses on its own.
    pub(crate) fn new(grammar: &Language, ctx: &CursorContext<'_>) -> Option<SiblingCheck> {
        SiblingCheck::with_window(grammar, &window(ctx)?)
    }

    fn with_window(grammar: &Language, before: &str) -> Option<SiblingCheck> {
        let mut parser = Parser::new();
        parser.set_language(grammar).ok()?;
        Some(SiblingCheck {
            parser,
            tree: None,
            text: before.to_string(),
            insert_at: before.len(),
            insert_point: advance(Point { row: 0, column: 0 }, before),
            inserted: 0,
        })
    }

    /// Parses the window with `completion` (the completion so far, ending at a line end; it must extend the
    /// text given to the previous call) and returns the byte offset in `completion` where a second item at
    /// the level of the first one starts, if any.
    pub(crate) fn check(&mut self, completion: &str) -> Option<usize> {
        let old = self.text.get(self.insert_at..)?;
        let added = match completion.strip_prefix(old) {
            Some(added) => added,
            None => {
                // Not an extension (never happens from the stream): start over with a full parse.
                self.text.truncate(self.insert_at);
                self.tree = None;
                completion
            }
        };
        let at = self.text.len();
        let start_position = advance(self.insert_point, self.text.get(self.insert_at..)?);
        self.text.push_str(added);
        if let Some(tree) = self.tree.as_mut() {
            tree.edit(&InputEdit {
                start_byte: at,
                old_end_byte: at,
                new_end_byte: at + added.len(),
                start_position,
                old_end_position: start_position,
                new_end_position: advance(start_position, added),
            });
        }
        self.inserted = completion.len();
        self.tree = self.parser.parse(&self.text, self.tree.as_ref());
        let tree = self.tree.as_ref()?;
        second_item(tree.root_node(), self.insert_at, completion)
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

/// Finds the second item among the children of the smallest node spanning the completion's content.
fn second_item(root: Node<'_>, insert_at: usize, completion: &str) -> Option<usize> {
    let content = completion.trim();
    if content.is_empty() {
        return None;
    }
    let start = insert_at + (completion.len() - completion.trim_start().len());
    let end = start + content.len();
    let node = root.descendant_for_byte_range(start, end)?;
    let mut cursor = node.walk();
    let mut children = node
        .named_children(&mut cursor)
        .filter(|child| child.start_byte() >= start && child.start_byte() < end)
        .skip_while(|child| is_trivia(child.kind()));
    let first = children.next()?;
    if !ITEM_KINDS.contains(&first.kind()) {
        return None;
    }
    let second = children.find(|child| child.start_position().row > first.end_position().row)?;
    Some(second.start_byte() - insert_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_lines(grammar: Language, before: &str, completion: &str) -> Option<usize> {
        let mut check = SiblingCheck::with_window(&grammar, before).expect("grammar loads");
        let mut end = 0;
        // Feed line by line, as the stream does.
        for line in completion.split_inclusive('\n') {
            end += line.len();
            if let Some(at) = check.check(&completion[..end]) {
                return Some(at);
            }
        }
        None
    }

    #[test]
    fn python_methods_are_siblings() {
        let before = "class A:\n    def f(self):\n        return 1\n\n    ";
        let completion = "def g(self):\n        return 2\n\n    def h(self):\n        return 3\n";
        let at = check_lines(
            crate::complete::golden_tests::grammar_for("python").expect("in the syntax table"),
            before,
            completion,
        );
        assert_eq!(at.map(|at| &completion[at..at + 9]), Some("def h(sel"));
    }

    #[test]
    fn rust_statements_are_not_items() {
        let before = "fn main() {\n    ";
        let completion = "let a = 1;\n    let b = 2;\n    if a > b {\n        c();\n    }\n";
        assert_eq!(
            check_lines(
                crate::complete::golden_tests::grammar_for("rust").expect("in the syntax table"),
                before,
                completion
            ),
            None
        );
    }

    #[test]
    fn rust_impl_methods_with_attributes() {
        let before = "impl A {\n    ";
        let completion =
            "fn a(&self) -> u8 {\n        1\n    }\n\n    #[inline]\n    fn b(&self) {}\n";
        let at = check_lines(
            crate::complete::golden_tests::grammar_for("rust").expect("in the syntax table"),
            before,
            completion,
        )
        .expect("stops");
        assert!(
            completion[at..].starts_with("#[inline]"),
            "{:?}",
            &completion[at..]
        );
    }

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
        let mut check = SiblingCheck::new(
            &crate::complete::golden_tests::grammar_for("rust").expect("in the syntax table"),
            &ctx,
        )
        .expect("check");
        assert_eq!(check.check("fn a() {}\n"), None);
        assert_eq!(check.check("fn a() {}\n    fn b() {}\n"), Some(14));
    }

    #[test]
    fn incremental_and_full_parses_agree() {
        let grammar: Language =
            crate::complete::golden_tests::grammar_for("javascript").expect("in the syntax table");
        let before = "class A {\n  ";
        let completion = "m() {\n    return 1;\n  }\n  n() {\n    return 2;\n  }\n";
        let incremental = check_lines(grammar.clone(), before, completion);
        let mut full = SiblingCheck::with_window(&grammar, before).expect("grammar loads");
        assert_eq!(incremental, full.check(completion));
        assert_eq!(incremental.map(|at| &completion[at..at + 3]), Some("n()"));
    }
}
