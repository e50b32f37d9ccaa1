//! Q4_K: 256 values per 144-byte super-block: `d: f16`, `dmin: f16`, 12 bytes packing eight 6-bit
//! scales and eight 6-bit mins, then 128 bytes of nibbles. Sub-block `j` (32 values) decodes as
//! `d * sc_j * q - dmin * m_j`. Nibble order: bytes `32 i .. 32 i + 32` hold sub-block `2 i` in their
//! low nibbles and sub-block `2 i + 1` in their high nibbles.
//!
//! The quantizer is ggml's `quantize_row_q4_K_ref`: per sub-block a weighted least-squares search over
//! 21 candidate scales with a free minimum (`make_qkx2_quants`, weights `rms(x) + |x|`), then the
//! scales and mins are themselves quantized to 6 bits against the block's largest, and the values are
//! re-quantized against the final scales.

use super::{f16_bits, nearest_int, read_f16, QK_K};

/// Bytes of one Q4_K block.
pub const BLOCK_BYTES: usize = 4 + 12 + QK_K / 2;

/// Byte offset of the packed scales within a block.
pub(crate) const SCALES_AT: usize = 4;
/// Byte offset of the nibbles within a block.
pub(crate) const QS_AT: usize = 16;

/// Unpacks the 12 scale bytes into (scales, mins), eight 6-bit values each (ggml `get_scale_min_k4`).
#[inline]
pub fn unpack_scales(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            sc[j] = q[j] & 63;
            mn[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
    (sc, mn)
}

/// Packs eight 6-bit scales and mins into 12 bytes (the inverse of [`unpack_scales`]).
fn pack_scales(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut q = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (sc[j], mn[j]);
        if j < 4 {
            q[j] = ls;
            q[j + 4] = lm;
        } else {
            q[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            q[j - 4] |= (ls >> 4) << 6;
            q[j] |= (lm >> 4) << 6;
        }
    }
    q
}

/// Dequantizes whole blocks (lengths checked by the caller), bit-exact with ggml.
pub(crate) fn dequantize(data: &[u8], out: &mut [f32]) {
    for (blk, y) in data
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(QK_K))
    {
        let d = read_f16(blk, 0);
        let min = read_f16(blk, 2);
        let (sc, mn) = unpack_scales(&blk[SCALES_AT..QS_AT]);
        for i in 0..4 {
            let q = &blk[QS_AT + 32 * i..QS_AT + 32 * i + 32];
            let (d1, m1) = (d * sc[2 * i] as f32, min * mn[2 * i] as f32);
            let (d2, m2) = (d * sc[2 * i + 1] as f32, min * mn[2 * i + 1] as f32);
            for l in 0..32 {
                y[64 * i + l] = d1 * (q[l] & 0xF) as f32 - m1;
                y[64 * i + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

/// ggml's `make_qkx2_quants`: fit `x ≈ scale * L - min` (`L` in `0..=nmax`, `min >= 0`) minimising the
/// weighted squared error over `nstep + 1` candidate inverse scales around `nmax / (max - min)`.
/// Returns `(scale, min)`; `l` receives the levels. Operation order follows ggml's for identical floats.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l[..n].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = li as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = li as u8;
            let w = weights[i];
            let lf = li as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Quantizes one block of 256 values (ggml `quantize_row_q4_K_ref`).
fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 32];
    let mut weights = [0f32; 32];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut max_scale = 0f32;
    let mut max_min = 0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().fold(0f32, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(
            15,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut laux,
            -1.0,
            0.1,
            20,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        ls[j] = nearest_int(inv_scale * scales[j]).min(63) as u8;
        lm[j] = nearest_int(inv_min * mins[j]).min(63) as u8;
    }
    let d_bits = f16_bits(max_scale / 63.0);
    let dmin_bits = f16_bits(max_min / 63.0);
    out[0..2].copy_from_slice(&d_bits.to_le_bytes());
    out[2..4].copy_from_slice(&dmin_bits.to_le_bytes());
    out[SCALES_AT..QS_AT].copy_from_slice(&pack_scales(&ls, &lm));
    let d_all = half::f16::from_bits(d_bits).to_f32();
    let dmin_all = half::f16::from_bits(dmin_bits).to_f32();
    for j in 0..8 {
        let d = d_all * ls[j] as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * lm[j] as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, 15) as u8;
        }
    }
    let qs = &mut out[QS_AT..];
    for i in 0..4 {
        for k in 0..32 {
            qs[32 * i + k] = l[64 * i + k] | (l[64 * i + 32 + k] << 4);
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
    fn scale_packing_round_trips() {
        let sc = [0, 1, 31, 63, 62, 17, 40, 5];
        let mn = [63, 0, 12, 33, 1, 63, 2, 48];
        assert_eq!(unpack_scales(&pack_scales(&sc, &mn)), (sc, mn));
    }

    #[test]
    fn quantization_error_is_small() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i as f32) * 0.731).sin() * (1.0 + (i % 7) as f32))
            .collect();
        let mut q = vec![0u8; 2 * BLOCK_BYTES];
        quantize(&x, &mut q);
        let mut y = vec![0f32; 512];
        dequantize(&q, &mut y);
        let rms = |v: &[f32]| (v.iter().map(|a| a * a).sum::<f32>() / v.len() as f32).sqrt();
        let err: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
        assert!(rms(&err) < 0.08 * rms(&x), "{} vs {}", rms(&err), rms(&x));
    }
}
