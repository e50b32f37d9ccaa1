//! The engine's front door: `LoadedModel::load(path, &LoadOptions)` → a shared model + tokenizer, and
//! `generate` over a `Prompt`.
//!
//! `load` dispatches on what the path is: a Hugging Face model directory (`config.json`, safetensors — dense or
//! Qwen's block-wise FP8 — and `tokenizer.json`), or a GGUF file (`*.gguf`, or any file starting with the GGUF
//! magic, such as an Ollama blob), whose tokenizer comes from its own metadata unless a `tokenizer.json` sits
//! next to it. `LoadOptions::quantize` quantizes dense matrices at load time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use candle_core::{DType, Device};

use crate::cancel::CancelToken;
use crate::config::{ConfigError, ModelConfig};
use crate::generate::{generate, GenerateError, GenerateParams, Generation};
use crate::gguf::{self, GgufError, GgufFile};
use crate::kernels::Isa;
use crate::model::{Model, ModelError};
use crate::prompt::Prompt;
use crate::sequence::Sequence;
use crate::source::fp8;
use crate::source::quantize::{QuantizeReport, QuantizeTo, Quantizing};
use crate::source::WeightSource;
use crate::threads::Threads;
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
    /// Quantize dense matrices at load time (safetensors, FP8, and F16/F32 matrices of a GGUF file). Already
    /// quantized GGUF matrices are used as stored.
    pub quantize: Option<QuantizeTo>,
    /// Threads of the quantized kernels for prefill and for decode (0: automatic).
    pub threads: Threads,
    /// Force an instruction set for the quantized kernels (tests, benchmarks); `None`: the best this CPU has.
    pub isa: Option<Isa>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: WeightDType::F32,
            device: Device::Cpu,
            quantize: None,
            threads: Threads::default(),
            isa: None,
        }
    }
}

impl LoadOptions {
    /// Options for the first CUDA device.
    #[cfg(feature = "cuda")]
    pub fn cuda(dtype: WeightDType) -> Result<Self, LoadError> {
        let device = Device::new_cuda(0).map_err(|e| LoadError::Device(e.to_string()))?;
        Ok(LoadOptions {
            dtype,
            device,
            ..LoadOptions::default()
        })
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
    /// A GGUF file is corrupt, truncated or describes an unsupported model.
    #[error(transparent)]
    Gguf(#[from] GgufError),
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
    /// How the weights were stored and what load-time quantization did.
    pub report: LoadReport,
}

/// What loading found and did, for the CLI to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The weight format: `"safetensors"`, `"safetensors (FP8 e4m3, 128x128 blocks)"` or `"GGUF"`.
    pub format: String,
    /// GGUF: how many tensors of each stored type (`"Q4_K"` → 113).
    pub tensor_types: BTreeMap<String, usize>,
    /// Where the tokenizer came from.
    pub tokenizer: String,
    /// `LoadOptions::quantize`: what was quantized, fell back to another type, or stayed dense.
    pub quantize: Option<QuantizeReport>,
}

impl LoadedModel {
    /// Loads the model at `path`: a Hugging Face model directory (or its `config.json`), or a GGUF file.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, LoadError> {
        if !path.exists() {
            return Err(LoadError::NotFound(path.to_path_buf()));
        }
        if path.is_dir() {
            return Self::load_hf_dir(path, options);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("gguf") => Self::load_gguf(path, options),
            _ if path.file_name().is_some_and(|n| n == "config.json") => {
                Self::load_hf_dir(path.parent().unwrap_or(Path::new(".")), options)
            }
            _ if gguf::is_gguf(path) => Self::load_gguf(path, options),
            _ => Err(LoadError::Unsupported {
                path: path.to_path_buf(),
                reason: "expected a GGUF file or a model directory with config.json, safetensors weights and \
                         tokenizer.json"
                    .into(),
            }),
        }
    }

    /// Loads `config.json`, the safetensors weights (dense or FP8) and `tokenizer.json` from `dir`.
    pub fn load_hf_dir(dir: &Path, options: &LoadOptions) -> Result<Self, LoadError> {
        let _span = tracing::info_span!("load", dir = %dir.display()).entered();
        let config_path = dir.join("config.json");
        let config = ModelConfig::from_hf_file(&config_path)?;
        let fp8_block = fp8::block_size_from_config_file(&config_path)?;
        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
        let mut weights = SafetensorsWeights::open_dir(dir)?;
        let format = match fp8_block {
            Some(block) => {
                weights.set_fp8_block_size(block);
                format!("safetensors (FP8 e4m3, {}x{} blocks)", block.0, block.1)
            }
            None if weights.has_fp8() => "safetensors (FP8 e4m3, 128x128 blocks)".to_string(),
            None => "safetensors".to_string(),
        };
        let (model, quantize) = build(config, &weights, options)?;
        Ok(LoadedModel {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            source: dir.to_path_buf(),
            report: LoadReport {
                format,
                tensor_types: BTreeMap::new(),
                tokenizer: "tokenizer.json".to_string(),
                quantize,
            },
        })
    }

    /// Loads a GGUF file: config and (unless a `tokenizer.json` sits next to it) tokenizer from its metadata,
    /// quantized matrices as stored.
    pub fn load_gguf(path: &Path, options: &LoadOptions) -> Result<Self, LoadError> {
        let _span = tracing::info_span!("load_gguf", path = %path.display()).entered();
        let file = GgufFile::open(path)?;
        let config = gguf::config::model_config(&file)?;
        let (tokenizer, tokenizer_source) = gguf_tokenizer(&file)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(LoadError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "the tokenizer has {} tokens but the embedding only {} rows",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let (model, quantize) = build(config, &file, options)?;
        Ok(LoadedModel {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            source: path.to_path_buf(),
            report: LoadReport {
                format: "GGUF".to_string(),
                tensor_types: file.tensor_type_counts(),
                tokenizer: tokenizer_source,
                quantize,
            },
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

/// Builds the model from `source`, through a quantizing wrapper when `options.quantize` asks for one.
fn build(
    config: ModelConfig,
    source: &dyn WeightSource,
    options: &LoadOptions,
) -> Result<(Model, Option<QuantizeReport>), LoadError> {
    let (dtype, device) = (options.dtype.dtype(), &options.device);
    let load = |w: &dyn WeightSource| {
        Model::load_with(config, w, dtype, device, options.threads, options.isa)
    };
    match options.quantize {
        None => Ok((load(source)?, None)),
        Some(to) => {
            let quantizing = Quantizing::new(source, to);
            let model = load(&quantizing)?;
            let report = quantizing.report();
            for (name, why) in &report.fallbacks {
                tracing::info!(tensor = %name, "quantized as {why}");
            }
            for (name, why) in &report.unquantized {
                tracing::info!(tensor = %name, "left unquantized: {why}");
            }
            Ok((model, Some(report)))
        }
    }
}

/// The tokenizer of a GGUF model: a `tokenizer.json` next to the file when there is one and it agrees with
/// the file's vocabulary, else the file's own metadata.
fn gguf_tokenizer(file: &GgufFile) -> Result<(Tokenizer, String), LoadError> {
    let sibling = file.path().with_file_name("tokenizer.json");
    if sibling.is_file() {
        let tokenizer = Tokenizer::from_file(&sibling)?;
        match gguf::tokenizer::agrees_with(file, &tokenizer) {
            Ok(()) => return Ok((tokenizer, sibling.display().to_string())),
            Err(why) => tracing::warn!(
                tokenizer = %sibling.display(),
                "not using the tokenizer.json next to the GGUF file: {why}; using the file's own vocabulary"
            ),
        }
    }
    let tokenizer = gguf::tokenizer::tokenizer(file)?;
    Ok((tokenizer, "GGUF metadata".to_string()))
}
