//! qwen-engine integration tests, one binary.

mod common;

mod errors;
mod generation;
mod gguf;
mod parity;
mod quantized;
mod tokenizer;
