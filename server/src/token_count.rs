//! Token counting with the Qwen tokenizer built into the engine (`qwen_engine::Tokenizer::builtin()`: one
//! embedded copy, parsed once per process and shared with everything else that needs the vocabulary).
//! Qwen2.5, Qwen3 and Qwen3-Coder share this vocabulary, so counting needs no model files.

use std::sync::{Arc, OnceLock};

use crate::context::TokenCounter;

/// Counts tokens with the real Qwen tokenizer.
pub struct QwenTokenCounter {
    tokenizer: Arc<qwen_engine::Tokenizer>,
}

impl QwenTokenCounter {
    /// The process-wide instance (the built-in tokenizer is parsed on first use, ~100 ms).
    pub fn builtin() -> Result<&'static Self, String> {
        static INSTANCE: OnceLock<Result<QwenTokenCounter, String>> = OnceLock::new();
        INSTANCE
            .get_or_init(|| {
                qwen_engine::Tokenizer::builtin()
                    .map(|tokenizer| QwenTokenCounter { tokenizer })
                    .map_err(|e| format!("built-in Qwen tokenizer failed to load: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared tokenizer.
    pub fn tokenizer(&self) -> &Arc<qwen_engine::Tokenizer> {
        &self.tokenizer
    }
}

impl TokenCounter for QwenTokenCounter {
    /// Special-token markup (`<|file_sep|>`) counts as the one special token it stands for, as in the packed
    /// context, whose renderer writes those tokens as text.
    fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode_with_specials(text) {
            Ok(ids) => ids.len(),
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
