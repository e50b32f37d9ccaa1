//! qwen-engine: Qwen3 / Qwen3-MoE / Qwen2 inference on candle. Knows nothing of LSP or files beyond model files.
//!
//! Start at [`LoadedModel::load`]; build a [`Prompt`] (FIM, repository FIM, chat); keep a [`Sequence`] per
//! document or request so the next prompt reuses its KV cache; call [`LoadedModel::generate`].
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod attn;
pub mod cache;
pub mod cancel;
pub mod config;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod loaded;
pub mod model;
pub mod prompt;
pub mod sampling;
pub mod sequence;
pub mod source;
pub mod speculative;
pub mod stop;
pub mod threads;
pub mod tokenizer;
pub mod weights;

pub use cache::{KvCache, KvCacheKind};
pub use cancel::CancelToken;
pub use config::{Architecture, ConfigError, ModelConfig, MoeConfig, RopeConfig, YarnScaling};
pub use generate::{
    generate, GenerateError, GenerateParams, Generation, GenerationStats, StopReason,
};
pub use gguf::{GgufError, GgufFile, TensorEntry};
pub use loaded::{LoadError, LoadOptions, LoadReport, LoadedModel, WeightDType};
pub use model::{Logits, Model, ModelError, Rows};
pub use prompt::{Message, Piece, Prompt, PromptKind, RepoFile, Role};
pub use sampling::{Sampler, SamplingParams};
pub use sequence::{Prefill, Sequence, SequenceError, DEFAULT_PREFILL_CHUNK};
pub use source::quantize::{QuantizeReport, QuantizeTo};
pub use source::{ExpertWeights, MatrixWeight, QuantWeight, WeightSource};
pub use speculative::{Speculation, SpeculativeMode};
pub use threads::Threads;
pub use tokenizer::{SpecialToken, SpecialTokens, StreamDecoder, Tokenizer, TokenizerError};
pub use weights::{SafetensorsWeights, WeightsError};
