//! Parser for the search/replace edit format (see [`super::format`]), written for real model output rather
//! than the ideal: code fences with or without a language, prose before/between/after blocks, CRLF, trailing
//! whitespace, decorated file names, `<think>` sections, marker lines with 5–9 marker characters (and the
//! keywords of Aider's older `ORIGINAL`/`UPDATED` format or a bare git conflict marker), and a missing path line
//! when the caller knows the one file in play.
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
    /// No edit at all (after removing `<think>` sections): no SEARCH/REPLACE block, no unified diff, and no
    /// fence that can be read as a whole file.
    #[error(
        "the answer contains no edits: no SEARCH/REPLACE blocks, no unified diff, and no fenced file the model \
         was shown whole"
    )]
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
    /// A unified diff deletes a file (`+++ /dev/null`), which edits cannot do.
    #[error("answer line {line}: the diff deletes a file; qwen-ls edits and creates files but never deletes them")]
    DeletesFile {
        /// Line of the `---` header.
        line: usize,
    },
    /// A REPLACE marker outside any block.
    #[error("answer line {line}: `{REPLACE_MARKER}` without a `{SEARCH_MARKER}` before it")]
    StrayReplace {
        /// Line of the stray marker.
        line: usize,
    },
}

use super::format::{DIVIDER_MARKER, REPLACE_MARKER, SEARCH_MARKER};
use super::markdown::{fence_info, fence_path, path_line, thinking_opened_by_template};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Search,
    Divider,
    Replace,
}

/// Keywords accepted after a SEARCH marker run: ours, Aider's older `ORIGINAL`, and git's conflict `HEAD`.
const SEARCH_KEYWORDS: [&str; 3] = ["SEARCH", "ORIGINAL", "HEAD"];
/// Keywords accepted after a REPLACE marker run: ours and Aider's older `UPDATED`.
const REPLACE_KEYWORDS: [&str; 2] = ["REPLACE", "UPDATED"];
/// A bare run of exactly this many `<` or `>` (a git conflict marker without its label) also counts.
const BARE_MARKER_RUN: usize = 7;

/// Recognises a marker line: 5–9 marker characters, then (for SEARCH/REPLACE) optional spaces and one of the
/// keywords in any case, or nothing at all after exactly seven. Surrounding whitespace is ignored so blocks
/// indented inside Markdown lists still parse.
fn marker(line: &str) -> Option<Marker> {
    let t = line.trim();
    let (ch, keywords, kind): (char, &[&str], Marker) = match t.as_bytes().first()? {
        b'<' => ('<', &SEARCH_KEYWORDS, Marker::Search),
        b'=' => ('=', &[""], Marker::Divider),
        b'>' => ('>', &REPLACE_KEYWORDS, Marker::Replace),
        _ => return None,
    };
    let run = t.chars().take_while(|&c| c == ch).count();
    if !(5..=9).contains(&run) {
        return None;
    }
    // The run is ASCII, so `run` is also a byte offset.
    let rest = t[run..].trim_start();
    let bare = rest.is_empty() && run == BARE_MARKER_RUN;
    (bare || keywords.iter().any(|k| rest.eq_ignore_ascii_case(k))).then_some(kind)
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
    parse_answer_for(answer, None)
}

/// [`parse_answer`] when one file is in play (the file a refactor edits, the one file given to `patch`): a
/// first block without a path line edits `default_path` instead of being an error.
pub fn parse_answer_for(
    answer: &str,
    default_path: Option<&str>,
) -> Result<Vec<EditBlock>, ParseError> {
    let mut blocks = Vec::new();
    let mut state = if thinking_opened_by_template(answer) {
        State::Think
    } else {
        State::Prose
    };
    let mut pending_path: Option<String> = None;
    let mut last_path: Option<String> = default_path.map(str::to_string);

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
        for (line, kind) in [
            ("<<<<<<< ORIGINAL", Marker::Search),
            ("<<<<<<< HEAD", Marker::Search),
            ("<<<<<<<", Marker::Search),
            (">>>>>>> UPDATED", Marker::Replace),
            (">>>>>>>", Marker::Replace),
        ] {
            assert_eq!(marker(line), Some(kind), "{line}");
        }
        assert_eq!(marker("<<<<<"), None, "a bare run must be exactly seven");
        assert_eq!(marker(">>>>>>>> "), None);
    }

    #[test]
    fn a_missing_path_line_uses_the_file_in_play() {
        let answer = "```rust\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```\nsrc/b.rs\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE\n";
        let blocks = parse_answer_for(answer, Some("src/a.rs")).expect("parses");
        let paths: Vec<&str> = blocks.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(paths, ["src/a.rs", "src/b.rs"]);
        assert_eq!(
            parse_answer(answer),
            Err(ParseError::MissingPath { line: 2 })
        );
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
