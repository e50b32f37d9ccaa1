//! Q6_K: 256 values per 210-byte super-block: `ql: [u8; 128]` (low 4 bits), `qh: [u8; 64]` (high
//! 2 bits), `scales: [i8; 16]` (one per 16 values), `d: f16`; value `= d * sc_j * (q - 32)`.
//!
//! Bit placement, for each half `h` (128 values) with `ql = ql[64 h..]`, `qh = qh[32 h..]`, `l < 32`:
//! value `l` is `ql[l] & 15 | (qh[l] & 3) << 4`, value `32 + l` is `ql[32 + l] & 15 | (qh[l] >> 2 & 3) << 4`,
//! value `64 + l` is `ql[l] >> 4 | (qh[l] >> 4 & 3) << 4`, value `96 + l` is `ql[32 + l] >> 4 | (qh[l] >> 6) << 4`.
//!
//! The quantizer is ggml's `quantize_row_q6_K_ref`: per 16 values a weighted (`x²`) search over 19
//! candidate scales (`make_qx_quants`), the 16 scales quantized to i8 against the largest, then the
//! values re-quantized against the final scales.

use super::{f16_bits, nearest_int, read_f16, QK_K};

/// Bytes of one Q6_K block.
pub const BLOCK_BYTES: usize = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;

/// Byte offset of the high bits within a block.
pub(crate) const QH_AT: usize = 128;
/// Byte offset of the scales within a block.
pub(crate) const SCALES_AT: usize = 192;
/// Byte offset of `d` within a block.
pub(crate) const D_AT: usize = 208;

/// The 6-bit level (0..=63) of value `i` (0..256) of a block.
#[inline]
pub(crate) fn level(blk: &[u8], i: usize) -> u8 {
    let (h, r) = (i / 128, i % 128);
    let (quarter, l) = (r / 32, r % 32);
    let ql = blk[64 * h + l + if quarter % 2 == 1 { 32 } else { 0 }];
    let low = if quarter < 2 { ql & 0xF } else { ql >> 4 };
    let high = (blk[QH_AT + 32 * h + l] >> (2 * quarter)) & 3;
    low | (high << 4)
}

/// Dequantizes whole blocks (lengths checked by the caller), bit-exact with ggml.
pub(crate) fn dequantize(data: &[u8], out: &mut [f32]) {
    for (blk, y) in data
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let d = read_f16(blk, D_AT);
        for (i, v) in y.iter_mut().enumerate() {
            let sc = blk[SCALES_AT + i / 16] as i8;
            let q = level(blk, i) as i32 - 32;
            *v = d * sc as f32 * q as f32;
        }
    }
}

/// Values smaller than this in magnitude count as an all-zero group (ggml's `GROUP_MAX_EPS`).
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights: symmetric levels in
/// `-nmax..nmax` (stored offset by `nmax` in `l`), weights `x²`, best of 19 scales around `nmax / max`.
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [u8]) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for (li, &v) in l.iter_mut().zip(x) {
        let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *li = (q + nmax) as u8;
        let w = v * v;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let q = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            let w = v * v;
            sumlx += w * v * q as f32;
            suml2 += w * q as f32 * q as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &v) in l.iter_mut().zip(x) {
                *li = (nmax + nearest_int(iscale * v).clamp(-nmax, nmax - 1)) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Quantizes one block of 256 values (ggml `quantize_row_q6_K_ref`).
fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let mut max_scale = 0f32;
    let mut max_abs_scale = 0f32;
    for ib in 0..16 {
        let s = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        scales[ib] = s;
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        out.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    let d_bits = f16_bits(1.0 / iscale);
    out[D_AT..D_AT + 2].copy_from_slice(&d_bits.to_le_bytes());
    let mut sc = [0i8; 16];
    for ib in 0..16 {
        sc[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
        out[SCALES_AT + ib] = sc[ib] as u8;
    }
    let d_all = half::f16::from_bits(d_bits).to_f32();
    for j in 0..16 {
        let d = d_all * sc[j] as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let q = nearest_int(x[16 * j + ii] / d).clamp(-32, 31);
            l[16 * j + ii] = (q + 32) as u8;
        }
    }
    for h in 0..2 {
        let lh = &l[128 * h..128 * h + 128];
        for k in 0..32 {
            let (q1, q2, q3, q4) = (lh[k], lh[k + 32], lh[k + 64], lh[k + 96]);
            out[64 * h + k] = (q1 & 0xF) | ((q3 & 0xF) << 4);
            out[64 * h + k + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4);
            out[QH_AT + 32 * h + k] =
                (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}

/// Quantizes whole blocks (lengths checked by the caller).
pub(crate) fn quantize(src: &[f32], out: &mut [u8]) {
    for (x, blk) in src
        .chunks_exact(QK_K)
        .zip(out.chunks_exact_mut(BLOCK_BYTES))
    {
        quantize_block(x, blk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_error_is_small_and_zero_block_is_zero() {
        let x: Vec<f32> = (0..256)
            .map(|i| ((i as f32) * 1.37).cos() * (0.5 + (i % 5) as f32))
            .collect();
        let mut q = vec![0u8; BLOCK_BYTES];
        quantize(&x, &mut q);
        let mut y = vec![0f32; 256];
        dequantize(&q, &mut y);
        let rms = |v: &[f32]| (v.iter().map(|a| a * a).sum::<f32>() / v.len() as f32).sqrt();
        let err: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
        assert!(rms(&err) < 0.02 * rms(&x), "{} vs {}", rms(&err), rms(&x));

        quantize(&[0.0; 256], &mut q);
        assert!(q.iter().all(|&b| b == 0));
    }
}
