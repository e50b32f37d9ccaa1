//! Items at one level of an appendable text: a text that only grows at its end (a completion streaming in),
//! parsed incrementally, and the question "does the appended text start a second item (function, class,
//! impl…) at the level of its first one?" — the completion's sibling stop rule asks it at line ends.

use tree_sitter::{Node, Parser, Point, Tree};

use super::edit::{point_after, InputEdit};
use super::LanguageSpec;

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

/// A fixed text followed by an appended one that only grows, parsed incrementally.
pub struct AppendedItems {
    parser: Parser,
    tree: Option<Tree>,
    /// The fixed text + the appended text so far.
    text: String,
    /// Where the appended text starts in `text`.
    insert_at: usize,
    /// Position of `insert_at`.
    insert_point: Point,
}

impl std::fmt::Debug for AppendedItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendedItems")
            .field("insert_at", &self.insert_at)
            .field("len", &self.text.len())
            .finish()
    }
}

impl AppendedItems {
    /// `before` in `language`; `None` when its grammar cannot be loaded.
    pub fn new(language: &LanguageSpec, before: &str) -> Option<AppendedItems> {
        let mut parser = Parser::new();
        parser.set_language(&language.grammar()).ok()?;
        Some(AppendedItems {
            parser,
            tree: None,
            text: before.to_string(),
            insert_at: before.len(),
            insert_point: point_after(Point::new(0, 0), before),
        })
    }

    /// Parses the text with `appended` (which extends the text given to the previous call) and returns the
    /// byte offset in `appended` where a second item at the level of the first one starts, if any.
    pub fn second_item(&mut self, appended: &str) -> Option<usize> {
        let old = self.text.get(self.insert_at..)?;
        let added = match appended.strip_prefix(old) {
            Some(added) => added,
            None => {
                // Not an extension: start over with a full parse.
                self.text.truncate(self.insert_at);
                self.tree = None;
                appended
            }
        };
        let at = self.text.len();
        let start_position = point_after(self.insert_point, self.text.get(self.insert_at..)?);
        self.text.push_str(added);
        if let Some(tree) = self.tree.as_mut() {
            tree.edit(&InputEdit {
                start_byte: at,
                old_end_byte: at,
                new_end_byte: at + added.len(),
                start_position,
                old_end_position: start_position,
                new_end_position: point_after(start_position, added),
            });
        }
        self.tree = self.parser.parse(&self.text, self.tree.as_ref());
        let tree = self.tree.as_ref()?;
        second_item(tree.root_node(), self.insert_at, appended)
    }
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

    fn language(name: &str) -> &'static LanguageSpec {
        crate::language_for_name(name).expect("in the table")
    }

    fn check_lines(language: &LanguageSpec, before: &str, completion: &str) -> Option<usize> {
        let mut check = AppendedItems::new(language, before).expect("grammar loads");
        let mut end = 0;
        // Feed line by line, as the stream does.
        for line in completion.split_inclusive('\n') {
            end += line.len();
            if let Some(at) = check.second_item(&completion[..end]) {
                return Some(at);
            }
        }
        None
    }

    #[test]
    fn python_methods_are_siblings() {
        let before = "class A:\n    def f(self):\n        return 1\n\n    ";
        let completion = "def g(self):\n        return 2\n\n    def h(self):\n        return 3\n";
        let at = check_lines(language("python"), before, completion);
        assert_eq!(at.map(|at| &completion[at..at + 9]), Some("def h(sel"));
    }

    #[test]
    fn rust_statements_are_not_items() {
        let before = "fn main() {\n    ";
        let completion = "let a = 1;\n    let b = 2;\n    if a > b {\n        c();\n    }\n";
        assert_eq!(check_lines(language("rust"), before, completion), None);
    }

    #[test]
    fn rust_impl_methods_with_attributes() {
        let before = "impl A {\n    ";
        let completion =
            "fn a(&self) -> u8 {\n        1\n    }\n\n    #[inline]\n    fn b(&self) {}\n";
        let at = check_lines(language("rust"), before, completion).expect("stops");
        assert!(
            completion[at..].starts_with("#[inline]"),
            "{:?}",
            &completion[at..]
        );
    }

    #[test]
    fn incremental_and_full_parses_agree() {
        let javascript = language("javascript");
        let before = "class A {\n  ";
        let completion = "m() {\n    return 1;\n  }\n  n() {\n    return 2;\n  }\n";
        let incremental = check_lines(javascript, before, completion);
        let mut full = AppendedItems::new(javascript, before).expect("grammar loads");
        assert_eq!(incremental, full.second_item(completion));
        assert_eq!(incremental.map(|at| &completion[at..at + 3]), Some("n()"));
    }
}
