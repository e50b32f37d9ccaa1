//! Block-quantized weight formats with the exact byte layouts of GGUF / ggml, so memory-mapped GGUF
//! tensor data can be used in place: Q8_0, Q4_K and Q6_K weights, and Q8_K, the 8-bit activation
//! format ggml pairs with K-quants in its dot products.
//!
//! Every format has a scalar dequantizer that is bit-exact with ggml's `dequantize_row_*` and a
//! quantizer that follows ggml's reference quantizer (`quantize_row_*_ref`) operation for operation,
//! so a tensor quantized here at load time has the same bytes (and error) as one made by llama.cpp's
//! `llama-quantize` without an importance matrix. The SIMD dot products that consume these blocks
//! live in the parent module, [`crate::kernels`].
//!
//! Layouts (little endian, no padding; `f16` is IEEE half):
//!
//! | type | values/block | bytes | layout |
//! |------|-------------:|------:|--------|
//! | Q8_0 | 32  | 34  | `d: f16`, `qs: [i8; 32]`; `x = d * q` |
//! | Q4_K | 256 | 144 | `d: f16`, `dmin: f16`, `scales: [u8; 12]` (8 × 6-bit scale, 8 × 6-bit min), `qs: [u8; 128]` (nibbles); `x = d * sc_j * q - dmin * m_j` per 32-value sub-block `j` |
//! | Q6_K | 256 | 210 | `ql: [u8; 128]` (low 4 bits), `qh: [u8; 64]` (high 2 bits), `scales: [i8; 16]`, `d: f16`; `x = d * sc_j * (q - 32)` per 16-value sub-block |
//! | Q8_K | 256 | 292 | `d: f32`, `qs: [i8; 256]`, `bsums: [i16; 16]` (sums of 16 quants); activations only |

pub mod q4_k;
pub mod q6_k;
pub mod q8_0;
pub mod q8_k;

pub use q8_0::BlockQ8_0;
pub use q8_k::BlockQ8K;

use half::f16;

/// Values per super-block of the K-quant formats (Q4_K, Q6_K, Q8_K).
pub const QK_K: usize = 256;
/// Values per block of Q8_0.
pub const QK8_0: usize = 32;

/// A quantized weight format this crate's kernels can multiply with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// 8-bit, 32 values per block, one f16 scale (GGML type 8).
    Q8_0,
    /// 4-bit K-quant, 256 values per super-block, 6-bit sub-block scales and mins (GGML type 12).
    Q4K,
    /// 6-bit K-quant, 256 values per super-block, 8-bit sub-block scales (GGML type 14).
    Q6K,
}

impl QuantType {
    /// All weight formats, for tests and benchmarks that iterate over them.
    pub const ALL: [QuantType; 3] = [QuantType::Q8_0, QuantType::Q4K, QuantType::Q6K];

    /// Number of values one block encodes.
    pub const fn block_values(self) -> usize {
        match self {
            QuantType::Q8_0 => QK8_0,
            QuantType::Q4K | QuantType::Q6K => QK_K,
        }
    }

    /// Number of bytes one block occupies.
    pub const fn block_bytes(self) -> usize {
        match self {
            QuantType::Q8_0 => q8_0::BLOCK_BYTES,
            QuantType::Q4K => q4_k::BLOCK_BYTES,
            QuantType::Q6K => q6_k::BLOCK_BYTES,
        }
    }

    /// The `ggml_type` id used in GGUF tensor headers.
    pub const fn ggml_type_id(self) -> u32 {
        match self {
            QuantType::Q8_0 => 8,
            QuantType::Q4K => 12,
            QuantType::Q6K => 14,
        }
    }

    /// The format for a `ggml_type` id, if it is one of ours.
    pub const fn from_ggml_type_id(id: u32) -> Option<Self> {
        match id {
            8 => Some(QuantType::Q8_0),
            12 => Some(QuantType::Q4K),
            14 => Some(QuantType::Q6K),
            _ => None,
        }
    }

    /// The name llama.cpp uses (`"q4_K"` …), for logs and benchmark tables.
    pub const fn name(self) -> &'static str {
        match self {
            QuantType::Q8_0 => "q8_0",
            QuantType::Q4K => "q4_K",
            QuantType::Q6K => "q6_K",
        }
    }

    /// Bytes of one row of `cols` values, or an error when `cols` is not a whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Result<usize, QuantError> {
        let bv = self.block_values();
        if cols == 0 || !cols.is_multiple_of(bv) {
            return Err(QuantError::RowLength {
                ty: self,
                cols,
                block: bv,
            });
        }
        Ok(cols / bv * self.block_bytes())
    }

    /// Bytes of a `[rows, cols]` matrix.
    pub fn matrix_bytes(self, rows: usize, cols: usize) -> Result<usize, QuantError> {
        let rb = self.row_bytes(cols)?;
        rb.checked_mul(rows)
            .ok_or(QuantError::TooLarge { rows, cols })
    }
}

impl std::fmt::Display for QuantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What was wrong with a buffer or shape handed to the quantization code or the kernels. A wrong length
/// is always this error, never a panic or undefined behaviour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// A row length that is not a positive multiple of the format's block size.
    #[error("{ty}: a row of {cols} values is not a positive multiple of the block size {block}")]
    RowLength {
        /// The format.
        ty: QuantType,
        /// The row length given.
        cols: usize,
        /// The block size it must be a multiple of.
        block: usize,
    },
    /// A buffer whose length does not match the shape it is used with.
    #[error("{what}: expected {expected} elements, got {got}")]
    Length {
        /// Which argument.
        what: &'static str,
        /// Length implied by the shape.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A shape whose byte size overflows `usize`.
    #[error("shape [{rows}, {cols}] is too large")]
    TooLarge {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// Arguments that are inconsistent with each other (named in the message).
    #[error("{0}")]
    Invalid(String),
}

/// Checks `got == expected` for argument `what`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), QuantError> {
    if expected != got {
        return Err(QuantError::Length {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

/// Dequantizes `data` (whole blocks of format `ty`) into `out`; `out.len()` must be the number of
/// values `data` encodes. Bit-exact with ggml's `dequantize_row_*`.
pub fn dequantize(ty: QuantType, data: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let blocks = out.len() / ty.block_values();
    if !out.len().is_multiple_of(ty.block_values()) {
        return Err(QuantError::RowLength {
            ty,
            cols: out.len(),
            block: ty.block_values(),
        });
    }
    check_len(
        "quantized data (bytes)",
        blocks * ty.block_bytes(),
        data.len(),
    )?;
    match ty {
        QuantType::Q8_0 => q8_0::dequantize(data, out),
        QuantType::Q4K => q4_k::dequantize(data, out),
        QuantType::Q6K => q6_k::dequantize(data, out),
    }
    Ok(())
}

/// Quantizes `src` (a whole number of blocks) into `out` (exactly the bytes those blocks take) with
/// ggml's reference quantizer for `ty` (the one `llama-quantize` uses without an importance matrix).
pub fn quantize(ty: QuantType, src: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
    let bv = ty.block_values();
    if !src.len().is_multiple_of(bv) {
        return Err(QuantError::RowLength {
            ty,
            cols: src.len(),
            block: bv,
        });
    }
    check_len(
        "quantized output (bytes)",
        src.len() / bv * ty.block_bytes(),
        out.len(),
    )?;
    match ty {
        QuantType::Q8_0 => q8_0::quantize(src, out),
        QuantType::Q4K => q4_k::quantize(src, out),
        QuantType::Q6K => q6_k::quantize(src, out),
    }
    Ok(())
}

/// [`quantize`] into a new buffer.
pub fn quantize_to_vec(ty: QuantType, src: &[f32]) -> Result<Vec<u8>, QuantError> {
    let bv = ty.block_values();
    if !src.len().is_multiple_of(bv) {
        return Err(QuantError::RowLength {
            ty,
            cols: src.len(),
            block: bv,
        });
    }
    let mut out = vec![0u8; src.len() / bv * ty.block_bytes()];
    quantize(ty, src, &mut out)?;
    Ok(out)
}

/// [`dequantize`] into a new buffer of `values` floats.
pub fn dequantize_to_vec(
    ty: QuantType,
    data: &[u8],
    values: usize,
) -> Result<Vec<f32>, QuantError> {
    let mut out = vec![0f32; values];
    dequantize(ty, data, &mut out)?;
    Ok(out)
}

/// ggml's `nearest_int`: round half to even, valid for |x| < 2^22 (which every caller guarantees).
/// Done with ggml's magic-number addition rather than `round_ties_even`, which without SSE4.1 in the
/// baseline target is a library call per value and does not vectorize.
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    ((x + 12582912.0f32).to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// Reads a little-endian f16 at `bytes[at..at + 2]` as f32.
#[inline]
pub(crate) fn read_f16(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// Rounds `x` to f16 (nearest even, as ggml's `GGML_FP32_TO_FP16`) and returns its bits.
#[inline]
pub(crate) fn f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids() {
        assert_eq!(QuantType::Q8_0.row_bytes(64).unwrap(), 68);
        assert_eq!(QuantType::Q4K.row_bytes(1536).unwrap(), 6 * 144);
        assert_eq!(QuantType::Q6K.row_bytes(512).unwrap(), 420);
        assert!(QuantType::Q4K.row_bytes(100).is_err());
        assert!(QuantType::Q8_0.row_bytes(0).is_err());
        for ty in QuantType::ALL {
            assert_eq!(QuantType::from_ggml_type_id(ty.ggml_type_id()), Some(ty));
        }
    }

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for x in [
            0.5f32, 1.5, 2.5, -0.5, -1.5, 3.49999, -7.5, 127.5, 0.0, -0.0, 63.5, 4194303.0,
            -4194303.0,
        ] {
            assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
    }

    #[test]
    fn length_errors_are_errors() {
        let mut out = vec![0f32; 256];
        assert!(dequantize(QuantType::Q4K, &[0u8; 143], &mut out).is_err());
        assert!(quantize(QuantType::Q6K, &out, &mut [0u8; 209]).is_err());
        assert!(quantize_to_vec(QuantType::Q8_0, &out[..31]).is_err());
    }
}
