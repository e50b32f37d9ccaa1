//! Symmetric int8 quantization of K/V vectors: groups of 32 values along `head_dim` (the whole head when it is
//! not a multiple of 32), one f32 scale per group: `x ≈ q · scale`, `scale = max|x| / 127` (Q8_0's rule).

use super::PANEL;

/// Values per scale for vectors of `head_dim` values.
pub fn group(head_dim: usize) -> usize {
    if head_dim.is_multiple_of(32) {
        32
    } else {
        head_dim.max(1)
    }
}

/// Quantizes `x` into `q` (same length) and `scales` (`x.len() / group`).
pub fn quantize(x: &[f32], group: usize, q: &mut [i8], scales: &mut [f32]) {
    for ((xs, qs), scale) in x.chunks(group).zip(q.chunks_mut(group)).zip(scales) {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = amax / 127.0;
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        for (q, &v) in qs.iter_mut().zip(xs) {
            // |v · inv| ≤ 127 by construction; `as` saturates anyway (and maps NaN to 0).
            *q = (v * inv).round() as i8;
        }
        *scale = s;
    }
}

/// Dequantizes a key tile in the panel layout (see [`crate::cache`]): `q` starts at the tile's first panel,
/// `scales` at the tile's first position of group 0 of its head (`[groups][block]`, rows `block` apart);
/// `out` gets `n` keys in the same panel layout.
pub(crate) fn dequantize_keys(
    q: &[i8],
    scales: &[f32],
    block: usize,
    head_dim: usize,
    group: usize,
    n: usize,
    out: &mut [f32],
) {
    for c in 0..n.div_ceil(PANEL) {
        let w = PANEL.min(n - c * PANEL);
        for d in 0..head_dim {
            let at = (c * head_dim + d) * PANEL;
            let ss = &scales[(d / group) * block + c * PANEL..][..w];
            for ((o, &q), &s) in out[at..][..w].iter_mut().zip(&q[at..][..w]).zip(ss) {
                *o = f32::from(q) * s;
            }
        }
    }
}

/// Dequantizes a value tile in the panel layout: `q` starts at the tile's first position of dimension panel 0,
/// panels `q_panel` apart; `scales` at the tile's first position (`[block][groups]`); `out` gets `n` positions
/// with panels `out_panel` apart.
#[allow(clippy::too_many_arguments)] // two strided operands and the group shape
pub(crate) fn dequantize_values(
    q: &[i8],
    q_panel: usize,
    scales: &[f32],
    head_dim: usize,
    group: usize,
    n: usize,
    out: &mut [f32],
    out_panel: usize,
) {
    let groups = head_dim / group;
    for c in 0..head_dim.div_ceil(PANEL) {
        let w = PANEL.min(head_dim - c * PANEL);
        for j in 0..n {
            let ss = &scales[j * groups..][..groups];
            let qs = &q[c * q_panel + j * PANEL..][..w];
            let os = &mut out[c * out_panel + j * PANEL..][..w];
            if group == PANEL {
                // The usual case (head_dim a multiple of 32): one scale per panel row, a loop that vectorizes.
                let s = ss[c];
                for (o, &q) in os.iter_mut().zip(qs) {
                    *o = f32::from(q) * s;
                }
            } else {
                for (l, (o, &q)) in os.iter_mut().zip(qs).enumerate() {
                    *o = f32::from(q) * ss[(c * PANEL + l) / group];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_half_a_step() {
        let x: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.13)
            .collect();
        let mut q = vec![0i8; 64];
        let mut s = vec![0f32; 2];
        quantize(&x, 32, &mut q, &mut s);
        // One position of 64 values: two dimension panels, 32 apart in both q and out.
        let mut back = vec![0f32; 64];
        dequantize_values(&q, 32, &s, 64, 32, 1, &mut back, 32);
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= s[i / 32] * 0.5 + 1e-7, "{i}: {a} vs {b}");
        }
        let zeros = [0f32; 32];
        quantize(&zeros, 32, &mut q[..32], &mut s[..1]);
        assert_eq!((q[0], s[0]), (0, 0.0));
        assert_eq!((group(128), group(48)), (32, 48));
    }
}
