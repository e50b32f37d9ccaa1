//! qwen-engine: Qwen3 / Qwen3-MoE / Qwen2 inference on candle. Knows nothing of LSP or files beyond model files.
#![deny(missing_docs)]

pub mod kernels;
