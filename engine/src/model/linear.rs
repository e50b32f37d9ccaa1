//! `Linear`: the one type every projection goes through. Dense weights multiply with candle's GEMM; quantized
//! ones (GGUF files, `--quantize`) with candle's `QMatMul` — the seam where our own quantized kernels replace
//! candle's later, without touching attention or MLP code.

use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Result, Tensor};

use crate::source::{MatrixWeight, WeightSource};
use crate::weights::WeightsError;

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
    /// Block-quantized weights. Activations enter in f32 (candle's kernel quantizes them to the weight's
    /// companion 8-bit type) and leave in the caller's dtype.
    Quantized {
        /// `[out, in]` quantized.
        weight: QMatMul,
        /// `[out]` in the model dtype, when the layer has a bias.
        bias: Option<Tensor>,
    },
}

impl Linear {
    /// Loads `{prefix}.weight` of shape `[out, inp]` (and `{prefix}.bias` of shape `[out]` when `bias`).
    pub fn load(
        weights: &dyn WeightSource,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let weight = weights.matrix(&format!("{prefix}.weight"), out, inp, dtype, device)?;
        let bias = if bias {
            Some(weights.tensor(&format!("{prefix}.bias"), &[out], dtype, device)?)
        } else {
            None
        };
        Ok(Self::from_matrix(weight, bias))
    }

    /// A layer over an existing matrix (tied embeddings share its storage).
    pub fn from_matrix(weight: MatrixWeight, bias: Option<Tensor>) -> Self {
        match weight {
            MatrixWeight::Dense(weight) => Linear::Dense { weight, bias },
            MatrixWeight::Quantized(q) => Linear::Quantized {
                weight: QMatMul::QTensor(q),
                bias,
            },
        }
    }

    /// Wraps an existing dense `[out, in]` matrix.
    pub fn from_weight(weight: Tensor) -> Self {
        Linear::Dense { weight, bias: None }
    }

    /// Applies the layer to `x` of shape `[n, in]`, giving `[n, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (y, bias) = match self {
            Linear::Dense { weight, bias } => (matmul(x, &weight.t()?)?, bias),
            Linear::Quantized { weight, bias } => {
                let dtype = x.dtype();
                let y = weight.forward(&x.to_dtype(DType::F32)?.contiguous()?)?;
                (y.to_dtype(dtype)?, bias)
            }
        };
        match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
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
