//! The façade both front ends (LSP and CLI) call: plain types in and out, no LSP or clap vocabulary.
//! Each task lives in its own module so the LSP handler and the CLI subcommand share one implementation.

pub mod patch;
