//! What `patch` hands to its front ends: the diff and its summary ([`PatchOutcome`]), or why there is none
//! ([`PatchError`]), and the documented exit codes both map to ([`PatchExit`]). Plain types, no serde: the CLI
//! converts them to its JSON by hand at the edge.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

use super::answer::AnswerFormat;
use super::atomic::ApplyError;
use super::matching::{MatchFailure, MatchKind};
use super::parse::ParseError;
use super::paths::PathError;
use super::plausible::NotWhole;
use super::source::SourceError;

/// A patch that was produced: its unified diff and a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    /// The git-style unified diff of all changed files (empty when nothing changes).
    pub diff: String,
    /// Changed files, sorted by path.
    pub files: Vec<FileChange>,
    /// Things the user should know; the patch is valid regardless.
    pub warnings: Vec<PatchWarning>,
    /// Counts.
    pub stats: PatchStats,
    /// How the answer wrote its edits.
    pub format: AnswerFormat,
}

impl PatchOutcome {
    /// [`PatchExit::Produced`] when some file changes, else [`PatchExit::NoChange`].
    pub fn exit(&self) -> PatchExit {
        if self.files.is_empty() {
            PatchExit::NoChange
        } else {
            PatchExit::Produced
        }
    }
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// `/`-separated path relative to the root (the real path, never through a symbolic link).
    pub path: String,
    /// Whether the file is new.
    pub status: FileStatus,
}

/// Whether a file existed before the patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// The file existed (possibly empty).
    Modified,
    /// The file is created by the patch.
    Added,
}

impl FileStatus {
    /// `"modified"` or `"added"`, the words of the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Modified => "modified",
            FileStatus::Added => "added",
        }
    }
}

/// Counts over the whole patch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatchStats {
    /// SEARCH/REPLACE blocks in the answer.
    pub blocks: usize,
    /// Files the diff changes.
    pub files: usize,
    /// Lines added in the diff.
    pub lines_added: usize,
    /// Lines removed in the diff.
    pub lines_removed: usize,
    /// Blocks placed only after normalising whitespace.
    pub fuzzy_matches: usize,
}

/// Something the user should know about a valid patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchWarning {
    /// A block matched only after normalising whitespace.
    FuzzyMatch {
        /// Root-relative path.
        path: String,
        /// 1-based block index in the answer.
        block: usize,
        /// 1-based answer line of the block's SEARCH marker.
        answer_line: usize,
        /// 1-based inclusive lines matched in the original file.
        lines: (usize, usize),
        /// What was normalised.
        kind: MatchKind,
    },
    /// The patched file has syntax errors it did not have before.
    SyntaxErrors {
        /// Root-relative path.
        path: String,
        /// 1-based lines in the patched file.
        lines: Vec<usize>,
    },
    /// The blocks for a file leave it exactly as it was.
    Unchanged {
        /// Root-relative path.
        path: String,
    },
    /// The answer had no SEARCH/REPLACE blocks but repeated this file whole (which the model had been shown
    /// whole); the patch is the difference.
    WholeFile {
        /// Root-relative path.
        path: String,
    },
    /// The model's path names no file; the only file of that name the model was shown was edited instead.
    GuessedPath {
        /// The path as the model wrote it.
        written: String,
        /// The root-relative path edited.
        path: String,
    },
    /// The model's path went through a symbolic link inside the root; the diff names the real path.
    ThroughLink {
        /// The path as the model wrote it.
        written: String,
        /// The real root-relative path.
        path: String,
    },
}

impl fmt::Display for PatchWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchWarning::FuzzyMatch { path, block, answer_line, lines, kind } => write!(
                f,
                "`{path}`: block {block} (answer line {answer_line}) matched lines {}-{} only after {kind}",
                lines.0, lines.1
            ),
            PatchWarning::SyntaxErrors { path, lines } => {
                let list: Vec<String> = lines.iter().map(ToString::to_string).collect();
                let noun = if lines.len() == 1 { "a syntax error at line" } else { "syntax errors at lines" };
                write!(f, "`{path}`: the patch introduces {noun} {}", list.join(", "))
            }
            PatchWarning::Unchanged { path } => write!(f, "`{path}`: the edits leave the file unchanged"),
            PatchWarning::WholeFile { path } => write!(
                f,
                "`{path}`: the answer rewrote the whole file instead of using SEARCH/REPLACE blocks; review the diff"
            ),
            PatchWarning::GuessedPath { written, path } => write!(
                f,
                "`{written}` does not exist; the answer's edit went to `{path}`, the only file of that name the model was shown"
            ),
            PatchWarning::ThroughLink { written, path } => {
                write!(f, "`{written}` goes through a symbolic link; the diff names the real path `{path}`")
            }
        }
    }
}

/// One block that could not be turned into an edit.
#[derive(Debug, Error)]
#[error("block {block} (answer line {answer_line}): {kind}")]
pub struct EditError {
    /// 1-based block index in the answer.
    pub block: usize,
    /// 1-based answer line of the block's SEARCH marker.
    pub answer_line: usize,
    /// What went wrong.
    pub kind: EditErrorKind,
}

/// What went wrong with one block.
#[derive(Debug, Error)]
pub enum EditErrorKind {
    /// The path is refused.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The file is binary, not UTF-8 or unreadable.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A non-empty SEARCH names a file that does not exist.
    #[error("`{0}` does not exist; to create it, leave the SEARCH section empty")]
    FileNotFound(String),
    /// An empty SEARCH names a file that exists and is not empty.
    #[error("`{0}` already exists and is not empty; an empty SEARCH section only creates files")]
    FileExists(String),
    /// A whole-file reading that is not plausibly the whole file (see `plausible.rs`).
    #[error("{0}")]
    NotWhole(NotWhole),
    /// The SEARCH could not be placed.
    #[error("`{path}`: {failure}")]
    Match {
        /// Root-relative path.
        path: String,
        /// Why.
        failure: MatchFailure,
    },
}

impl EditErrorKind {
    /// Whether this is a problem of the environment (I/O) rather than of the model's answer.
    fn is_environment(&self) -> bool {
        matches!(
            self,
            EditErrorKind::Path(PathError::Io { .. })
                | EditErrorKind::Source(SourceError::Io { .. })
        )
    }
}

/// Why no patch was produced or applied.
#[derive(Debug, Error)]
pub enum PatchError {
    /// The root directory is unusable.
    #[error("cannot use `{}` as the root: {source}", .path.display())]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The answer is not in the edit format.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// One or more blocks could not be turned into edits (all are listed, one per line).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Edits(Vec<EditError>),
    /// Files changed after the model saw them.
    #[error("{} changed since the model saw {}; nothing was written", quoted(.paths), if .paths.len() == 1 { "it" } else { "them" })]
    Stale {
        /// Root-relative paths.
        paths: Vec<String>,
    },
    /// Writing the patch failed (see [`ApplyError`] for what was written and restored).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The patch edits configuration that can run programs; nothing was written without the user's consent.
    #[error("nothing was written: {} {} configuration that can run programs; review the diff and allow it \
             explicitly (`qwen-ls patch --allow-config-edits`)",
            .paths.iter().map(|(p, what)| format!("`{p}` ({what})")).collect::<Vec<_>>().join(", "),
            if .paths.len() == 1 { "is" } else { "are" })]
    NeedsConfirmation {
        /// Root-relative paths and what each configures.
        paths: Vec<(String, &'static str)>,
    },
    /// The patch introduces syntax errors; nothing was written.
    #[error("nothing was written: the patch introduces syntax errors in {} (`--allow-syntax-errors` writes \
             it anyway)", quoted(.paths))]
    SyntaxErrors {
        /// Root-relative paths.
        paths: Vec<String>,
    },
}

fn quoted(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PatchError {
    /// The documented exit code for this error.
    pub fn exit(&self) -> PatchExit {
        match self {
            PatchError::Parse(_) => PatchExit::InvalidAnswer,
            PatchError::Edits(errors) if errors.iter().any(|e| e.kind.is_environment()) => {
                PatchExit::UsageOrEnvironment
            }
            PatchError::Edits(_) | PatchError::SyntaxErrors { .. } => PatchExit::InvalidAnswer,
            PatchError::Root { .. }
            | PatchError::Stale { .. }
            | PatchError::Apply(_)
            | PatchError::NeedsConfirmation { .. } => PatchExit::UsageOrEnvironment,
        }
    }
}

/// The documented exit codes of `qwen-ls patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchExit {
    /// 0: a patch was produced (or applied).
    Produced,
    /// 1: the answer's edits change nothing.
    NoChange,
    /// 2: the model's answer could not be turned into a valid patch.
    InvalidAnswer,
    /// 3: usage or environment error (root, I/O, files changed on disk).
    UsageOrEnvironment,
}

impl PatchExit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            PatchExit::Produced => 0,
            PatchExit::NoChange => 1,
            PatchExit::InvalidAnswer => 2,
            PatchExit::UsageOrEnvironment => 3,
        }
    }
}

/// Maps a patch result to its exit code.
pub fn exit_status(result: &Result<PatchOutcome, PatchError>) -> PatchExit {
    match result {
        Ok(outcome) => outcome.exit(),
        Err(err) => err.exit(),
    }
}
