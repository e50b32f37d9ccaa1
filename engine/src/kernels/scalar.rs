//! Scalar reference dot products: the definition the SIMD kernels are tested against, and the path
//! for targets without one (chosen at runtime only with a loud warning). Integer sums per sub-block
//! exactly as ggml's generic code; one float multiply-add per block.

use super::acts::{q4k_act_pos, ActBlockK, RowQ8_0};
use super::quant::{q4_k, q6_k, read_f16, QK8_0, QK_K};

/// Q4_K row · Q8_K activations for each token of the tile.
///
/// # Safety
/// `w` points to `nb` Q4_K blocks; every `acts[i]` to `nb` [`ActBlockK`]s; `out.len() == acts.len()`.
pub(crate) unsafe fn q4k_tile(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]) {
    // SAFETY: the caller guarantees `nb` blocks behind `w`.
    let w = unsafe { std::slice::from_raw_parts(w, nb * q4_k::BLOCK_BYTES) };
    for (o, &a) in out.iter_mut().zip(acts) {
        // SAFETY: the caller guarantees `nb` blocks behind each activation pointer.
        let a = unsafe { std::slice::from_raw_parts(a, nb) };
        *o = q4k_dot(w, a);
    }
}

/// One Q4_K row (whole blocks) · one token's Q8_K blocks (in Q4_K order, see [`q4k_act_pos`]).
pub(crate) fn q4k_dot(w: &[u8], a: &[ActBlockK]) -> f32 {
    let mut sum = 0f32;
    for (blk, a) in w.chunks_exact(q4_k::BLOCK_BYTES).zip(a) {
        let d = read_f16(blk, 0) * a.d;
        let dmin = read_f16(blk, 2) * a.d;
        let (sc, mn) = q4_k::unpack_scales(&blk[q4_k::SCALES_AT..q4_k::QS_AT]);
        let qs = &blk[q4_k::QS_AT..];
        let mut sumi = 0i32;
        for (j, &scj) in sc.iter().enumerate() {
            let (half, shift) = (j / 2, 4 * (j % 2));
            let mut s = 0i32;
            for l in 0..32 {
                let q = ((qs[32 * half + l] >> shift) & 0xF) as i32;
                s += q * a.qs[q4k_act_pos(32 * j + l)] as i32;
            }
            sumi += scj as i32 * s;
        }
        let summ: i32 = (0..8)
            .map(|j| mn[j] as i32 * (a.bsums[2 * j] as i32 + a.bsums[2 * j + 1] as i32))
            .sum();
        sum += d * sumi as f32 - dmin * summ as f32;
    }
    sum
}

/// Q6_K row · Q8_K activations for each token of the tile.
///
/// # Safety
/// `w` points to `nb` Q6_K blocks; every `acts[i]` to `nb` [`ActBlockK`]s; `out.len() == acts.len()`.
pub(crate) unsafe fn q6k_tile(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]) {
    // SAFETY: the caller guarantees `nb` blocks behind `w`.
    let w = unsafe { std::slice::from_raw_parts(w, nb * q6_k::BLOCK_BYTES) };
    for (o, &a) in out.iter_mut().zip(acts) {
        // SAFETY: the caller guarantees `nb` blocks behind each activation pointer.
        let a = unsafe { std::slice::from_raw_parts(a, nb) };
        *o = q6k_dot(w, a);
    }
}

/// One Q6_K row (whole blocks) · one token's Q8_K blocks.
pub(crate) fn q6k_dot(w: &[u8], a: &[ActBlockK]) -> f32 {
    let mut sum = 0f32;
    for (blk, a) in w.chunks_exact(q6_k::BLOCK_BYTES).zip(a) {
        let d = read_f16(blk, q6_k::D_AT) * a.d;
        let mut sumi = 0i32;
        for j in 0..QK_K / 16 {
            let sc = blk[q6_k::SCALES_AT + j] as i8 as i32;
            let s: i32 = (16 * j..16 * j + 16)
                .map(|i| (q6_k::level(blk, i) as i32 - 32) * a.qs[i] as i32)
                .sum();
            sumi += sc * s;
        }
        sum += d * sumi as f32;
    }
    sum
}

/// Q8_0 row · Q8_0 activations for each token of the tile.
///
/// # Safety
/// `w` points to `nb` Q8_0 blocks; every `acts[i]` to `nb` blocks' worth of quants, scales and
/// corrections; `out.len() == acts.len()`.
pub(crate) unsafe fn q8_0_tile(w: *const u8, nb: usize, acts: &[RowQ8_0], out: &mut [f32]) {
    // SAFETY: the caller guarantees `nb` blocks behind `w`.
    let w = unsafe { std::slice::from_raw_parts(w, nb * (2 + QK8_0)) };
    for (o, a) in out.iter_mut().zip(acts) {
        // SAFETY: the caller guarantees `nb` blocks behind each activation pointer.
        let (qs, d8) = unsafe {
            (
                std::slice::from_raw_parts(a.qs, nb * QK8_0),
                std::slice::from_raw_parts(a.d8, nb * 8),
            )
        };
        *o = q8_0_dot(w, qs, d8);
    }
}

/// One Q8_0 row · one token's quants `qs` with per-block scales `d8[8 b]`.
pub(crate) fn q8_0_dot(w: &[u8], qs: &[i8], d8: &[f32]) -> f32 {
    let mut sum = 0f32;
    for (b, blk) in w.chunks_exact(2 + QK8_0).enumerate() {
        let d = read_f16(blk, 0) * d8[8 * b];
        let s: i32 = blk[2..]
            .iter()
            .zip(&qs[QK8_0 * b..QK8_0 * b + QK8_0])
            .map(|(&w, &a)| (w as i8) as i32 * a as i32)
            .sum();
        sum += d * s as f32;
    }
    sum
}
