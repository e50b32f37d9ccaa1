//! Whole-file answers (Aider's "whole" edit format): the file's path on the line before a fence, or in the
//! fence's info string, then the complete new content. What small models write instead of SEARCH/REPLACE
//! blocks when they were shown a file whole. This module only reads the fences; which files may be rewritten
//! this way, and whether the new content is plausibly the whole file, is decided by the caller
//! (`answer.rs`, `plausible.rs`).

use super::markdown::{fence_info, fence_path, path_line, visible_lines};

/// Info strings of fences that hold commands, logs or diffs, never a file's content: an unnamed fence with
/// one of these is not read as the file in play.
const NOT_FILE_CONTENT: [&str; 14] = [
    "sh",
    "bash",
    "shell",
    "console",
    "zsh",
    "powershell",
    "cmd",
    "text",
    "txt",
    "plaintext",
    "output",
    "log",
    "diff",
    "patch",
];

/// One closed fenced block of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeFile {
    /// The path named on the last non-blank line before the fence or in its info string, as written by the
    /// model (not yet checked for safety); `None` for an unnamed fence.
    pub path: Option<String>,
    /// The content lines between the fences.
    pub lines: Vec<String>,
    /// 1-based line of the answer holding the opening fence.
    pub answer_line: usize,
    /// Whether the fence's language marks commands or output (`sh`, `text`, `diff`…) rather than code.
    pub not_code: bool,
}

/// Every closed fenced block of the answer, in order, with the path it names if any. `<think>` sections are
/// skipped; an unterminated fence (an answer cut short) is never returned.
pub fn parse_whole_files(answer: &str) -> Vec<WholeFile> {
    let mut files = Vec::new();
    let mut previous_path: Option<String> = None;
    let mut open: Option<(char, WholeFile)> = None;
    for (number, line) in visible_lines(answer) {
        let trimmed = line.trim_start();
        if let Some((fence_char, mut file)) = open.take() {
            let closes =
                fence_info(line).is_some_and(str::is_empty) && trimmed.starts_with(fence_char);
            if closes {
                files.push(file);
            } else {
                file.lines.push(line.to_string());
                open = Some((fence_char, file));
            }
            continue;
        }
        if let Some(info) = fence_info(line) {
            let language = info
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            let file = WholeFile {
                path: fence_path(info).or_else(|| previous_path.take()),
                lines: Vec::new(),
                answer_line: number,
                not_code: NOT_FILE_CONTENT.contains(&language.as_str()),
            };
            open = Some((trimmed.chars().next().unwrap_or('`'), file));
            continue;
        }
        if !line.trim().is_empty() {
            previous_path = path_line(line);
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_with_their_paths_and_only_closed_ones() {
        let answer = "<think>\nsrc/x.rs\n```rust\nthought\n```\n</think>\nsrc/a.rs\n```rust\nfn a() {}\n\n```\n\
                      Run it:\n```sh\nsrc/b.rs\n```\n```rust src/c.rs\nfn c() {}\n```\nsrc/d.rs\n```rust\nfn d(";
        let files = parse_whole_files(answer);
        let got: Vec<(Option<&str>, Vec<&str>, usize, bool)> = files
            .iter()
            .map(|f| {
                (
                    f.path.as_deref(),
                    f.lines.iter().map(String::as_str).collect(),
                    f.answer_line,
                    f.not_code,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some("src/a.rs"), vec!["fn a() {}", ""], 8, false),
                (None, vec!["src/b.rs"], 13, true),
                (Some("src/c.rs"), vec!["fn c() {}"], 16, false),
            ]
        );
    }

    #[test]
    fn the_path_line_must_be_the_last_line_before_the_fence() {
        let answer = "src/a.rs\nis where the change goes:\n```rust\nfn a() {}\n```\n";
        assert_eq!(parse_whole_files(answer)[0].path, None);
        let answer = "**`src/a.rs`**\n\n```python\nx = 1\n```\n";
        assert_eq!(
            parse_whole_files(answer)[0].path.as_deref(),
            Some("src/a.rs")
        );
    }
}
