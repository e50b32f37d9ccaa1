//! Parser for the search/replace edit format (see [`super::format`]), written for real model output rather
//! than the ideal: code fences with or without a language, prose before/between/after blocks, CRLF, trailing
//! whitespace, decorated file names, `<think>` sections, and marker lines with 5–9 marker characters.
//!
//! The parser is a line-based state machine. It is pure (no file system) and total: every input yields either
//! blocks or a [`ParseError`] naming the answer line, never a panic.

use thiserror::Error;

/// One SEARCH/REPLACE block as the model wrote it. Lines carry no terminators (`\r` is stripped too): line
/// endings are the file's business and are restored when the edit is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditBlock {
    /// The path as written by the model, with Markdown decoration removed; not yet checked for safety.
    pub path: String,
    /// The SEARCH section; empty when the block creates a file.
    pub search: Vec<String>,
    /// The REPLACE section; empty when the block deletes the matched lines.
    pub replace: Vec<String>,
    /// 1-based line of the answer holding the SEARCH marker, for error messages.
    pub answer_line: usize,
}

impl EditBlock {
    /// Whether the SEARCH section is empty (blank lines only), which means "create this file".
    pub fn creates_file(&self) -> bool {
        self.search.iter().all(|line| line.trim().is_empty())
    }
}

/// Why an answer could not be read as edit blocks. Line numbers are 1-based lines of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// No block at all (after removing `<think>` sections).
    #[error("the answer contains no SEARCH/REPLACE blocks")]
    NoBlocks,
    /// The first block has no path line before it.
    #[error(
        "answer line {line}: the block has no file path; write the path alone on the line before the block"
    )]
    MissingPath {
        /// Line of the SEARCH marker.
        line: usize,
    },
    /// The answer ended inside a block.
    #[error("answer line {line}: the block is not terminated: `{expected}` is missing before the end of the answer")]
    Unterminated {
        /// Line of the SEARCH marker of the unterminated block.
        line: usize,
        /// The marker that was expected next.
        expected: &'static str,
    },
    /// A marker appeared where another one was expected.
    #[error("answer line {line}: unexpected `{found}` inside the block that starts at line {block_line}; expected `{expected}` first")]
    UnexpectedMarker {
        /// Line of the unexpected marker.
        line: usize,
        /// Line of the SEARCH marker of the enclosing block.
        block_line: usize,
        /// The marker found.
        found: &'static str,
        /// The marker that was expected.
        expected: &'static str,
    },
    /// A REPLACE marker outside any block.
    #[error("answer line {line}: `{REPLACE_MARKER}` without a `{SEARCH_MARKER}` before it")]
    StrayReplace {
        /// Line of the stray marker.
        line: usize,
    },
}

use super::format::{DIVIDER_MARKER, REPLACE_MARKER, SEARCH_MARKER};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Search,
    Divider,
    Replace,
}

/// Recognises a marker line: 5–9 marker characters, then (for SEARCH/REPLACE) optional spaces and the keyword
/// in any case. Surrounding whitespace is ignored so blocks indented inside Markdown lists still parse.
fn marker(line: &str) -> Option<Marker> {
    let t = line.trim();
    let (ch, keyword, kind) = match t.as_bytes().first()? {
        b'<' => ('<', "SEARCH", Marker::Search),
        b'=' => ('=', "", Marker::Divider),
        b'>' => ('>', "REPLACE", Marker::Replace),
        _ => return None,
    };
    let run = t.chars().take_while(|&c| c == ch).count();
    if !(5..=9).contains(&run) {
        return None;
    }
    // The run is ASCII, so `run` is also a byte offset.
    let rest = t[run..].trim_start();
    rest.eq_ignore_ascii_case(keyword).then_some(kind)
}

/// A Markdown fence line (``` or ~~~, three or more), returning its info string.
fn fence_info(line: &str) -> Option<&str> {
    let t = line.trim();
    for ch in ['`', '~'] {
        let run = t.chars().take_while(|&c| c == ch).count();
        if run >= 3 {
            return Some(t[run..].trim());
        }
    }
    None
}

/// Labels models put before a path (`File: src/lib.rs`), compared case-insensitively.
const PATH_LABELS: [&str; 4] = ["file path:", "filename:", "file:", "path:"];

/// Reads a line that consists of a file path, possibly decorated: `` `p` ``, `**p**`, `### p`, `File: p`,
/// `**File:** `p``, `- p`, `p:`. Prose lines return `None`. An undecorated name must contain `/` or an inner
/// `.` so that a one-word sentence is not mistaken for a file; decorated names (`` `Makefile` ``) need not.
/// Names with spaces are not recognised: a line with spaces is prose.
fn path_line(line: &str) -> Option<String> {
    let mut t = line.trim();
    let mut decorated = false;
    let hashes = t.chars().take_while(|&c| c == '#').count();
    if hashes > 0 {
        t = t[hashes..].trim_start();
        decorated = true;
    }
    if let Some(rest) = t.strip_prefix("- ") {
        t = rest.trim_start();
    }
    // `*` (emphasis) and `` ` `` (code spans) never occur in a real path: drop them wherever they are.
    let undecorated: String = t.chars().filter(|&c| c != '*' && c != '`').collect();
    decorated |= undecorated.len() != t.len();
    let mut t = undecorated.trim();
    for label in PATH_LABELS {
        if t.len() >= label.len()
            && t.is_char_boundary(label.len())
            && t[..label.len()].eq_ignore_ascii_case(label)
        {
            t = t[label.len()..].trim_start();
            decorated = true;
            break;
        }
    }
    if let Some(stripped) = t.strip_suffix(':') {
        t = stripped.trim_end();
    }
    plausible_path(t, decorated).then(|| t.to_string())
}

fn plausible_path(t: &str, decorated: bool) -> bool {
    let allowed = |c: char| c.is_alphanumeric() || "/._-+@~\\:".contains(c);
    if t.is_empty() || !t.chars().all(allowed) || !t.chars().any(char::is_alphanumeric) {
        return false;
    }
    if t.contains("://") || t.ends_with('.') {
        return false;
    }
    let name = t.rsplit(['/', '\\']).next().unwrap_or(t);
    let inner_dot =
        name.trim_start_matches('.').contains('.') || (name.starts_with('.') && name.len() > 1);
    decorated || t.contains('/') || inner_dot
}

/// A path given in a fence's info string: ```` ```src/lib.rs ````, ```` ```rust src/lib.rs ````,
/// ```` ```rust:src/lib.rs ````. A bare language name is not a path.
fn fence_path(info: &str) -> Option<String> {
    let last = info.split_whitespace().last()?;
    let candidate = match last.split_once(':') {
        Some((lang, rest))
            if !lang.is_empty() && lang.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            rest
        }
        _ => last,
    };
    plausible_path(candidate, false).then(|| candidate.to_string())
}

enum State {
    Prose,
    Think,
    Search {
        start: usize,
        path: String,
        lines: Vec<String>,
    },
    Replace {
        start: usize,
        path: String,
        search: Vec<String>,
        lines: Vec<String>,
    },
}

/// Parses a raw model answer into edit blocks, in answer order.
///
/// `<think>…</think>` sections are ignored; if the answer contains `</think>` without an opening tag (the chat
/// template opened it), everything before it is ignored. A block without its own path line reuses the path of
/// the previous block; the first block must have one.
pub fn parse_answer(answer: &str) -> Result<Vec<EditBlock>, ParseError> {
    let mut blocks = Vec::new();
    let mut state = if thinking_opened_by_template(answer) {
        State::Think
    } else {
        State::Prose
    };
    let mut pending_path: Option<String> = None;
    let mut last_path: Option<String> = None;

    for (index, raw) in answer.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        state = match state {
            State::Think => {
                if line.contains("</think>") {
                    State::Prose
                } else {
                    State::Think
                }
            }
            State::Prose => {
                let trimmed = line.trim_start();
                if trimmed.starts_with("<think>") {
                    if trimmed.contains("</think>") {
                        State::Prose
                    } else {
                        State::Think
                    }
                } else if trimmed.starts_with("</think>") {
                    State::Prose
                } else {
                    match marker(line) {
                        Some(Marker::Search) => {
                            let path = pending_path.take().or_else(|| last_path.clone());
                            let Some(path) = path else {
                                return Err(ParseError::MissingPath { line: number });
                            };
                            State::Search {
                                start: number,
                                path,
                                lines: Vec::new(),
                            }
                        }
                        Some(Marker::Replace) => {
                            return Err(ParseError::StrayReplace { line: number })
                        }
                        // A lone `=======` in prose is a Markdown heading underline, not an error.
                        Some(Marker::Divider) => State::Prose,
                        None => {
                            if let Some(info) = fence_info(line) {
                                if let Some(path) = fence_path(info) {
                                    pending_path = Some(path);
                                }
                            } else if let Some(path) = path_line(line) {
                                pending_path = Some(path);
                            }
                            State::Prose
                        }
                    }
                }
            }
            State::Search {
                start,
                path,
                mut lines,
            } => match marker(line) {
                Some(Marker::Divider) => State::Replace {
                    start,
                    path,
                    search: lines,
                    lines: Vec::new(),
                },
                Some(found) => {
                    return Err(ParseError::UnexpectedMarker {
                        line: number,
                        block_line: start,
                        found: marker_text(found),
                        expected: DIVIDER_MARKER,
                    })
                }
                None => {
                    lines.push(line.to_string());
                    State::Search { start, path, lines }
                }
            },
            State::Replace {
                start,
                path,
                search,
                mut lines,
            } => match marker(line) {
                Some(Marker::Replace) => {
                    last_path = Some(path.clone());
                    blocks.push(EditBlock {
                        path,
                        search,
                        replace: lines,
                        answer_line: start,
                    });
                    State::Prose
                }
                Some(Marker::Search) => {
                    return Err(ParseError::UnexpectedMarker {
                        line: number,
                        block_line: start,
                        found: SEARCH_MARKER,
                        expected: REPLACE_MARKER,
                    })
                }
                // A second divider is content: some files contain `=======` lines (reStructuredText titles).
                Some(Marker::Divider) | None => {
                    lines.push(line.to_string());
                    State::Replace {
                        start,
                        path,
                        search,
                        lines,
                    }
                }
            },
        };
    }

    match state {
        State::Search { start, .. } => Err(ParseError::Unterminated {
            line: start,
            expected: DIVIDER_MARKER,
        }),
        State::Replace { start, .. } => Err(ParseError::Unterminated {
            line: start,
            expected: REPLACE_MARKER,
        }),
        State::Prose | State::Think if blocks.is_empty() => Err(ParseError::NoBlocks),
        State::Prose | State::Think => Ok(blocks),
    }
}

/// A fenced block that holds a whole file: what small models write instead of SEARCH/REPLACE blocks when they
/// were shown the file whole (the path line, a fence, the complete new content, the closing fence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeFile {
    /// The path as written by the model (not yet checked for safety).
    pub path: String,
    /// The content lines between the fences.
    pub lines: Vec<String>,
    /// 1-based line of the answer holding the opening fence.
    pub answer_line: usize,
}

/// Reads an answer without SEARCH/REPLACE blocks as whole-file rewrites: every fenced block whose path is
/// named on the line before its fence (or in its info string). Fences without a path are prose (examples,
/// shell commands) and are skipped, as are `<think>` sections. The caller decides which files may be
/// rewritten this way.
pub fn parse_whole_files(answer: &str) -> Vec<WholeFile> {
    let mut files = Vec::new();
    let mut thinking = thinking_opened_by_template(answer);
    let mut previous_path: Option<String> = None;
    let mut open: Option<(char, WholeFile)> = None;
    for (index, raw) in answer.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if let Some((fence_char, mut file)) = open.take() {
            let closes = fence_info(line).is_some_and(|info| info.is_empty())
                && trimmed.starts_with(fence_char);
            if closes {
                files.push(file);
            } else {
                file.lines.push(line.to_string());
                open = Some((fence_char, file));
            }
            continue;
        }
        if thinking {
            thinking = !line.contains("</think>");
            continue;
        }
        if trimmed.starts_with("<think>") {
            thinking = !trimmed.contains("</think>");
            continue;
        }
        if let Some(info) = fence_info(line) {
            // A fence without a path still opens a block, so that its content is not read as path lines.
            let path = fence_path(info).or_else(|| previous_path.take());
            let file = WholeFile {
                path: path.unwrap_or_default(),
                lines: Vec::new(),
                answer_line: index + 1,
            };
            open = Some((trimmed.chars().next().unwrap_or('`'), file));
            continue;
        }
        if !line.trim().is_empty() {
            previous_path = path_line(line);
        }
    }
    // An unterminated fence (in `open`) is an answer cut short: never taken as a whole file.
    files.retain(|file| !file.path.is_empty());
    files
}

/// Whether the answer closes a thinking section it never opened (the chat template emitted `<think>`): then
/// everything up to the first `</think>` is thinking.
fn thinking_opened_by_template(answer: &str) -> bool {
    for line in answer.split('\n') {
        if line.trim_start().starts_with("<think>") {
            return false;
        }
        if line.trim_start().starts_with("</think>") {
            return true;
        }
    }
    false
}

fn marker_text(marker: Marker) -> &'static str {
    match marker {
        Marker::Search => SEARCH_MARKER,
        Marker::Divider => DIVIDER_MARKER,
        Marker::Replace => REPLACE_MARKER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(answer: &str) -> Vec<String> {
        parse_answer(answer)
            .expect("parses")
            .into_iter()
            .map(|b| b.path)
            .collect()
    }

    #[test]
    fn markers_accept_five_to_nine_characters_and_trailing_whitespace() {
        assert_eq!(marker("<<<<< SEARCH"), Some(Marker::Search));
        assert_eq!(marker("<<<<<<<<<SEARCH  \t"), Some(Marker::Search));
        assert_eq!(marker("<<<< SEARCH"), None);
        assert_eq!(marker("<<<<<<<<<< SEARCH"), None);
        assert_eq!(marker("=====  "), Some(Marker::Divider));
        assert_eq!(marker("==== "), None);
        assert_eq!(marker("======= x"), None);
        assert_eq!(marker(">>>>>>> replace"), Some(Marker::Replace));
        assert_eq!(marker(">>>>>>> REPLACE x"), None);
    }

    #[test]
    fn whole_files_need_a_path_and_a_closing_fence() {
        let answer = "<think>\nsrc/x.rs\n```rust\nthought\n```\n</think>\nsrc/a.rs\n```rust\nfn a() {}\n\n```\n\
                      Run it:\n```sh\nsrc/b.rs\n```\n```rust src/c.rs\nfn c() {}\n```\nsrc/d.rs\n```rust\nfn d(";
        let files = parse_whole_files(answer);
        let got: Vec<(&str, Vec<&str>, usize)> = files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.lines.iter().map(String::as_str).collect(),
                    f.answer_line,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("src/a.rs", vec!["fn a() {}", ""], 8),
                ("src/c.rs", vec!["fn c() {}"], 16),
            ]
        );
    }

    #[test]
    fn decorated_path_lines() {
        for line in [
            "src/a.rs",
            "`src/a.rs`",
            "**src/a.rs**",
            "### src/a.rs",
            "File: src/a.rs",
            "src/a.rs:",
            "**`src/a.rs`**",
            "## File: `src/a.rs`",
            "*src/a.rs*",
            "`src/a.rs`:",
        ] {
            assert_eq!(path_line(line).as_deref(), Some("src/a.rs"), "{line}");
        }
        assert_eq!(path_line("`Makefile`").as_deref(), Some("Makefile"));
        assert_eq!(path_line(".gitignore").as_deref(), Some(".gitignore"));
        for prose in [
            "Done.",
            "Here is the change:",
            "Makefile",
            "https://x.y/z",
            "e.g.",
            "fn main() {}",
            "",
        ] {
            assert_eq!(path_line(prose), None, "{prose}");
        }
    }

    #[test]
    fn path_in_fence_info_string() {
        assert_eq!(fence_path("rust"), None);
        assert_eq!(fence_path("src/lib.rs").as_deref(), Some("src/lib.rs"));
        assert_eq!(fence_path("rust src/lib.rs").as_deref(), Some("src/lib.rs"));
        assert_eq!(fence_path("rust:src/lib.rs").as_deref(), Some("src/lib.rs"));
    }

    #[test]
    fn path_before_search_marker_inside_fence_and_reuse() {
        let answer = "```rust\nsrc/a.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\n\
                      ```\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n```\n";
        assert_eq!(paths(answer), ["src/a.rs", "src/a.rs"]);
    }

    #[test]
    fn think_sections_are_ignored_including_an_implicit_opening() {
        let block = "x.rs\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n";
        let answer = format!("<think>\ny.rs\n<<<<<<< SEARCH\n</think>\n{block}");
        assert_eq!(paths(&answer), ["x.rs"]);
        let answer = format!(
            "draft: {block}</think>\n\nz.rs\n<<<<<<< SEARCH\na\n=======\n>>>>>>> REPLACE\n"
        );
        assert_eq!(paths(&answer), ["z.rs"]);
        assert_eq!(parse_answer("<think>\nhmm"), Err(ParseError::NoBlocks));
        // `</think>` inside code is content, not the end of a template-opened thinking section.
        let answer = "p.rs\n<<<<<<< SEARCH\nlet s = \"</think>\";\n=======\nlet s = \"\";\n>>>>>>> REPLACE\n";
        assert_eq!(paths(answer), ["p.rs"]);
    }

    #[test]
    fn the_example_shown_to_the_model_parses() {
        let blocks = parse_answer(super::super::format::EDIT_FORMAT_EXAMPLE).expect("parses");
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].path, "src/math.rs");
        assert_eq!(blocks[0].search[1], "    a - b");
        assert_eq!(blocks[1].path, "src/consts.rs");
        assert!(blocks[1].creates_file());
    }

    #[test]
    fn blocks_indented_in_a_list_and_prose_between_path_and_fence() {
        let answer = "1. Fix it in\n   src/a.rs\n   which needs care:\n   ```rust\n   <<<<<<< SEARCH\n   x\n   =======\n   y\n   >>>>>>> REPLACE\n   ```\n";
        let blocks = parse_answer(answer).expect("parses");
        assert_eq!(blocks[0].path, "src/a.rs");
        // Indentation is kept; the matcher's indentation tolerance removes it.
        assert_eq!(
            (blocks[0].search.as_slice(), blocks[0].replace.as_slice()),
            (&["   x".to_string()][..], &["   y".to_string()][..])
        );
    }

    #[test]
    fn crlf_is_stripped_and_content_kept_verbatim() {
        let blocks =
            parse_answer("a.txt\r\n<<<<<<< SEARCH\r\n  x  \r\n=======\r\n\r\n>>>>>>> REPLACE\r\n")
                .expect("parses");
        assert_eq!(blocks[0].search, ["  x  "]);
        assert_eq!(blocks[0].replace, [""]);
        assert_eq!(blocks[0].answer_line, 2);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse_answer("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE"),
            Err(ParseError::MissingPath { line: 1 })
        );
        assert_eq!(
            parse_answer("a.rs\n<<<<<<< SEARCH\na\n"),
            Err(ParseError::Unterminated {
                line: 2,
                expected: DIVIDER_MARKER
            })
        );
        assert_eq!(
            parse_answer("a.rs\n<<<<<<< SEARCH\na\n=======\nb\n"),
            Err(ParseError::Unterminated {
                line: 2,
                expected: REPLACE_MARKER
            })
        );
        assert_eq!(
            parse_answer("text\n>>>>>>> REPLACE\n"),
            Err(ParseError::StrayReplace { line: 2 })
        );
        assert!(matches!(
            parse_answer("a.rs\n<<<<<<< SEARCH\na\n=======\nb\n<<<<<<< SEARCH\n"),
            Err(ParseError::UnexpectedMarker {
                line: 6,
                block_line: 2,
                ..
            })
        ));
        assert_eq!(
            parse_answer("Title\n=======\nnothing to do\n"),
            Err(ParseError::NoBlocks)
        );
    }
}
