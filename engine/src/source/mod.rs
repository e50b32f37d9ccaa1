//! `WeightSource`: where a model's tensors come from, behind one interface the model code loads through.
//!
//! Names are always Hugging Face names (`model.layers.3.self_attn.q_proj.weight`); a source with another layout
//! (GGUF's `blk.3.attn_q.weight`, experts stacked in one tensor) maps them. A matrix comes back as a
//! [`MatrixWeight`]: dense or quantized. That enum and `model::linear::Linear` are the only places that know
//! how quantized weights are stored, so replacing candle's `QTensor`/`QMatMul` with our own kernels is a change
//! there (and in the MoE block), not in attention, MLP or the loaders' callers.
//!
//! Sources: [`crate::SafetensorsWeights`] (dense f32/f16/bf16, and Qwen's block-wise FP8, see [`fp8`]),
//! [`crate::gguf::GgufFile`], and [`quantize::Quantizing`], which wraps another source and quantizes its
//! dense matrices at load time (`--quantize q8_0|q4_k`).

pub mod fp8;
pub mod quantize;

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Tensor};

use crate::weights::WeightsError;

/// A weight matrix `[out, in]` as a source stores it.
#[derive(Debug, Clone)]
pub enum MatrixWeight {
    /// Dense, in the dtype the caller asked for.
    Dense(Tensor),
    /// Block-quantized (GGUF types: Q8_0, Q4_K, Q6_K, …); shared so a tied lm_head reuses the embedding's bytes.
    Quantized(Arc<QTensor>),
}

impl MatrixWeight {
    /// `(out, in)`.
    pub fn dims(&self) -> candle_core::Result<(usize, usize)> {
        match self {
            MatrixWeight::Dense(t) => t.dims2(),
            MatrixWeight::Quantized(q) => q.shape().dims2(),
        }
    }

    /// How the matrix is stored, for reports: `"f32"`, `"Q4K"`, …
    pub fn storage_name(&self) -> String {
        match self {
            MatrixWeight::Dense(t) => format!("{:?}", t.dtype()).to_lowercase(),
            MatrixWeight::Quantized(q) => format!("{:?}", q.dtype()),
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
}
