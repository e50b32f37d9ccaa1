//! `Linear`: the one type every projection goes through. Dense weights multiply with candle's GEMM; quantized
//! ones (GGUF files, `--quantize`) with our own kernels ([`crate::kernels`]) over the block bytes in place, on
//! the model's thread pools: one token (decode) is a matrix-vector product streaming each weight byte once,
//! more (prefill) a tiled matmul (AMX-BF16 tiles where the CPU has them).

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::Rows;
use crate::kernels::Activations;
use crate::source::{MatrixWeight, QuantWeight, WeightSource};
use crate::threads::ModelKernels;
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
    /// Block-quantized weights. Activations enter in f32 (the kernels quantize them to the weight's companion
    /// 8-bit type, or bf16 on the AMX path) and leave in the caller's dtype.
    Quantized {
        /// `[out, in]` quantized.
        weight: QuantWeight,
        /// `[out]` in the model dtype, when the layer has a bias.
        bias: Option<Tensor>,
        /// The model's kernel handles.
        kernels: Arc<ModelKernels>,
    },
}

impl Linear {
    /// Loads `{prefix}.weight` of shape `[out, inp]` (and `{prefix}.bias` of shape `[out]` when `bias`).
    /// A quantized matrix runs on the source's kernels ([`WeightSource::kernels`]); a source without any is
    /// an error (quantized layers are built by `Model::load`, which provides them).
    pub fn load(
        weights: &dyn WeightSource,
        prefix: &str,
        out: usize,
        inp: usize,
        bias: bool,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let name = format!("{prefix}.weight");
        let weight = weights.matrix(&name, out, inp, dtype, device)?;
        let bias = if bias {
            Some(weights.tensor(&format!("{prefix}.bias"), &[out], dtype, device)?)
        } else {
            None
        };
        match (weight, weights.kernels()) {
            (MatrixWeight::Dense(weight), _) => Ok(Linear::Dense { weight, bias }),
            (MatrixWeight::Quantized(weight), Some(kernels)) => Ok(Linear::Quantized {
                weight,
                bias,
                kernels,
            }),
            (MatrixWeight::Quantized(_), None) => Err(WeightsError::Invalid {
                name,
                file: "weight source".into(),
                reason:
                    "a quantized matrix needs the model's kernels (load it through Model::load)"
                        .into(),
            }),
        }
    }

    /// A layer over an existing matrix (tied embeddings share its storage).
    pub fn from_matrix(
        weight: MatrixWeight,
        bias: Option<Tensor>,
        kernels: &Arc<ModelKernels>,
    ) -> Self {
        match weight {
            MatrixWeight::Dense(weight) => Linear::Dense { weight, bias },
            MatrixWeight::Quantized(weight) => Linear::Quantized {
                weight,
                bias,
                kernels: Arc::clone(kernels),
            },
        }
    }

    /// Wraps an existing dense `[out, in]` matrix.
    pub fn from_weight(weight: Tensor) -> Self {
        Linear::Dense { weight, bias: None }
    }

    /// Applies the layer to `x` of shape `[n, in]`, giving `[n, out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_rows(x, Rows::Batched)
    }

    /// [`Linear::forward`] with a choice of row arithmetic: [`Rows::AsDecode`] gives every row exactly what a
    /// one-row call gives it.
    pub fn forward_rows(&self, x: &Tensor, rows: Rows) -> Result<Tensor> {
        let n = x.dim(0)?;
        let as_decode = rows == Rows::AsDecode && n > 1;
        let (y, bias) = match self {
            Linear::Dense { weight, bias } if as_decode => {
                // candle's GEMM chooses its kernel and tiling by the row count: one row at a time is the only
                // way to get the one-row arithmetic.
                let w = weight.t()?;
                let ys = (0..n)
                    .map(|i| matmul(&x.narrow(0, i, 1)?.copy()?, &w))
                    .collect::<Result<Vec<_>>>()?;
                (Tensor::cat(&ys, 0)?, bias)
            }
            Linear::Dense { weight, bias } => (matmul(x, &weight.t()?)?, bias),
            Linear::Quantized {
                weight,
                bias,
                kernels,
            } => (quantized_matmul(weight, kernels, x, as_decode)?, bias),
        };
        match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// `x Wᵀ` on our kernels: `x` `[n, in]` of any float dtype and device → `[n, out]` in the same.
///
/// `as_decode`: the rows are computed on the decode kernels with 8-bit activations quantized per row, exactly as
/// `n` one-token calls would compute them, but in one pass over the weights (the int8 tile kernels keep one
/// accumulator per token: a row's sum never depends on the other rows). Never the AMX/bf16 prefill path nor
/// the row-group kernels.
fn quantized_matmul(
    w: &QuantWeight,
    kernels: &ModelKernels,
    x: &Tensor,
    as_decode: bool,
) -> Result<Tensor> {
    let (n, cols) = x.dims2()?;
    let m = w.matrix().map_err(candle_core::Error::wrap)?;
    if cols != m.cols() {
        candle_core::bail!(
            "quantized matmul: input has {cols} features, the matrix {}",
            m.cols()
        )
    }
    let xs: Vec<f32> = x
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1()?;
    let mut out = vec![0f32; n * m.rows()];
    if as_decode {
        let decode = kernels.for_tokens(1);
        let mut acts = Activations::new(m.quant_type());
        decode
            .requantize_int8(&mut acts, &xs, n, cols)
            .and_then(|()| decode.matmul_prepared_per_token(&m, &acts, &mut out))
    } else {
        kernels.for_tokens(n).matmul(&m, &xs, n, &mut out)
    }
    .map_err(candle_core::Error::wrap)?;
    Tensor::from_vec(out, (n, m.rows()), &Device::Cpu)?
        .to_dtype(x.dtype())?
        .to_device(x.device())
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
