//! Rotary position embeddings (rotate-half layout) with optional YaRN scaling, tables in f32.
//!
//! The inverse frequencies follow transformers 4.57 `_compute_default_rope_parameters` /
//! `_compute_yarn_parameters` step by step in f32, so the tables match the reference bit for bit or within an
//! ulp. Tables are computed per forward call for the positions in use only: a 1M-token context never
//! allocates a 1M-row table.

use candle_core::{DType, Device, Result, Tensor};

use crate::config::{ModelConfig, YarnScaling};

/// Inverse frequencies and the cos/sin scale of one model.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
    attention_scaling: f32,
}

/// cos and sin tables for a run of positions, each `[len, head_dim / 2]` f32.
#[derive(Debug, Clone)]
pub struct RopeTables {
    /// Cosines (already multiplied by the attention scaling).
    pub cos: Tensor,
    /// Sines (already multiplied by the attention scaling).
    pub sin: Tensor,
}

impl Rope {
    /// Builds the inverse frequencies for `config` (default RoPE or YaRN).
    pub fn new(config: &ModelConfig) -> Self {
        let dim = config.head_dim;
        let base = config.rope.theta as f32;
        // pos_freqs = base ** (arange(0, dim, 2) / dim), in f32 like torch.
        let pos_freqs: Vec<f32> = (0..dim)
            .step_by(2)
            .map(|i| base.powf(i as f32 / dim as f32))
            .collect();
        match &config.rope.yarn {
            None => Rope {
                inv_freq: pos_freqs.iter().map(|p| 1.0 / p).collect(),
                attention_scaling: 1.0,
            },
            Some(yarn) => Self::yarn(yarn, dim, config.rope.theta, &pos_freqs),
        }
    }

    fn yarn(yarn: &YarnScaling, dim: usize, base: f64, pos_freqs: &[f32]) -> Self {
        let factor = yarn.factor;
        let get_mscale = |scale: f64, mscale: f64| {
            if scale <= 1.0 {
                1.0
            } else {
                0.1 * mscale * scale.ln() + 1.0
            }
        };
        let attention_factor = match (yarn.attention_factor, yarn.mscale, yarn.mscale_all_dim) {
            (Some(a), _, _) => a,
            (None, Some(m), Some(m_all)) if m != 0.0 && m_all != 0.0 => {
                get_mscale(factor, m) / get_mscale(factor, m_all)
            }
            _ => get_mscale(factor, 1.0),
        };
        let original = yarn.original_max_position_embeddings as f64;
        let correction_dim = |rotations: f64| {
            (dim as f64 * (original / (rotations * 2.0 * std::f64::consts::PI)).ln())
                / (2.0 * base.ln())
        };
        let (mut low, mut high) = (
            correction_dim(yarn.beta_fast),
            correction_dim(yarn.beta_slow),
        );
        if yarn.truncate {
            low = low.floor();
            high = high.ceil();
        }
        let low = low.max(0.0);
        let mut high = high.min(dim as f64 - 1.0);
        if low == high {
            high += 0.001; // transformers: prevent a singular ramp
        }
        let (low32, span32) = (low as f32, (high - low) as f32);
        let inv_freq = pos_freqs
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let extrapolation = 1.0 / p;
                let interpolation = 1.0 / (factor as f32 * p);
                let ramp = ((i as f32 - low32) / span32).clamp(0.0, 1.0);
                let extrapolation_factor = 1.0 - ramp;
                interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor
            })
            .collect();
        Rope {
            inv_freq,
            attention_scaling: attention_factor as f32,
        }
    }

    /// The inverse frequencies (`head_dim / 2` values).
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// cos/sin tables for positions `offset .. offset + len`.
    pub fn tables(&self, offset: usize, len: usize, device: &Device) -> Result<RopeTables> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for pos in offset..offset + len {
            let pos = pos as f32;
            for &f in &self.inv_freq {
                let angle = f * pos;
                cos.push(angle.cos() * self.attention_scaling);
                sin.push(angle.sin() * self.attention_scaling);
            }
        }
        Ok(RopeTables {
            cos: Tensor::from_vec(cos, (len, half), device)?,
            sin: Tensor::from_vec(sin, (len, half), device)?,
        })
    }
}

impl RopeTables {
    /// Rotates `x` of shape `[heads, len, head_dim]` (any float dtype) in f32; returns f32.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?.contiguous()?.unsqueeze(0)?;
        candle_nn::rotary_emb::rope(&x, &self.cos, &self.sin)?.squeeze(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rope_scaling: &str) -> ModelConfig {
        let text = format!(
            r#"{{"model_type": "qwen3_moe", "vocab_size": 10, "hidden_size": 64, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
            "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "rope_theta": 10000.0,
            "max_position_embeddings": 256, "rope_scaling": {rope_scaling}}}"#
        );
        ModelConfig::from_hf_json(&text).unwrap()
    }

    #[test]
    fn default_inverse_frequencies() {
        let rope = Rope::new(&config("null"));
        assert_eq!(rope.inv_freq().len(), 16);
        assert_eq!(rope.inv_freq()[0], 1.0);
        assert!((rope.inv_freq()[1] - 10000f32.powf(-2.0 / 32.0)).abs() < 1e-7);
        assert_eq!(rope.attention_scaling, 1.0);
    }

    #[test]
    fn yarn_matches_transformers() {
        // Printed by transformers 4.57 `_compute_yarn_parameters` for this config (head_dim 32, theta 1e4,
        // factor 4, original 64): the correction range is [0, 5] after truncation.
        const EXPECTED: [f32; 16] = [
            1.0,
            0.47799012,
            0.22135943,
            0.09780537,
            0.04,
            0.014058532,
            0.007_905_695,
            0.0044456986,
            0.0025,
            0.0014058533,
            0.00079056947,
            0.00044456986,
            0.00025,
            0.00014058533,
            7.905695e-05,
            4.4456985e-05,
        ];
        let rope = Rope::new(&config(
            r#"{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}"#,
        ));
        for (i, (got, want)) in rope.inv_freq().iter().zip(EXPECTED).enumerate() {
            assert!(
                (got - want).abs() <= want * 2e-7,
                "dim {i}: {got} vs {want}"
            );
        }
        assert!((rope.attention_scaling - 1.138_629_4).abs() < 1e-6);
    }
}
