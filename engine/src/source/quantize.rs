//! Load-time quantization (`--quantize q8_0|q4_k`): a [`WeightSource`] wrapper that asks the wrapped source for
//! each matrix in f32 and quantizes it with candle's `QTensor::quantize` (our own quantizers replace this later
//! without changing callers).
//!
//! Row lengths must be whole blocks (Q8_0: 32, Q4_K/Q6_K: 256). A matrix whose rows do not fit the requested
//! type falls back per tensor — Q4_K → Q8_0, then unquantized — and the [`QuantizeReport`] names every such
//! tensor. As llama.cpp's Q4_K_M does, `q4_k` stores the output projection (`lm_head`, or the tied embedding)
//! as Q6_K: it is the matrix whose error reaches the logits directly. Norms, biases and the MoE router are not
//! matrices of this interface and stay dense (f32 where the reference computes in f32).

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::{MatrixWeight, WeightSource};
use crate::weights::WeightsError;

/// The block type `--quantize` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizeTo {
    /// 8-bit blocks of 32 with an f16 scale (8.5 bits per weight).
    Q8_0,
    /// 4-bit super-blocks of 256 with 6-bit sub-block scales and mins (4.5 bits per weight).
    Q4K,
}

impl QuantizeTo {
    /// The candle block type.
    pub fn ggml(self) -> GgmlDType {
        match self {
            QuantizeTo::Q8_0 => GgmlDType::Q8_0,
            QuantizeTo::Q4K => GgmlDType::Q4K,
        }
    }
}

impl FromStr for QuantizeTo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "q8_0" | "q8" => Ok(QuantizeTo::Q8_0),
            "q4_k" | "q4k" | "q4" => Ok(QuantizeTo::Q4K),
            other => Err(format!(
                "unknown quantization {other:?}: expected q8_0 or q4_k"
            )),
        }
    }
}

/// What load-time quantization did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantizeReport {
    /// Matrices stored in the requested type.
    pub quantized: usize,
    /// Matrices stored in another quantized type: `(tensor, type and why)`.
    pub fallbacks: Vec<(String, String)>,
    /// Matrices left dense: `(tensor, why)`.
    pub unquantized: Vec<(String, String)>,
}

/// Wraps a source and quantizes every dense matrix it returns.
pub struct Quantizing<'a> {
    inner: &'a dyn WeightSource,
    to: QuantizeTo,
    report: Mutex<QuantizeReport>,
}

impl<'a> Quantizing<'a> {
    /// Quantizes `inner`'s matrices to `to`.
    pub fn new(inner: &'a dyn WeightSource, to: QuantizeTo) -> Self {
        Quantizing {
            inner,
            to,
            report: Mutex::new(QuantizeReport::default()),
        }
    }

    /// What was quantized, fell back or stayed dense so far.
    pub fn report(&self) -> QuantizeReport {
        self.report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn record(&self, f: impl FnOnce(&mut QuantizeReport)) {
        f(&mut self
            .report
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()));
    }
}

/// The type a row of length `inp` can take when `wanted` is asked for: `wanted` itself, a wider fallback, or
/// `None` (keep dense).
pub fn fitting_type(wanted: GgmlDType, inp: usize) -> Option<GgmlDType> {
    [wanted, GgmlDType::Q8_0]
        .into_iter()
        .find(|t| inp.is_multiple_of(t.block_size()))
}

fn is_output_matrix(name: &str) -> bool {
    name == "lm_head.weight" || name == "model.embed_tokens.weight"
}

impl WeightSource for Quantizing<'_> {
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, WeightsError> {
        self.inner.tensor(name, shape, dtype, device)
    }

    fn matrix(
        &self,
        name: &str,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<MatrixWeight, WeightsError> {
        let dense = match self.inner.matrix(name, out, inp, DType::F32, device)? {
            MatrixWeight::Dense(t) => t,
            already @ MatrixWeight::Quantized(_) => return Ok(already),
        };
        let requested = match self.to {
            QuantizeTo::Q4K if is_output_matrix(name) => GgmlDType::Q6K,
            other => other.ggml(),
        };
        let Some(ty) = fitting_type(requested, inp) else {
            self.record(|r| {
                r.unquantized.push((
                    name.to_string(),
                    format!("row length {inp} is not a multiple of 32"),
                ))
            });
            let err = |source| WeightsError::Tensor {
                name: name.to_string(),
                file: "load-time quantization".into(),
                source: Box::new(source),
            };
            return dense.to_dtype(dtype).map(MatrixWeight::Dense).map_err(err);
        };
        let q = QTensor::quantize(&dense, ty).map_err(|e| WeightsError::Invalid {
            name: name.to_string(),
            file: "load-time quantization".into(),
            reason: format!("cannot quantize to {ty:?}: {e}"),
        })?;
        if ty == self.to.ggml() || (ty == GgmlDType::Q6K && requested == GgmlDType::Q6K) {
            self.record(|r| r.quantized += 1);
        } else {
            self.record(|r| {
                r.fallbacks.push((
                    name.to_string(),
                    format!(
                        "{ty:?} (row length {inp} is not a multiple of {requested:?}'s {})",
                        requested.block_size()
                    ),
                ))
            });
        }
        Ok(MatrixWeight::Quantized(Arc::new(q)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_type_falls_back_by_row_length() {
        assert_eq!(fitting_type(GgmlDType::Q4K, 512), Some(GgmlDType::Q4K));
        assert_eq!(fitting_type(GgmlDType::Q4K, 64), Some(GgmlDType::Q8_0));
        assert_eq!(fitting_type(GgmlDType::Q8_0, 48), None);
        assert_eq!("Q4_K".parse::<QuantizeTo>(), Ok(QuantizeTo::Q4K));
        assert!("q3".parse::<QuantizeTo>().is_err());
    }

    /// Q4_K and Q8_0 matmuls (which also quantize the activations, to Q8_K / Q8_0) against the dense product.
    #[test]
    fn quantized_matmul_is_close_to_dense() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (96, 512), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 512), &dev).unwrap();
        let dense = x.matmul(&w.t().unwrap()).unwrap();
        for (ty, bound) in [(GgmlDType::Q8_0, 0.01), (GgmlDType::Q4K, 0.1)] {
            let q =
                candle_core::quantized::QMatMul::from_qtensor(QTensor::quantize(&w, ty).unwrap())
                    .unwrap();
            let y = candle_core::Module::forward(&q, &x).unwrap();
            let rel = ((y - &dense).unwrap().sqr().unwrap().mean_all().unwrap())
                .to_vec0::<f32>()
                .unwrap()
                .sqrt()
                / dense
                    .sqr()
                    .unwrap()
                    .mean_all()
                    .unwrap()
                    .to_vec0::<f32>()
                    .unwrap()
                    .sqrt();
            assert!(rel < bound, "{ty:?}: relative RMS error {rel}");
        }
    }
}
