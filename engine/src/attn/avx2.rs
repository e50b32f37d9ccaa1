//! AVX2 + FMA micro-kernels with the contracts of [`super::portable`], for CPUs without AVX-512 (laptops,
//! desktops, Zen 1–3). Score and `P·V` tiles keep up to [`ROWS`] query rows × 16 lanes (two ymm registers per
//! row) in accumulators — at most 8 of the 16 registers, the rest for the loaded panel row and the broadcast —
//! so each key or value loaded is used by every row of the group; a 32-lane panel takes two passes. Tails use
//! `vmaskmovps` (masked lanes never touch memory).
//! `exp2` is the same degree-7 polynomial as the AVX-512 kernels, with the power of two built in the exponent
//! bits (inputs are clamped to [−126, 127], so 2ⁿ is always a normal float).

use std::arch::x86_64::*;

use super::KEY_TILE;
use crate::cache::PANEL;

/// Query rows per register block.
pub const ROWS: usize = 4;
/// Lanes per pass (two ymm registers).
const HALF: usize = 16;

const _: () = assert!(PANEL == 2 * HALF);

/// Taylor coefficients of 2^f = e^(f·ln 2) for |f| ≤ 0.5 (see the AVX-512 kernels).
const C: [f32; 8] = [
    1.0,
    std::f32::consts::LN_2,
    0.240_226_5,
    0.055_504_11,
    0.009_618_129,
    0.001_333_355_8,
    0.000_154_035_3,
    1.525_273_4e-5,
];

/// Lane masks for the first `n` of 8 lanes (`vmaskmovps` reads each lane's sign bit).
#[inline(always)]
unsafe fn mask8(n: usize) -> __m256i {
    let n = n.min(8) as i32;
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// Masked load of 8 lanes: lanes at or past `n` are 0 and never read.
#[inline(always)]
unsafe fn load8(p: *const f32, n: usize) -> __m256 {
    if n >= 8 {
        // SAFETY: the caller guarantees 8 readable floats when n ≥ 8.
        unsafe { _mm256_loadu_ps(p) }
    } else {
        // SAFETY: only the first `n` lanes are read.
        unsafe { _mm256_maskload_ps(p, mask8(n)) }
    }
}

/// Masked store of 8 lanes: only lanes below `n` are written.
#[inline(always)]
unsafe fn store8(p: *mut f32, n: usize, v: __m256) {
    if n >= 8 {
        // SAFETY: the caller guarantees 8 writable floats when n ≥ 8.
        unsafe { _mm256_storeu_ps(p, v) }
    } else if n > 0 {
        // SAFETY: only the first `n` lanes are written.
        unsafe { _mm256_maskstore_ps(p, mask8(n), v) }
    }
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

#[inline(always)]
unsafe fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
}

/// 2^x per lane; inputs are clamped to [−126, 127].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp2(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-126.0)),
        _mm256_set1_ps(127.0),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
    let f = _mm256_sub_ps(x, n);
    let mut p = _mm256_set1_ps(C[7]);
    for &c in C[..7].iter().rev() {
        p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c));
    }
    // 2^n as float bits: (n + 127) << 23, a normal number for n in [−126, 127].
    let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    ));
    _mm256_mul_ps(p, _mm256_castsi256_ps(pow2))
}

/// See [`super::portable::scores`]; `R ≤ ROWS`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `q.len() ≥ R·hd`, `n ≤ KEY_TILE`, `s.len() ≥ R·KEY_TILE`, and
/// `k.len() ≥ ⌈n/32⌉·32·hd`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn scores<const R: usize>(q: &[f32], hd: usize, k: &[f32], n: usize, s: &mut [f32]) {
    let (qp, kp, sp) = (q.as_ptr(), k.as_ptr(), s.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let panel = kp.add((j / PANEL) * PANEL * hd);
        let lane0 = j % PANEL;
        let (n0, n1) = (n - j, (n - j).saturating_sub(8));
        let mut a0 = [_mm256_setzero_ps(); R];
        let mut a1 = [_mm256_setzero_ps(); R];
        for d in 0..hd {
            let kd = panel.add(d * PANEL + lane0);
            let k0 = load8(kd, n0);
            let k1 = load8(kd.wrapping_add(8), n1);
            for r in 0..R {
                let qv = _mm256_broadcast_ss(&*qp.add(r * hd + d));
                a0[r] = _mm256_fmadd_ps(qv, k0, a0[r]);
                a1[r] = _mm256_fmadd_ps(qv, k1, a1[r]);
            }
        }
        for r in 0..R {
            let out = sp.add(r * KEY_TILE + j);
            store8(out, n0, a0[r]);
            store8(out.wrapping_add(8), n1, a1[r]);
        }
        j += HALF;
    }
}

/// See [`super::portable::pv`]; `R ≤ ROWS`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `p.len() ≥ (R − 1)·KEY_TILE + n`, `o.len() ≥ R·hd`, and
/// `v.len() ≥ (⌈hd/32⌉ − 1)·vps + n·32`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn pv<const R: usize>(
    p: &[f32],
    n: usize,
    v: &[f32],
    vps: usize,
    hd: usize,
    o: &mut [f32],
) {
    let (pp, vp, op) = (p.as_ptr(), v.as_ptr(), o.as_mut_ptr());
    let mut d = 0;
    while d < hd {
        let (n0, n1) = (hd - d, (hd - d).saturating_sub(8));
        let mut a0 = [_mm256_setzero_ps(); R];
        let mut a1 = [_mm256_setzero_ps(); R];
        for r in 0..R {
            let at = op.add(r * hd + d);
            a0[r] = load8(at, n0);
            a1[r] = load8(at.wrapping_add(8), n1);
        }
        let panel = vp.add((d / PANEL) * vps + d % PANEL);
        for j in 0..n {
            let vj = panel.add(j * PANEL);
            let v0 = load8(vj, n0);
            let v1 = load8(vj.wrapping_add(8), n1);
            for r in 0..R {
                let pb = _mm256_broadcast_ss(&*pp.add(r * KEY_TILE + j));
                a0[r] = _mm256_fmadd_ps(pb, v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(pb, v1, a1[r]);
            }
        }
        for r in 0..R {
            let at = op.add(r * hd + d);
            store8(at, n0, a0[r]);
            store8(at.wrapping_add(8), n1, a1[r]);
        }
        d += HALF;
    }
}

/// See [`super::portable::softmax_row`].
///
/// # Safety
/// The CPU must support AVX2 and FMA; `valid ≤ s.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn softmax_row(s: &mut [f32], valid: usize, m_old: f32) -> (f32, f32) {
    let sp = s.as_mut_ptr();
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut mx = ninf;
    let mut j = 0;
    while j < valid {
        let n = valid - j;
        let x = load8(sp.add(j), n);
        // Masked-off lanes load as 0: replace them with −∞ so they never win the max.
        let x = if n >= 8 {
            x
        } else {
            _mm256_blendv_ps(ninf, x, _mm256_castsi256_ps(mask8(n)))
        };
        mx = _mm256_max_ps(mx, x);
        j += 8;
    }
    let m_new = m_old.max(hmax(mx));
    let mv = _mm256_set1_ps(m_new);
    let mut sum = _mm256_setzero_ps();
    j = 0;
    while j < valid {
        let n = valid - j;
        let e = exp2(_mm256_sub_ps(load8(sp.add(j), n), mv));
        let e = if n >= 8 {
            e
        } else {
            _mm256_and_ps(e, _mm256_castsi256_ps(mask8(n)))
        };
        sum = _mm256_add_ps(sum, e);
        store8(sp.add(j), n, e);
        j += 8;
    }
    s[valid..].fill(0.0);
    (m_new, hsum(sum))
}
