//! The engine's front door: `LoadedModel::load(path, &LoadOptions)` → a shared model + tokenizer, and
//! `generate` over a `Prompt`.
//!
//! `load` dispatches on what the path is. Today: a Hugging Face model directory (`config.json`, safetensors,
//! `tokenizer.json`). A later issue adds `.gguf` files as another arm of the same match.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use candle_core::{DType, Device};

use crate::cancel::CancelToken;
use crate::config::{ConfigError, ModelConfig};
use crate::generate::{generate, GenerateError, GenerateParams, Generation};
use crate::model::{Model, ModelError};
use crate::prompt::Prompt;
use crate::sequence::Sequence;
use crate::tokenizer::{Tokenizer, TokenizerError};
use crate::weights::{SafetensorsWeights, WeightsError};

/// The dtype weights are held in. Norms, softmax, RoPE and the MoE router always compute in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDType {
    /// 32-bit float (exact parity with the f32 reference).
    #[default]
    F32,
    /// 16-bit float: half the memory; fast GEMV on CPU.
    F16,
    /// bfloat16: half the memory; on CPU the matmuls run in f32 (candle has no bf16 CPU GEMM), so it is slow.
    Bf16,
}

impl WeightDType {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            WeightDType::F32 => DType::F32,
            WeightDType::F16 => DType::F16,
            WeightDType::Bf16 => DType::BF16,
        }
    }
}

impl FromStr for WeightDType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(WeightDType::F32),
            "f16" | "float16" | "half" => Ok(WeightDType::F16),
            "bf16" | "bfloat16" => Ok(WeightDType::Bf16),
            other => Err(format!(
                "unknown dtype {other:?}: expected f32, f16 or bf16"
            )),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Weight dtype.
    pub dtype: WeightDType,
    /// Where the weights live (CPU unless built with the `cuda` feature and asked for).
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: WeightDType::F32,
            device: Device::Cpu,
        }
    }
}

impl LoadOptions {
    /// Options for the first CUDA device.
    #[cfg(feature = "cuda")]
    pub fn cuda(dtype: WeightDType) -> Result<Self, LoadError> {
        let device = Device::new_cuda(0).map_err(|e| LoadError::Device(e.to_string()))?;
        Ok(LoadOptions { dtype, device })
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist.
    #[error("model path {0} does not exist")]
    NotFound(PathBuf),
    /// The path is not something the engine can load.
    #[error("cannot load {path}: {reason}")]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// What is supported instead.
        reason: String,
    },
    /// `config.json` is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The weights are missing, corrupt or do not match the config.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// `tokenizer.json` is missing or invalid.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The requested device is unavailable.
    #[error("device unavailable: {0}")]
    Device(String),
}

/// A model ready to generate: weights and tokenizer, both shareable across threads and requests.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    /// The transformer (immutable).
    pub model: Arc<Model>,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// Where it was loaded from.
    pub source: PathBuf,
}

impl LoadedModel {
    /// Loads the model at `path`: a Hugging Face model directory (or its `config.json`).
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, LoadError> {
        if !path.exists() {
            return Err(LoadError::NotFound(path.to_path_buf()));
        }
        if path.is_dir() {
            return Self::load_hf_dir(path, options);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("gguf") => Err(LoadError::Unsupported {
                path: path.to_path_buf(),
                reason: "GGUF models are not supported yet; pass a Hugging Face model directory".into(),
            }),
            _ if path.file_name().is_some_and(|n| n == "config.json") => {
                Self::load_hf_dir(path.parent().unwrap_or(Path::new(".")), options)
            }
            _ => Err(LoadError::Unsupported {
                path: path.to_path_buf(),
                reason: "expected a model directory with config.json, safetensors weights and tokenizer.json"
                    .into(),
            }),
        }
    }

    /// Loads `config.json`, the safetensors weights and `tokenizer.json` from `dir`.
    pub fn load_hf_dir(dir: &Path, options: &LoadOptions) -> Result<Self, LoadError> {
        let _span = tracing::info_span!("load", dir = %dir.display()).entered();
        let config = ModelConfig::from_hf_file(&dir.join("config.json"))?;
        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
        let weights = SafetensorsWeights::open_dir(dir)?;
        let model = Model::load(config, &weights, options.dtype.dtype(), &options.device)?;
        Ok(LoadedModel {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            source: dir.to_path_buf(),
        })
    }

    /// A fresh sequence for this model.
    pub fn new_sequence(&self) -> Sequence {
        Sequence::new(&self.model)
    }

    /// Generates a completion of `prompt` in `seq` (reusing its cached prefix). The prompt kind's stop tokens are
    /// added to `params.stop_tokens`.
    pub fn generate(
        &self,
        seq: &mut Sequence,
        prompt: &Prompt,
        params: &GenerateParams,
        cancel: &CancelToken,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let ids = prompt
            .to_ids(&self.tokenizer)
            .map_err(GenerateError::Prompt)?;
        let mut params = params.clone();
        for id in prompt.stop_tokens(self.tokenizer.specials()) {
            if !params.stop_tokens.contains(&id) {
                params.stop_tokens.push(id);
            }
        }
        generate(
            &self.model,
            &self.tokenizer,
            seq,
            &ids,
            &params,
            cancel,
            on_delta,
        )
    }
}
