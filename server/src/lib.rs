//! qwen-ls library.
