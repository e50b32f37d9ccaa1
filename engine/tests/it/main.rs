//! qwen-engine integration tests, one binary.

mod common;

mod attention;
mod errors;
mod generation;
mod gguf;
mod kernels_ggml_vectors;
mod kernels_matmul;
mod kernels_model;
mod parity;
mod quantized;
mod speculative;
mod tokenizer;
