//! Matrix kernels on random data: every SIMD level against the scalar reference, and everything
//! against a plain f32 product of the dequantized weights, over odd shapes, every token count 1..=17 (the tile
//! kernels' widths) plus 20 and 33 (the row-group kernels, on a level that has them) and 1 or 2
//! threads; the MoE kernel against the same computation built from single matmuls.
//!
//! Tolerances, with `mag = Σ_c |w[r, c] · x[t, c]|` for each output:
//! - SIMD vs scalar: the integer sums are identical, only float summation order differs:
//!   `|Δ| ≤ 1e-5 · mag`.
//! - vs the f64 product of the dequantized weights: the only error is quantizing activations to 8
//!   bits (Q8_K: one scale per 256 values, Q8_0: per 32), `|x - x̂| ≤ amax_block / 254`, so
//!   `|Δ| ≤ 1.01 · Σ_c |w[r, c]| · amax_block(c) / 254 + 1e-5 · mag` (a hard bound), and the RMS error
//!   over all outputs (when there are at least 100) ≤ 0.6% of the RMS of `mag` (an activation outlier of 30σ in a Q8_0 block of 32
//!   costs the rest of its block most of their precision, as in ggml).

use qwen_engine::kernels::quant::{self, QuantType};
use qwen_engine::kernels::{ExpertRouting, Isa, Kernels, MoeScratch, QuantExperts, QuantMatrix};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn normal(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let (u, v): (f32, f32) = (rng.random::<f32>().max(1e-7), rng.random());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos() * scale
        })
        .collect()
}

/// Random weights with per-row scales, an outlier and a zero row, quantized to `ty`.
fn weights(rng: &mut StdRng, ty: QuantType, rows: usize, cols: usize) -> (Vec<u8>, Vec<f32>) {
    let mut w = normal(rng, rows * cols, 0.05);
    for r in 0..rows {
        let s = 0.2 + 3.0 * rng.random::<f32>();
        w[r * cols..(r + 1) * cols].iter_mut().for_each(|v| *v *= s);
    }
    if rows > 2 {
        w[cols..2 * cols].fill(0.0);
        w[2 * cols + 3] = 2.5;
    }
    let q = quant::quantize_to_vec(ty, &w).unwrap();
    let deq = quant::dequantize_to_vec(ty, &q, rows * cols).unwrap();
    (q, deq)
}

fn inputs(rng: &mut StdRng, tokens: usize, cols: usize) -> Vec<f32> {
    let mut x = normal(rng, tokens * cols, 1.0);
    if tokens > 1 {
        x[cols + 5] = -30.0; // an activation outlier
    }
    x
}

/// The f64 product, `mag[t, r] = Σ_c |w[r, c] x[t, c]|`, and the activation-quantization error bound.
fn reference(
    w: &[f32],
    x: &[f32],
    rows: usize,
    cols: usize,
    tokens: usize,
    block: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut mag = vec![0f64; tokens * rows];
    let mut y = vec![0f64; tokens * rows];
    let mut bound = vec![0f64; tokens * rows];
    for t in 0..tokens {
        let xt = &x[t * cols..(t + 1) * cols];
        let amax: Vec<f64> = xt
            .chunks(block)
            .map(|b| b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)))
            .collect();
        for r in 0..rows {
            let (mut s, mut m, mut e) = (0f64, 0f64, 0f64);
            for c in 0..cols {
                let wv = w[r * cols + c] as f64;
                let p = wv * xt[c] as f64;
                s += p;
                m += p.abs();
                e += wv.abs() * amax[c / block] / 254.0;
            }
            y[t * rows + r] = s;
            mag[t * rows + r] = m;
            bound[t * rows + r] = 1.01 * e + 1e-5 * m + 1e-7;
        }
    }
    (y, mag, bound)
}

#[test]
fn every_isa_matches_scalar_and_f32_on_odd_shapes() {
    let mut rng = StdRng::seed_from_u64(7);
    let scalar = Kernels::with_isa(Isa::Scalar, 1).unwrap();
    for ty in QuantType::ALL {
        let shapes: &[(usize, usize)] = match ty {
            QuantType::Q8_0 => &[(1, 32), (7, 96), (37, 256), (130, 544)],
            _ => &[(1, 256), (7, 512), (37, 768), (130, 256)],
        };
        for &(rows, cols) in shapes {
            let (q, wd) = weights(&mut rng, ty, rows, cols);
            let m = QuantMatrix::new(ty, rows, cols, &q).unwrap();
            for tokens in (1usize..=17).chain([20, 33]) {
                let x = inputs(&mut rng, tokens, cols);
                let (want, mag, bound) = reference(&wd, &x, rows, cols, tokens, ty.block_values());
                let mut base = vec![0f32; tokens * rows];
                scalar.matmul(&m, &x, tokens, &mut base).unwrap();
                let (mut se, mut sy) = (0f64, 0f64);
                for i in 0..base.len() {
                    let e = base[i] as f64 - want[i];
                    assert!(
                        e.abs() <= bound[i],
                        "{ty} [{rows},{cols}] T={tokens} #{i}: {} vs {} (bound {})",
                        base[i],
                        want[i],
                        bound[i]
                    );
                    se += e * e;
                    sy += mag[i] * mag[i];
                }
                assert!(
                    base.len() < 100 || se.sqrt() <= 0.006 * sy.sqrt() + 1e-6,
                    "{ty} [{rows},{cols}] T={tokens}: rms error² {se} vs rms mag² {sy}"
                );
                for isa in Isa::supported() {
                    for threads in [1, 2] {
                        let k = Kernels::with_isa(isa, threads).unwrap();
                        let mut out = vec![f32::NAN; tokens * rows];
                        k.matmul(&m, &x, tokens, &mut out).unwrap();
                        for i in 0..out.len() {
                            assert!(
                                (out[i] - base[i]).abs() as f64 <= 1e-5 * mag[i] + 1e-7,
                                "{ty} {isa} x{threads} [{rows},{cols}] T={tokens} #{i}: {} vs scalar {}",
                                out[i],
                                base[i]
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn prepared_activations_are_reusable_and_checked() {
    let mut rng = StdRng::seed_from_u64(9);
    let k = Kernels::new(2).unwrap();
    let (q1, _) = weights(&mut rng, QuantType::Q4K, 40, 512);
    let (q2, _) = weights(&mut rng, QuantType::Q4K, 24, 512);
    let (m1, m2) = (
        QuantMatrix::new(QuantType::Q4K, 40, 512, &q1).unwrap(),
        QuantMatrix::new(QuantType::Q4K, 24, 512, &q2).unwrap(),
    );
    let x = inputs(&mut rng, 3, 512);
    let acts = k.quantize(QuantType::Q4K, &x, 3, 512).unwrap();
    let (mut a, mut b) = (vec![0f32; 120], vec![0f32; 120]);
    k.matmul_prepared(&m1, &acts, &mut a).unwrap();
    k.matmul(&m1, &x, 3, &mut b).unwrap();
    assert_eq!(a, b);
    let mut c = vec![0f32; 72];
    k.matmul_prepared(&m2, &acts, &mut c).unwrap();
    // Wrong output length, wrong activation type, wrong input length: errors, not panics.
    assert!(k.matmul_prepared(&m2, &acts, &mut a).is_err());
    let q8 = k.quantize(QuantType::Q8_0, &x, 3, 512).unwrap();
    assert!(k.matmul_prepared(&m2, &q8, &mut c).is_err());
    assert!(k.matmul(&m2, &x[..100], 3, &mut c).is_err());
    assert!(k.matvec(&m2, &x[..512], &mut c[..23]).is_err());
}

#[test]
fn many_tokens_use_parallel_quantization_identically() {
    let mut rng = StdRng::seed_from_u64(11);
    let (q, _) = weights(&mut rng, QuantType::Q6K, 33, 256);
    let m = QuantMatrix::new(QuantType::Q6K, 33, 256, &q).unwrap();
    let x = inputs(&mut rng, 45, 256);
    // The integer path (the AMX level would take 45 tokens to bf16 tiles instead).
    let isa = [Isa::Avx512Vnni, Isa::Avx2, Isa::Scalar]
        .into_iter()
        .find(|i| i.is_supported())
        .unwrap();
    let (one, two) = (
        Kernels::with_isa(isa, 1).unwrap(),
        Kernels::with_isa(isa, 2).unwrap(),
    );
    let (mut a, mut b) = (vec![0f32; 45 * 33], vec![0f32; 45 * 33]);
    one.matmul(&m, &x, 45, &mut a).unwrap();
    two.matmul(&m, &x, 45, &mut b).unwrap();
    assert_eq!(a, b, "thread count must not change results");
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

#[test]
fn moe_equals_per_expert_matmuls() {
    let mut rng = StdRng::seed_from_u64(13);
    let (n_exp, hidden, ffn) = (6usize, 256usize, 512usize);
    for (gty, dty) in [
        (QuantType::Q4K, QuantType::Q6K),
        (QuantType::Q8_0, QuantType::Q8_0),
    ] {
        let (gate, _) = weights(&mut rng, gty, n_exp * ffn, hidden);
        let (up, _) = weights(&mut rng, gty, n_exp * ffn, hidden);
        let (down, _) = weights(&mut rng, dty, n_exp * hidden, ffn);
        let g = QuantExperts::new(gty, n_exp, ffn, hidden, &gate).unwrap();
        let u = QuantExperts::new(gty, n_exp, ffn, hidden, &up).unwrap();
        let d = QuantExperts::new(dty, n_exp, hidden, ffn, &down).unwrap();
        for (tokens, k) in [(1usize, 2usize), (1, 6), (5, 3), (17, 2)] {
            let x = inputs(&mut rng, tokens, hidden);
            let mut ids = Vec::new();
            let mut wts = Vec::new();
            for t in 0..tokens {
                let mut e: Vec<u32> = (0..n_exp as u32).collect();
                for i in 0..k {
                    let j = i + rng.random_range(0..n_exp - i);
                    e.swap(i, j);
                }
                // Skew routing so some experts get many tokens and one none.
                ids.extend(
                    e[..k]
                        .iter()
                        .map(|&v| if t % 3 == 0 { v } else { v.min(3) }),
                );
                wts.extend((0..k).map(|_| rng.random::<f32>()));
            }
            // Per-token duplicates are allowed by the kernel; keep them out of the reference simple.
            let routing = ExpertRouting::new(tokens, k, &ids, &wts).unwrap();
            let kern1 = Kernels::with_isa(Isa::Scalar, 1).unwrap();
            let mut want = vec![0f32; tokens * hidden];
            for t in 0..tokens {
                for j in 0..k {
                    let e = ids[t * k + j] as usize;
                    let xt = &x[t * hidden..(t + 1) * hidden];
                    let (mut gv, mut uv) = (vec![0f32; ffn], vec![0f32; ffn]);
                    kern1.matvec(&g.expert(e).unwrap(), xt, &mut gv).unwrap();
                    kern1.matvec(&u.expert(e).unwrap(), xt, &mut uv).unwrap();
                    let h: Vec<f32> = gv.iter().zip(&uv).map(|(&a, &b)| silu(a) * b).collect();
                    let mut y = vec![0f32; hidden];
                    kern1.matvec(&d.expert(e).unwrap(), &h, &mut y).unwrap();
                    for (o, v) in want[t * hidden..(t + 1) * hidden].iter_mut().zip(&y) {
                        *o += wts[t * k + j] * v;
                    }
                }
            }
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for isa in Isa::supported() {
                for threads in [1, 2] {
                    let kern = Kernels::with_isa(isa, threads).unwrap();
                    let mut out = vec![f32::NAN; tokens * hidden];
                    let mut scratch = MoeScratch::new();
                    kern.moe_ffn(&g, &u, &d, &x, &routing, &mut out, &mut scratch)
                        .unwrap();
                    // Again with the same scratch (buffers reused) must give the same answer.
                    let mut again = vec![0f32; tokens * hidden];
                    kern.moe_ffn(&g, &u, &d, &x, &routing, &mut again, &mut scratch)
                        .unwrap();
                    assert_eq!(out, again);
                    let err = out
                        .iter()
                        .zip(&want)
                        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                    assert!(
                        err <= 1e-4 * scale,
                        "{gty}/{dty} {isa} x{threads} T={tokens} k={k}: {err} vs {scale}"
                    );
                }
            }
        }
        // Bad routing is an error.
        let x = vec![0f32; hidden];
        let bad = [n_exp as u32, 0];
        let r = ExpertRouting::new(1, 2, &bad, &[0.5, 0.5]).unwrap();
        let kern = Kernels::new(1).unwrap();
        let mut out = vec![0f32; hidden];
        assert!(kern
            .moe_ffn(&g, &u, &d, &x, &r, &mut out, &mut MoeScratch::new())
            .is_err());
    }
}

#[test]
fn amx_tile_path_matches_f64_product() {
    // bf16 rounding of weights and activations: each product is off by at most ~2 · 2⁻⁹ relative, so
    // |Δ| ≤ 2⁻⁸ · mag (plus f32 accumulation).
    if !Isa::Avx512Amx.is_supported() {
        eprintln!("no AMX on this CPU: skipped");
        return;
    }
    let mut rng = StdRng::seed_from_u64(17);
    for ty in QuantType::ALL {
        // (70, 8192) with 100 tokens: activations larger than 1 MiB, so tasks take several panels.
        let shapes: &[(usize, usize)] = match ty {
            QuantType::Q8_0 => &[(37, 544), (64, 96)],
            QuantType::Q4K => &[(37, 512), (130, 256), (70, 8192)],
            QuantType::Q6K => &[(37, 512), (130, 256)],
        };
        for &(rows, cols) in shapes {
            let (q, wd) = weights(&mut rng, ty, rows, cols);
            let m = QuantMatrix::new(ty, rows, cols, &q).unwrap();
            for tokens in [32usize, 45, 64, 100] {
                if cols > 1024 && tokens != 100 {
                    continue;
                }
                let x = inputs(&mut rng, tokens, cols);
                let (want, mag, _) = reference(&wd, &x, rows, cols, tokens, ty.block_values());
                for threads in [1, 2] {
                    let k = Kernels::with_isa(Isa::Avx512Amx, threads).unwrap();
                    let mut out = vec![f32::NAN; tokens * rows];
                    k.matmul(&m, &x, tokens, &mut out).unwrap();
                    for i in 0..out.len() {
                        let e = (out[i] as f64 - want[i]).abs();
                        assert!(
                            e <= mag[i] / 256.0 + 1e-6,
                            "{ty} amx x{threads} [{rows},{cols}] T={tokens} #{i}: {} vs {}",
                            out[i],
                            want[i]
                        );
                    }
                    // Prepared bf16 activations must not be accepted by non-AMX kernels.
                    let acts = k.quantize(ty, &x, tokens, cols).unwrap();
                    let plain = Kernels::with_isa(Isa::Avx512Vnni, 1).unwrap();
                    assert!(plain.matmul_prepared(&m, &acts, &mut out).is_err());
                }
            }
        }
    }
}

#[test]
fn moe_prefill_on_amx_tiles_matches_integer_path() {
    if !Isa::Avx512Amx.is_supported() {
        eprintln!("no AMX on this CPU: skipped");
        return;
    }
    let mut rng = StdRng::seed_from_u64(19);
    let (n_exp, hidden, ffn, tokens, k) = (5usize, 256usize, 512usize, 70usize, 2usize);
    let (gate, gd) = weights(&mut rng, QuantType::Q4K, n_exp * ffn, hidden);
    let (up, ud) = weights(&mut rng, QuantType::Q4K, n_exp * ffn, hidden);
    let (down, dd) = weights(&mut rng, QuantType::Q6K, n_exp * hidden, ffn);
    let g = QuantExperts::new(QuantType::Q4K, n_exp, ffn, hidden, &gate).unwrap();
    let u = QuantExperts::new(QuantType::Q4K, n_exp, ffn, hidden, &up).unwrap();
    let d = QuantExperts::new(QuantType::Q6K, n_exp, hidden, ffn, &down).unwrap();
    let x = inputs(&mut rng, tokens, hidden);
    // Expert 0 gets every token (AMX), 1 about half (AMX), 2..5 the rest (integer path), 4 none.
    let mut ids = Vec::new();
    for t in 0..tokens {
        ids.push(0u32);
        ids.push(if t % 2 == 0 {
            1
        } else {
            2 + (t % 3 == 0) as u32
        });
    }
    let wts: Vec<f32> = (0..tokens * k)
        .map(|i| 0.3 + 0.4 * ((i * 7 % 5) as f32 / 5.0))
        .collect();
    let routing = ExpertRouting::new(tokens, k, &ids, &wts).unwrap();
    let int8 = Kernels::with_isa(Isa::Avx512Vnni, 2).unwrap();
    let mut want = vec![0f32; tokens * hidden];
    int8.moe_ffn(&g, &u, &d, &x, &routing, &mut want, &mut MoeScratch::new())
        .unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    // f64 truth from the dequantized experts (the integer path's answer is only a reference point).
    let mut truth = vec![0f64; tokens * hidden];
    for t in 0..tokens {
        for j in 0..k {
            let e = ids[t * k + j] as usize;
            let xt = &x[t * hidden..(t + 1) * hidden];
            let h: Vec<f64> = (0..ffn)
                .map(|r| {
                    let row = |w: &[f32]| {
                        (0..hidden)
                            .map(|c| w[(e * ffn + r) * hidden + c] as f64 * xt[c] as f64)
                            .sum::<f64>()
                    };
                    let (a, b) = (row(&gd), row(&ud));
                    a / (1.0 + (-a).exp()) * b
                })
                .collect();
            for r in 0..hidden {
                let y: f64 = (0..ffn)
                    .map(|c| dd[(e * hidden + r) * ffn + c] as f64 * h[c])
                    .sum();
                truth[t * hidden + r] += wts[t * k + j] as f64 * y;
            }
        }
    }
    let err_int8 = want
        .iter()
        .zip(&truth)
        .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
    for threads in [1, 2] {
        let amx = Kernels::with_isa(Isa::Avx512Amx, threads).unwrap();
        let mut out = vec![f32::NAN; tokens * hidden];
        amx.moe_ffn(&g, &u, &d, &x, &routing, &mut out, &mut MoeScratch::new())
            .unwrap();
        // Both paths carry rounding noise (8-bit activations vs bf16; the outlier token dominates):
        // the tile path must be as close to the f64 truth as the integer path, and close overall.
        let err_amx = out
            .iter()
            .zip(&truth)
            .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
        assert!(
            err_amx <= 1.25 * err_int8 && err_amx <= 0.05 * scale as f64,
            "amx x{threads}: max error {err_amx} vs f64 (integer path: {err_int8}, scale {scale})"
        );
    }
}

#[test]
fn parallel_weight_quantization_equals_serial() {
    let mut rng = StdRng::seed_from_u64(23);
    let w = normal(&mut rng, 37 * 512, 0.3);
    let k = Kernels::new(2).unwrap();
    for ty in QuantType::ALL {
        assert_eq!(
            k.quantize_weights(ty, 37, 512, &w).unwrap(),
            quant::quantize_to_vec(ty, &w).unwrap(),
            "{ty}"
        );
    }
    assert!(k
        .quantize_weights(QuantType::Q4K, 37, 512, &w[..100])
        .is_err());
    assert!(k
        .quantize_weights(QuantType::Q4K, 37, 100, &w[..3700])
        .is_err());
}
