//! AVX2 + FMA + F16C kernels (Haswell / Zen and later), following ggml's AVX2 structure: 32 values per
//! `vpmaddubsw` (u8 level × i8 activation) and `vpmaddwd` (× sub-block scale → i32); Q4_K minimums
//! through the activations' `msum`, Q6_K's `-32` through `bsums`. Q8_0 · Q8_0 uses the sign trick
//! (`|w|` × `sign(a, w)`), since offsetting by 128 would saturate `vpmaddubsw`.

use std::arch::x86_64::*;

use super::acts::{q4k_act_pos, ActBlockK, RowQ8_0};
use super::isa::{KernelSet, MAX_TILE};
use super::quant::{q4_k, q6_k, QK8_0};

/// The AVX2 kernel set.
pub(crate) static KERNELS: KernelSet = KernelSet {
    q4k: q4k_tile,
    q4k_rows: Some(super::avx2_groups::q4k_rows),
    q6k: q6k_tile,
    q8_0: q8_0_tile,
};

/// AVX2 has 16 vector registers: tiles wider than this are split.
const WIDTH: usize = 4;

/// Calls `$f::<N>` with `N = $n` for `N` in `1..=WIDTH`.
macro_rules! by_width {
    ($n:expr, $f:ident, $($arg:expr),*) => {
        match $n {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}

const _: () = assert!(MAX_TILE.is_multiple_of(WIDTH));

#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 2 readable bytes at `p`; F16C is enabled in every caller.
    unsafe {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
            std::ptr::read_unaligned(p as *const u16) as i32,
        )))
    }
}

#[inline(always)]
unsafe fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// `vpshufb` control broadcasting i16 lane `m` within each 128-bit lane.
#[inline(always)]
unsafe fn pick_i16(m: i16) -> __m256i {
    _mm256_set1_epi16(((2 * m + 1) << 8) | (2 * m))
}

/// # Safety
/// The [`super::isa::TileK`] contract, and the CPU supports AVX2, FMA, F16C.
unsafe fn q4k_tile(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]) {
    for (a, o) in acts.chunks(WIDTH).zip(out.chunks_mut(WIDTH)) {
        // SAFETY: forwarded contract, on a sub-tile.
        unsafe { by_width!(a.len(), q4k_n, w, nb, a, o) }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4k_n<const N: usize>(
    w: *const u8,
    nb: usize,
    acts: &[*const ActBlockK],
    out: &mut [f32],
) {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut a_ptr = [std::ptr::null::<ActBlockK>(); N];
    a_ptr.copy_from_slice(&acts[..N]);
    // One accumulator per token for both terms (the scaled sums and, subtracted, the minimums): separate
    // ones spilled registers out of the 16 AVX2 has.
    let mut acc = [_mm256_setzero_ps(); N];
    for b in 0..nb {
        // SAFETY (whole body): block `b` of the row and of every activation row exist (TileK contract).
        unsafe {
            let blk = w.add(b * q4_k::BLOCK_BYTES);
            let d = f16_at(blk);
            let dmin = f16_at(blk.add(2));
            let (sc, mn) =
                super::quant::q4_k::unpack_scales(std::slice::from_raw_parts(blk.add(4), 12));
            let minsf = _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(
                    mn,
                )))),
                _mm256_set1_ps(dmin),
            );
            let scb = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(
                i64::from_le_bytes(sc),
            )));
            let mut isum = [_mm256_setzero_si256(); N];
            for j in 0..4 {
                let q = _mm256_loadu_si256(blk.add(q4_k::QS_AT + 32 * j) as *const __m256i);
                let lo = _mm256_and_si256(q, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                let s_lo = _mm256_shuffle_epi8(scb, pick_i16(2 * j as i16));
                let s_hi = _mm256_shuffle_epi8(scb, pick_i16(2 * j as i16 + 1));
                // Activations are in Q4_K order: sub-block 2j at q4k_act_pos(64 j), 2j+1 at q4k_act_pos(64 j + 32).
                let (off_lo, off_hi) = (q4k_act_pos(64 * j), q4k_act_pos(64 * j + 32));
                for t in 0..N {
                    let a = (*a_ptr[t].add(b)).qs.as_ptr();
                    let pl = _mm256_maddubs_epi16(
                        lo,
                        _mm256_loadu_si256(a.add(off_lo) as *const __m256i),
                    );
                    let ph = _mm256_maddubs_epi16(
                        hi,
                        _mm256_loadu_si256(a.add(off_hi) as *const __m256i),
                    );
                    let s =
                        _mm256_add_epi32(_mm256_madd_epi16(pl, s_lo), _mm256_madd_epi16(ph, s_hi));
                    isum[t] = _mm256_add_epi32(isum[t], s);
                }
            }
            for t in 0..N {
                let a = &*a_ptr[t].add(b);
                acc[t] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * a.d), acc[t]);
                acc[t] = _mm256_fnmadd_ps(minsf, _mm256_load_ps(a.msum.as_ptr()), acc[t]);
            }
        }
    }
    for t in 0..N {
        // SAFETY: register arithmetic on enabled features.
        out[t] = unsafe { hsum_ps(acc[t]) };
    }
}

/// # Safety
/// As [`q4k_tile`].
unsafe fn q6k_tile(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]) {
    for (a, o) in acts.chunks(WIDTH).zip(out.chunks_mut(WIDTH)) {
        // SAFETY: forwarded contract, on a sub-tile.
        unsafe { by_width!(a.len(), q6k_n, w, nb, a, o) }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6k_n<const N: usize>(
    w: *const u8,
    nb: usize,
    acts: &[*const ActBlockK],
    out: &mut [f32],
) {
    let m4 = _mm256_set1_epi8(0x0F);
    let m30 = _mm256_set1_epi8(0x30);
    // Shuffle controls: 128-bit lane 0 takes i16 #2k, lane 1 takes #2k+1 (of a lane-broadcast source).
    let ctrl = |k: i16| {
        let pick = |i: i16| _mm_set1_epi16(((2 * i + 1) << 8) | (2 * i));
        _mm256_set_m128i(pick(2 * k + 1), pick(2 * k))
    };
    let ctrls = [ctrl(0), ctrl(1), ctrl(2), ctrl(3)];
    let mut a_ptr = [std::ptr::null::<ActBlockK>(); N];
    a_ptr.copy_from_slice(&acts[..N]);
    let mut acc = [_mm256_setzero_ps(); N];
    for b in 0..nb {
        // SAFETY (whole body): as in `q4k_n`; `bsums` sits 32-byte aligned at offset 256.
        unsafe {
            let blk = w.add(b * q6_k::BLOCK_BYTES);
            let d = f16_at(blk.add(q6_k::D_AT));
            let sc16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(q6_k::SCALES_AT) as *const __m128i));
            let sc_b = [
                _mm256_permute2x128_si256::<0x00>(sc16, sc16),
                _mm256_permute2x128_si256::<0x11>(sc16, sc16),
            ];
            let corr = _mm256_slli_epi16::<5>(sc16);
            let mut isum = [_mm256_setzero_si256(); N];
            for t in 0..N {
                let a = &*a_ptr[t].add(b);
                isum[t] = _mm256_sub_epi32(
                    isum[t],
                    _mm256_madd_epi16(_mm256_load_si256(a.bsums.as_ptr() as *const __m256i), corr),
                );
            }
            for (h, scb) in sc_b.iter().enumerate() {
                let ql_a = _mm256_loadu_si256(blk.add(64 * h) as *const __m256i);
                let ql_b = _mm256_loadu_si256(blk.add(64 * h + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(blk.add(q6_k::QH_AT + 32 * h) as *const __m256i);
                let v = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql_a, m4),
                        _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql_b, m4),
                        _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql_a), m4),
                        _mm256_and_si256(qh, m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql_b), m4),
                        _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
                    ),
                ];
                for (m, vm) in v.iter().enumerate() {
                    let s = _mm256_shuffle_epi8(*scb, ctrls[m]);
                    for t in 0..N {
                        let a = (*a_ptr[t].add(b)).qs.as_ptr().add(128 * h + 32 * m);
                        let p = _mm256_maddubs_epi16(*vm, _mm256_loadu_si256(a as *const __m256i));
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, s));
                    }
                }
            }
            for t in 0..N {
                let a = &*a_ptr[t].add(b);
                acc[t] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * a.d), acc[t]);
            }
        }
    }
    for t in 0..N {
        // SAFETY: register arithmetic on enabled features.
        out[t] = unsafe { hsum_ps(acc[t]) };
    }
}

/// # Safety
/// The [`super::isa::TileQ8`] contract, and the CPU supports AVX2, FMA, F16C.
unsafe fn q8_0_tile(w: *const u8, nb: usize, acts: &[RowQ8_0], out: &mut [f32]) {
    for (a, o) in acts.chunks(WIDTH).zip(out.chunks_mut(WIDTH)) {
        // SAFETY: forwarded contract, on a sub-tile.
        unsafe { by_width!(a.len(), q8_0_n, w, nb, a, o) }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_n<const N: usize>(w: *const u8, nb: usize, acts: &[RowQ8_0], out: &mut [f32]) {
    let ones = _mm256_set1_epi16(1);
    let mut rows = [acts[0]; N];
    rows.copy_from_slice(&acts[..N]);
    let mut acc = [_mm256_setzero_ps(); N];
    for b in 0..nb {
        // SAFETY (whole body): block `b` exists in the weight row and every activation row.
        unsafe {
            let blk = w.add(b * (2 + QK8_0));
            let dw = _mm256_set1_ps(f16_at(blk));
            let wq = _mm256_loadu_si256(blk.add(2) as *const __m256i);
            let aw = _mm256_sign_epi8(wq, wq);
            for t in 0..N {
                let r = rows[t];
                let x = _mm256_loadu_si256(r.qs.add(QK8_0 * b) as *const __m256i);
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, wq)), ones);
                let scale = _mm256_mul_ps(dw, _mm256_loadu_ps(r.d8.add(8 * b)));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[t]);
            }
        }
    }
    for t in 0..N {
        // SAFETY: register arithmetic on enabled features.
        out[t] = unsafe { hsum_ps(acc[t]) };
    }
}
