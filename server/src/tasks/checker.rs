//! `TreeSitterChecker`: the patch layer's [`SyntaxChecker`] wired to the syntax layer's grammar table, so a
//! patch that breaks the syntax of a file in a supported language is reported.

use std::path::Path;

use crate::syntax::{language_for_path, parse};
use crate::tasks::patch::SyntaxChecker;

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
}
