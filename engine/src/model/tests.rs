//! Unit tests of the forward pass on a random tiny checkpoint written here (the transformers parity tests live
//! in `engine/tests/` and use the committed fixtures).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};

use super::*;
use crate::weights::SafetensorsWeights;

const CONFIG: &str = r#"{"model_type": "qwen3_moe", "vocab_size": 50, "hidden_size": 32,
  "intermediate_size": 40, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
  "head_dim": 16, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 24,
  "norm_topk_prob": true, "mlp_only_layers": [1], "max_position_embeddings": 128,
  "rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32}}"#;

/// Writes a random checkpoint for `CONFIG` into a fresh temp dir and returns it.
pub(crate) fn random_model_dir(tag: &str) -> PathBuf {
    let cfg = ModelConfig::from_hf_json(CONFIG).unwrap();
    let dir = std::env::temp_dir().join(format!("qwen-engine-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        let n = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                offset + scale * ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            })
            .collect();
        tensors.push((name, shape, data));
    };
    let (h, hd, v) = (cfg.hidden_size, cfg.head_dim, cfg.vocab_size);
    add("model.embed_tokens.weight".into(), vec![v, h], 2.0, 0.0);
    add("lm_head.weight".into(), vec![v, h], 0.5, 0.0);
    add("model.norm.weight".into(), vec![h], 0.2, 1.0);
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        add(format!("{p}.input_layernorm.weight"), vec![h], 0.2, 1.0);
        add(
            format!("{p}.post_attention_layernorm.weight"),
            vec![h],
            0.2,
            1.0,
        );
        for (n, rows) in [("q", 4 * hd), ("k", 2 * hd), ("v", 2 * hd)] {
            add(
                format!("{p}.self_attn.{n}_proj.weight"),
                vec![rows, h],
                0.5,
                0.0,
            );
        }
        add(
            format!("{p}.self_attn.o_proj.weight"),
            vec![h, 4 * hd],
            0.5,
            0.0,
        );
        add(format!("{p}.self_attn.q_norm.weight"), vec![hd], 0.2, 1.0);
        add(format!("{p}.self_attn.k_norm.weight"), vec![hd], 0.2, 1.0);
        let mut mlp = |prefix: String, inter: usize| {
            add(
                format!("{prefix}.gate_proj.weight"),
                vec![inter, h],
                0.5,
                0.0,
            );
            add(format!("{prefix}.up_proj.weight"), vec![inter, h], 0.5, 0.0);
            add(
                format!("{prefix}.down_proj.weight"),
                vec![h, inter],
                0.5,
                0.0,
            );
        };
        if cfg.is_sparse_layer(l) {
            for e in 0..4 {
                mlp(format!("{p}.mlp.experts.{e}"), 24);
            }
            add(format!("{p}.mlp.gate.weight"), vec![4, h], 1.0, 0.0);
        } else {
            mlp(format!("{p}.mlp"), 40);
        }
    }
    write_safetensors(&dir.join("model.safetensors"), &tensors);
    dir
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                s.clone(),
                d.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes.iter().map(|(n, s, b)| {
        (
            n.clone(),
            TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
        )
    });
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn load(dir: &Path, dtype: DType) -> Model {
    let cfg = ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let w = SafetensorsWeights::open_dir(dir).unwrap();
    Model::load(cfg, &w, dtype, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_vec0()
        .unwrap()
}

const TOKENS: [u32; 11] = [3, 17, 42, 8, 8, 1, 49, 20, 0, 33, 12];

#[test]
fn incremental_and_chunked_decode_equal_full_forward() {
    let dir = random_model_dir("forward");
    let model = load(&dir, DType::F32);
    let mut cache = model.new_cache();
    let full = model
        .forward_with(&TOKENS, &mut cache, Logits::All)
        .unwrap();
    assert_eq!(full.dims(), [TOKENS.len(), 50]);
    assert_eq!(cache.len(), TOKENS.len());

    let mut cache = model.new_cache().with_block(2);
    for (i, &t) in TOKENS.iter().enumerate() {
        let step = model.forward(&[t], &mut cache).unwrap();
        let d = max_diff(&step, &full.get(i).unwrap());
        assert!(d < 1e-5, "position {i}: {d}");
    }
    let mut cache = model.new_cache().with_block(3);
    let a = model
        .forward_with(&TOKENS[..4], &mut cache, Logits::All)
        .unwrap();
    let b = model
        .forward_with(&TOKENS[4..], &mut cache, Logits::All)
        .unwrap();
    let chunked = Tensor::cat(&[a, b], 0).unwrap();
    assert!(max_diff(&chunked, &full) < 1e-5);
    // Truncate and recompute: the same logits come back.
    cache.truncate(6);
    let again = model
        .forward_with(&TOKENS[6..], &mut cache, Logits::All)
        .unwrap();
    assert!(max_diff(&again, &full.narrow(0, 6, 5).unwrap()) < 1e-5);

    for dtype in [DType::F16, DType::BF16] {
        let low = load(&dir, dtype);
        let out = low
            .forward_with(&TOKENS, &mut low.new_cache(), Logits::All)
            .unwrap();
        let d = max_diff(&out, &full);
        assert!(d < 0.5, "{dtype:?}: {d}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_tokens_are_errors() {
    let dir = random_model_dir("badtok");
    let model = load(&dir, DType::F32);
    let mut cache = model.new_cache();
    let e = model.forward(&[50], &mut cache).unwrap_err().to_string();
    assert!(e.contains("50") && e.contains("vocab_size"), "{e}");
    assert!(matches!(
        model.forward(&[], &mut cache),
        Err(ModelError::Empty)
    ));
    assert_eq!(cache.len(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
