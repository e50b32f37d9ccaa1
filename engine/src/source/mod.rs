//! `WeightSource`: where a model's tensors come from, behind one interface the model code loads through.
//!
//! Names are always Hugging Face names (`model.layers.3.self_attn.q_proj.weight`); a source with another layout
//! (GGUF's `blk.3.attn_q.weight`, experts stacked in one tensor) maps them. A matrix comes back as a
//! [`MatrixWeight`]: dense or quantized ([`QuantWeight`]: GGUF block bytes in place, multiplied by
//! [`crate::kernels`]). That enum, `model::linear::Linear`, `model::embedding::Embedding` and the MoE block are
//! the only places that know how quantized weights are stored and multiplied; attention, MLP and the loaders'
//! callers never do. MoE experts come as one stack ([`WeightSource::experts`]) so the grouped MoE kernel reads
//! a GGUF `ffn_*_exps` tensor in place.
//!
//! Sources: [`crate::SafetensorsWeights`] (dense f32/f16/bf16, and Qwen's block-wise FP8, see [`fp8`]),
//! [`crate::gguf::GgufFile`], and [`quantize::Quantizing`], which wraps another source and quantizes its
//! dense matrices at load time (`--quantize q8_0|q4_k`).

pub mod fp8;
pub mod quantize;
pub mod quantized;

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::threads::ModelKernels;
pub use quantized::{QuantWeight, SharedBytes};

/// Name of a single-file checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of the index of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Why weights could not be opened or a tensor could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file could not be opened or mapped.
    #[error("cannot read weights file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A safetensors file is truncated or its header is corrupt.
    #[error("corrupt or truncated safetensors file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        reason: String,
    },
    /// The shard index is malformed or names files that do not exist.
    #[error("invalid shard index {path}: {reason}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds no safetensors file.
    #[error("no weights in {dir}: expected {SINGLE_FILE}, {INDEX_FILE} or *.safetensors")]
    NoWeights {
        /// The model directory.
        dir: PathBuf,
    },
    /// A tensor the architecture needs is absent.
    #[error("tensor `{name}` (expected shape {expected:?}) is missing from {files}")]
    Missing {
        /// The tensor name.
        name: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The file(s) searched.
        files: String,
    },
    /// A tensor has a different shape than the config implies.
    #[error("tensor `{name}` in {file} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The tensor name.
        name: String,
        /// The file holding it.
        file: PathBuf,
        /// The shape implied by the config.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype the engine cannot convert.
    #[error(
        "tensor `{name}` in {file} has unsupported dtype {dtype}; expected F32, F16, BF16 or F8_E4M3 (with \
         `weight_scale_inv`)"
    )]
    DType {
        /// The tensor name.
        name: String,
        /// The file holding it.
        file: PathBuf,
        /// The stored dtype.
        dtype: String,
    },
    /// A tensor's data is unusable for a reason other than its shape (FP8 scales, quantized block layout,
    /// a quantization that failed).
    #[error("tensor `{name}` in {file}: {reason}")]
    Invalid {
        /// The tensor name.
        name: String,
        /// The file holding it.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// candle failed to build or convert the tensor.
    #[error("cannot load tensor `{name}` from {file}: {source}")]
    Tensor {
        /// The tensor name.
        name: String,
        /// The file holding it.
        file: PathBuf,
        /// The underlying error.
        source: Box<candle_core::Error>,
    },
}

/// A weight matrix `[out, in]` as a source stores it.
#[derive(Debug, Clone)]
pub enum MatrixWeight {
    /// Dense, in the dtype the caller asked for.
    Dense(Tensor),
    /// Block-quantized (Q8_0, Q4_K, Q6_K) bytes, shared so a tied lm_head reuses the embedding's.
    Quantized(QuantWeight),
}

impl MatrixWeight {
    /// `(out, in)`.
    pub fn dims(&self) -> candle_core::Result<(usize, usize)> {
        match self {
            MatrixWeight::Dense(t) => t.dims2(),
            MatrixWeight::Quantized(q) => Ok(q.dims()),
        }
    }

    /// How the matrix is stored, for reports: `"f32"`, `"Q4K"`, …
    pub fn storage_name(&self) -> String {
        match self {
            MatrixWeight::Dense(t) => format!("{:?}", t.dtype()).to_lowercase(),
            MatrixWeight::Quantized(q) => q.quant_type().to_string(),
        }
    }
}

/// The `[n, out, in]` matrices of one projection (`gate_proj`, `up_proj` or `down_proj`) of all experts of an
/// MoE block.
#[derive(Debug, Clone)]
pub enum ExpertWeights {
    /// One quantized stack (GGUF `ffn_*_exps` in place, or load-time quantized experts concatenated).
    Stacked(QuantWeight),
    /// One matrix per expert (dense checkpoints).
    PerExpert(Vec<MatrixWeight>),
}

impl ExpertWeights {
    /// Stacks per-expert matrices when all are quantized in the same format (one buffer), else keeps them.
    pub fn from_matrices(name: &str, matrices: Vec<MatrixWeight>) -> Result<Self, WeightsError> {
        let quantized: Vec<&QuantWeight> = matrices
            .iter()
            .filter_map(|m| match m {
                MatrixWeight::Quantized(q) => Some(q),
                MatrixWeight::Dense(_) => None,
            })
            .collect();
        let Some(first) = quantized.first() else {
            return Ok(ExpertWeights::PerExpert(matrices));
        };
        if quantized.len() != matrices.len()
            || quantized
                .iter()
                .any(|q| q.quant_type() != first.quant_type() || q.dims() != first.dims())
        {
            return Ok(ExpertWeights::PerExpert(matrices));
        }
        let mut bytes = Vec::with_capacity(first.bytes().len() * quantized.len());
        for q in &quantized {
            bytes.extend_from_slice(q.bytes());
        }
        let (rows, cols) = first.dims();
        let len = bytes.len();
        QuantWeight::new(
            first.quant_type(),
            quantized.len(),
            rows,
            cols,
            Arc::new(bytes),
            0,
            len,
        )
        .map(ExpertWeights::Stacked)
        .map_err(|e| WeightsError::Invalid {
            name: name.to_string(),
            file: "expert stack".into(),
            reason: e.to_string(),
        })
    }

    /// Expert `e`'s matrix (a view of a stack, or the expert's own).
    pub fn expert(&self, name: &str, e: usize) -> Result<MatrixWeight, WeightsError> {
        let missing = || WeightsError::Invalid {
            name: name.to_string(),
            file: "expert stack".into(),
            reason: format!("no expert {e}"),
        };
        match self {
            ExpertWeights::Stacked(q) => q
                .expert(e)
                .map(MatrixWeight::Quantized)
                .map_err(|_| missing()),
            ExpertWeights::PerExpert(v) => v.get(e).cloned().ok_or_else(missing),
        }
    }
}

/// A model's tensors by Hugging Face name, with the shape the config implies checked on every load.
pub trait WeightSource {
    /// A dense tensor of exactly `shape` in `dtype` (norm weights, biases, the MoE router). Quantized storage is
    /// dequantized.
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, WeightsError>;

    /// The matrix `name` of shape `[out, inp]`: dense in `dtype`, or quantized as stored (or as requested by a
    /// quantizing wrapper). Also used for the embedding table (`[vocab, hidden]`).
    fn matrix(
        &self,
        name: &str,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<MatrixWeight, WeightsError>;

    /// The matrices `{prefix}.experts.{0..n}.{proj}.weight` (each `[out, inp]`) of an MoE block. By default
    /// each is loaded through [`WeightSource::matrix`] and quantized ones are concatenated into one stack;
    /// a GGUF file returns its stacked tensor in place.
    #[allow(clippy::too_many_arguments)]
    fn experts(
        &self,
        prefix: &str,
        proj: &str,
        n: usize,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<ExpertWeights, WeightsError> {
        experts_one_by_one(self, prefix, proj, n, out, inp, dtype, device)
    }

    /// The kernels (thread pools) quantized layers loaded from this source run on. Sources of files have none;
    /// `Model::load` wraps its source in one that hands out the model's own.
    fn kernels(&self) -> Option<Arc<ModelKernels>> {
        None
    }
}

/// The default loading of an MoE projection's experts: each `{prefix}.experts.{e}.{proj}.weight` through
/// [`WeightSource::matrix`], quantized ones concatenated into one stack. Sources that override
/// [`WeightSource::experts`] fall back to it for what they do not hold stacked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn experts_one_by_one<S: WeightSource + ?Sized>(
    source: &S,
    prefix: &str,
    proj: &str,
    n: usize,
    out: usize,
    inp: usize,
    dtype: DType,
    device: &Device,
) -> Result<ExpertWeights, WeightsError> {
    let matrices = (0..n)
        .map(|e| {
            source.matrix(
                &format!("{prefix}.experts.{e}.{proj}.weight"),
                out,
                inp,
                dtype,
                device,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    ExpertWeights::from_matrices(&format!("{prefix}.experts.*.{proj}.weight"), matrices)
}
