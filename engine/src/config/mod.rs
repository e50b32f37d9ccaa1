//! `ModelConfig`: the architecture hyper-parameters of a Qwen2 / Qwen3 / Qwen3-MoE model, normalised from a
//! Hugging Face `config.json` (transformers 4.x and 5.x spellings).
//!
//! Parsing is separate from where the JSON came from: `ModelConfig::from_hf_json` takes a string, so a later
//! GGUF loader can build the same `ModelConfig` from its metadata. Every optional field has a default that
//! matches transformers 4.57 (released configs omit many keys, e.g. `attention_bias`); anything the engine does
//! not implement is an error naming the field rather than a silently different model.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

mod rope;

pub use rope::{RopeConfig, YarnScaling};

/// Why a `config.json` could not be turned into a [`ModelConfig`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read model config {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The JSON is malformed or a required field is missing / has the wrong type (serde names the field).
    #[error("invalid model config{}: {source}", in_file(.path))]
    Json {
        /// The config file, when it came from a file.
        path: Option<PathBuf>,
        /// The underlying error (names the field and line).
        source: serde_json::Error,
    },
    /// A field holds a value this engine does not implement.
    #[error("unsupported model config{}: field `{field}` = {value}: {reason}", in_file(.path))]
    Unsupported {
        /// The config file, when it came from a file.
        path: Option<PathBuf>,
        /// The offending field, dotted for nested keys (e.g. `rope_scaling.rope_type`).
        field: String,
        /// The value found, as JSON.
        value: String,
        /// What is supported instead.
        reason: String,
    },
    /// A field holds a value that is inconsistent with the rest of the config.
    #[error("invalid model config{}: field `{field}`: {reason}", in_file(.path))]
    Invalid {
        /// The config file, when it came from a file.
        path: Option<PathBuf>,
        /// The offending field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" in {}", p.display()))
        .unwrap_or_default()
}

impl ConfigError {
    fn unsupported(field: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        ConfigError::Unsupported {
            path: None,
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: None,
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    fn with_path(mut self, file: &Path) -> Self {
        match &mut self {
            ConfigError::Io { .. } => {}
            ConfigError::Json { path, .. }
            | ConfigError::Unsupported { path, .. }
            | ConfigError::Invalid { path, .. } => *path = Some(file.to_path_buf()),
        }
        self
    }
}

/// The decoder family. All three share one transformer implementation; they differ in the flags below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `qwen2`: qkv bias, no q/k norm (Qwen2.5, Qwen2.5-Coder).
    Qwen2,
    /// `qwen3`: dense, q/k RMSNorm per head.
    Qwen3,
    /// `qwen3_moe`: q/k RMSNorm, sparse MoE blocks (Qwen3-Coder-30B-A3B / 480B-A35B).
    Qwen3Moe,
}

impl Architecture {
    /// The `model_type` string of this architecture in `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Qwen3Moe => "qwen3_moe",
        }
    }
}

/// Mixture-of-Experts parameters (`qwen3_moe` only).
#[derive(Debug, Clone, PartialEq)]
pub struct MoeConfig {
    /// Number of routed experts per sparse layer.
    pub num_experts: usize,
    /// Experts selected per token.
    pub num_experts_per_tok: usize,
    /// FFN width of each expert.
    pub moe_intermediate_size: usize,
    /// Renormalise the top-k routing weights to sum to one.
    pub norm_topk_prob: bool,
    /// Every `decoder_sparse_step`-th layer is sparse (1 = all).
    pub decoder_sparse_step: usize,
    /// Layers forced to a dense MLP.
    pub mlp_only_layers: Vec<usize>,
}

/// Normalised architecture description; everything the forward pass needs, nothing about files.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Decoder family.
    pub architecture: Architecture,
    /// Rows of the embedding / lm_head matrices (may exceed the tokenizer's size).
    pub vocab_size: usize,
    /// Residual stream width.
    pub hidden_size: usize,
    /// Dense MLP width (used by dense layers; `None` only for an all-sparse MoE model).
    pub intermediate_size: Option<usize>,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA groups).
    pub num_key_value_heads: usize,
    /// Per-head width (not necessarily `hidden_size / num_attention_heads`).
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding parameters.
    pub rope: RopeConfig,
    /// Longest supported sequence.
    pub max_position_embeddings: usize,
    /// lm_head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// q/k/v projections have a bias.
    pub qkv_bias: bool,
    /// o_proj has a bias.
    pub o_bias: bool,
    /// Per-head RMSNorm on q and k before RoPE.
    pub qk_norm: bool,
    /// MoE parameters (`Some` for `qwen3_moe`).
    pub moe: Option<MoeConfig>,
}

impl ModelConfig {
    /// Reads and normalises a Hugging Face `config.json` file.
    pub fn from_hf_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_hf_json(&text).map_err(|e| e.with_path(path))
    }

    /// Normalises the text of a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text)
            .map_err(|source| ConfigError::Json { path: None, source })?;
        raw.normalise()
    }

    /// Whether decoder layer `layer` uses the sparse MoE block (else a dense SwiGLU MLP).
    pub fn is_sparse_layer(&self, layer: usize) -> bool {
        match &self.moe {
            Some(moe) => {
                !moe.mlp_only_layers.contains(&layer)
                    && moe.num_experts > 0
                    && (layer + 1).is_multiple_of(moe.decoder_sparse_step)
            }
            None => false,
        }
    }

    /// Query heads per key/value head.
    pub fn gqa_group(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }
}

fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_max_position_embeddings() -> usize {
    32_768
}
fn default_hidden_act() -> String {
    "silu".to_string()
}
fn default_one() -> usize {
    1
}

/// `config.json` as written by transformers 4.x or 5.x; only the keys the engine reads.
#[derive(Debug, Deserialize)]
struct RawConfig {
    model_type: String,
    vocab_size: usize,
    hidden_size: usize,
    #[serde(default)]
    intermediate_size: Option<usize>,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default = "default_max_position_embeddings")]
    max_position_embeddings: usize,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_scaling: Option<Value>,
    /// transformers 5.x: `{"rope_type": …, "rope_theta": …, …}` replaces `rope_theta` + `rope_scaling`.
    #[serde(default)]
    rope_parameters: Option<Value>,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default)]
    layer_types: Option<Vec<String>>,
    #[serde(default)]
    partial_rotary_factor: Option<f64>,
    // MoE (qwen3_moe); `num_local_experts` is the 5.x spelling.
    #[serde(default)]
    num_experts: Option<usize>,
    #[serde(default)]
    num_local_experts: Option<usize>,
    #[serde(default)]
    num_experts_per_tok: Option<usize>,
    #[serde(default)]
    moe_intermediate_size: Option<usize>,
    #[serde(default)]
    norm_topk_prob: bool,
    #[serde(default = "default_one")]
    decoder_sparse_step: usize,
    #[serde(default)]
    mlp_only_layers: Option<Vec<usize>>,
    #[serde(default)]
    shared_expert_intermediate_size: Option<usize>,
}

impl RawConfig {
    fn normalise(self) -> Result<ModelConfig, ConfigError> {
        let architecture = match self.model_type.as_str() {
            "qwen2" => Architecture::Qwen2,
            "qwen3" => Architecture::Qwen3,
            "qwen3_moe" => Architecture::Qwen3Moe,
            other => {
                return Err(ConfigError::unsupported(
                    "model_type",
                    format!("{other:?}"),
                    "supported model types are \"qwen2\", \"qwen3\" and \"qwen3_moe\"",
                ))
            }
        };
        if self.hidden_act != "silu" {
            return Err(ConfigError::unsupported(
                "hidden_act",
                format!("{:?}", self.hidden_act),
                "only \"silu\" (SwiGLU) is implemented",
            ));
        }
        if self.use_sliding_window {
            return Err(ConfigError::unsupported(
                "use_sliding_window",
                "true",
                "sliding-window attention is not implemented",
            ));
        }
        if let Some(types) = &self.layer_types {
            if let Some(bad) = types.iter().find(|t| t.as_str() != "full_attention") {
                return Err(ConfigError::unsupported(
                    "layer_types",
                    format!("{bad:?}"),
                    "only \"full_attention\" layers are implemented",
                ));
            }
        }
        if let Some(f) = self.partial_rotary_factor {
            if f != 1.0 {
                return Err(ConfigError::unsupported(
                    "partial_rotary_factor",
                    f,
                    "only full rotary embeddings (1.0) are implemented",
                ));
            }
        }
        if self.shared_expert_intermediate_size.unwrap_or(0) > 0 {
            return Err(ConfigError::unsupported(
                "shared_expert_intermediate_size",
                self.shared_expert_intermediate_size.unwrap_or(0),
                "shared experts (qwen2_moe) are not implemented",
            ));
        }
        positive("vocab_size", self.vocab_size)?;
        positive("hidden_size", self.hidden_size)?;
        positive("num_hidden_layers", self.num_hidden_layers)?;
        positive("num_attention_heads", self.num_attention_heads)?;
        let num_key_value_heads = self.num_key_value_heads.unwrap_or(self.num_attention_heads);
        positive("num_key_value_heads", num_key_value_heads)?;
        if !self.num_attention_heads.is_multiple_of(num_key_value_heads) {
            return Err(ConfigError::invalid(
                "num_key_value_heads",
                format!(
                    "{num_key_value_heads} does not divide num_attention_heads = {}",
                    self.num_attention_heads
                ),
            ));
        }
        // transformers: Qwen3Config defaults head_dim to 128; Qwen2 and Qwen3-MoE derive it.
        let head_dim = match (self.head_dim, architecture) {
            (Some(d), _) => d,
            (None, Architecture::Qwen3) => 128,
            (None, _) => self.hidden_size / self.num_attention_heads,
        };
        if head_dim == 0 || !head_dim.is_multiple_of(2) {
            return Err(ConfigError::invalid(
                "head_dim",
                format!("{head_dim} must be a positive even number (rotary halves)"),
            ));
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0 {
            return Err(ConfigError::invalid("rms_norm_eps", "must be positive"));
        }
        let rope = rope::parse_rope(
            self.rope_theta,
            self.rope_scaling.as_ref(),
            self.rope_parameters.as_ref(),
            self.max_position_embeddings,
        )?;
        let (qkv_bias, o_bias, qk_norm) = match architecture {
            // Qwen2 hard-codes bias on q/k/v and none on o_proj, whatever `attention_bias` says.
            Architecture::Qwen2 => (true, false, false),
            Architecture::Qwen3 | Architecture::Qwen3Moe => {
                let bias = self.attention_bias.unwrap_or(false);
                (bias, bias, true)
            }
        };
        let moe = match architecture {
            Architecture::Qwen3Moe => Some(self.moe_config()?),
            _ => None,
        };
        let config = ModelConfig {
            architecture,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: self.rms_norm_eps,
            rope,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            qkv_bias,
            o_bias,
            qk_norm,
            moe,
        };
        let needs_dense = (0..config.num_hidden_layers).any(|l| !config.is_sparse_layer(l));
        match config.intermediate_size {
            Some(0) => {
                return Err(ConfigError::invalid(
                    "intermediate_size",
                    "must be positive",
                ))
            }
            None if needs_dense => {
                return Err(ConfigError::invalid(
                    "intermediate_size",
                    "missing, but the model has dense MLP layers",
                ))
            }
            _ => {}
        }
        Ok(config)
    }

    fn moe_config(&self) -> Result<MoeConfig, ConfigError> {
        let num_experts = match (self.num_experts, self.num_local_experts) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(ConfigError::invalid(
                    "num_experts",
                    "missing (neither `num_experts` nor `num_local_experts` is set)",
                ))
            }
        };
        let top_k = self
            .num_experts_per_tok
            .ok_or_else(|| ConfigError::invalid("num_experts_per_tok", "missing"))?;
        let moe_intermediate_size = self
            .moe_intermediate_size
            .ok_or_else(|| ConfigError::invalid("moe_intermediate_size", "missing"))?;
        positive("moe_intermediate_size", moe_intermediate_size)?;
        if num_experts > 0 && (top_k == 0 || top_k > num_experts) {
            return Err(ConfigError::invalid(
                "num_experts_per_tok",
                format!("{top_k} must be between 1 and num_experts = {num_experts}"),
            ));
        }
        positive("decoder_sparse_step", self.decoder_sparse_step)?;
        let mlp_only_layers = self.mlp_only_layers.clone().unwrap_or_default();
        if let Some(bad) = mlp_only_layers
            .iter()
            .find(|&&l| l >= self.num_hidden_layers)
        {
            return Err(ConfigError::invalid(
                "mlp_only_layers",
                format!(
                    "layer {bad} does not exist (num_hidden_layers = {})",
                    self.num_hidden_layers
                ),
            ));
        }
        Ok(MoeConfig {
            num_experts,
            num_experts_per_tok: top_k,
            moe_intermediate_size,
            norm_topk_prob: self.norm_topk_prob,
            decoder_sparse_step: self.decoder_sparse_step,
            mlp_only_layers,
        })
    }
}

fn positive(field: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(field, "must be positive"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
