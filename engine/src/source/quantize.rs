//! Load-time quantization (`--quantize q8_0|q4_k`): a [`WeightSource`] wrapper that asks the wrapped source for
//! each matrix in f32 and quantizes it with [`Kernels::quantize_weights`] (ggml's reference quantizers, bit for
//! bit: the bytes `llama-quantize` would write without an importance matrix), rows split over a load-time pool.
//!
//! Row lengths must be whole blocks (Q8_0: 32, Q4_K/Q6_K: 256). A matrix whose rows do not fit the requested
//! type falls back per tensor — Q4_K → Q8_0, then unquantized — and the [`QuantizeReport`] names every such
//! tensor. As llama.cpp's Q4_K_M does, `q4_k` stores the output projection (`lm_head`, or the tied embedding)
//! as Q6_K: it is the matrix whose error reaches the logits directly. Norms, biases and the MoE router are not
//! matrices of this interface and stay dense (f32 where the reference computes in f32).

use std::str::FromStr;
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use super::WeightsError;
use super::{ExpertWeights, MatrixWeight, QuantWeight, WeightSource};
use crate::kernels::{quant, Kernels, QuantType};

/// The block type `--quantize` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantizeTo {
    /// 8-bit blocks of 32 with an f16 scale (8.5 bits per weight).
    Q8_0,
    /// 4-bit super-blocks of 256 with 6-bit sub-block scales and mins (4.5 bits per weight).
    Q4K,
}

impl QuantizeTo {
    /// The kernels' block type.
    pub fn quant_type(self) -> QuantType {
        match self {
            QuantizeTo::Q8_0 => QuantType::Q8_0,
            QuantizeTo::Q4K => QuantType::Q4K,
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
    /// A pool for the quantizers, alive while loading (`None` if no thread could be started: then the
    /// calling thread quantizes, with the same result).
    kernels: Option<Kernels>,
}

impl<'a> Quantizing<'a> {
    /// Quantizes `inner`'s matrices to `to`.
    pub fn new(inner: &'a dyn WeightSource, to: QuantizeTo) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Quantizing {
            inner,
            to,
            report: Mutex::new(QuantizeReport::default()),
            kernels: Kernels::new(threads).ok(),
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
pub fn fitting_type(wanted: QuantType, inp: usize) -> Option<QuantType> {
    [wanted, QuantType::Q8_0]
        .into_iter()
        .find(|t| inp.is_multiple_of(t.block_values()))
}

/// llama.cpp's spelling of a block type (`Q4_K`), for reports.
fn type_name(ty: QuantType) -> String {
    ty.name().to_uppercase()
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
        let m = self.inner.matrix(name, out, inp, DType::F32, device)?;
        self.quantize_matrix(name, m, out, inp, dtype)
    }

    /// A stack the wrapped source already holds quantized (GGUF `ffn_*_exps`) is used as it is, in place; dense
    /// experts are quantized one by one and stacked.
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
        match self
            .inner
            .experts(prefix, proj, n, out, inp, DType::F32, device)?
        {
            stacked @ ExpertWeights::Stacked(_) => Ok(stacked),
            ExpertWeights::PerExpert(dense) => {
                let matrices = dense
                    .into_iter()
                    .enumerate()
                    .map(|(e, m)| {
                        let name = format!("{prefix}.experts.{e}.{proj}.weight");
                        self.quantize_matrix(&name, m, out, inp, dtype)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                ExpertWeights::from_matrices(&format!("{prefix}.experts.*.{proj}.weight"), matrices)
            }
        }
    }
}

impl Quantizing<'_> {
    /// Quantizes a dense f32 `[out, inp]` matrix (a quantized one is returned as it is).
    fn quantize_matrix(
        &self,
        name: &str,
        m: MatrixWeight,
        out: usize,
        inp: usize,
        dtype: DType,
    ) -> Result<MatrixWeight, WeightsError> {
        let dense = match m {
            MatrixWeight::Dense(t) => t,
            already @ MatrixWeight::Quantized(_) => return Ok(already),
        };
        let requested = match self.to {
            QuantizeTo::Q4K if is_output_matrix(name) => QuantType::Q6K,
            other => other.quant_type(),
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
        let invalid = |reason: String| WeightsError::Invalid {
            name: name.to_string(),
            file: "load-time quantization".into(),
            reason: format!("cannot quantize to {}: {reason}", type_name(ty)),
        };
        let values: Vec<f32> = dense
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(|e| invalid(e.to_string()))?;
        let bytes = match &self.kernels {
            Some(k) => k.quantize_weights(ty, out, inp, &values),
            None => quant::quantize_to_vec(ty, &values),
        }
        .map_err(|e| invalid(e.to_string()))?;
        let q = QuantWeight::from_vec(ty, out, inp, bytes).map_err(|e| invalid(e.to_string()))?;
        if ty == requested {
            self.record(|r| r.quantized += 1);
        } else {
            self.record(|r| {
                r.fallbacks.push((
                    name.to_string(),
                    format!(
                        "{} (row length {inp} is not a multiple of {}'s {})",
                        type_name(ty),
                        type_name(requested),
                        requested.block_values()
                    ),
                ))
            });
        }
        Ok(MatrixWeight::Quantized(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_type_falls_back_by_row_length() {
        assert_eq!(fitting_type(QuantType::Q4K, 512), Some(QuantType::Q4K));
        assert_eq!(fitting_type(QuantType::Q4K, 64), Some(QuantType::Q8_0));
        assert_eq!(fitting_type(QuantType::Q8_0, 48), None);
        assert_eq!("Q4_K".parse::<QuantizeTo>(), Ok(QuantizeTo::Q4K));
        assert!("q3".parse::<QuantizeTo>().is_err());
        assert_eq!(type_name(QuantType::Q4K), "Q4_K");
    }
}
