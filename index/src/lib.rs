//! Index layer: the workspace walk, per-file symbols and windows, the symbol table and file graph, incremental
//! updates, and the persistent cache. No LSP types, no token budgets.
//!
//! [`IndexHost`] is the single writer: it applies [`Change`]s in arrival order (with version checks for open
//! documents) and hands out [`IndexSnapshot`]s that readers use without locks.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cache;
mod codec;
pub mod config;
pub mod document;
pub mod file_index;
pub mod filter;
pub mod gate;
pub mod graph;
pub mod host;
pub mod identifiers;
mod ignore_rules;
pub mod mounts;
pub mod postings;
pub mod snapshot;
pub mod walk;
pub mod windows;

pub use cache::{CacheError, CacheStatus, CacheStore};
pub use config::{IndexConfig, DEFAULT_SECRET_PATTERNS};
pub use document::TextEdit;
pub use file_index::{FileIndex, FileSymbols};
pub use filter::SkipReason;
pub use gate::{Admission, Gate};
pub use graph::FileGraph;
pub use host::{Change, IndexCheck, IndexHost, LoadReport};
pub use mounts::{Mount, Mounts};
pub use postings::{Postings, WindowRef};
pub use snapshot::IndexSnapshot;
pub use walk::SkippedFile;
pub use windows::Window;

use std::ops::Range;
use std::path::PathBuf;

/// Errors that stop loading a workspace (per-file problems never do: they are logged and skipped).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The workspace root is missing or not a directory.
    #[error("workspace root {path} is not a directory")]
    NotADirectory {
        /// The root given.
        path: PathBuf,
    },
    /// The workspace root could not be resolved to an absolute path.
    #[error("cannot resolve workspace root {path}: {source}")]
    Root {
        /// The root given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Errors applying one change; the index is left as it was before that change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeError {
    /// An edit for a document that is not open.
    #[error("{path} is not open")]
    NotOpen {
        /// The path.
        path: String,
    },
    /// An edit whose version is not newer than the document's (a reordered or replayed message).
    #[error("{path}: stale edit version {got} (document is at {have})")]
    StaleVersion {
        /// The path.
        path: String,
        /// The document's version.
        have: i32,
        /// The edit's version.
        got: i32,
    },
    /// An edit range outside the text or inside a UTF-8 character.
    #[error("{path}: edit range {range:?} is invalid for a text of {len} bytes")]
    InvalidEdit {
        /// The path.
        path: String,
        /// The range given.
        range: Range<usize>,
        /// The text length.
        len: usize,
    },
    /// A path outside the workspace or not representable.
    #[error("{path} is not a path inside the workspace")]
    BadPath {
        /// The path.
        path: String,
    },
    /// A document the gate keeps out of the index (secret, ignored, hidden, too large, binary…).
    #[error("{path} is not indexed: {reason}")]
    Refused {
        /// The path.
        path: String,
        /// Why.
        reason: SkipReason,
    },
}
