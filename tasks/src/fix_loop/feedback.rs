//! What the model is told after a red round: which check failed, how (exit code, the relevant part of its
//! output — errors first, cut by tokens), the changes so far as a diff, and the changed files as they are now,
//! so that its next SEARCH sections can copy them exactly. Everything is sized by exact token counts.

use super::command::CommandRun;
use crate::edit_prompt::fenced;

/// Words that mark a paragraph of output as an error report (compared in lower case).
const ERROR_WORDS: [&str; 8] = [
    "error",
    "failed",
    "failure",
    "panicked",
    "traceback",
    "exception",
    "assert",
    "fatal",
];

/// Removes ANSI escape sequences (colours) that a tool may print even into a pipe.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn mentions_error(paragraph: &str) -> bool {
    let lower = paragraph.to_lowercase();
    ERROR_WORDS.iter().any(|word| lower.contains(word))
}

/// Cuts a command's output to at most `budget` tokens, errors first. The output is split into paragraphs
/// (blank-line separated: the shape of compiler and test-runner reports); paragraphs that mention an error or
/// a failure come first, in their order, then the others; a paragraph that does not fit whole is cut by
/// lines; what was left out is counted in a last line.
pub fn trim_output(output: &str, budget: usize, count: &dyn Fn(&str) -> usize) -> String {
    let clean = strip_ansi(output);
    let paragraphs: Vec<&str> = clean
        .split("\n\n")
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty())
        .collect();
    let (errors, others): (Vec<&str>, Vec<&str>) =
        paragraphs.into_iter().partition(|p| mentions_error(p));
    let mut out = String::new();
    let mut used = 0;
    let mut left_out = 0usize;
    for paragraph in errors.into_iter().chain(others) {
        let tokens = count(paragraph) + 1;
        if used + tokens <= budget {
            out.push_str(paragraph);
            out.push_str("\n\n");
            used += tokens;
            continue;
        }
        for line in paragraph.lines() {
            let tokens = count(line) + 1;
            if used + tokens <= budget {
                out.push_str(line);
                out.push('\n');
                used += tokens;
            } else {
                left_out += 1;
            }
        }
        out.push('\n');
    }
    let mut out = out.trim_end().to_string();
    if left_out > 0 {
        out.push_str(&format!("\n[… {left_out} more lines left out]"));
    }
    out
}

/// A file changed so far, as it is now.
pub struct CurrentFile<'a> {
    /// Root-relative path.
    pub path: &'a str,
    /// Its text in the scratch tree.
    pub text: &'a str,
}

/// Why a round was red.
pub enum Failure<'a> {
    /// The answer could not be turned into an edit.
    InvalidAnswer(&'a str),
    /// The answer applied but left every file as it was.
    Unchanged,
    /// The edit introduced syntax errors (path, 1-based lines).
    SyntaxErrors(&'a [(String, Vec<usize>)]),
    /// A check command failed (the first one that did).
    Command(&'a CommandRun),
}

/// The feedback message, and which changed files it shows whole (the next round may rewrite those).
pub struct Feedback {
    /// The user message.
    pub text: String,
    /// Paths whose whole current text the message shows.
    pub shown_whole: Vec<String>,
}

/// Token budgets inside one feedback message.
const OUTPUT_SHARE_PERCENT: usize = 50;

/// Builds the feedback within `budget` tokens: first the changed files as they are now (whole, those that fit;
/// the diff so far if none does), then what went wrong (command output cut to half the budget at most, errors
/// first), then what to do. The failure comes last, next to the request: shown its answer last, a small model
/// tends to copy it back unchanged.
pub fn feedback(
    failures: &[Failure<'_>],
    diff: &str,
    files: &[CurrentFile<'_>],
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Feedback {
    const ASK: &str = "Fix the problems above. Answer with SEARCH/REPLACE blocks whose SEARCH sections copy the \
                       files as they are now (shown above, with your earlier changes), not as they were originally.";
    let mut problems = String::new();
    for failure in failures {
        match failure {
            Failure::InvalidAnswer(error) => problems.push_str(&format!(
                "Your last answer could not be turned into an edit:\n{error}\n\n"
            )),
            Failure::Unchanged => problems.push_str(
                "Your last answer changed nothing: every file is exactly as it was before it. A different change \
                 is needed.\n\n",
            ),
            Failure::SyntaxErrors(files) => {
                for (path, lines) in *files {
                    let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
                    problems.push_str(&format!(
                        "`{path}` has syntax errors at line(s) {}.\n\n",
                        lines.join(", ")
                    ));
                }
            }
            Failure::Command(run) => {
                let status = if run.timed_out {
                    format!(
                        "was killed after {:.0} s (its time limit)",
                        run.duration.as_secs_f64()
                    )
                } else {
                    match run.exit_code {
                        Some(code) => format!("exited with code {code}"),
                        None => "was killed by a signal".to_string(),
                    }
                };
                problems.push_str(&format!(
                    "I ran `{}` on the repository with your changes: it {status}. Its output (errors first, \
                     shortened):\n",
                    run.command
                ));
                let spent = count(&problems) + count(ASK);
                let room = budget.saturating_sub(spent) * OUTPUT_SHARE_PERCENT / 100;
                let output = trim_output(&run.output, room, count);
                problems.push_str(&fenced("output.txt", &output));
                problems.push('\n');
            }
        }
    }
    let mut room = budget.saturating_sub(count(&problems) + count(ASK));
    let mut state = String::new();
    let mut shown_whole = Vec::new();
    for file in files {
        let part = format!(
            "`{}` as it is now, with your changes:\n{}\n",
            file.path,
            fenced(file.path, file.text)
        );
        let tokens = count(&part);
        if tokens <= room {
            state.push_str(&part);
            room -= tokens;
            shown_whole.push(file.path.to_string());
        }
    }
    if shown_whole.is_empty() && !diff.is_empty() {
        let part = format!(
            "Your changes so far, as a diff against the original files:\n{}\n",
            fenced("x.diff", diff)
        );
        if count(&part) <= room {
            state.push_str(&part);
        }
    }
    Feedback {
        text: format!("{state}{problems}{ASK}"),
        shown_whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn errors_come_first_and_the_budget_holds() {
        let output = "\u{1b}[32m   Compiling demo v0.1.0\u{1b}[0m\n\nwarning: unused variable `x`\n --> src/lib.rs:2:9\n\n\
                      error[E0384]: cannot assign twice to immutable variable `b`\n --> src/lib.rs:5:9\n  |\n5 |   b = 1;\n\n\
                      error: could not compile `demo`\n";
        let trimmed = trim_output(output, 1000, &words);
        assert!(trimmed.starts_with("error[E0384]"), "{trimmed}");
        assert!(!trimmed.contains('\u{1b}'), "{trimmed}");
        let error_at = trimmed.find("could not compile").expect("second error");
        let warning_at = trimmed.find("warning:").expect("warning kept");
        assert!(error_at < warning_at, "{trimmed}");
        let small = trim_output(output, 12, &words);
        assert!(words(&small) <= 12 + 8, "{small}");
        assert!(
            small.starts_with("error[E0384]") && small.contains("more lines left out"),
            "{small}"
        );
    }

    #[test]
    fn feedback_names_the_command_and_shows_files_that_fit() {
        let run = CommandRun {
            command: "cargo check".into(),
            exit_code: Some(101),
            timed_out: false,
            cancelled: false,
            duration: Duration::from_secs(2),
            output: "error: expected `;`\n".into(),
        };
        let files = [CurrentFile {
            path: "src/lib.rs",
            text: "fn a() {}\n",
        }];
        let message = feedback(
            &[Failure::Command(&run)],
            "diff --git a/src/lib.rs b/src/lib.rs\n",
            &files,
            500,
            &words,
        );
        let text = &message.text;
        let file_at = text
            .find("`src/lib.rs` as it is now, with your changes:\n```rust\nfn a() {}\n```")
            .expect("the file");
        let failure_at = text
            .find(
                "I ran `cargo check` on the repository with your changes: it exited with code 101",
            )
            .expect("the failure");
        let error_at = text.find("error: expected `;`").expect("the output");
        // The file first, then the failure and its output, then the request.
        assert!(file_at < failure_at && failure_at < error_at, "{text}");
        assert!(text.ends_with("not as they were originally."), "{text}");
        assert!(
            !text.contains("diff --git"),
            "the file is shown, so the diff is not: {text}"
        );
        assert_eq!(message.shown_whole, ["src/lib.rs"]);
        // No room: the file is not shown, so the next round may not rewrite it whole.
        let tight = feedback(&[Failure::Command(&run)], "", &files, 60, &words);
        assert!(tight.shown_whole.is_empty(), "{}", tight.text);
        assert!(tight.text.contains("error: expected"), "{}", tight.text);
    }
}
