//! Token counting with the Qwen tokenizer built into the binary (Qwen2.5, Qwen3 and Qwen3-Coder share one
//! vocabulary), so counting needs no model files.
//!
//! This is the one file to change when the engine provides `qwen_engine::Tokenizer::builtin()`.

use std::sync::OnceLock;

use crate::context::TokenCounter;

static TOKENIZER_JSON: &[u8] = include_bytes!("../../fixtures/tokenizer/tokenizer.json");

/// Counts tokens with the real Qwen tokenizer.
pub struct QwenTokenCounter {
    tokenizer: tokenizers::Tokenizer,
}

impl QwenTokenCounter {
    /// The process-wide instance (parsed from the embedded JSON on first use, ~100 ms).
    pub fn builtin() -> Result<&'static Self, String> {
        static INSTANCE: OnceLock<Result<QwenTokenCounter, String>> = OnceLock::new();
        INSTANCE
            .get_or_init(|| {
                tokenizers::Tokenizer::from_bytes(TOKENIZER_JSON)
                    .map(|tokenizer| QwenTokenCounter { tokenizer })
                    .map_err(|e| format!("built-in Qwen tokenizer failed to load: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl TokenCounter for QwenTokenCounter {
    fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_fast(text, false) {
            Ok(encoding) => encoding.len(),
            Err(e) => {
                // Byte-level BPE never yields more tokens than bytes: an over-count keeps budgets safe.
                tracing::warn!("tokenizer failed ({e}); counting bytes instead");
                text.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_tokens_count_as_one() {
        let counter = QwenTokenCounter::builtin().expect("tokenizer loads");
        assert_eq!(counter.count("<|file_sep|>"), 1);
        assert_eq!(counter.count("<|repo_name|>"), 1);
        assert!(counter.count("fn main() {}\n") > 3);
    }
}
