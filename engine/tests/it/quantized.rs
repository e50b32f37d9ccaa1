//! Load-time quantization (`LoadOptions::quantize`, `--quantize q8_0|q4_k`) and FP8 checkpoints.
//!
//! Two references, because two questions:
//! - **Does quantizing keep the model close to float?** The max abs logit error over the prompt against the
//!   float32 reference (transformers) stays under a documented bound per fixture. 8-bit weights and 8-bit
//!   activations move these random-weight fixtures' logits by 1–2.3 (dense) and flip MoE routing decisions
//!   (16 on qwen3-moe-tiny): the bounds hold for both numerics the kernels have (8-bit activations on the
//!   integer levels; bf16 activations on the AMX tile path), see [`float_bound`]. Continuation margins on
//!   these fixtures are mostly below such errors, so a top-1 check against float decides nothing here.
//! - **Does this CPU's level compute what the quantized model defines?** The same quantized weights on the
//!   scalar kernels are the reference with the same rounding (exact integer sub-block sums, 8-bit
//!   activations): the level under test must agree with it at every position of the prompt and of a
//!   teacher-forced continuation (see [`same_rounding_check`]). The level under test is the process's
//!   (`QWEN_LS_ISA` caps it; `.ci/run` runs this suite once per level the machine has).
//!
//! Real models are far better conditioned: see the default-model run in docs/BENCHMARKS.md.

use std::path::PathBuf;

use crate::common::*;
use crate::gguf::Dequantized;
use candle_core::{DType, Device, Tensor};
use qwen_engine::gguf::config::model_config;
use qwen_engine::kernels::Isa;
use qwen_engine::source::quantize::Quantizing;
use qwen_engine::{
    GgufFile, LoadOptions, LoadedModel, Logits, Model, QuantizeTo, SafetensorsWeights, Threads,
};

const FP8: &str = "qwen3-moe-fp8-tiny";

/// Max abs prompt-logit error against float for load-time Q8_0 — which is also what `q4_k` gives on these
/// fixtures: their 64-wide rows do not fit Q4_K's 256-blocks, so every matrix falls back to Q8_0. Measured, in
/// the order below: integer levels (scalar, AVX2, AVX-512 VNNI alike) 16.06 / 2.30 / 2.03 / 1.09 / 1.52; the
/// AMX-BF16 prefill path (the 32-token prompt runs on tiles) 16.16 / 1.91 / 1.41 / 0.96 / 17.72 (the FP8
/// fixture's 17.7 is an MoE routing flip: its 64-wide experts get ≥ 16 tokens each, so they run on AMX).
fn float_bound(name: &str) -> f32 {
    match name {
        "qwen3-moe-tiny" => 20.0,
        "qwen3-dense-tiny" => 3.5,
        "qwen2-tiny" => 3.0,
        "qwen3-moe-yarn-tiny" => 2.0,
        "qwen3-moe-fp8-tiny" => 20.0,
        other => panic!("no bound for {other}"),
    }
}

fn load_with(
    path: &std::path::Path,
    quantize: Option<QuantizeTo>,
    isa: Option<Isa>,
) -> LoadedModel {
    let options = LoadOptions {
        quantize,
        isa,
        ..LoadOptions::default()
    };
    LoadedModel::load(path, &options).unwrap()
}

/// Max abs prompt-logit error of `model` against the float reference logits, asserted under `bound`.
fn check_float_bound(label: &str, model: &Model, prompt: &[u32], expected: &Tensor, bound: f32) {
    let got = model
        .forward_with(prompt, &mut model.new_cache(), Logits::All)
        .unwrap();
    let d = max_diff(&got, expected);
    eprintln!("{label}: max abs prompt-logit error against float {d:.4} (bound {bound})");
    assert!(d < bound, "{label}: {d} (bound {bound})");
}

#[test]
fn quantized_safetensors_fixtures_stay_close_to_float() {
    for name in MODELS {
        let r = reference(name);
        let expected = reference_logits(name);
        for to in [QuantizeTo::Q8_0, QuantizeTo::Q4K] {
            let m = load_with(&model_dir(name), Some(to), None);
            let report = m.report.quantize.clone().unwrap();
            match to {
                QuantizeTo::Q8_0 => assert!(report.quantized > 20 && report.fallbacks.is_empty()),
                QuantizeTo::Q4K => {
                    // Rows of 32/64/128/192: none fits Q4_K, every matrix is named as a Q8_0 fallback.
                    assert_eq!(report.quantized, 0, "{name}");
                    assert!(!report.fallbacks.is_empty());
                    assert!(report
                        .fallbacks
                        .iter()
                        .all(|(_, why)| why.starts_with("Q8_0")));
                }
            }
            assert!(
                report.unquantized.is_empty(),
                "{name}: {:?}",
                report.unquantized
            );
            check_float_bound(
                &format!("{name} {to:?} on {}", Isa::best()),
                &m.model,
                &r.prompt_ids,
                &expected,
                float_bound(name),
            );
        }
    }
}

/// How far the integer levels may drift from the scalar reference at any position. They compute the same
/// integer sub-block sums and differ only in f32 accumulation order, except where that last-bit difference
/// moves an activation across an 8-bit rounding boundary: one quantization step of one activation, carried
/// on by attention. On these fixtures such a flip moves logits by ≤ 0.32 (qwen2-q4km requantized, AVX2); on
/// the GGUF fixtures by ≤ 0.6 (see `gguf::ggml_tolerance`). A wrong kernel (a lost block, a wrong scale)
/// moves them by the size of the logits themselves (1–10). Where a reference margin exceeds twice this,
/// the bound alone guarantees the same top-1.
const SAME_ROUNDING_TOLERANCE: f32 = 0.75;

/// Float noise of one position: f32 sums in another order (~1e-6 of logits of magnitude ~1–10). Flips are
/// isolated events, so most positions must agree to this (a small systematic error — a scale off by 1% —
/// shows at every position).
const FLOAT_NOISE: f32 = 1e-4;

/// The level under test's integer path: the best level of this process that is not the AMX tile path (whose
/// bf16 numerics have their own checks in `kernels_matmul.rs` and `kernels_model.rs`), within the cap.
fn integer_level() -> Isa {
    crate::gguf::best_int8_isa()
}

/// Compares `model` (the level under test) with `reference` (the same quantized weights on the scalar
/// kernels) at every position of prompt + continuation (teacher-forced, one forward): every logit within
/// [`SAME_ROUNDING_TOLERANCE`], and at least half of the positions within [`FLOAT_NOISE`].
fn same_rounding_check(
    label: &str,
    model: &Model,
    reference: &Model,
    prompt: &[u32],
    continuation: &[u32],
) {
    let mut ids = prompt.to_vec();
    ids.extend_from_slice(&continuation[..continuation.len() - 1]);
    let rows = |m: &Model| -> Vec<Vec<f32>> {
        m.forward_with(&ids, &mut m.new_cache(), Logits::All)
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    let (want, got) = (rows(reference), rows(model));
    let mut per_position: Vec<f32> = want
        .iter()
        .zip(&got)
        .map(|(w, g)| w.iter().zip(g).fold(0f32, |m, (a, b)| m.max((a - b).abs())))
        .collect();
    let worst = per_position.iter().copied().fold(0f32, f32::max);
    let flipped: Vec<usize> = (0..per_position.len())
        .filter(|&i| per_position[i] > FLOAT_NOISE)
        .collect();
    per_position.sort_by(f32::total_cmp);
    let median = per_position[per_position.len() / 2];
    eprintln!(
        "{label}: vs scalar over {} positions: max abs logit difference {worst:e}, median {median:e}; positions \
         beyond float noise: {flipped:?}",
        ids.len()
    );
    assert!(
        worst <= SAME_ROUNDING_TOLERANCE,
        "{label}: {worst} > {SAME_ROUNDING_TOLERANCE}"
    );
    assert!(median <= FLOAT_NOISE, "{label}: median difference {median}");
}

#[test]
fn quantized_fixtures_on_this_level_match_the_scalar_reference() {
    let level = integer_level();
    for name in MODELS {
        let r = reference(name);
        let scalar = load_with(&model_dir(name), Some(QuantizeTo::Q8_0), Some(Isa::Scalar));
        let model = load_with(&model_dir(name), Some(QuantizeTo::Q8_0), Some(level));
        same_rounding_check(
            &format!("{name} Q8_0 on {level}"),
            &model.model,
            &scalar.model,
            &r.prompt_ids,
            &r.greedy_ids,
        );
    }
}

#[test]
fn fp8_checkpoint_loads_directly() {
    let m = load_with(&model_dir(FP8), None, None);
    assert_eq!(m.report.format, "safetensors (FP8 e4m3, 128x128 blocks)");
    let w = SafetensorsWeights::open_dir(&model_dir(FP8)).unwrap();
    assert!(w.has_fp8());
    // Exact parity with transformers is in parity.rs (the FP8 fixture is one of `MODELS`). Dequantizing by
    // hand: block (0, 0) of a k projection (64 rows: a partial block) equals e4m3 value × inverse scale.
    let k = w
        .load(
            "model.layers.0.self_attn.k_proj.weight",
            &[64, 128],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
    let scale: Vec<f32> = w
        .load(
            "model.layers.0.self_attn.k_proj.weight_scale_inv",
            &[1, 1],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let max: f32 = k.abs().unwrap().max_all().unwrap().to_vec0().unwrap();
    assert!(
        (max - 448.0 * scale[0]).abs() <= 1e-6 * max,
        "{max} vs {}",
        scale[0]
    );
}

#[test]
fn fp8_config_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir(FP8)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    let path = tmp.path().join("config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"fp8\"", "\"gptq\"");
    std::fs::write(&path, text).unwrap();
    let e = LoadedModel::load(tmp.path(), &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("quantization_config.quant_method") && e.contains("config.json"),
        "{e}"
    );
}

/// The qwen2-q4km GGUF fixture dequantized to f32 and re-quantized to Q4_K at load time: its rows (256, 512)
/// fit Q4_K's 256-blocks, so this is the real Q4_K quantizer (lm_head: Q6_K), against transformers' float
/// reference of the same weights.
#[test]
fn load_time_q4_k_on_256_wide_rows() {
    let path: PathBuf = fixtures().join("models/gguf/qwen2-q4km-tiny.gguf");
    let file = GgufFile::open(&path).unwrap();
    let dense = Dequantized(&file);
    let quantizing = Quantizing::new(&dense, QuantizeTo::Q4K);
    let load = |isa: Isa| {
        let config = model_config(&file).unwrap();
        Model::load_with(
            config,
            &quantizing,
            DType::F32,
            &Device::Cpu,
            Threads::default(),
            Some(isa),
        )
        .unwrap()
    };
    let q4 = load(integer_level());
    let report = quantizing.report();
    assert_eq!((report.fallbacks.len(), report.unquantized.len()), (0, 0));
    assert_eq!(
        report.quantized,
        2 * 7 + 1 + 1,
        "7 per layer, embedding, lm_head"
    );
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("models/gguf/qwen2-q4km-tiny.reference.json"))
            .unwrap(),
    )
    .unwrap();
    let ids = |k: &str| -> Vec<u32> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    };
    let (prompt, greedy) = (ids("prompt_ids"), ids("greedy_ids"));
    let expected = SafetensorsWeights::open_files(&[
        fixtures().join("models/gguf/qwen2-q4km-tiny.reference_logits.safetensors")
    ])
    .unwrap()
    .load("logits", &[prompt.len(), 4160], DType::F32, &Device::Cpu)
    .unwrap();
    // Measured: max error 5.52 (4-bit weights on top of 8-bit activations).
    check_float_bound(
        "qwen2-q4km-tiny requantized Q4_K",
        &q4,
        &prompt,
        &expected,
        8.0,
    );
    same_rounding_check(
        &format!("qwen2-q4km-tiny requantized Q4_K on {}", integer_level()),
        &q4,
        &load(Isa::Scalar),
        &prompt,
        &greedy,
    );
}
