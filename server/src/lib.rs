//! qwen-ls: a repository-aware coding agent as a language server and a CLI.
//!
//! This crate is the composition root: the command line (`cli`) and the wiring of the engine and the remote
//! backend into a generator (`load`). The layers are crates of their own (see ARCHITECTURE.md), with
//! dependencies `syntax → index → context → tasks → {lsp, cli}` enforced by Cargo; they are re-exported here
//! under their layer names for the integration tests and the benchmarks.
#![deny(missing_docs)]
#![deny(clippy::print_stdout)]

pub mod cli;
pub mod load;

pub use qwen_context as context;
pub use qwen_context::token_count;
pub use qwen_index as index;
pub use qwen_lsp as lsp;
pub use qwen_lsp::logging;
pub use qwen_store as store;
pub use qwen_syntax as syntax;
pub use qwen_tasks as tasks;
