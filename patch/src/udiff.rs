//! Unified diffs in an answer (`--- a/p`, `+++ b/p`, `@@ … @@` hunks), the format models trained on commits
//! write when asked for a change. Each hunk becomes one [`EditBlock`]: SEARCH is its context and `-` lines,
//! REPLACE its context and `+` lines, so the matcher places it by content. Hunk line numbers are ignored:
//! models rarely get them right, and the matcher's uniqueness rule is stricter than a line number.
//!
//! Tolerated: `diff --git` headers, `a/`/`b/` prefixes, timestamps after a tab, a context line whose leading
//! space was dropped (an empty line), `\ No newline at end of file`, hunks in a ```` ```diff ```` fence without
//! a `@@` line, and no `---`/`+++` header when the caller knows the one file in play. A diff that deletes a file
//! is refused (the patch format cannot delete files).

use super::markdown::{fence_info, visible_lines};
use super::parse::{EditBlock, ParseError};

/// Where a hunk's lines go.
struct Hunk {
    path: String,
    answer_line: usize,
    search: Vec<String>,
    replace: Vec<String>,
    changes: bool,
    /// Empty lines (without the context space) at the current end of the hunk: at its end they separate it
    /// from what follows, so they are dropped then.
    trailing_bare: usize,
}

impl Hunk {
    fn into_block(mut self) -> Option<EditBlock> {
        for lines in [&mut self.search, &mut self.replace] {
            lines.truncate(lines.len().saturating_sub(self.trailing_bare));
        }
        self.changes.then_some(EditBlock {
            path: self.path,
            search: self.search,
            replace: self.replace,
            answer_line: self.answer_line,
        })
    }
}

/// A `---`/`+++` path: quotes, a timestamp after a tab and the `a/`/`b/` prefix (when `prefix` says the pair
/// uses them) removed. `None` for `/dev/null`.
fn header_path(raw: &str, prefix: &str) -> Option<String> {
    let raw = raw
        .split('\t')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    if raw == "/dev/null" {
        return None;
    }
    Some(raw.strip_prefix(prefix).unwrap_or(raw).to_string())
}

/// Reads every hunk of the answer; `Err(NoBlocks)` when there is none. `default_path` names the file for
/// hunks without a header (the one file in play), else they are [`ParseError::MissingPath`].
pub fn parse_unified_diff(
    answer: &str,
    default_path: Option<&str>,
) -> Result<Vec<EditBlock>, ParseError> {
    let lines = visible_lines(answer);
    let mut blocks = Vec::new();
    let mut path: Option<String> = None;
    let mut in_diff_fence = false;
    let mut hunk: Option<Hunk> = None;
    let mut index = 0;
    while let Some(&(number, line)) = lines.get(index) {
        index += 1;
        let next = lines.get(index).map_or("", |&(_, l)| l);
        // A file header ends any hunk: `--- old` directly followed by `+++ new`.
        if let (Some(old), Some(new)) = (line.strip_prefix("--- "), next.strip_prefix("+++ ")) {
            blocks.extend(hunk.take().and_then(Hunk::into_block));
            // Strip `b/` only from a git-style pair (`--- a/x`, `+++ b/x`): `b/` may be a real directory.
            // `--- /dev/null` (a new file) needs nothing: its hunk has no SEARCH lines, which creates the file.
            let old = old.trim_start();
            let prefixed = (old.starts_with("a/") || old.starts_with("/dev/null"))
                && new.trim_start().starts_with("b/");
            path = header_path(new, if prefixed { "b/" } else { "" });
            if path.is_none() {
                return Err(ParseError::DeletesFile { line: number });
            }
            index += 1;
            continue;
        }
        if line.starts_with("@@") {
            blocks.extend(hunk.take().and_then(Hunk::into_block));
            hunk = Some(start_hunk(&path, default_path, number)?);
            continue;
        }
        if let Some(info) = fence_info(line) {
            blocks.extend(hunk.take().and_then(Hunk::into_block));
            let language = info.split_whitespace().next().unwrap_or("");
            in_diff_fence = !in_diff_fence && matches!(language, "diff" | "patch" | "udiff");
            continue;
        }
        if line.starts_with("diff --git ") || line.starts_with("index ") {
            blocks.extend(hunk.take().and_then(Hunk::into_block));
            continue;
        }
        let diff_line = line.starts_with(['-', '+', ' ']) || line.is_empty();
        if hunk.is_none() && in_diff_fence && line.starts_with(['-', '+', ' ']) {
            // A hunk without its `@@` line, inside a diff fence.
            hunk = Some(start_hunk(&path, default_path, number)?);
        }
        let Some(current) = hunk.as_mut() else {
            continue;
        };
        if !diff_line && !line.starts_with('\\') {
            // Prose after the hunk.
            blocks.extend(hunk.take().and_then(Hunk::into_block));
            continue;
        }
        current.trailing_bare = if line.is_empty() {
            current.trailing_bare + 1
        } else {
            0
        };
        match line.as_bytes().first() {
            Some(b'-') => {
                current.search.push(line[1..].to_string());
                current.changes = true;
            }
            Some(b'+') => {
                current.replace.push(line[1..].to_string());
                current.changes = true;
            }
            // `\ No newline at end of file`: line endings are the file's business.
            Some(b'\\') => {}
            _ => {
                let text = line.get(1..).unwrap_or("").to_string();
                current.search.push(text.clone());
                current.replace.push(text);
            }
        }
    }
    blocks.extend(hunk.take().and_then(Hunk::into_block));
    if blocks.is_empty() {
        Err(ParseError::NoBlocks)
    } else {
        Ok(blocks)
    }
}

fn start_hunk(
    path: &Option<String>,
    default_path: Option<&str>,
    line: usize,
) -> Result<Hunk, ParseError> {
    let path = path
        .clone()
        .or_else(|| default_path.map(str::to_string))
        .ok_or(ParseError::MissingPath { line })?;
    Ok(Hunk {
        path,
        answer_line: line,
        search: Vec::new(),
        replace: Vec::new(),
        changes: false,
        trailing_bare: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(answer: &str, default_path: Option<&str>) -> Vec<(String, Vec<String>, Vec<String>)> {
        parse_unified_diff(answer, default_path)
            .expect("parses")
            .into_iter()
            .map(|b| (b.path, b.search, b.replace))
            .collect()
    }

    fn strings(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn git_style_diff_with_two_hunks_and_prose() {
        let answer = "Here is the fix:\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\nindex 1..2 100644\n\
                      --- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n fn a() {\n-    1\n+    2\n }\n\
                      @@ -9,2 +9,3 @@ fn b\n fn b() {}\n+fn c() {}\n\n```\nThat's it.\n";
        assert_eq!(
            blocks(answer, None),
            [
                (
                    "src/lib.rs".to_string(),
                    strings(&["fn a() {", "    1", "}"]),
                    strings(&["fn a() {", "    2", "}"])
                ),
                (
                    "src/lib.rs".to_string(),
                    strings(&["fn b() {}"]),
                    strings(&["fn b() {}", "fn c() {}"])
                ),
            ]
        );
    }

    #[test]
    fn plain_paths_new_files_and_headerless_hunks() {
        let answer = "--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n";
        let got = parse_unified_diff(answer, None).expect("parses");
        assert_eq!(got[0].path, "notes.txt");
        assert!(got[0].creates_file());
        assert_eq!(got[0].replace, strings(&["one", "two"]));

        let answer = "```diff\n x = 1\n-y = 2\n+y = 3\n```\n";
        assert_eq!(
            blocks(answer, Some("a.py")),
            [(
                "a.py".to_string(),
                strings(&["x = 1", "y = 2"]),
                strings(&["x = 1", "y = 3"])
            )]
        );
        // A blank context line that lost its space is context inside a hunk, a separator at its end.
        let answer = "@@ -1,4 +1,4 @@\n a\n\n-b\n+c\n\n";
        assert_eq!(
            blocks(answer, Some("a.txt")),
            [(
                "a.txt".to_string(),
                strings(&["a", "", "b"]),
                strings(&["a", "", "c"])
            )]
        );
        assert_eq!(
            parse_unified_diff("@@ -1 +1 @@\n-a\n+b\n", None),
            Err(ParseError::MissingPath { line: 1 })
        );
    }

    #[test]
    fn deleting_a_file_is_refused_and_prose_is_no_diff() {
        assert_eq!(
            parse_unified_diff("--- a/x.rs\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n", None),
            Err(ParseError::DeletesFile { line: 1 })
        );
        assert_eq!(
            parse_unified_diff("- a list\n- of things\n", Some("a.rs")),
            Err(ParseError::NoBlocks)
        );
        assert_eq!(
            parse_unified_diff("@@ -1 +1 @@\n context only\n", Some("a.rs")),
            Err(ParseError::NoBlocks)
        );
    }
}
