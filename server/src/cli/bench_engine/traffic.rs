//! Bytes a decode step reads from a GGUF file's weights: the numerator of the memory-bandwidth bound.
//!
//! Counted per tensor, as stored: stacked expert tensors (`*_exps`, `[experts, rows, cols]`) count `top_k /
//! n_experts` of their bytes (the routed experts only); the token embedding counts one row when the file has its
//! own `output.weight` and the whole table when the lm_head is tied to it; every other tensor (attention, norms,
//! router, dense FFN, lm_head) counts in full. The KV cache is not counted: it is reported separately, since
//! it grows with the position and its dtype differs between engines.

use qwen_engine::TensorEntry;

/// Per-token weight traffic of one model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeTraffic {
    /// Bytes of the routed experts' matrices (top-k of every `*_exps` tensor).
    pub experts: u64,
    /// Bytes of the lm_head (`output.weight`, or the whole tied embedding table).
    pub lm_head: u64,
    /// Bytes of the embedding row looked up (0 when the table is tied and already counted as the lm_head).
    pub embedding_row: u64,
    /// Everything else: attention projections, norms, router, dense FFN, biases.
    pub dense: u64,
}

impl DecodeTraffic {
    /// All bytes read per decoded token.
    pub fn total(&self) -> u64 {
        self.experts + self.lm_head + self.embedding_row + self.dense
    }
}

/// Why the traffic of a file cannot be computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrafficError {
    /// A stacked expert tensor in a file whose metadata names no expert count.
    #[error("tensor `{0}` holds stacked experts but the model config has no expert count / top-k")]
    NoExpertConfig(String),
    /// A stacked expert tensor whose first dimension is not the expert count.
    #[error(
        "tensor `{name}` has shape {shape:?}; expected {experts} experts in its first dimension"
    )]
    ExpertShape {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The config's expert count.
        experts: usize,
    },
}

/// Bytes read per decoded token, from the stored tensors. `experts` is `(n_experts, top_k)` for MoE models.
/// `bytes_per_element` overrides the stored size (2.0 for "this model held dense in f16", as candle's dense
/// `qwen3_moe` runs it); `None` counts the file's own bytes.
pub fn decode_traffic(
    tensors: &[TensorEntry],
    experts: Option<(usize, usize)>,
    bytes_per_element: Option<f64>,
) -> Result<DecodeTraffic, TrafficError> {
    let size = |t: &TensorEntry| match bytes_per_element {
        Some(b) => (t.shape.iter().product::<usize>() as f64 * b) as u64,
        None => t.bytes,
    };
    let tied = !tensors.iter().any(|t| t.name == "output.weight");
    let mut traffic = DecodeTraffic::default();
    for t in tensors {
        if t.name.contains("_exps") {
            let (n, k) = experts.ok_or_else(|| TrafficError::NoExpertConfig(t.name.clone()))?;
            if t.shape.first() != Some(&n) || n == 0 {
                return Err(TrafficError::ExpertShape {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    experts: n,
                });
            }
            // Every expert is the same number of whole blocks: the division is exact.
            traffic.experts += size(t) / n as u64 * k as u64;
        } else if t.name == "token_embd.weight" {
            if tied {
                traffic.lm_head += size(t);
            } else {
                let rows = t.shape.first().copied().unwrap_or(1).max(1) as u64;
                traffic.embedding_row += size(t) / rows;
            }
        } else if t.name == "output.weight" {
            traffic.lm_head += size(t);
        } else {
            traffic.dense += size(t);
        }
    }
    Ok(traffic)
}

/// KV-cache bytes read by one decode step at `position` (K and V, every layer) with `bytes` per element.
pub fn kv_cache_read(
    layers: usize,
    kv_heads: usize,
    head_dim: usize,
    position: usize,
    bytes: usize,
) -> u64 {
    (2 * layers * kv_heads * head_dim * position * bytes) as u64
}
