//! AVX-512 (F/BW/VL) + VNNI kernels: one weight row against a tile of up to [`MAX_TILE`] tokens.
//!
//! Each weight block is unpacked once into 64-byte vectors of unsigned levels in value order plus
//! per-lane i16 scale vectors; then for every token `vpmaddubsw` (u8 level × i8 activation → i16
//! pairs, no saturation at these ranges) and `vpdpwssd` (× scale, accumulate i32) do 64 values in two
//! instructions. Offsets are folded in through the activation block sums: Q4_K's minimums with one
//! 8-wide FMA against the precomputed `msum`, Q6_K's `-32` with one `vpmaddwd` of `bsums` × 32·scales.
//! Q8_0 weights are offset by 128 (`xor 0x80`) so `vpdpbusd` applies, starting from the activations'
//! precomputed `-128 · Σq` correction. Integer sums are exact; one float FMA per block and token.

use std::arch::x86_64::*;

use super::acts::{ActBlockK, RowQ8_0};
use super::isa::{KernelSet, MAX_TILE};
use super::quant::{q4_k, q6_k, QK8_0};

/// The AVX-512 VNNI kernel set.
pub(crate) static KERNELS: KernelSet = KernelSet {
    q4k: q4k_tile,
    q4k_rows: None,
    q6k: q6k_tile,
    q8_0: q8_0_tile,
};

/// Calls `$f::<N>` with `N = $n` for `N` in `1..=MAX_TILE`.
macro_rules! by_width {
    ($n:expr, $f:ident, $($arg:expr),*) => {
        match $n {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            _ => $f::<8>($($arg),*),
        }
    };
}

const _: () = assert!(MAX_TILE == 8);

/// Reads an f16 at `p` (unaligned) as f32.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 2 readable bytes at `p`; F16C is enabled in every caller.
    unsafe {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
            std::ptr::read_unaligned(p as *const u16) as i32,
        )))
    }
}

/// Q4_K's 12 scale bytes → (8 scales, 8 mins) as bytes in two u64 (ggml's `utmp` shuffle).
#[inline(always)]
unsafe fn q4k_scales_mins(p: *const u8) -> (u64, u64) {
    const KM1: u32 = 0x3f3f_3f3f;
    const KM2: u32 = 0x0f0f_0f0f;
    const KM3: u32 = 0x0303_0303;
    // SAFETY: the caller guarantees 12 readable bytes at `p`.
    let (u0, u1, u2) = unsafe {
        (
            std::ptr::read_unaligned(p as *const u32),
            std::ptr::read_unaligned(p.add(4) as *const u32),
            std::ptr::read_unaligned(p.add(8) as *const u32),
        )
    };
    let sc_lo = u0 & KM1;
    let sc_hi = (u2 & KM2) | (((u0 >> 6) & KM3) << 4);
    let mn_lo = u1 & KM1;
    let mn_hi = ((u2 >> 4) & KM2) | (((u1 >> 6) & KM3) << 4);
    (
        sc_lo as u64 | (sc_hi as u64) << 32,
        mn_lo as u64 | (mn_hi as u64) << 32,
    )
}

/// Sum of the 8 lanes.
#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// How far ahead of the current block the weight stream is prefetched, in bytes. The hardware
/// prefetchers stop at 4 KiB page boundaries; a software prefetch this far ahead keeps the stream
/// going across them (measured: see docs/BENCHMARKS.md).
const PREFETCH_AHEAD: usize = 2048;

/// Prefetches the cache lines of the block `len` bytes long that starts `PREFETCH_AHEAD` past `p`.
#[inline(always)]
unsafe fn prefetch_block(p: *const u8, len: usize) {
    // Prefetches never fault; `wrapping_add` keeps the address computation defined past the row end.
    let a = p.wrapping_add(PREFETCH_AHEAD);
    let mut off = 0;
    while off < len {
        _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(off) as *const i8);
        off += 64;
    }
    _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(len - 1) as *const i8);
}

/// i16 lane index vector: lanes 0..16 = `a`, 16..32 = `b` (for `vpermw`).
#[inline(always)]
unsafe fn idx_halves(a: i16, b: i16) -> __m512i {
    _mm512_mask_blend_epi16(0xFFFF_0000, _mm512_set1_epi16(a), _mm512_set1_epi16(b))
}

/// # Safety
/// The [`super::isa::TileK`] contract, and the CPU supports AVX-512 F/BW/VL/VNNI, AVX2, FMA, F16C.
unsafe fn q4k_tile(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]) {
    // SAFETY: forwarded contract.
    unsafe { by_width!(acts.len(), q4k_n, w, nb, acts, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn q4k_n<const N: usize>(
    w: *const u8,
    nb: usize,
    acts: &[*const ActBlockK],
    out: &mut [f32],
) {
    let m4 = _mm512_set1_epi8(0x0F);
    // Activations are in Q4_K order (sub-blocks 0 2 1 3 4 6 5 7), matching the nibble vectors below.
    let (i02, i13, i46, i57) = (
        idx_halves(0, 2),
        idx_halves(1, 3),
        idx_halves(4, 6),
        idx_halves(5, 7),
    );
    let mut a_ptr = [std::ptr::null::<ActBlockK>(); N];
    a_ptr.copy_from_slice(&acts[..N]);
    let mut acc = [_mm512_setzero_ps(); N];
    let mut accm = [_mm256_setzero_ps(); N];
    for b in 0..nb {
        // SAFETY (whole loop body): block `b < nb` of the row and of every activation row exist (TileK
        // contract); ActBlockK is 64-byte aligned with `qs` at 0 and `msum` at 288, so the aligned
        // loads are aligned.
        unsafe {
            let blk = w.add(b * q4_k::BLOCK_BYTES);
            prefetch_block(blk, q4_k::BLOCK_BYTES);
            let dv = _mm512_set1_ps(f16_at(blk));
            let dmin = f16_at(blk.add(2));
            let (sc, mn) = q4k_scales_mins(blk.add(q4_k::SCALES_AT));
            let minsf = _mm256_mul_ps(
                _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(mn as i64))),
                _mm256_set1_ps(dmin),
            );
            let sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(sc as i64)));
            let (s0, s1, s2, s3) = (
                _mm512_permutexvar_epi16(i02, sc16),
                _mm512_permutexvar_epi16(i13, sc16),
                _mm512_permutexvar_epi16(i46, sc16),
                _mm512_permutexvar_epi16(i57, sc16),
            );
            // Nibbles of bytes 0..64: low = sub-blocks 0 | 2, high = 1 | 3 (and 4 | 6, 5 | 7 for 64..128).
            let z0 = _mm512_loadu_si512(blk.add(q4_k::QS_AT) as *const _);
            let z1 = _mm512_loadu_si512(blk.add(q4_k::QS_AT + 64) as *const _);
            let w0 = _mm512_and_si512(z0, m4);
            let w1 = _mm512_and_si512(_mm512_srli_epi16::<4>(z0), m4);
            let w2 = _mm512_and_si512(z1, m4);
            let w3 = _mm512_and_si512(_mm512_srli_epi16::<4>(z1), m4);
            for t in 0..N {
                let a = &*a_ptr[t].add(b);
                let q = a.qs.as_ptr() as *const __m512i;
                let p0 = _mm512_maddubs_epi16(w0, _mm512_load_si512(q));
                let p1 = _mm512_maddubs_epi16(w1, _mm512_load_si512(q.add(1)));
                let p2 = _mm512_maddubs_epi16(w2, _mm512_load_si512(q.add(2)));
                let p3 = _mm512_maddubs_epi16(w3, _mm512_load_si512(q.add(3)));
                let mut isum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), p0, s0);
                isum = _mm512_dpwssd_epi32(isum, p1, s1);
                isum = _mm512_dpwssd_epi32(isum, p2, s2);
                isum = _mm512_dpwssd_epi32(isum, p3, s3);
                let scale = _mm512_mul_ps(dv, _mm512_set1_ps(a.d));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[t]);
                accm[t] = _mm256_fmadd_ps(minsf, _mm256_load_ps(a.msum.as_ptr()), accm[t]);
            }
        }
    }
    for t in 0..N {
        // SAFETY: plain register arithmetic on enabled features.
        out[t] = _mm512_reduce_add_ps(acc[t]) - unsafe { hsum256(accm[t]) };
    }
}

/// # Safety
/// As [`q4k_tile`].
unsafe fn q6k_tile(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]) {
    // SAFETY: forwarded contract.
    unsafe { by_width!(acts.len(), q6k_n, w, nb, acts, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn q6k_n<const N: usize>(
    w: *const u8,
    nb: usize,
    acts: &[*const ActBlockK],
    out: &mut [f32],
) {
    let m4 = _mm512_set1_epi8(0x0F);
    let m30 = _mm512_set1_epi8(0x30);
    // Index vectors for [s_{4k} ×8, s_{4k+1} ×8, s_{4k+2} ×8, s_{4k+3} ×8].
    let quarter = |k: i16| {
        let a = idx_halves(4 * k, 4 * k + 2);
        let b = idx_halves(4 * k + 1, 4 * k + 3);
        // lanes 0..8 a-first, 8..16 b-first, 16..24 a-second, 24..32 b-second
        _mm512_mask_blend_epi16(0xFF00_FF00, a, b)
    };
    let (i0, i1, i2, i3) = (quarter(0), quarter(1), quarter(2), quarter(3));
    // Move qh bit pairs to bits 4..5: first 32 bytes of a 64-byte vector use one shift, last 32 another.
    let shl = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4);
    let shr = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    let mut a_ptr = [std::ptr::null::<ActBlockK>(); N];
    a_ptr.copy_from_slice(&acts[..N]);
    let mut acc = [_mm512_setzero_ps(); N];
    for b in 0..nb {
        // SAFETY (whole loop body): as in `q4k_n`; `bsums` is at offset 256 of the aligned block.
        unsafe {
            let blk = w.add(b * q6_k::BLOCK_BYTES);
            prefetch_block(blk, q6_k::BLOCK_BYTES);
            let dv = _mm512_set1_ps(f16_at(blk.add(q6_k::D_AT)));
            let sc16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(q6_k::SCALES_AT) as *const __m128i));
            let scz = _mm512_castsi256_si512(sc16);
            let sv = [
                _mm512_permutexvar_epi16(i0, scz),
                _mm512_permutexvar_epi16(i1, scz),
                _mm512_permutexvar_epi16(i2, scz),
                _mm512_permutexvar_epi16(i3, scz),
            ];
            let corr = _mm256_slli_epi16::<5>(sc16);
            let mut wv = [_mm512_setzero_si512(); 4];
            for h in 0..2 {
                let z = _mm512_loadu_si512(blk.add(64 * h) as *const _);
                let qh = _mm256_loadu_si256(blk.add(q6_k::QH_AT + 32 * h) as *const __m256i);
                let qhz = _mm512_broadcast_i64x4(qh);
                let lo = _mm512_and_si512(z, m4);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(z), m4);
                let hb_lo = _mm512_and_si512(_mm512_sllv_epi64(qhz, shl), m30);
                let hb_hi = _mm512_and_si512(_mm512_srlv_epi64(qhz, shr), m30);
                wv[2 * h] = _mm512_or_si512(lo, hb_lo);
                wv[2 * h + 1] = _mm512_or_si512(hi, hb_hi);
            }
            for t in 0..N {
                let a = &*a_ptr[t].add(b);
                let q = a.qs.as_ptr() as *const __m512i;
                let mut isum = _mm512_setzero_si512();
                for k in 0..4 {
                    let p = _mm512_maddubs_epi16(wv[k], _mm512_load_si512(q.add(k)));
                    isum = _mm512_dpwssd_epi32(isum, p, sv[k]);
                }
                let c =
                    _mm256_madd_epi16(_mm256_load_si256(a.bsums.as_ptr() as *const __m256i), corr);
                isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(c));
                let scale = _mm512_mul_ps(dv, _mm512_set1_ps(a.d));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[t]);
            }
        }
    }
    for t in 0..N {
        out[t] = _mm512_reduce_add_ps(acc[t]);
    }
}

/// # Safety
/// The [`super::isa::TileQ8`] contract, and the CPU supports AVX-512 F/BW/VL/VNNI, AVX2, FMA, F16C.
unsafe fn q8_0_tile(w: *const u8, nb: usize, acts: &[RowQ8_0], out: &mut [f32]) {
    // SAFETY: forwarded contract.
    unsafe { by_width!(acts.len(), q8_0_n, w, nb, acts, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn q8_0_n<const N: usize>(w: *const u8, nb: usize, acts: &[RowQ8_0], out: &mut [f32]) {
    const BB: usize = 2 + QK8_0;
    let m80 = _mm512_set1_epi8(0x80u8 as i8);
    let idx01 = _mm512_mask_blend_epi32(0xFF00, _mm512_setzero_si512(), _mm512_set1_epi32(1));
    let mut rows = [acts[0]; N];
    rows.copy_from_slice(&acts[..N]);
    let mut acc = [_mm512_setzero_ps(); N];
    let mut b = 0;
    while b + 2 <= nb {
        // SAFETY (whole body): blocks b, b+1 exist in the weight row and every activation row (TileQ8
        // contract: `nb * 32` quants, `nb * 8` scales and corrections per row).
        unsafe {
            let p0 = w.add(b * BB);
            let p1 = p0.add(BB);
            prefetch_block(p0, 2 * BB);
            let dpair = std::ptr::read_unaligned(p0 as *const u16) as i32
                | (std::ptr::read_unaligned(p1 as *const u16) as i32) << 16;
            let d4 = _mm_cvtph_ps(_mm_cvtsi32_si128(dpair));
            let dwv = _mm512_permutexvar_ps(idx01, _mm512_castps128_ps512(d4));
            let wq = _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_loadu_si256(p0.add(2) as *const __m256i)),
                _mm256_loadu_si256(p1.add(2) as *const __m256i),
            );
            let wu = _mm512_xor_si512(wq, m80);
            for t in 0..N {
                let r = rows[t];
                let c = _mm512_loadu_si512(r.corr8.add(8 * b) as *const _);
                let x = _mm512_loadu_si512(r.qs.add(QK8_0 * b) as *const _);
                let isum = _mm512_dpbusd_epi32(c, wu, x);
                let scale = _mm512_mul_ps(dwv, _mm512_loadu_ps(r.d8.add(8 * b)));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc[t]);
            }
        }
        b += 2;
    }
    let mut tail = [0f32; N];
    if b < nb {
        // SAFETY: block b (the last) exists in every row, as above.
        unsafe {
            let p0 = w.add(b * BB);
            let dw = _mm256_set1_ps(f16_at(p0));
            let wu = _mm256_xor_si256(
                _mm256_loadu_si256(p0.add(2) as *const __m256i),
                _mm256_set1_epi8(0x80u8 as i8),
            );
            for t in 0..N {
                let r = rows[t];
                let c = _mm256_loadu_si256(r.corr8.add(8 * b) as *const __m256i);
                let x = _mm256_loadu_si256(r.qs.add(QK8_0 * b) as *const __m256i);
                let isum = _mm256_dpbusd_epi32(c, wu, x);
                let v = _mm256_mul_ps(
                    _mm256_cvtepi32_ps(isum),
                    _mm256_mul_ps(dw, _mm256_loadu_ps(r.d8.add(8 * b))),
                );
                tail[t] = hsum256(v);
            }
        }
    }
    for t in 0..N {
        out[t] = _mm512_reduce_add_ps(acc[t]) + tail[t];
    }
}
