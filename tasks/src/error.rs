//! `TaskError`: why a task produced no answer. An answer the model got wrong is not a `TaskError` (a completion
//! that post-processing rejects is `None`; an edit that cannot be turned into a patch is a
//! [`crate::EditFailure`] next to the raw answer), so front ends can tell "try again" from "fix your setup".

use std::path::PathBuf;

use super::generator::GenError;

/// Why a task failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The request was cancelled (a newer keystroke, `$/cancelRequest`) before it finished.
    #[error("cancelled")]
    Cancelled,
    /// The model could not run the prompt.
    #[error(transparent)]
    Generate(#[from] GenError),
    /// A document could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file the gate never lets into a prompt (a secret, or listed in `.qwenignore`).
    #[error("{path} is never read or sent to a model: it {reason} (see SECURITY.md)")]
    Refused {
        /// The path as given.
        path: PathBuf,
        /// Why ([`qwen_index::SkipReason::Secret`] or [`qwen_index::SkipReason::Private`]).
        reason: qwen_index::SkipReason,
    },
    /// A path outside the workspace root (or not representable as a workspace path).
    #[error("{0} is not inside the workspace")]
    OutsideWorkspace(PathBuf),
    /// An edit of a file in a workspace folder other than the first (edits are applied under the first
    /// folder's root; the other folders are indexed for context).
    #[error("{0} is not in the first workspace folder: refactors and patches edit files of the first folder only (for now)")]
    OtherFolder(PathBuf),
    /// The workspace could not be indexed.
    #[error(transparent)]
    Index(#[from] qwen_index::IndexError),
    /// The built-in tokenizer failed to load (a broken build).
    #[error("{0}")]
    Tokenizer(String),
    /// An empty or blank instruction.
    #[error("the instruction is empty")]
    EmptyInstruction,
    /// The fixed parts of the prompt (instructions, the code being edited) do not fit the budget.
    #[error("the prompt needs at least {needed} tokens but the budget is {budget}; raise the budget or select less code")]
    Budget {
        /// Tokens of the parts that cannot be left out.
        needed: usize,
        /// The budget.
        budget: usize,
    },
}

impl TaskError {
    /// Whether this is a cancellation (the LSP answers `RequestCancelled`, the CLI exits quietly).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }
}
