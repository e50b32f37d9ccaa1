//! The façade both front ends (LSP and CLI) call: plain types in and out (paths, byte offsets, strings), no
//! LSP or clap vocabulary. Each task lives in its own module so the LSP handler and the CLI subcommand share
//! one implementation.

pub mod complete;
pub mod measure;
pub mod patch;
