//! Reports syntax errors a patch *introduced*: errors in the patched file that do not sit on a line that had an
//! error before and survived the patch unchanged. The parser is a parameter ([`SyntaxChecker`]) so this layer
//! does not depend on the grammar table; the composition root wires it to `syntax/`.

use std::collections::HashSet;
use std::path::Path;

use similar::{Algorithm, DiffOp};

use super::diff::split_lines;

/// Finds syntax errors in a file's text.
pub trait SyntaxChecker {
    /// 1-based lines holding a syntax error (order and duplicates do not matter), or `None` when the language
    /// of `path` is unknown. `path` is relative to the root; implementations usually look at its extension.
    fn error_lines(&self, path: &Path, text: &str) -> Option<Vec<usize>>;

    /// The file's top-level items (functions, types, impls, classes… not their members), or `None` when the
    /// language of `path` is unknown. The truncation guard (`plausible.rs`) uses them to tell a whole file
    /// from a fragment.
    fn top_level_items(&self, _path: &Path, _text: &str) -> Option<Vec<TopLevelItem>> {
        None
    }
}

/// A top-level definition of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopLevelItem {
    /// What it defines (`function`, `struct`, `impl`, `class`…).
    pub kind: String,
    /// Its name (an `impl` is named after its type).
    pub name: String,
    /// First and last line, 0-based, inclusive.
    pub lines: (usize, usize),
}

/// A checker that knows no language: patches are not syntax-checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSyntaxCheck;

impl SyntaxChecker for NoSyntaxCheck {
    fn error_lines(&self, _path: &Path, _text: &str) -> Option<Vec<usize>> {
        None
    }
}

/// 1-based lines of `after` with a syntax error that is not a pre-existing error on an unchanged line.
/// `before == None` (a new file) makes every error introduced. Empty when the language is unknown.
pub(crate) fn introduced_errors(
    checker: &dyn SyntaxChecker,
    path: &Path,
    before: Option<&str>,
    after: &str,
) -> Vec<usize> {
    let Some(mut after_errors) = checker.error_lines(path, after) else {
        return Vec::new();
    };
    after_errors.sort_unstable();
    after_errors.dedup();
    let Some(before) = before else {
        return after_errors;
    };
    let before_errors: HashSet<usize> = checker
        .error_lines(path, before)
        .unwrap_or_default()
        .into_iter()
        .collect();
    if before_errors.is_empty() {
        return after_errors;
    }
    // Map each unchanged line of `after` to its line in `before`.
    let old_lines = split_lines(before);
    let new_lines = split_lines(after);
    let mut old_of_new = vec![None; new_lines.len() + 1];
    for op in similar::capture_diff_slices(Algorithm::Myers, &old_lines, &new_lines) {
        if let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = op
        {
            for k in 0..len {
                if let Some(slot) = old_of_new.get_mut(new_index + k + 1) {
                    *slot = Some(old_index + k + 1);
                }
            }
        }
    }
    after_errors
        .into_iter()
        .filter(|&line| {
            !old_of_new
                .get(line)
                .copied()
                .flatten()
                .is_some_and(|old| before_errors.contains(&old))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy language: a line containing `!` is an error.
    struct Bang;

    impl SyntaxChecker for Bang {
        fn error_lines(&self, _path: &Path, text: &str) -> Option<Vec<usize>> {
            Some(
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| l.contains('!'))
                    .map(|(i, _)| i + 1)
                    .collect(),
            )
        }
    }

    #[test]
    fn only_errors_the_patch_introduced_are_reported() {
        let path = Path::new("x");
        let before = "a\nold!\nb\n";
        // The old error moved down by one line (unchanged line): not reported; the new one is.
        assert_eq!(
            introduced_errors(&Bang, path, Some(before), "new!\na\nold!\nb\n"),
            [1]
        );
        assert_eq!(introduced_errors(&Bang, path, None, "x!\n"), [1]);
        assert!(introduced_errors(&NoSyntaxCheck, path, None, "x!\n").is_empty());
    }
}
