//! qwen-engine: Qwen3 / Qwen3-MoE / Qwen2 inference on candle. Knows nothing of LSP or files beyond model files.
#![deny(missing_docs)]

pub mod cache;
pub mod config;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use cache::KvCache;
pub use config::{Architecture, ConfigError, ModelConfig, MoeConfig, RopeConfig, YarnScaling};
pub use model::{Logits, Model, ModelError};
pub use tokenizer::{SpecialToken, SpecialTokens, StreamDecoder, Tokenizer, TokenizerError};
pub use weights::{SafetensorsWeights, WeightsError};
