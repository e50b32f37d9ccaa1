//! [`QuantWeight`]: a block-quantized matrix (or a stack of expert matrices) as bytes in one of the kernels'
//! GGUF block formats, held in place: a range of a memory-mapped GGUF file, or the buffer `--quantize` produced.
//! Cloning shares the bytes (a tied lm_head reuses the embedding's; an expert view shares its stack's).

use std::sync::Arc;

use crate::kernels::quant::{self, QuantError, QuantType};
use crate::kernels::{QuantExperts, QuantMatrix};

/// Bytes that outlive the model: a memory map or an owned buffer.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// `experts × [rows, cols]` values of `ty` (a plain matrix is one expert).
#[derive(Clone)]
pub struct QuantWeight {
    ty: QuantType,
    experts: usize,
    rows: usize,
    cols: usize,
    owner: SharedBytes,
    start: usize,
    len: usize,
}

impl std::fmt::Debug for QuantWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantWeight")
            .field("ty", &self.ty)
            .field("experts", &self.experts)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish()
    }
}

impl QuantWeight {
    /// `owner[start..start + len]` as `experts × [rows, cols]` of `ty`; an error when the range is outside
    /// `owner` or its length is not exactly what the shape takes.
    pub fn new(
        ty: QuantType,
        experts: usize,
        rows: usize,
        cols: usize,
        owner: SharedBytes,
        start: usize,
        len: usize,
    ) -> Result<Self, QuantError> {
        let expert_bytes = ty.matrix_bytes(rows, cols)?;
        let total = expert_bytes
            .checked_mul(experts)
            .ok_or(QuantError::TooLarge { rows, cols })?;
        if start
            .checked_add(len)
            .is_none_or(|end| end > (*owner).as_ref().len())
        {
            return Err(QuantError::Invalid(format!(
                "byte range {start}+{len} lies outside a buffer of {} bytes",
                (*owner).as_ref().len()
            )));
        }
        if total != len {
            return Err(QuantError::Invalid(format!(
                "{experts} × [{rows}, {cols}] {ty} takes {total} bytes, the tensor holds {len}"
            )));
        }
        Ok(QuantWeight {
            ty,
            experts,
            rows,
            cols,
            owner,
            start,
            len,
        })
    }

    /// A `[rows, cols]` matrix over an owned buffer (load-time quantization).
    pub fn from_vec(
        ty: QuantType,
        rows: usize,
        cols: usize,
        bytes: Vec<u8>,
    ) -> Result<Self, QuantError> {
        let len = bytes.len();
        Self::new(ty, 1, rows, cols, Arc::new(bytes), 0, len)
    }

    /// The block format.
    pub fn quant_type(&self) -> QuantType {
        self.ty
    }

    /// Number of stacked matrices (1 for a plain matrix).
    pub fn experts(&self) -> usize {
        self.experts
    }

    /// `(rows, cols)` of one matrix.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.start..self.start + self.len]
    }

    /// The kernels' view of a plain matrix (the first one of a stack).
    pub fn matrix(&self) -> Result<QuantMatrix<'_>, QuantError> {
        let bytes = self.bytes();
        QuantMatrix::new(
            self.ty,
            self.rows,
            self.cols,
            &bytes[..self.len / self.experts.max(1)],
        )
    }

    /// The kernels' view of the whole stack.
    pub fn stack(&self) -> Result<QuantExperts<'_>, QuantError> {
        QuantExperts::new(self.ty, self.experts, self.rows, self.cols, self.bytes())
    }

    /// Matrix `e` of the stack as a weight of its own (shares the bytes).
    pub fn expert(&self, e: usize) -> Result<QuantWeight, QuantError> {
        if e >= self.experts {
            return Err(QuantError::Invalid(format!(
                "expert {e} of a stack of {}",
                self.experts
            )));
        }
        let size = self.len / self.experts;
        Ok(QuantWeight {
            experts: 1,
            start: self.start + e * size,
            len: size,
            owner: Arc::clone(&self.owner),
            ..*self
        })
    }

    /// Rows `ids` of a plain matrix, dequantized (bit-exact with ggml) into `out` (`ids.len() × cols`).
    pub fn dequantize_rows(&self, ids: &[u32], out: &mut [f32]) -> Result<(), QuantError> {
        let row_bytes = self.ty.row_bytes(self.cols)?;
        quant::check_len("dequantized rows", ids.len() * self.cols, out.len())?;
        let bytes = self.bytes();
        for (&id, o) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            let r = id as usize;
            if r >= self.rows * self.experts {
                return Err(QuantError::Invalid(format!(
                    "row {r} of a matrix with {} rows",
                    self.rows
                )));
            }
            quant::dequantize(self.ty, &bytes[r * row_bytes..(r + 1) * row_bytes], o)?;
        }
        Ok(())
    }

    /// Every value, dequantized (`experts × rows × cols`).
    pub fn dequantize(&self) -> Result<Vec<f32>, QuantError> {
        quant::dequantize_to_vec(self.ty, self.bytes(), self.experts * self.rows * self.cols)
    }
}
