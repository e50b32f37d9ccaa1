//! `Linear`: the one type every projection goes through, so a later issue can add quantized (GGUF `QMatMul`)
//! weights as a new variant without touching attention or MLP code.

use candle_core::{DType, Device, Result, Tensor};

use crate::weights::{SafetensorsWeights, WeightsError};

/// A linear layer `y = x Wᵀ (+ b)` with `W` of shape `[out, in]`, as stored by PyTorch.
#[derive(Debug, Clone)]
pub enum Linear {
    /// Plain dense weights (f32 / f16 / bf16).
    Dense {
        /// `[out, in]`, contiguous.
        weight: Tensor,
        /// `[out]`, when the layer has a bias.
        bias: Option<Tensor>,
    },
}

impl Linear {
    /// Loads `{prefix}.weight` of shape `[out, inp]` (and `{prefix}.bias` of shape `[out]` when `bias`).
    pub fn load(
        weights: &SafetensorsWeights,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let weight = weights.load(&format!("{prefix}.weight"), &[out, inp], dtype, device)?;
        let bias = if bias {
            Some(weights.load(&format!("{prefix}.bias"), &[out], dtype, device)?)
        } else {
            None
        };
        Ok(Linear::Dense { weight, bias })
    }

    /// Wraps an existing `[out, in]` matrix (used for tied embeddings; shares storage).
    pub fn from_weight(weight: Tensor) -> Self {
        Linear::Dense { weight, bias: None }
    }

    /// Applies the layer to `x` of shape `[n, in]`, giving `[n, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Dense { weight, bias } => {
                let y = matmul(x, &weight.t()?)?;
                match bias {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
        }
    }
}

/// `a @ b` for the dtypes the engine uses. candle's CPU GEMM has no bf16 kernel, so bf16 operands are
/// multiplied in f32 there (slow: prefer f16 or f32 weights on CPU) and the result is cast back.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.dtype() == DType::BF16 && a.device().is_cpu() {
        a.to_dtype(DType::F32)?
            .matmul(&b.to_dtype(DType::F32)?)?
            .to_dtype(DType::BF16)
    } else {
        a.matmul(b)
    }
}
