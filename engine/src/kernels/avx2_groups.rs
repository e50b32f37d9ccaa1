//! AVX2 prefill for Q4_K: sixteen weight rows at a time, two per 32-bit lane (one per nibble).
//!
//! The one-row kernels in [`super::avx2`] need a `vpmaddwd` by the sub-block scale for every 32 values of every
//! token, and a horizontal sum per output: with `vpmaddubsw` that is 2 of the 4 multiply-port instructions per
//! 32 products. Here a register holds the same 4 values of 16 rows: rows 0–7 in the low nibbles of the 8
//! lanes, rows 8–15 in the high ones. The token's 4 matching activation bytes are broadcast to every lane once
//! for both halves, so two `vpmaddubsw` give 2 partial sums per row; the 8 of a 32-value sub-block add up in 16
//! bits (|8 · 2 · 15 · 128| < 2¹⁵) before one `vpmaddwd` per half applies 8 rows' scales at once. The lanes end
//! as a token's 16 outputs, stored without a horizontal sum.
//!
//! The weights are regrouped on the fly ([`regroup`]) into a scratch buffer, once per call and task, and used
//! by every token of the call: worth it only for prefill, where the cost (one pass over the rows' bytes) is
//! shared by many tokens. Scales and minimums are expanded to the vectors the kernel multiplies with.

use std::arch::x86_64::*;

use super::acts::{q4k_act_pos, ActBlockK, Activations};
use super::isa::GROUP_ROWS;
use super::matmul::{OutPtr, QuantMatrix};
use super::quant::{q4_k, read_f16, QK_K};

/// Tokens per kernel call (accumulators for more spill out of AVX2's 16 registers).
const GROUP_TOKENS: usize = 4;
/// Bytes of activations one pass over the groups reuses (a share of a core's L2 cache).
const TOKEN_BLOCK_BYTES: usize = 128 * 1024;
/// Rows per nibble half of a group.
const HALF: usize = 8;
const _: () = assert!(
    GROUP_ROWS == 2 * HALF,
    "two rows per 32-bit lane of a 256-bit register"
);

/// One Q4_K block (256 values) of 16 rows, regrouped.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct GroupBlock {
    /// For sub-block `s` and step `k` (its values `4k..4k + 4`), `qs[8s + k][4r + i]` holds value `4k + i` of
    /// sub-block `s` of row `r` in the low nibble and of row `8 + r` in the high one.
    qs: [[u8; 32]; 64],
    /// `scales[2s + h][2r] = scales[2s + h][2r + 1]` = row `8h + r`'s 6-bit scale of sub-block `s`.
    scales: [[i16; 16]; 16],
    /// `mins[s][row]` = the row's `dmin · m_s`.
    mins: [[f32; GROUP_ROWS]; 8],
    /// `d[row]`.
    d: [f32; GROUP_ROWS],
}

const EMPTY: GroupBlock = GroupBlock {
    qs: [[0; 32]; 64],
    scales: [[0; 16]; 16],
    mins: [[0.0; GROUP_ROWS]; 8],
    d: [0.0; GROUP_ROWS],
};

/// Regroups rows `r0..r0 + 16` of `w` (Q4_K) into `out` (one [`GroupBlock`] per block of 256 columns; every
/// field of every block is written).
///
/// # Safety
/// The CPU supports AVX2 (the byte loops are compiled for it).
#[target_feature(enable = "avx2")]
unsafe fn regroup(w: &QuantMatrix<'_>, r0: usize, out: &mut [GroupBlock]) {
    let row_bytes = w.row_bytes();
    for (b, group) in out.iter_mut().enumerate() {
        // words[h][8p + k][4r + i]: GGUF byte 32p + 4k + i of row 8h + r, which holds value 4k + i of sub-block
        // 2p (low nibble) and of 2p + 1 (high).
        let mut words = [[[0u8; 32]; 32]; 2];
        for row in 0..GROUP_ROWS {
            let (h, r) = (row / HALF, row % HALF);
            let at = (r0 + row) * row_bytes + b * q4_k::BLOCK_BYTES;
            let blk = &w.data()[at..at + q4_k::BLOCK_BYTES];
            let dmin = read_f16(blk, 2);
            group.d[row] = read_f16(blk, 0);
            let (sc, mn) = q4_k::unpack_scales(&blk[q4_k::SCALES_AT..q4_k::SCALES_AT + 12]);
            for s in 0..8 {
                group.scales[2 * s + h][2 * r] = sc[s] as i16;
                group.scales[2 * s + h][2 * r + 1] = sc[s] as i16;
                group.mins[s][row] = dmin * mn[s] as f32;
            }
            let qs = &blk[q4_k::QS_AT..q4_k::QS_AT + QK_K / 2];
            for (step, word) in words[h].iter_mut().zip(qs.chunks_exact(4)) {
                step[4 * r..4 * r + 4].copy_from_slice(word);
            }
        }
        // Rows 0–7 to the low nibbles, rows 8–15 to the high ones, one sub-block per step.
        for (step, (low_rows, high_rows)) in words[0].iter().zip(&words[1]).enumerate() {
            let (p, k) = (step / 8, step % 8);
            for i in 0..32 {
                let (x, y) = (low_rows[i], high_rows[i]);
                group.qs[8 * (2 * p) + k][i] = (x & 0x0F) | (y << 4);
                group.qs[8 * (2 * p + 1) + k][i] = (x >> 4) | (y & 0xF0);
            }
        }
    }
}

/// The [`super::isa::RowsK`] kernel for Q4_K.
///
/// # Safety
/// As [`super::isa::RowsK`]: the contract of [`super::matmul::compute_rows`], and the CPU supports AVX2, FMA
/// and F16C.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn q4k_rows(
    w: &QuantMatrix<'_>,
    acts: &Activations,
    tokens: &[usize],
    slot: &dyn Fn(usize) -> usize,
    r0: usize,
    r1: usize,
    out: OutPtr,
    out_stride: usize,
) {
    debug_assert_eq!((r1 - r0) % GROUP_ROWS, 0);
    let nb = w.cols() / QK_K;
    let groups = (r1 - r0) / GROUP_ROWS;
    let mut regrouped = vec![EMPTY; groups * nb];
    for (g, blocks) in regrouped.chunks_exact_mut(nb).enumerate() {
        // SAFETY: AVX2 is this function's contract.
        unsafe { regroup(w, r0 + g * GROUP_ROWS, blocks) };
    }
    let mut buf = [[0f32; GROUP_ROWS]; GROUP_TOKENS];
    // Tokens in blocks whose activations stay in the core's cache while every group passes over them.
    let token_block = (TOKEN_BLOCK_BYTES / (nb * std::mem::size_of::<ActBlockK>()))
        .next_multiple_of(GROUP_TOKENS);
    for (block_i, block) in tokens.chunks(token_block).enumerate() {
        for g in 0..groups {
            let g0 = r0 + g * GROUP_ROWS;
            let group = &regrouped[g * nb..(g + 1) * nb];
            for (tile_i, tile) in block.chunks(GROUP_TOKENS).enumerate() {
                let mut ptrs = [std::ptr::null::<ActBlockK>(); GROUP_TOKENS];
                for (p, &t) in ptrs.iter_mut().zip(tile) {
                    *p = acts.k_row(t).map_or(std::ptr::null(), |r| r.as_ptr());
                }
                let n = tile.len();
                // SAFETY: `group` holds `nb` blocks; every activation row has `nb` blocks (the caller's
                // checked shapes); `n <= GROUP_TOKENS`.
                unsafe {
                    match n {
                        1 => q4k_group::<1>(group.as_ptr(), nb, &ptrs, &mut buf),
                        2 => q4k_group::<2>(group.as_ptr(), nb, &ptrs, &mut buf),
                        3 => q4k_group::<3>(group.as_ptr(), nb, &ptrs, &mut buf),
                        _ => q4k_group::<4>(group.as_ptr(), nb, &ptrs, &mut buf),
                    }
                }
                let first = block_i * token_block + tile_i * GROUP_TOKENS;
                for (i, rows_out) in buf[..n].iter().enumerate() {
                    let at = slot(first + i) * out_stride + g0;
                    for (r, &v) in rows_out.iter().enumerate() {
                        // SAFETY: the caller guarantees these indices are ours to write.
                        unsafe { *out.ptr().add(at + r) = v };
                    }
                }
            }
        }
    }
}

/// `out[t][r] = Σ_c W[r, c] · a_t[c]` for the 16 regrouped rows and the first `N` tokens of `acts`.
///
/// # Safety
/// `g` points to `nb` group blocks, `acts[..N]` to rows of `nb` activation blocks; AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4k_group<const N: usize>(
    g: *const GroupBlock,
    nb: usize,
    acts: &[*const ActBlockK; GROUP_TOKENS],
    out: &mut [[f32; GROUP_ROWS]; GROUP_TOKENS],
) {
    let m4 = _mm256_set1_epi8(0x0F);
    // [token][half]: the outputs of rows 0–7 and 8–15.
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    for b in 0..nb {
        // SAFETY (whole body): block `b` of the group and of every activation row exist (the contract).
        unsafe {
            let blk = &*g.add(b);
            let mut isum = [[_mm256_setzero_si256(); 2]; N];
            for s in 0..8 {
                // Activations are in Q4_K order: sub-block s starts at q4k_act_pos(32 s).
                let off = q4k_act_pos(32 * s);
                let mut sum = [[_mm256_setzero_si256(); 2]; N];
                for k in 0..8 {
                    let q = _mm256_load_si256(blk.qs[8 * s + k].as_ptr() as *const __m256i);
                    let lo = _mm256_and_si256(q, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                    for t in 0..N {
                        let a = (*acts[t].add(b)).qs.as_ptr();
                        let a4 = _mm256_set1_epi32(std::ptr::read_unaligned(
                            a.add(off + 4 * k) as *const i32
                        ));
                        sum[t][0] = _mm256_add_epi16(sum[t][0], _mm256_maddubs_epi16(lo, a4));
                        sum[t][1] = _mm256_add_epi16(sum[t][1], _mm256_maddubs_epi16(hi, a4));
                    }
                }
                for h in 0..2 {
                    let scales =
                        _mm256_load_si256(blk.scales[2 * s + h].as_ptr() as *const __m256i);
                    for t in 0..N {
                        let scaled = _mm256_madd_epi16(sum[t][h], scales);
                        isum[t][h] = _mm256_add_epi32(isum[t][h], scaled);
                    }
                }
            }
            for h in 0..2 {
                let d = _mm256_load_ps(blk.d.as_ptr().add(HALF * h));
                for t in 0..N {
                    let a = &*acts[t].add(b);
                    let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                    acc[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t][h]), scale, acc[t][h]);
                    for s in 0..8 {
                        let mins = _mm256_load_ps(blk.mins[s].as_ptr().add(HALF * h));
                        acc[t][h] = _mm256_fnmadd_ps(mins, _mm256_set1_ps(a.msum[s]), acc[t][h]);
                    }
                }
            }
        }
    }
    for (token_out, token_acc) in out.iter_mut().zip(&acc) {
        for (half_out, half_acc) in token_out.chunks_exact_mut(HALF).zip(token_acc) {
            // SAFETY: `half_out` holds 8 floats.
            unsafe { _mm256_storeu_ps(half_out.as_mut_ptr(), *half_acc) };
        }
    }
}
