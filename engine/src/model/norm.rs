//! RMSNorm computed in f32 whatever the model dtype (as transformers does: upcast, normalise, cast back).

use candle_core::{DType, Device, Result, Tensor};

use crate::source::WeightSource;
use crate::weights::WeightsError;

/// Root-mean-square normalisation over the last dimension with a learned scale.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// `[dim]`, kept in f32.
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// Loads `{prefix}.weight` of shape `[dim]`.
    pub fn load(
        weights: &dyn WeightSource,
        prefix: &str,
        dim: usize,
        eps: f64,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let weight = weights.tensor(&format!("{prefix}.weight"), &[dim], DType::F32, device)?;
        Ok(RmsNorm {
            weight,
            eps: eps as f32,
        })
    }

    /// Normalises `x` (contiguous, any float dtype) and returns an f32 tensor.
    pub fn forward_f32(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?.contiguous()?;
        candle_nn::ops::rms_norm(&x, &self.weight, self.eps)
    }

    /// Normalises `x` and returns a tensor of `x`'s dtype.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_f32(x)?.to_dtype(x.dtype())
    }
}
