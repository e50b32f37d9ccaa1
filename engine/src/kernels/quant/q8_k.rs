//! Q8_K: the 8-bit activation format ggml pairs with K-quant weights. 256 values, one f32 scale and
//! the sums of each 16 quants (`bsums`), which let a dot product fold a weight block's minimums and
//! offsets in with 16 multiplications instead of 256.

use super::{nearest_int, QK_K};

/// Bytes of one Q8_K block (ggml's `block_q8_K`).
pub const BLOCK_BYTES: usize = 4 + QK_K + 2 * (QK_K / 16);

/// One Q8_K block with ggml's layout (`#[repr(C)]`, 292 bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8K {
    /// Scale: value `= d * q`.
    pub d: f32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// `bsums[j]` = sum of `qs[16 j .. 16 j + 16]`.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(std::mem::size_of::<BlockQ8K>() == BLOCK_BYTES);

impl BlockQ8K {
    /// Quantizes 256 values as ggml's `quantize_row_q8_K_ref`: the value of largest magnitude maps to
    /// -127 (so `d` takes its sign), quants rounded half to even and clamped to 127.
    pub fn quantize(x: &[f32; QK_K]) -> Self {
        let mut b = BlockQ8K {
            d: 0.0,
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
        };
        b.d = quantize_into(x, &mut b.qs, &mut b.bsums);
        b
    }

    /// Dequantized values.
    pub fn dequantize(&self) -> [f32; QK_K] {
        let mut y = [0f32; QK_K];
        for (v, &q) in y.iter_mut().zip(&self.qs) {
            *v = self.d * q as f32;
        }
        y
    }
}

/// The body of [`BlockQ8K::quantize`], writing quants and sums in place and returning `d`. Written
/// so that it vectorizes (the kernels' activation quantizer instantiates it under SIMD target features).
#[inline(always)]
pub(crate) fn quantize_into(
    x: &[f32; QK_K],
    qs: &mut [i8; QK_K],
    bsums: &mut [i16; QK_K / 16],
) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 {
        qs.fill(0);
        bsums.fill(0);
        return 0.0;
    }
    // ggml takes the first value of largest magnitude (its sign decides the sign of d).
    let max = x.iter().copied().find(|v| v.abs() == amax).unwrap_or(amax);
    let iscale = -127.0 / max;
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, q) in bsums.iter_mut().zip(qs.chunks_exact(16)) {
        *s = q.iter().fold(0i16, |a, &v| a + v as i16);
    }
    1.0 / iscale
}

/// Quantizes a row (a multiple of 256 values; checked) into Q8_K blocks.
pub fn quantize_row(x: &[f32]) -> Result<Vec<BlockQ8K>, super::QuantError> {
    if x.is_empty() || !x.len().is_multiple_of(QK_K) {
        return Err(super::QuantError::Invalid(format!(
            "Q8_K: a row of {} values is not a positive multiple of {QK_K}",
            x.len()
        )));
    }
    Ok(x.chunks_exact(QK_K)
        .map(|c| BlockQ8K::quantize(c.try_into().expect("chunks_exact yields whole blocks")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_maps_to_minus_127_and_bsums_add_up() {
        let mut x = [0f32; QK_K];
        for (i, v) in x.iter_mut().enumerate() {
            *v = (i as f32 * 0.37).sin();
        }
        x[17] = 3.0;
        let b = BlockQ8K::quantize(&x);
        assert_eq!(b.qs[17], -127);
        assert!(b.d < 0.0);
        for j in 0..16 {
            let s: i32 = b.qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
            assert_eq!(s, b.bsums[j] as i32);
        }
        let y = b.dequantize();
        for i in 0..QK_K {
            assert!((x[i] - y[i]).abs() <= 3.0 / 127.0 * 0.5 + 1e-6);
        }
        assert!(quantize_row(&x[..100]).is_err());
    }
}
