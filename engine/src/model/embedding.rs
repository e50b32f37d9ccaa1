//! The token embedding table, dense or quantized. A quantized table (GGUF's `token_embd`, Q4_K in the default
//! model) stays quantized: a lookup dequantizes only the rows it reads (bit-exact with ggml). Measured on the
//! default model (`default_model_embedding_lookup_cost`): 131 MB as Q4_K vs 933 MB as f32, and a 512-row lookup
//! costs about the same either way. Kept quantized.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::linear::Linear;
use crate::source::MatrixWeight;
use crate::threads::ModelKernels;

/// `[vocab, hidden]` embedding rows.
#[derive(Debug, Clone)]
pub struct Embedding {
    table: MatrixWeight,
    dtype: DType,
}

impl Embedding {
    /// Wraps a loaded table; lookups return `dtype`.
    pub fn new(table: MatrixWeight, dtype: DType) -> Self {
        Embedding { table, dtype }
    }

    /// Rows for `ids` (`[n]` u32) as `[n, hidden]` in the model dtype.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match &self.table {
            MatrixWeight::Dense(t) => t.index_select(ids, 0),
            MatrixWeight::Quantized(q) => {
                let idv: Vec<u32> = ids.to_vec1()?;
                let (_, cols) = q.dims();
                let mut out = vec![0f32; idv.len() * cols];
                q.dequantize_rows(&idv, &mut out)
                    .map_err(candle_core::Error::wrap)?;
                Tensor::from_vec(out, (idv.len(), cols), &Device::Cpu)?
                    .to_dtype(self.dtype)?
                    .to_device(ids.device())
            }
        }
    }

    /// The same matrix as an output projection (tied embeddings; shares storage).
    pub fn as_linear(&self, kernels: &Arc<ModelKernels>) -> Linear {
        Linear::from_matrix(self.table.clone(), None, kernels)
    }
}
