//! The façade both front ends (LSP and CLI) call: plain types in and out (byte offsets, strings), no LSP types.
//!
//! Only the model-independent core of inline completion lives here so far; the engine-facing parts of each task
//! are added next to it as the engine and context layers land.

pub mod complete;
