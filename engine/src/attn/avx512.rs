//! AVX-512 micro-kernels with the contracts of [`super::portable`]. Score and `P·V` tiles keep `R` query rows
//! × one 32-lane panel in 2·R zmm accumulators (≤ 16 of 32 registers), so each key or value panel row loaded
//! is used by every row of the group, and panels are read front to back (the hardware prefetchers follow);
//! tails are handled with lane masks (masked lanes never touch memory).
//! `exp2` is a degree-7 polynomial on the fraction plus `vscalefps` (≤ 2 ulp on the range softmax uses).

use std::arch::x86_64::*;

use super::KEY_TILE;
use crate::cache::PANEL;

/// Taylor coefficients of 2^f = e^(f·ln 2) for |f| ≤ 0.5 (truncation error < 5e-9 relative).
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

#[inline(always)]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// 2^x per lane, for x ≤ 128; inputs below −126 give 2^−126 (never a denormal, never a NaN from −∞).
///
/// # Safety
/// The CPU must support AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn exp2(x: __m512) -> __m512 {
    let x = _mm512_max_ps(x, _mm512_set1_ps(-126.0));
    // Round to nearest, exceptions suppressed.
    let n = _mm512_roundscale_ps::<0x08>(x);
    let f = _mm512_sub_ps(x, n);
    let mut p = _mm512_set1_ps(C[7]);
    for &c in C[..7].iter().rev() {
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// See [`super::portable::scores`]: one 32-key panel (2 registers per row) at a time, reading it sequentially.
///
/// # Safety
/// The CPU must support AVX-512F; `q.len() ≥ R·hd`, `n ≤ KEY_TILE`, `s.len() ≥ R·KEY_TILE`, and
/// `k.len() ≥ ⌈n/32⌉·32·hd`.
#[target_feature(enable = "avx512f")]
pub unsafe fn scores<const R: usize>(q: &[f32], hd: usize, k: &[f32], n: usize, s: &mut [f32]) {
    let (qp, kp, sp) = (q.as_ptr(), k.as_ptr(), s.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let (m0, m1) = (lanes(n - j), lanes((n - j).saturating_sub(16)));
        let mut a0 = [_mm512_setzero_ps(); R];
        let mut a1 = [_mm512_setzero_ps(); R];
        let panel = kp.add(j * hd);
        for d in 0..hd {
            let kd = panel.add(d * PANEL);
            let k0 = _mm512_maskz_loadu_ps(m0, kd);
            let k1 = _mm512_maskz_loadu_ps(m1, kd.add(16));
            for r in 0..R {
                let qv = _mm512_set1_ps(*qp.add(r * hd + d));
                a0[r] = _mm512_fmadd_ps(qv, k0, a0[r]);
                a1[r] = _mm512_fmadd_ps(qv, k1, a1[r]);
            }
        }
        for r in 0..R {
            let out = sp.add(r * KEY_TILE + j);
            _mm512_mask_storeu_ps(out, m0, a0[r]);
            // Past the row only when m1 is empty, and then nothing is written.
            _mm512_mask_storeu_ps(out.wrapping_add(16), m1, a1[r]);
        }
        j += PANEL;
    }
}

/// See [`super::portable::pv`]: one 32-dimension panel at a time, reading its positions sequentially.
///
/// # Safety
/// The CPU must support AVX-512F; `p.len() ≥ (R − 1)·KEY_TILE + n`, `o.len() ≥ R·hd`, and
/// `v.len() ≥ (⌈hd/32⌉ − 1)·vps + n·32`.
#[target_feature(enable = "avx512f")]
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
        let (m0, m1) = (lanes(hd - d), lanes((hd - d).saturating_sub(16)));
        let mut a0 = [_mm512_setzero_ps(); R];
        let mut a1 = [_mm512_setzero_ps(); R];
        for r in 0..R {
            let at = op.add(r * hd + d);
            a0[r] = _mm512_maskz_loadu_ps(m0, at);
            a1[r] = _mm512_maskz_loadu_ps(m1, at.wrapping_add(16));
        }
        let panel = vp.add((d / PANEL) * vps);
        for j in 0..n {
            let vj = panel.add(j * PANEL);
            let v0 = _mm512_maskz_loadu_ps(m0, vj);
            let v1 = _mm512_maskz_loadu_ps(m1, vj.add(16));
            for r in 0..R {
                let pb = _mm512_set1_ps(*pp.add(r * KEY_TILE + j));
                a0[r] = _mm512_fmadd_ps(pb, v0, a0[r]);
                a1[r] = _mm512_fmadd_ps(pb, v1, a1[r]);
            }
        }
        for r in 0..R {
            let at = op.add(r * hd + d);
            _mm512_mask_storeu_ps(at, m0, a0[r]);
            _mm512_mask_storeu_ps(at.wrapping_add(16), m1, a1[r]);
        }
        d += PANEL;
    }
}

/// See [`super::portable::softmax_row`].
///
/// # Safety
/// The CPU must support AVX-512F; `valid ≤ s.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn softmax_row(s: &mut [f32], valid: usize, m_old: f32) -> (f32, f32) {
    let sp = s.as_mut_ptr();
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut mx = ninf;
    let mut j = 0;
    while j < valid {
        let m = lanes(valid - j);
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, m, sp.add(j)));
        j += 16;
    }
    let m_new = m_old.max(_mm512_reduce_max_ps(mx));
    let mv = _mm512_set1_ps(m_new);
    let mut sum = _mm512_setzero_ps();
    j = 0;
    while j < valid {
        let m = lanes(valid - j);
        let e = _mm512_maskz_mov_ps(
            m,
            exp2(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, sp.add(j)), mv)),
        );
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(sp.add(j), m, e);
        j += 16;
    }
    s[valid..].fill(0.0);
    (m_new, _mm512_reduce_add_ps(sum))
}
