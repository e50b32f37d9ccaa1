//! GGUF metadata → [`ModelConfig`] for `qwen2`, `qwen3` and `qwen3moe`, with llama.cpp's semantics.
//!
//! The keys are read here, each error naming the key and the file; the values are then written as a Hugging
//! Face `config.json` and normalised by [`ModelConfig::from_hf_json`], so a GGUF model is validated exactly like
//! its safetensors original. What llama.cpp fixes in code rather than metadata is fixed here too: Qwen2 has
//! qkv bias, Qwen3 and Qwen3-MoE have q/k norm, Qwen3-MoE renormalises its top-k routing weights
//! (`norm_topk_prob`, unless `expert_weights_norm` says otherwise) and has no dense layers; the lm_head is tied
//! to the embedding when the file has no `output.weight`.

use serde_json::{json, Map, Value as Json};

use super::{GgufError, GgufFile};
use crate::config::{Architecture, ModelConfig};

/// Builds the model configuration from `file`'s metadata and tensor shapes.
pub fn model_config(file: &GgufFile) -> Result<ModelConfig, GgufError> {
    let arch_key = "general.architecture";
    let arch = file
        .opt_str(arch_key)?
        .ok_or_else(|| file.metadata_error(arch_key, "missing"))?;
    let architecture = match arch {
        "qwen2" => Architecture::Qwen2,
        "qwen3" => Architecture::Qwen3,
        "qwen3moe" => Architecture::Qwen3Moe,
        other => {
            return Err(file.metadata_error(
                arch_key,
                format!(
                    "architecture {other:?} is not supported (expected qwen2, qwen3 or qwen3moe)"
                ),
            ))
        }
    };
    let key = |k: &str| format!("{arch}.{k}");
    let size = |k: &str, v: u64| {
        usize::try_from(v).map_err(|_| file.metadata_error(&key(k), format!("{v} is too large")))
    };
    let uint = |k: &str| size(k, file.uint(&key(k))?);
    let opt_uint = |k: &str| file.opt_uint(&key(k))?.map(|v| size(k, v)).transpose();

    let hidden = uint("embedding_length")?;
    let heads = uint("attention.head_count")?;
    let kv_heads = opt_uint("attention.head_count_kv")?.unwrap_or(heads);
    let head_dim = match opt_uint("attention.key_length")? {
        Some(d) => d,
        None if heads > 0 => hidden / heads,
        None => 0,
    };
    if let Some(v) = opt_uint("attention.value_length")? {
        if v != head_dim {
            return Err(file.metadata_error(
                &key("attention.value_length"),
                format!("{v} differs from the key length {head_dim}: not supported"),
            ));
        }
    }
    if let Some(d) = opt_uint("rope.dimension_count")? {
        if d != head_dim {
            return Err(file.metadata_error(
                &key("rope.dimension_count"),
                format!("{d} differs from the head size {head_dim}: partial rotary embeddings are not supported"),
            ));
        }
    }
    let eps_key = key("attention.layer_norm_rms_epsilon");
    let eps = file
        .opt_float(&eps_key)?
        .ok_or_else(|| file.metadata_error(&eps_key, "missing"))?;
    let context = uint("context_length")?;
    let embd = file.tensor_shape("token_embd.weight").ok_or_else(|| {
        file.metadata_error(
            "token_embd.weight",
            "the file has no token embedding tensor",
        )
    })?;
    let vocab_size = embd.first().copied().unwrap_or(0);

    let mut cfg = Map::new();
    cfg.insert("model_type".into(), json!(architecture.model_type()));
    cfg.insert("vocab_size".into(), json!(vocab_size));
    cfg.insert("hidden_size".into(), json!(hidden));
    cfg.insert("num_hidden_layers".into(), json!(uint("block_count")?));
    cfg.insert("num_attention_heads".into(), json!(heads));
    cfg.insert("num_key_value_heads".into(), json!(kv_heads));
    cfg.insert("head_dim".into(), json!(head_dim));
    cfg.insert("rms_norm_eps".into(), json!(eps));
    cfg.insert("max_position_embeddings".into(), json!(context));
    cfg.insert(
        "rope_theta".into(),
        json!(file.opt_float(&key("rope.freq_base"))?.unwrap_or(10_000.0)),
    );
    cfg.insert(
        "tie_word_embeddings".into(),
        json!(!file.has_tensor("output.weight")),
    );
    match architecture {
        Architecture::Qwen3Moe => {
            cfg.insert("num_experts".into(), json!(uint("expert_count")?));
            cfg.insert(
                "num_experts_per_tok".into(),
                json!(uint("expert_used_count")?),
            );
            cfg.insert(
                "moe_intermediate_size".into(),
                json!(uint("expert_feed_forward_length")?),
            );
            let norm = file.opt_bool(&key("expert_weights_norm"))?.unwrap_or(true);
            cfg.insert("norm_topk_prob".into(), json!(norm));
            if let Some(shared) = opt_uint("expert_shared_count")?.filter(|&n| n > 0) {
                return Err(file.metadata_error(
                    &key("expert_shared_count"),
                    format!("{shared} shared experts: not supported"),
                ));
            }
            if let Some(ff) = opt_uint("feed_forward_length")? {
                cfg.insert("intermediate_size".into(), json!(ff));
            }
        }
        _ => {
            cfg.insert(
                "intermediate_size".into(),
                json!(uint("feed_forward_length")?),
            );
        }
    }
    if let Some(scaling) = rope_scaling(file, arch)? {
        cfg.insert("rope_scaling".into(), scaling);
    }
    let text = Json::Object(cfg).to_string();
    ModelConfig::from_hf_json(&text).map_err(|source| GgufError::Config {
        path: file.path().to_path_buf(),
        source,
    })
}

/// `{arch}.rope.scaling.*` → a transformers `rope_scaling` object (`None` for no scaling).
fn rope_scaling(file: &GgufFile, arch: &str) -> Result<Option<Json>, GgufError> {
    let key = |k: &str| format!("{arch}.rope.scaling.{k}");
    let type_key = key("type");
    let kind = file.opt_str(&type_key)?;
    match kind {
        None | Some("none") => Ok(None),
        Some("yarn") => {
            let factor_key = key("factor");
            let factor = file
                .opt_float(&factor_key)?
                .ok_or_else(|| file.metadata_error(&factor_key, "missing for YaRN scaling"))?;
            let mut obj = Map::new();
            obj.insert("rope_type".into(), json!("yarn"));
            obj.insert("factor".into(), json!(factor));
            if let Some(orig) = file.opt_uint(&key("original_context_length"))? {
                obj.insert("original_max_position_embeddings".into(), json!(orig));
            }
            for (gguf, hf) in [
                ("yarn_beta_fast", "beta_fast"),
                ("yarn_beta_slow", "beta_slow"),
            ] {
                if let Some(v) = file.opt_float(&key(gguf))? {
                    obj.insert(hf.into(), json!(v));
                }
            }
            Ok(Some(Json::Object(obj)))
        }
        Some(other) => Err(file.metadata_error(
            &type_key,
            format!("RoPE scaling {other:?} is not supported (expected none or yarn)"),
        )),
    }
}
