//! Renders git-style unified diffs that `git apply` accepts: `diff --git a/P b/P`, `new file mode 100644` and
//! `--- /dev/null` for new files, `@@ -a,b +c,d @@` headers (zero-length ranges name the line before, as git
//! does), 3 lines of context and `\ No newline at end of file` markers.
//!
//! Lines are split on `\n` only, like git; `similar`'s own line splitter also splits on a lone `\r`, which
//! would produce hunks git rejects, so the diff runs over our own line slices.

use std::time::{Duration, Instant};

use similar::{Algorithm, DiffOp};

/// Lines of context around each change, as `git diff` uses by default.
const CONTEXT: usize = 3;
/// After this long the diff algorithm settles for a coarser (still correct) diff.
const DIFF_TIMEOUT: Duration = Duration::from_secs(5);

/// One file's diff and its line counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileDiff {
    pub text: String,
    pub added: usize,
    pub removed: usize,
}

/// Renders the diff of one file; `before == None` means the file is new.
pub(crate) fn render_file(rel: &str, before: Option<&str>, after: &str) -> FileDiff {
    let old_name = quote(&format!("a/{rel}"));
    let new_name = quote(&format!("b/{rel}"));
    let mut text = format!("diff --git {old_name} {new_name}\n");
    if before.is_none() {
        text.push_str("new file mode 100644\n");
    }
    let old_lines = split_lines(before.unwrap_or(""));
    let new_lines = split_lines(after);
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Myers,
        &old_lines,
        &new_lines,
        Some(Instant::now() + DIFF_TIMEOUT),
    );
    let groups = similar::group_diff_ops(ops, CONTEXT);
    let (mut added, mut removed) = (0, 0);
    if groups.is_empty() {
        // Only a new empty file has no hunks; git accepts the bare header.
        return FileDiff {
            text,
            added,
            removed,
        };
    }
    let old_header = if before.is_some() {
        file_header(&old_name)
    } else {
        "/dev/null".to_string()
    };
    text.push_str(&format!(
        "--- {old_header}\n+++ {}\n",
        file_header(&new_name)
    ));
    for group in groups {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (old_start, old_end) = (first.old_range().start, last.old_range().end);
        let (new_start, new_end) = (first.new_range().start, last.new_range().end);
        text.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_start, old_end - old_start),
            range(new_start, new_end - new_start)
        ));
        for op in &group {
            let (tag_old, tag_new) = match op {
                DiffOp::Equal { .. } => (' ', ' '),
                DiffOp::Delete { .. } | DiffOp::Insert { .. } | DiffOp::Replace { .. } => {
                    ('-', '+')
                }
            };
            if let DiffOp::Equal { .. } = op {
                for line in &old_lines[op.old_range()] {
                    push_line(&mut text, tag_old, line);
                }
                continue;
            }
            for line in &old_lines[op.old_range()] {
                push_line(&mut text, tag_old, line);
                removed += 1;
            }
            for line in &new_lines[op.new_range()] {
                push_line(&mut text, tag_new, line);
                added += 1;
            }
        }
    }
    FileDiff {
        text,
        added,
        removed,
    }
}

/// Splits after each `\n`, keeping terminators (the last piece may have none).
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

fn push_line(out: &mut String, tag: char, line: &str) {
    out.push(tag);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

/// A hunk range as git writes it: `start,len`, `start` alone when `len == 1`, and for an empty range the line
/// before it (so an insertion at the top of a file is `-0,0`).
fn range(start: usize, len: usize) -> String {
    match len {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{len}", start + 1),
    }
}

/// Git's C-style quoting, used when a name holds `"` or non-ASCII bytes (backslashes and control characters
/// never reach here: unsafe paths are refused earlier).
fn quote(name: &str) -> String {
    if !name
        .bytes()
        .any(|b| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b))
    {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for byte in name.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => out.push_str(&format!("\\{byte:03o}")),
        }
    }
    out.push('"');
    out
}

/// The name on a `---`/`+++` line: git appends a tab to unquoted names containing a space, so that tools
/// which stop at whitespace still find the whole name.
fn file_header(name: &str) -> String {
    if !name.starts_with('"') && name.contains(' ') {
        format!("{name}\t")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_file_with_missing_final_newline() {
        let diff = render_file("a.txt", Some("x\ny"), "x\nz");
        assert_eq!(
            diff.text,
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n"
        );
        assert_eq!((diff.added, diff.removed), (1, 1));
    }

    #[test]
    fn new_file_and_empty_new_file() {
        let diff = render_file("n.rs", None, "fn a() {}\n");
        assert_eq!(
            diff.text,
            "diff --git a/n.rs b/n.rs\nnew file mode 100644\n--- /dev/null\n+++ b/n.rs\n@@ -0,0 +1 @@\n+fn a() {}\n"
        );
        assert_eq!(
            render_file("e", None, "").text,
            "diff --git a/e b/e\nnew file mode 100644\n"
        );
    }

    #[test]
    fn names_are_quoted_like_git() {
        assert_eq!(quote("a/é.txt"), "\"a/\\303\\251.txt\"");
        assert_eq!(file_header("a/my file"), "a/my file\t");
        assert_eq!(quote("a/plain.rs"), "a/plain.rs");
    }

    #[test]
    fn lone_carriage_return_stays_inside_its_line() {
        let diff = render_file("r", Some("a\rb\n"), "a\rc\n");
        assert_eq!(
            diff.text
                .lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count(),
            1
        );
    }
}
