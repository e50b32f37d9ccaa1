//! The block formats against ggml itself: vectors made by `fixtures/kernels/make_quant_vectors.py` with
//! llama.cpp's `quantize_row_*_ref` and `ggml_vec_dot_*` and PyPI gguf's `dequantize`.
//! Quantizers and dequantizers must be bit-exact; dot products (float summation order differs) within
//! 1e-5 of the sum of the magnitudes of the products.

use qwen_engine::kernels::quant::{self, BlockQ8K, QuantType};
use qwen_engine::kernels::{Isa, Kernels, QuantMatrix};
use safetensors::SafeTensors;

const VECTORS: &[u8] = include_bytes!("../../fixtures/kernels/quant_vectors.safetensors");

fn tensor<'a>(st: &'a SafeTensors<'a>, name: &str) -> &'a [u8] {
    st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}")).data()
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    tensor(st, name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn name(ty: QuantType) -> &'static str {
    ty.name()
}

#[test]
fn quantizers_are_bit_exact_with_ggml() {
    let st = SafeTensors::deserialize(VECTORS).unwrap();
    let x = f32s(&st, "x");
    for ty in QuantType::ALL {
        let ours = quant::quantize_to_vec(ty, &x).unwrap();
        let ggml = tensor(&st, &format!("{}_quant", name(ty)));
        let bb = ty.block_bytes();
        let bad: Vec<usize> =
            (0..ggml.len() / bb).filter(|&b| ours[b * bb..(b + 1) * bb] != ggml[b * bb..(b + 1) * bb]).collect();
        assert!(bad.is_empty(), "{ty}: blocks {bad:?} differ from ggml");
    }
    let ggml = tensor(&st, "q8_K_quant");
    for (b, xb) in x.chunks_exact(256).enumerate() {
        let ours = BlockQ8K::quantize(xb.try_into().unwrap());
        let g = &ggml[b * 292..(b + 1) * 292];
        assert_eq!(ours.d.to_le_bytes(), g[0..4], "q8_K block {b} d");
        assert!(ours.qs.iter().zip(&g[4..260]).all(|(&a, &b)| a as u8 == b), "q8_K block {b} qs");
        let bs: Vec<i16> = g[260..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(ours.bsums.to_vec(), bs, "q8_K block {b} bsums");
    }
}

#[test]
fn dequantizers_are_bit_exact_with_gguf() {
    let st = SafeTensors::deserialize(VECTORS).unwrap();
    for ty in QuantType::ALL {
        for (q, d) in [("quant", "dequant"), ("random", "random_dequant")] {
            let data = tensor(&st, &format!("{}_{q}", name(ty)));
            let want = f32s(&st, &format!("{}_{d}", name(ty)));
            let got = quant::dequantize_to_vec(ty, data, want.len()).unwrap();
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "{ty} {q}: value {i}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn quantization_error_matches_ggml_reference() {
    // Not only identical bytes: the relative RMS error a user sees, for the record.
    let st = SafeTensors::deserialize(VECTORS).unwrap();
    let x = f32s(&st, "x");
    let rel = |ty: QuantType| {
        let d = f32s(&st, &format!("{}_dequant", name(ty)));
        let (mut e, mut s) = (0f64, 0f64);
        for (a, b) in x[..512].iter().zip(&d) {
            e += ((a - b) as f64).powi(2);
            s += (*a as f64).powi(2);
        }
        (e / s).sqrt()
    };
    assert!(rel(QuantType::Q8_0) < 0.01);
    assert!(rel(QuantType::Q6K) < 0.03);
    assert!(rel(QuantType::Q4K) < 0.12);
}

#[test]
fn dot_products_match_ggml_on_every_isa() {
    let st = SafeTensors::deserialize(VECTORS).unwrap();
    let y = f32s(&st, "y");
    for ty in QuantType::ALL {
        let w = tensor(&st, &format!("{}_quant", name(ty)));
        let m = QuantMatrix::new(ty, 4, 512, w).unwrap();
        let want = f32s(&st, &format!("dot_{}", name(ty)));
        // Tolerance scale: Σ|w_i y_i| per pair, from the dequantized weights.
        let wd = quant::dequantize_to_vec(ty, w, 4 * 512).unwrap();
        for isa in Isa::supported() {
            for threads in [1, 2] {
                let k = Kernels::with_isa(isa, threads).unwrap();
                let mut out = vec![0f32; 3 * 4];
                k.matmul(&m, &y, 3, &mut out).unwrap();
                for i in 0..4 {
                    for j in 0..3 {
                        let mag: f32 = (0..512).map(|c| (wd[i * 512 + c] * y[j * 512 + c]).abs()).sum();
                        let (got, exp) = (out[j * 4 + i], want[i * 3 + j]);
                        assert!(
                            (got - exp).abs() <= 1e-5 * mag + 1e-30,
                            "{ty} {isa} x{threads}: w{i}·y{j} = {got}, ggml {exp} (scale {mag})"
                        );
                    }
                }
            }
        }
    }
}
