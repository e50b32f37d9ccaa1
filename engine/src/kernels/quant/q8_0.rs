//! Q8_0: 32 values per 34-byte block, `d: f16` then `qs: [i8; 32]`, value `= d * q`. Used for weights
//! and, with the same layout, as the activation format of Q8_0 dot products.

use super::{f16_bits, read_f16, QK8_0};

/// Bytes of one Q8_0 block.
pub const BLOCK_BYTES: usize = 2 + QK8_0;

/// One Q8_0 block with ggml's layout (`#[repr(C)]`, 34 bytes, alignment 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct BlockQ8_0 {
    /// Scale as f16 bits.
    pub d: u16,
    /// Quants.
    pub qs: [i8; QK8_0],
}

const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == BLOCK_BYTES);

impl BlockQ8_0 {
    /// Quantizes 32 values as ggml's `quantize_row_q8_0_ref`: `d = amax / 127`, `q = round(x / d)`
    /// (half away from zero), the scale stored as f16 but the quants computed with the f32 scale.
    pub fn quantize(x: &[f32; QK8_0]) -> Self {
        let mut qs = [0i8; QK8_0];
        let d = quantize_into(x, &mut qs);
        BlockQ8_0 { d: f16_bits(d), qs }
    }

    /// The scale as f32.
    pub fn scale(&self) -> f32 {
        half::f16::from_bits(self.d).to_f32()
    }

    /// The block's 34 bytes.
    pub fn to_bytes(&self) -> [u8; BLOCK_BYTES] {
        let mut b = [0u8; BLOCK_BYTES];
        b[..2].copy_from_slice(&self.d.to_le_bytes());
        for (o, q) in b[2..].iter_mut().zip(self.qs) {
            *o = q as u8;
        }
        b
    }
}

/// The body of [`BlockQ8_0::quantize`]: writes the quants and returns the unrounded f32 scale.
#[inline(always)]
pub(crate) fn quantize_into(x: &[f32; QK8_0], qs: &mut [i8; QK8_0]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, v) in qs.iter_mut().zip(x) {
        *q = round_half_away(v * id) as i8;
    }
    d
}

/// C's `roundf` (half away from zero) as LLVM lowers it: truncate `x + copysign(0.5 - ulp, x)`.
/// Exact for every float; unlike `f32::round` it needs no SSE4.1 and vectorizes.
#[inline(always)]
pub(crate) fn round_half_away(x: f32) -> i32 {
    (x + 0.49999997f32.copysign(x)) as i32
}

/// Dequantizes whole blocks (lengths checked by the caller).
pub(crate) fn dequantize(data: &[u8], out: &mut [f32]) {
    for (blk, y) in data
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK8_0))
    {
        let d = read_f16(blk, 0);
        for (v, &q) in y.iter_mut().zip(&blk[2..]) {
            *v = (q as i8) as f32 * d;
        }
    }
}

/// Quantizes whole blocks (lengths checked by the caller).
pub(crate) fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, blk) in src
        .chunks_exact(QK8_0)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
    {
        let x: &[f32; QK8_0] = x.try_into().expect("chunks_exact yields whole blocks");
        blk.copy_from_slice(&BlockQ8_0::quantize(x).to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_half_a_step() {
        let x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 31.5) * 0.1)
            .collect();
        let mut q = vec![0u8; 2 * BLOCK_BYTES];
        quantize(&x, &mut q);
        let mut y = vec![0f32; 64];
        dequantize(&q, &mut y);
        for b in 0..2 {
            let amax = x[b * 32..b * 32 + 32]
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()));
            for i in b * 32..b * 32 + 32 {
                assert!((x[i] - y[i]).abs() <= amax / 127.0 * 0.5 + 1e-3, "{i}");
            }
        }
    }

    #[test]
    fn round_half_away_matches_roundf() {
        for x in [
            0.5f32,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.49999997,
            -0.49999997,
            126.5,
            127.0,
            0.0,
            3.7,
            -3.2,
        ] {
            assert_eq!(round_half_away(x), x.round() as i32, "{x}");
        }
        let mut x = 0.0f32;
        while x < 130.0 {
            assert_eq!(round_half_away(x), x.round() as i32, "{x}");
            assert_eq!(round_half_away(-x), (-x).round() as i32, "{x}");
            x = f32::from_bits(x.to_bits() + 4099);
        }
    }

    #[test]
    fn zero_block() {
        let b = BlockQ8_0::quantize(&[0.0; 32]);
        assert_eq!(b.d, 0);
        assert_eq!(b.qs, [0; 32]);
    }
}
