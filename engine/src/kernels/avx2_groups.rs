//! AVX2 prefill for Q4_K: eight weight rows at a time, one row per 32-bit lane.
//!
//! The one-row kernels in [`super::avx2`] need a `vpmaddwd` by the sub-block scale for every 32 values of every
//! token, and a horizontal sum per output: with `vpmaddubsw` that is 2 of the 4 multiply-port instructions per
//! 32 products. Here a register holds 4 values of each of 8 rows; the token's 4 matching activation bytes are
//! broadcast to every lane, so one `vpmaddubsw` gives 2 partial sums per row, and the 8 of a 32-value sub-block
//! add up in 16 bits (|8 · 2 · 15 · 128| < 2¹⁵) before one `vpmaddwd` applies the 8 rows' scales at once. The
//! lanes end as the 8 outputs of a token, stored without a horizontal sum.
//!
//! The weights are regrouped on the fly ([`regroup`]) into a scratch buffer, once per 8 rows, and used by every
//! token of the call: worth it only for prefill, where the cost (one pass over the rows' bytes) is shared by
//! many tokens. The nibble bytes are GGUF's own, moved in 4-byte words; scales and minimums are expanded to the
//! vectors the kernel multiplies with.

use std::arch::x86_64::*;

use super::acts::{q4k_act_pos, ActBlockK, Activations};
use super::isa::GROUP_ROWS;
use super::matmul::{OutPtr, QuantMatrix};
use super::quant::{q4_k, read_f16, QK_K};

/// Tokens per kernel call (accumulators for more spill out of AVX2's 16 registers).
const GROUP_TOKENS: usize = 4;
/// Bytes of activations one pass over the groups reuses (a share of a core's L2 cache).
const TOKEN_BLOCK_BYTES: usize = 128 * 1024;
const _: () = assert!(
    GROUP_ROWS == 8,
    "one row per 32-bit lane of a 256-bit register"
);

/// One Q4_K block (256 values) of 8 rows, regrouped.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct GroupBlock {
    /// For sub-block pair `p` (sub-blocks `2p`, `2p + 1`) and step `k` (values `4k..4k + 4` of each),
    /// `qs[8p + k][4r + i]` is row `r`'s GGUF byte `32p + 4k + i`: value `4k + i` of sub-block `2p` in the low
    /// nibble, of `2p + 1` in the high one.
    qs: [[u8; 32]; 32],
    /// `scales[s][2r] = scales[s][2r + 1]` = row `r`'s 6-bit scale of sub-block `s`.
    scales: [[i16; 16]; 8],
    /// `mins[s][r]` = row `r`'s `dmin · m_s`.
    mins: [[f32; 8]; 8],
    /// `d[r]`.
    d: [f32; 8],
}

const EMPTY: GroupBlock = GroupBlock {
    qs: [[0; 32]; 32],
    scales: [[0; 16]; 8],
    mins: [[0.0; 8]; 8],
    d: [0.0; 8],
};

/// Regroups rows `r0..r0 + 8` of `w` (Q4_K) into `out` (one [`GroupBlock`] per block of 256 columns).
fn regroup(w: &QuantMatrix<'_>, r0: usize, out: &mut Vec<GroupBlock>) {
    let nb = w.cols() / QK_K;
    out.clear();
    out.resize(nb, EMPTY);
    let row_bytes = w.row_bytes();
    for r in 0..GROUP_ROWS {
        let row = &w.data()[(r0 + r) * row_bytes..(r0 + r + 1) * row_bytes];
        for (blk, group) in row.chunks_exact(q4_k::BLOCK_BYTES).zip(out.iter_mut()) {
            let dmin = read_f16(blk, 2);
            group.d[r] = read_f16(blk, 0);
            let (sc, mn) = q4_k::unpack_scales(&blk[q4_k::SCALES_AT..q4_k::SCALES_AT + 12]);
            for s in 0..8 {
                group.scales[s][2 * r] = sc[s] as i16;
                group.scales[s][2 * r + 1] = sc[s] as i16;
                group.mins[s][r] = dmin * mn[s] as f32;
            }
            let qs = &blk[q4_k::QS_AT..q4_k::QS_AT + QK_K / 2];
            for (step, word) in group.qs.iter_mut().zip(qs.chunks_exact(4)) {
                step[4 * r..4 * r + 4].copy_from_slice(word);
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
    let mut regrouped = Vec::with_capacity(groups * nb);
    let mut group = Vec::with_capacity(nb);
    for g in 0..groups {
        regroup(w, r0 + g * GROUP_ROWS, &mut group);
        regrouped.extend_from_slice(&group);
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

/// `out[t][r] = Σ_c W[r, c] · a_t[c]` for the 8 regrouped rows and the first `N` tokens of `acts`.
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
    let mut acc = [_mm256_setzero_ps(); N];
    for b in 0..nb {
        // SAFETY (whole body): block `b` of the group and of every activation row exist (the contract).
        unsafe {
            let blk = &*g.add(b);
            let mut isum = [_mm256_setzero_si256(); N];
            for p in 0..4 {
                // Activations are in Q4_K order: sub-block 2p at q4k_act_pos(64 p), 2p+1 at q4k_act_pos(64 p + 32).
                let (off_lo, off_hi) = (q4k_act_pos(64 * p), q4k_act_pos(64 * p + 32));
                let mut sum_lo = [_mm256_setzero_si256(); N];
                let mut sum_hi = [_mm256_setzero_si256(); N];
                for k in 0..8 {
                    let q = _mm256_load_si256(blk.qs[8 * p + k].as_ptr() as *const __m256i);
                    let lo = _mm256_and_si256(q, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                    for t in 0..N {
                        let a = (*acts[t].add(b)).qs.as_ptr();
                        let a_lo = _mm256_set1_epi32(std::ptr::read_unaligned(
                            a.add(off_lo + 4 * k) as *const i32,
                        ));
                        let a_hi = _mm256_set1_epi32(std::ptr::read_unaligned(
                            a.add(off_hi + 4 * k) as *const i32,
                        ));
                        sum_lo[t] = _mm256_add_epi16(sum_lo[t], _mm256_maddubs_epi16(lo, a_lo));
                        sum_hi[t] = _mm256_add_epi16(sum_hi[t], _mm256_maddubs_epi16(hi, a_hi));
                    }
                }
                let s_lo = _mm256_load_si256(blk.scales[2 * p].as_ptr() as *const __m256i);
                let s_hi = _mm256_load_si256(blk.scales[2 * p + 1].as_ptr() as *const __m256i);
                for t in 0..N {
                    let s = _mm256_add_epi32(
                        _mm256_madd_epi16(sum_lo[t], s_lo),
                        _mm256_madd_epi16(sum_hi[t], s_hi),
                    );
                    isum[t] = _mm256_add_epi32(isum[t], s);
                }
            }
            let d = _mm256_load_ps(blk.d.as_ptr());
            for t in 0..N {
                let a = &*acts[t].add(b);
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a.d));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), scale, acc[t]);
                for s in 0..8 {
                    let mins = _mm256_load_ps(blk.mins[s].as_ptr());
                    acc[t] = _mm256_fnmadd_ps(mins, _mm256_set1_ps(a.msum[s]), acc[t]);
                }
            }
        }
    }
    for t in 0..N {
        // SAFETY: `out[t]` holds 8 floats.
        unsafe { _mm256_storeu_ps(out[t].as_mut_ptr(), acc[t]) };
    }
}
