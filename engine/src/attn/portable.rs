//! The portable micro-kernels: plain loops the compiler vectorizes with the baseline instruction set. They are
//! the reference the AVX-512 versions are tested against, and what runs on CPUs without AVX-512.

use super::KEY_TILE;
use crate::cache::PANEL;

/// `s[r·KEY_TILE + j] = Σ_d q[r·hd + d] · K[d, j]` for `r < rows`, `j < n`; `k` holds the keys in panels
/// (`K[d, j] = k[(j / PANEL)·hd·PANEL + d·PANEL + j % PANEL]`, see [`crate::cache`]).
pub fn scores(q: &[f32], rows: usize, hd: usize, k: &[f32], n: usize, s: &mut [f32]) {
    for r in 0..rows {
        let out = &mut s[r * KEY_TILE..][..n];
        out.fill(0.0);
        let qr = &q[r * hd..][..hd];
        for (c, out) in out.chunks_mut(PANEL).enumerate() {
            let panel = &k[c * hd * PANEL..];
            for (d, &qd) in qr.iter().enumerate() {
                // One query value against the panel's consecutive keys (vectorizes over j).
                for (o, &kv) in out.iter_mut().zip(&panel[d * PANEL..]) {
                    *o += qd * kv;
                }
            }
        }
    }
}

/// `o[r·hd + d] += Σ_j p[r·KEY_TILE + j] · V[j, d]` for `r < rows`, `j < n`; `v` holds the values in panels
/// `vps` apart (`V[j, d] = v[(d / PANEL)·vps + j·PANEL + d % PANEL]`).
pub fn pv(p: &[f32], rows: usize, n: usize, v: &[f32], vps: usize, hd: usize, o: &mut [f32]) {
    for r in 0..rows {
        let or = &mut o[r * hd..][..hd];
        for (c, oc) in or.chunks_mut(PANEL).enumerate() {
            for (j, &pj) in p[r * KEY_TILE..][..n].iter().enumerate() {
                for (o, &vv) in oc.iter_mut().zip(&v[c * vps + j * PANEL..]) {
                    *o += pj * vv;
                }
            }
        }
    }
}

/// One row of the online softmax, in place: `s[j] = 2^(s[j] − m_new)` for `j < valid` and 0 after, where
/// `m_new = max(m_old, max s[..valid])`. Returns `(m_new, Σ s[..valid])`. Scores are in log2 units (the
/// queries were pre-multiplied by log2 e), so `2^x` is the softmax's `e^x`.
pub fn softmax_row(s: &mut [f32], valid: usize, m_old: f32) -> (f32, f32) {
    let (live, dead) = s.split_at_mut(valid);
    let m_new = live.iter().fold(m_old, |m, &x| m.max(x));
    let mut sum = 0.0;
    for x in live.iter_mut() {
        *x = (*x - m_new).exp2();
        sum += *x;
    }
    dead.fill(0.0);
    (m_new, sum)
}
