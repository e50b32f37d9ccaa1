//! `TreeSitterChecker`: the patch layer's [`SyntaxChecker`] wired to the syntax layer's grammar table, so a
//! patch that breaks the syntax of a file in a supported language is reported, and a whole-file answer that
//! drops top-level items is recognised as cut short.

use std::path::Path;

use crate::patch::{SyntaxChecker, TopLevelItem};
use qwen_syntax::{assign_scopes, extract_tags, language_for_path, parse};

/// Finds syntax errors with the tree-sitter grammar of the path's language.
#[derive(Debug, Clone, Copy, Default)]
pub struct TreeSitterChecker;

impl SyntaxChecker for TreeSitterChecker {
    fn error_lines(&self, path: &Path, text: &str) -> Option<Vec<usize>> {
        let spec = language_for_path(path)?;
        let tree = parse(spec, text, None).ok()?;
        let mut lines = Vec::new();
        let mut cursor = tree.walk();
        // Depth-first over the nodes that contain errors only (`has_error` prunes clean subtrees).
        let mut stack = vec![tree.root_node()];
        while let Some(node) = stack.pop() {
            if node.is_error() || node.is_missing() {
                lines.push(node.start_position().row + 1);
                continue;
            }
            if node.has_error() {
                stack.extend(node.children(&mut cursor));
            }
        }
        Some(lines)
    }

    fn top_level_items(&self, path: &Path, text: &str) -> Option<Vec<TopLevelItem>> {
        let spec = language_for_path(path)?;
        let tree = parse(spec, text, None).ok()?;
        let mut definitions = extract_tags(spec, &tree, text, None).ok()?.definitions;
        assign_scopes(&mut definitions);
        Some(
            definitions
                .into_iter()
                .filter(|d| d.scope.is_none())
                .map(|d| TopLevelItem {
                    kind: d.kind.as_str().to_string(),
                    name: d.name.to_string(),
                    lines: (d.start_line as usize, d.end_line as usize),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_error_lines_for_known_languages_only() {
        let checker = TreeSitterChecker;
        assert_eq!(
            checker.error_lines(Path::new("a.rs"), "fn a() {}\n"),
            Some(vec![])
        );
        let lines = checker
            .error_lines(Path::new("a.rs"), "fn a() {}\nfn b( {\n")
            .expect("rust");
        assert!(
            !lines.is_empty() && lines.iter().all(|&l| l >= 2),
            "{lines:?}"
        );
        assert_eq!(checker.error_lines(Path::new("a.txt"), "(("), None);
    }

    #[test]
    fn top_level_items_leave_out_members() {
        let text = "struct S;\nimpl S {\n    fn m(&self) {}\n}\nfn f() {\n    fn inner() {}\n}\n";
        let items: Vec<(String, String, (usize, usize))> = TreeSitterChecker
            .top_level_items(Path::new("a.rs"), text)
            .expect("rust")
            .into_iter()
            .map(|i| (i.kind, i.name, i.lines))
            .collect();
        let expected = [
            ("struct", "S", (0, 0)),
            ("impl", "S", (1, 3)),
            ("function", "f", (4, 6)),
        ];
        let expected: Vec<(String, String, (usize, usize))> = expected
            .iter()
            .map(|(k, n, l)| (k.to_string(), n.to_string(), *l))
            .collect();
        assert_eq!(items, expected);
        let python = "class A:\n    def m(self):\n        pass\n\ndef f():\n    pass\n";
        let names: Vec<String> = TreeSitterChecker
            .top_level_items(Path::new("a.py"), python)
            .expect("python")
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["A", "f"]);
        assert_eq!(
            TreeSitterChecker.top_level_items(Path::new("a.txt"), "x"),
            None
        );
    }
}
