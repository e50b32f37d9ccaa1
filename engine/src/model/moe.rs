//! The sparse Mixture-of-Experts block of Qwen3-MoE.
//!
//! Router in f32: softmax over all experts → top-k → renormalise iff `norm_topk_prob` → cast to the model dtype.
//! Then each selected expert runs once over the rows routed to it (gather with `index_select`), its output is
//! scaled by the routing weight, and one `index_add` scatters every expert's rows back — in expert order, the
//! same summation order as transformers. There is no per-token loop over experts.
//!
//! The top-k selection runs on the host (the routing probabilities are read back once per layer). On CPU that
//! is a plain copy; a CUDA build pays one sync per MoE layer, which a later issue's fused kernels remove.

use candle_core::{DType, Device, Result, Tensor};

use super::mlp::Mlp;
use crate::config::{ModelConfig, MoeConfig};
use crate::source::WeightSource;
use crate::weights::WeightsError;

/// One sparse MoE block (router + experts).
#[derive(Debug, Clone)]
pub struct SparseMoe {
    /// Router weights `[experts, hidden]`, f32.
    gate: Tensor,
    experts: Vec<Mlp>,
    top_k: usize,
    norm_topk_prob: bool,
}

/// Rows routed to one expert and their weights.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExpertRoute {
    /// Row indices into the block input.
    pub rows: Vec<u32>,
    /// Routing weight of each row (f32, after optional renormalisation).
    pub weights: Vec<f32>,
}

impl SparseMoe {
    /// Loads `{prefix}.gate` and `{prefix}.experts.{e}.{gate,up,down}_proj`.
    pub fn load(
        cfg: &ModelConfig,
        moe: &MoeConfig,
        w: &dyn WeightSource,
        prefix: &str,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let gate = w.tensor(
            &format!("{prefix}.gate.weight"),
            &[moe.num_experts, cfg.hidden_size],
            DType::F32,
            device,
        )?;
        let experts = (0..moe.num_experts)
            .map(|e| {
                let p = format!("{prefix}.experts.{e}");
                Mlp::load(
                    w,
                    &p,
                    cfg.hidden_size,
                    moe.moe_intermediate_size,
                    dtype,
                    device,
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(SparseMoe {
            gate,
            experts,
            top_k: moe.num_experts_per_tok,
            norm_topk_prob: moe.norm_topk_prob,
        })
    }

    /// `x`: `[n, hidden]` → `[n, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, hidden) = x.dims2()?;
        let logits = x.to_dtype(DType::F32)?.matmul(&self.gate.t()?)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?;
        let probs: Vec<f32> = probs.flatten_all()?.to_vec1()?;
        let routes = route(&probs, self.experts.len(), self.top_k, self.norm_topk_prob);
        let device = x.device();
        let mut rows = Vec::with_capacity(n * self.top_k);
        let mut outputs = Vec::new();
        for (expert, r) in self.experts.iter().zip(&routes) {
            if r.rows.is_empty() {
                continue;
            }
            let count = r.rows.len();
            let xs = if n == 1 {
                x.clone()
            } else {
                x.index_select(&Tensor::new(r.rows.as_slice(), device)?, 0)?
            };
            let w = Tensor::from_slice(&r.weights, (count, 1), device)?.to_dtype(x.dtype())?;
            outputs.push(expert.forward(&xs)?.broadcast_mul(&w)?);
            rows.extend_from_slice(&r.rows);
        }
        let ys = Tensor::cat(&outputs, 0)?;
        let rows = Tensor::from_vec(rows, ys.dim(0)?, device)?;
        Tensor::zeros((n, hidden), x.dtype(), device)?.index_add(&rows, &ys, 0)
    }
}

/// Top-k routing of `probs` (`[n, experts]` row-major softmax output): for each expert, the rows sent to it
/// (ascending) and their weights. Ties go to the lower expert index.
pub fn route(probs: &[f32], experts: usize, top_k: usize, normalise: bool) -> Vec<ExpertRoute> {
    let mut routes = vec![ExpertRoute::default(); experts];
    let mut order: Vec<usize> = Vec::with_capacity(experts);
    for (row, p) in probs.chunks_exact(experts.max(1)).enumerate() {
        order.clear();
        order.extend(0..experts);
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let chosen = &order[..top_k.min(experts)];
        let sum: f32 = chosen.iter().map(|&e| p[e]).sum();
        for &e in chosen {
            let weight = if normalise { p[e] / sum } else { p[e] };
            routes[e].rows.push(row as u32);
            routes[e].weights.push(weight);
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_top_k_with_optional_renormalisation() {
        let probs = [0.1, 0.5, 0.3, 0.1, /* row 1 */ 0.4, 0.05, 0.05, 0.5];
        let r = route(&probs, 4, 2, false);
        assert_eq!(r[1].rows, [0]);
        assert_eq!(r[2].rows, [0]);
        assert_eq!(r[0].rows, [1]);
        assert_eq!(r[3].rows, [1]);
        assert_eq!(r[3].weights, [0.5]);
        let r = route(&probs, 4, 2, true);
        assert!((r[1].weights[0] - 0.5 / 0.8).abs() < 1e-7);
        assert!((r[0].weights[0] - 0.4 / 0.9).abs() < 1e-7);
    }
}
