//! The block formats against ggml itself: vectors made by `fixtures/kernels/make_quant_vectors.py` with
//! llama.cpp's `quantize_row_*_ref` and `ggml_vec_dot_*` and PyPI gguf's `dequantize`.
//! Quantizers and dequantizers must be bit-exact; dot products (float summation order differs) within
//! 1e-5 of the sum of the magnitudes of the products.

use qwen_engine::kernels::quant::{self, BlockQ8K, QuantType};
use qwen_engine::kernels::{Isa, Kernels, QuantMatrix};
use safetensors::SafeTensors;

const VECTORS: &[u8] = include_bytes!("../../../fixtures/kernels/quant_vectors.safetensors");

fn tensor<'a>(st: &'a SafeTensors<'a>, name: &str) -> &'a [u8] {
    st.tensor(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .data()
}

fn f32s(st: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    tensor(st, name)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
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
        let bad: Vec<usize> = (0..ggml.len() / bb)
            .filter(|&b| ours[b * bb..(b + 1) * bb] != ggml[b * bb..(b + 1) * bb])
            .collect();
        assert!(bad.is_empty(), "{ty}: blocks {bad:?} differ from ggml");
    }
    let ggml = tensor(&st, "q8_K_quant");
    for (b, xb) in x.chunks_exact(256).enumerate() {
        let ours = BlockQ8K::quantize(xb.try_into().unwrap());
        let g = &ggml[b * 292..(b + 1) * 292];
        assert_eq!(ours.d.to_le_bytes(), g[0..4], "q8_K block {b} d");
        assert!(
            ours.qs.iter().zip(&g[4..260]).all(|(&a, &b)| a as u8 == b),
            "q8_K block {b} qs"
        );
        let bs: Vec<i16> = g[260..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
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
                        let mag: f32 = (0..512)
                            .map(|c| (wd[i * 512 + c] * y[j * 512 + c]).abs())
                            .sum();
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

/// A tensor of a committed GGUF fixture: (format, dims in candle's order, bytes).
fn gguf_tensor(file: &str, name: &str) -> (QuantType, Vec<usize>, Vec<u8>) {
    use candle_core::quantized::gguf_file;
    let path = format!(
        "{}/../fixtures/models/gguf/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap();
    let content = gguf_file::Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
    let info = &content.tensor_infos[name];
    let id = match info.ggml_dtype {
        candle_core::quantized::GgmlDType::Q8_0 => 8,
        candle_core::quantized::GgmlDType::Q4K => 12,
        candle_core::quantized::GgmlDType::Q6K => 14,
        other => panic!("{name}: {other:?}"),
    };
    let ty = QuantType::from_ggml_type_id(id).unwrap();
    let dims = info.shape.dims().to_vec();
    let n: usize = dims.iter().product();
    let len = n / ty.block_values() * ty.block_bytes();
    let at = content.tensor_data_offset as usize + info.offset as usize;
    (ty, dims, bytes[at..at + len].to_vec())
}

#[test]
fn real_gguf_tensors_dequantize_and_multiply_like_gguf() {
    let st = SafeTensors::deserialize(VECTORS).unwrap();
    for name in [
        "output.weight",
        "blk.0.attn_q.weight",
        "blk.0.attn_v.weight",
        "blk.0.ffn_down.weight",
    ] {
        let (ty, dims, data) = gguf_tensor("qwen2-q4km-tiny.gguf", name);
        let (rows, cols) = (dims[0], dims[1]);
        let deq = quant::dequantize_to_vec(ty, &data, rows * cols).unwrap();
        let row0 = f32s(&st, &format!("real_{name}_row0"));
        assert_eq!(&deq[..cols], &row0[..], "{name}: row 0");
        let sums = f32s(&st, &format!("real_{name}_rowsums"));
        for r in 0..rows {
            let s: f64 = deq[r * cols..(r + 1) * cols]
                .iter()
                .map(|&v| v as f64)
                .sum();
            assert!(
                (s - sums[r] as f64).abs() <= 1e-5 * (1.0 + s.abs()),
                "{name}: row {r} sum {s} vs {}",
                sums[r]
            );
        }
        // Our quantized matvec against the dequantized f64 product: the only difference is 8-bit
        // activations, so the error is bounded by a small fraction of Σ|w·v|.
        let v = f32s(&st, &format!("real_v{cols}"));
        let want = f32s(&st, &format!("real_{name}_matvec"));
        let m = QuantMatrix::new(ty, rows, cols, &data).unwrap();
        for isa in Isa::supported() {
            let k = Kernels::with_isa(isa, 2).unwrap();
            let mut out = vec![0f32; rows];
            k.matvec(&m, &v, &mut out).unwrap();
            for r in 0..rows {
                let mag: f32 = (0..cols).map(|c| (deq[r * cols + c] * v[c]).abs()).sum();
                assert!(
                    (out[r] - want[r]).abs() <= 0.01 * mag,
                    "{name} {isa}: row {r}: {} vs {}",
                    out[r],
                    want[r]
                );
            }
        }
    }
}

#[test]
fn real_gguf_moe_experts_match_f64_reference() {
    use qwen_engine::kernels::{ExpertRouting, MoeScratch, QuantExperts};
    let st = SafeTensors::deserialize(VECTORS).unwrap();
    let file = "qwen3moe-q8_0-tiny.gguf";
    let (ty, gd, gate) = gguf_tensor(file, "blk.0.ffn_gate_exps.weight");
    let (_, _, up) = gguf_tensor(file, "blk.0.ffn_up_exps.weight");
    let (_, dd, down) = gguf_tensor(file, "blk.0.ffn_down_exps.weight");
    let (n_exp, ffn, hidden) = (gd[0], gd[1], gd[2]);
    assert_eq!(dd, vec![n_exp, hidden, ffn]);
    let g = QuantExperts::new(ty, n_exp, ffn, hidden, &gate).unwrap();
    let u = QuantExperts::new(ty, n_exp, ffn, hidden, &up).unwrap();
    let d = QuantExperts::new(ty, n_exp, hidden, ffn, &down).unwrap();
    let x = f32s(&st, "moe_x");
    let ids: Vec<u32> = tensor(&st, "moe_ids").iter().map(|&b| b as u32).collect();
    let w = f32s(&st, "moe_w");
    let want = f32s(&st, "moe_out");
    let routing = ExpertRouting::new(3, 2, &ids, &w).unwrap();
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    for isa in Isa::supported() {
        for threads in [1, 2] {
            let k = Kernels::with_isa(isa, threads).unwrap();
            let mut out = vec![0f32; 3 * hidden];
            k.moe_ffn(&g, &u, &d, &x, &routing, &mut out, &mut MoeScratch::new())
                .unwrap();
            let err = out
                .iter()
                .zip(&want)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                err <= 0.02 * scale,
                "{isa} x{threads}: max error {err} vs output scale {scale}"
            );
        }
    }
}
