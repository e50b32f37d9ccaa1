//! The truncation guard: a whole-file reading of an answer replaces everything the file held, so a model that
//! answered with only the function it changed (or ran out of tokens and closed the fence) would wipe the rest.
//! Such a reading is accepted only when it is plausibly the whole file:
//!
//! - it keeps every top-level item (function, type, impl, class…) of the file, by kind and name, except the
//!   ones the instruction names (a rename or a removal the user asked for), and
//! - it deletes no more than [`MAX_LOST_SHARE_PERCENT`] of the file's non-blank lines (counted outside the
//!   items the instruction names, whose size may change freely), or fewer than [`MIN_LOST_LINES`] lines.
//!
//! Items come from the [`SyntaxChecker`] (tree-sitter tag queries in the server); for a language it does not
//! know, only the line rule applies.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use super::syntax_check::{SyntaxChecker, TopLevelItem};

/// A whole-file reading may delete at most this share of the file's non-blank lines (percent).
pub const MAX_LOST_SHARE_PERCENT: usize = 50;
/// Fewer deleted lines than this are never refused by the line rule (tiny files change by whole lines).
pub const MIN_LOST_LINES: usize = 4;

/// Why a whole-file reading was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotWhole {
    /// Root-relative path.
    pub path: String,
    /// Non-blank lines the reading deletes (outside the items the instruction names).
    pub lost_lines: usize,
    /// Non-blank lines of the file before.
    pub total_lines: usize,
    /// Top-level items the reading drops that the instruction does not name (`kind name`).
    pub dropped: Vec<String>,
}

impl fmt::Display for NotWhole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut problems = Vec::new();
        if self.lost_lines > 0 {
            problems.push(format!(
                "delete {} of its {} non-blank lines",
                self.lost_lines, self.total_lines
            ));
        }
        if !self.dropped.is_empty() {
            let names: Vec<String> = self.dropped.iter().map(|d| format!("`{d}`")).collect();
            problems.push(format!(
                "drop {}, which the instruction does not name",
                names.join(", ")
            ));
        }
        write!(
            f,
            "`{}`: the answer's whole-file version is not plausibly the whole file (it would {}); refused as \
             probably cut short — nothing was changed. Ask again, or name in the instruction what should go",
            self.path,
            problems.join(" and ")
        )
    }
}

/// Identifiers written in the instruction (`rename add to sum` names `add` and `sum`; `Type::method` names
/// both parts).
fn named_in(instruction: &str) -> HashSet<&str> {
    instruction
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .collect()
}

/// Non-blank lines outside the items whose names are in `named`.
fn lines_outside(text: &str, items: &[TopLevelItem], named: &HashSet<&str>) -> usize {
    let excluded: Vec<(usize, usize)> = items
        .iter()
        .filter(|item| named.contains(item.name.as_str()))
        .map(|item| item.lines)
        .collect();
    text.lines()
        .enumerate()
        .filter(|(number, line)| {
            !line.trim().is_empty()
                && !excluded
                    .iter()
                    .any(|&(first, last)| first <= *number && *number <= last)
        })
        .count()
}

fn counts(items: &[TopLevelItem]) -> BTreeMap<(&str, &str), usize> {
    let mut out = BTreeMap::new();
    for item in items {
        *out.entry((item.kind.as_str(), item.name.as_str()))
            .or_insert(0) += 1;
    }
    out
}

/// Checks that `after`, the whole-file reading of `rel` (which held `before`), is plausibly the whole file.
pub fn check_whole(
    checker: &dyn SyntaxChecker,
    rel: &str,
    before: &str,
    after: &str,
    instruction: &str,
) -> Result<(), NotWhole> {
    let named = named_in(instruction);
    let path = Path::new(rel);
    let items_before = checker.top_level_items(path, before).unwrap_or_default();
    let items_after = checker.top_level_items(path, after).unwrap_or_default();
    let total_lines = before.lines().filter(|l| !l.trim().is_empty()).count();
    let kept = lines_outside(before, &items_before, &named);
    let lost = kept.saturating_sub(lines_outside(after, &items_after, &named));
    let lost_lines = if lost >= MIN_LOST_LINES && lost * 100 > total_lines * MAX_LOST_SHARE_PERCENT
    {
        lost
    } else {
        0
    };
    let after_counts = counts(&items_after);
    let mut dropped = Vec::new();
    for ((kind, name), count) in counts(&items_before) {
        let left = after_counts.get(&(kind, name)).copied().unwrap_or(0);
        if left < count && !named.contains(name) {
            dropped.push(format!("{kind} {name}"));
        }
    }
    if lost_lines == 0 && dropped.is_empty() {
        Ok(())
    } else {
        Err(NotWhole {
            path: rel.to_string(),
            lost_lines,
            total_lines,
            dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items are lines `item NAME` and the indented lines under them: enough to test the rules without a
    /// grammar.
    struct LineItems;

    impl SyntaxChecker for LineItems {
        fn error_lines(&self, _path: &Path, _text: &str) -> Option<Vec<usize>> {
            Some(Vec::new())
        }

        fn top_level_items(&self, _path: &Path, text: &str) -> Option<Vec<TopLevelItem>> {
            let mut items: Vec<TopLevelItem> = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if let Some(name) = line.strip_prefix("item ") {
                    items.push(TopLevelItem {
                        kind: "function".into(),
                        name: name.into(),
                        lines: (i, i),
                    });
                } else if line.starts_with("  ") {
                    if let Some(last) = items.last_mut().filter(|item| item.lines.1 + 1 == i) {
                        last.lines.1 = i;
                    }
                }
            }
            Some(items)
        }
    }

    fn file(items: &[&str], filler: usize) -> String {
        let mut out = String::new();
        for item in items {
            out.push_str(&format!("item {item}\n"));
        }
        for i in 0..filler {
            out.push_str(&format!("line {i}\n\n"));
        }
        out
    }

    #[test]
    fn dropped_items_are_refused_unless_named() {
        let before = file(&["a", "b", "c"], 2);
        let after = file(&["a", "c"], 2);
        let err = check_whole(&LineItems, "x.rs", &before, &after, "tidy up").expect_err("drops b");
        assert_eq!(err.dropped, ["function b"]);
        assert_eq!(err.lost_lines, 0);
        assert!(err.to_string().contains("drop `function b`"), "{err}");
        check_whole(&LineItems, "x.rs", &before, &after, "remove `b`").expect("b is named");
        // A rename names the old name.
        let renamed = file(&["a", "sum", "c"], 2);
        check_whole(&LineItems, "x.rs", &before, &renamed, "rename b to sum").expect("renamed");
    }

    #[test]
    fn losing_most_lines_is_refused_a_rewrite_is_not() {
        let before = file(&[], 20);
        let cut = file(&[], 4);
        let err = check_whole(&LineItems, "x.txt", &before, &cut, "fix").expect_err("80% gone");
        assert_eq!((err.lost_lines, err.total_lines), (16, 20));
        // Every line changed, none lost: a rewrite, not a truncation.
        let rewritten = before.replace("line", "row");
        check_whole(&LineItems, "x.txt", &before, &rewritten, "fix").expect("same size");
        // Half the lines is the limit; three lines are too few to judge.
        check_whole(&LineItems, "x.txt", &before, &file(&[], 10), "fix").expect("50%");
        check_whole(&LineItems, "x.txt", &file(&[], 4), &file(&[], 1), "fix").expect("3 lines");
    }

    #[test]
    fn named_items_may_shrink() {
        let with_body = |lines: usize| {
            let mut text = file(&["keep"], 2);
            text.push_str("item big\n");
            for i in 0..lines {
                text.push_str(&format!("  body {i}\n"));
            }
            text
        };
        let (before, after) = (with_body(30), with_body(2));
        check_whole(&LineItems, "x.rs", &before, &after, "simplify big").expect("big is named");
        let err =
            check_whole(&LineItems, "x.rs", &before, &after, "simplify").expect_err("28 lines");
        assert_eq!((err.lost_lines, err.total_lines), (28, 34));
    }
}
