//! Symmetric int8 quantization of K/V vectors: groups of 32 values along `head_dim` (the whole head when it is
//! not a multiple of 32), one f32 scale per group: `x ≈ q · scale`, `scale = max|x| / 127` (Q8_0's rule).

/// Values per scale for vectors of `head_dim` values.
pub fn group(head_dim: usize) -> usize {
    if head_dim % 32 == 0 {
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

/// Dequantizes a key tile: `out[d][j] = q[d·stride + j] · scales[(d / group)·stride + j]` for `d < head_dim`,
/// `j < n`, with `out` rows `out_stride` apart (keys are stored dimension-major).
#[allow(clippy::too_many_arguments)]
pub(crate) fn dequantize_keys(
    q: &[i8],
    scales: &[f32],
    stride: usize,
    head_dim: usize,
    group: usize,
    n: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    for d in 0..head_dim {
        let qs = &q[d * stride..][..n];
        let ss = &scales[(d / group) * stride..][..n];
        let os = &mut out[d * out_stride..][..n];
        for ((o, &q), &s) in os.iter_mut().zip(qs).zip(ss) {
            *o = f32::from(q) * s;
        }
    }
}

/// Dequantizes `n` value rows: `out[j][d] = q[j·head_dim + d] · scales[j·groups + d / group]`.
pub(crate) fn dequantize_values(
    q: &[i8],
    scales: &[f32],
    head_dim: usize,
    group: usize,
    n: usize,
    out: &mut [f32],
) {
    let groups = head_dim / group;
    for j in 0..n {
        let qs = &q[j * head_dim..][..head_dim];
        let ss = &scales[j * groups..][..groups];
        let os = &mut out[j * head_dim..][..head_dim];
        for ((oc, qc), &s) in os.chunks_mut(group).zip(qs.chunks(group)).zip(ss) {
            for (o, &q) in oc.iter_mut().zip(qc) {
                *o = f32::from(q) * s;
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
        let mut back = vec![0f32; 64];
        dequantize_values(&q, &s, 64, 32, 1, &mut back);
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= s[i / 32] * 0.5 + 1e-7, "{i}: {a} vs {b}");
        }
        let zeros = [0f32; 32];
        quantize(&zeros, 32, &mut q[..32], &mut s[..1]);
        assert_eq!((q[0], s[0]), (0, 0.0));
        assert_eq!((group(128), group(48)), (32, 48));
    }
}
