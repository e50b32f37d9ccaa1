//! qwen-engine integration tests, one binary.

mod common;

mod errors;
mod generation;
mod parity;
mod tokenizer;
