//! Unit tests of `config/`: 4.x and 5.x key spellings, defaults, and errors that name the field.

use super::*;

/// The released Qwen3-Coder-30B-A3B-Instruct config (4.x keys, no `attention_bias`).
const QWEN3_CODER_30B: &str = r#"{
  "architectures": ["Qwen3MoeForCausalLM"], "attention_dropout": 0.0, "decoder_sparse_step": 1,
  "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 2048,
  "initializer_range": 0.02, "intermediate_size": 5472, "max_position_embeddings": 262144,
  "max_window_layers": 28, "mlp_only_layers": [], "model_type": "qwen3_moe", "moe_intermediate_size": 768,
  "norm_topk_prob": true, "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8,
  "num_hidden_layers": 48, "num_key_value_heads": 4, "output_router_logits": false, "qkv_bias": false,
  "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 10000000, "router_aux_loss_coef": 0.0,
  "shared_expert_intermediate_size": 0, "sliding_window": null, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true, "use_qk_norm": true,
  "use_sliding_window": false, "vocab_size": 151936
}"#;

fn err(text: &str) -> String {
    match ModelConfig::from_hf_json(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn released_qwen3_coder_config_parses() {
    let c = ModelConfig::from_hf_json(QWEN3_CODER_30B).unwrap();
    assert_eq!(c.architecture, Architecture::Qwen3Moe);
    assert_eq!(
        (c.num_attention_heads, c.num_key_value_heads, c.head_dim),
        (32, 4, 128)
    );
    assert_eq!(c.gqa_group(), 8);
    assert_eq!(c.rope.theta, 1e7);
    assert!(c.rope.yarn.is_none());
    assert!(!c.qkv_bias && !c.o_bias && c.qk_norm && !c.tie_word_embeddings);
    let moe = c.moe.as_ref().unwrap();
    assert_eq!(
        (
            moe.num_experts,
            moe.num_experts_per_tok,
            moe.moe_intermediate_size
        ),
        (128, 8, 768)
    );
    assert!(moe.norm_topk_prob);
    assert!((0..48).all(|l| c.is_sparse_layer(l)));
}

#[test]
fn transformers_5_keys_parse() {
    let text = r#"{"model_type": "qwen3_moe", "vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "intermediate_size": 96,
        "num_local_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 48,
        "decoder_sparse_step": 2, "mlp_only_layers": [3],
        "rope_parameters": {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                            "original_max_position_embeddings": 64}}"#;
    let c = ModelConfig::from_hf_json(text).unwrap();
    assert_eq!(c.moe.as_ref().unwrap().num_experts, 8);
    assert_eq!(c.rope.theta, 1e6);
    let yarn = c.rope.yarn.as_ref().unwrap();
    assert_eq!(
        (yarn.factor, yarn.original_max_position_embeddings),
        (4.0, 64)
    );
    assert_eq!((yarn.beta_fast, yarn.beta_slow), (32.0, 1.0));
    assert!(yarn.truncate);
    // decoder_sparse_step 2: layers 1 and 3 would be sparse, but 3 is forced dense.
    let sparse: Vec<bool> = (0..4).map(|l| c.is_sparse_layer(l)).collect();
    assert_eq!(sparse, [false, true, false, false]);
}

#[test]
fn defaults_follow_transformers() {
    let qwen2 = r#"{"model_type": "qwen2", "vocab_size": 10, "hidden_size": 64, "intermediate_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 4, "tie_word_embeddings": true}"#;
    let c = ModelConfig::from_hf_json(qwen2).unwrap();
    assert_eq!((c.num_key_value_heads, c.head_dim), (4, 16));
    assert!(c.qkv_bias && !c.o_bias && !c.qk_norm && c.tie_word_embeddings);
    assert_eq!(
        (c.rope.theta, c.rms_norm_eps, c.max_position_embeddings),
        (10_000.0, 1e-6, 32_768)
    );
    // Qwen3Config's own default head_dim is 128, not hidden / heads.
    let qwen3 = qwen2.replace("qwen2", "qwen3");
    let c = ModelConfig::from_hf_json(&qwen3).unwrap();
    assert_eq!(c.head_dim, 128);
    assert!(!c.qkv_bias && c.qk_norm);
    // `type` is the old spelling of `rope_type`.
    let yarn = qwen2.replace(
        r#""tie_word_embeddings": true"#,
        r#""rope_scaling": {"type": "yarn", "factor": 2.0, "beta_fast": null}"#,
    );
    let c = ModelConfig::from_hf_json(&yarn).unwrap();
    let y = c.rope.yarn.unwrap();
    assert_eq!(
        (y.original_max_position_embeddings, y.beta_fast),
        (32_768, 32.0)
    );
}

#[test]
fn errors_name_the_field() {
    let base = r#"{"model_type": "qwen3", "vocab_size": 10, "hidden_size": 64, "intermediate_size": 8,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2 EXTRA}"#;
    let with = |extra: &str| base.replace(" EXTRA", extra);
    assert!(err(&with("").replace("qwen3", "llama")).contains("model_type"));
    assert!(err(&with(r#", "hidden_act": "gelu""#)).contains("hidden_act"));
    let e = err(&with(
        r#", "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}"#,
    ));
    assert!(
        e.contains("rope_scaling.rope_type") && e.contains("dynamic"),
        "{e}"
    );
    let e = err(&with(r#", "rope_scaling": {"rope_type": "yarn"}"#));
    assert!(e.contains("rope_scaling.factor"), "{e}");
    assert!(err(&with(r#", "use_sliding_window": true"#)).contains("use_sliding_window"));
    let e = err(&base
        .replace(r#""hidden_size": 64, "#, "")
        .replace(" EXTRA", ""));
    assert!(e.contains("hidden_size"), "{e}");
    let e = err(&with("").replace(r#""num_key_value_heads": 2"#, r#""num_key_value_heads": 3"#));
    assert!(e.contains("num_key_value_heads"), "{e}");
    let moe = with(r#", "num_experts": 4, "num_experts_per_tok": 8, "moe_intermediate_size": 4"#)
        .replace("qwen3", "qwen3_moe");
    assert!(err(&moe).contains("num_experts_per_tok"));
    let moe = with(r#", "num_experts_per_tok": 2, "moe_intermediate_size": 4"#)
        .replace("qwen3", "qwen3_moe");
    assert!(err(&moe).contains("num_experts"));
}

#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("qwen-engine-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.json");
    let e = ModelConfig::from_hf_file(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.json"), "{e}");
    let bad = dir.join("config.json");
    std::fs::write(&bad, r#"{"model_type": "gpt2"}"#).unwrap();
    let e = ModelConfig::from_hf_file(&bad).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
