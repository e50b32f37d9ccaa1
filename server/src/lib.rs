//! qwen-ls: a repository-aware coding agent as a language server and a CLI.
//!
//! Layers (see ARCHITECTURE.md): syntax → index → context → tasks → {lsp, cli}.
#![deny(missing_docs)]
#![deny(clippy::print_stdout)]

pub mod cli;
pub mod context;
pub mod index;
pub mod logging;
pub mod lsp;
pub mod store;
pub mod syntax;
pub mod tasks;
pub mod token_count;
