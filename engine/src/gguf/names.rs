//! Hugging Face tensor names → llama.cpp's GGUF names (as `convert_hf_to_gguf.py` writes them for `qwen2`,
//! `qwen3` and `qwen3moe`). MoE experts are stacked in GGUF: `ffn_{gate,up,down}_exps` `[experts, rows, cols]`,
//! so an expert's matrix is the tensor name plus an index.

/// Where a Hugging Face tensor lives in a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufName {
    /// The GGUF tensor name.
    pub name: String,
    /// For a stacked expert tensor, which expert.
    pub expert: Option<usize>,
}

/// Maps a Hugging Face name to its GGUF tensor, or `None` for a name with no GGUF counterpart.
pub fn gguf_name(hf: &str) -> Option<GgufName> {
    let plain = |name: &str| {
        Some(GgufName {
            name: name.to_string(),
            expert: None,
        })
    };
    match hf {
        "model.embed_tokens.weight" => return plain("token_embd.weight"),
        "model.norm.weight" => return plain("output_norm.weight"),
        "lm_head.weight" => return plain("output.weight"),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    if let Some(expert) = rest.strip_prefix("mlp.experts.") {
        let (expert, proj) = expert.split_once('.')?;
        let expert: usize = expert.parse().ok()?;
        let stacked = match proj {
            "gate_proj.weight" => "ffn_gate_exps",
            "up_proj.weight" => "ffn_up_exps",
            "down_proj.weight" => "ffn_down_exps",
            _ => return None,
        };
        return Some(GgufName {
            name: format!("blk.{layer}.{stacked}.weight"),
            expert: Some(expert),
        });
    }
    let (module, suffix) = rest.rsplit_once('.')?;
    let gguf = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "mlp.gate" => "ffn_gate_inp",
        _ => return None,
    };
    plain(&format!("blk.{layer}.{gguf}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_layer_tensor() {
        let n = |s: &str| gguf_name(s).map(|g| (g.name, g.expert));
        assert_eq!(
            n("model.layers.3.self_attn.q_proj.bias"),
            Some(("blk.3.attn_q.bias".into(), None))
        );
        assert_eq!(
            n("model.layers.0.self_attn.o_proj.weight"),
            Some(("blk.0.attn_output.weight".into(), None))
        );
        assert_eq!(
            n("model.layers.12.mlp.experts.7.down_proj.weight"),
            Some(("blk.12.ffn_down_exps.weight".into(), Some(7)))
        );
        assert_eq!(
            n("model.layers.1.mlp.gate.weight"),
            Some(("blk.1.ffn_gate_inp.weight".into(), None))
        );
        assert_eq!(
            n("model.layers.1.post_attention_layernorm.weight"),
            Some(("blk.1.ffn_norm.weight".into(), None))
        );
        assert_eq!(n("lm_head.weight"), Some(("output.weight".into(), None)));
        assert_eq!(n("model.layers.x.mlp.gate.weight"), None);
        assert_eq!(n("model.layers.1.mlp.shared_expert.weight"), None);
    }
}
