//! The sparse Mixture-of-Experts block of Qwen3-MoE.
//!
//! Router in f32: softmax over all experts → top-k → renormalise iff `norm_topk_prob`.
//!
//! Quantized experts (a GGUF file's stacked `ffn_*_exps`, or `--quantize`) run through the grouped kernel
//! [`crate::kernels::Kernels::moe_ffn`] on the stacks in place: every selected expert's weights are read once
//! per call for all rows routed to it, the outputs summed per token with the f32 routing weights.
//!
//! Dense experts run on candle: each selected expert runs once over the rows routed to it (gather with
//! `index_select`), its output is scaled by the routing weight (cast to the model dtype), and one `index_add`
//! scatters every expert's rows back — in expert order, the same summation order as transformers. There is no
//! per-token loop over experts on either path.
//!
//! The top-k selection runs on the host (the routing probabilities are read back once per layer). On CPU that
//! is a plain copy; a CUDA build pays one sync per MoE layer, which a later issue's fused kernels remove.

use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Tensor};

use super::linear::Linear;
use super::mlp::Mlp;
use super::Rows;
use crate::config::{ModelConfig, MoeConfig};
use crate::kernels::{ExpertRouting, MoeScratch};
use crate::source::{ExpertWeights, MatrixWeight, QuantWeight, WeightSource};
use crate::threads::ModelKernels;
use crate::weights::WeightsError;

/// One sparse MoE block (router + experts).
#[derive(Debug)]
pub struct SparseMoe {
    /// Router weights `[experts, hidden]`, f32.
    gate: Tensor,
    experts: Experts,
    n_experts: usize,
    top_k: usize,
    norm_topk_prob: bool,
}

/// The experts: quantized stacks for the grouped kernel, or one candle MLP each.
#[derive(Debug)]
enum Experts {
    Stacked {
        gate: QuantWeight,
        up: QuantWeight,
        down: QuantWeight,
        kernels: Arc<ModelKernels>,
        /// Buffers kept between calls; a concurrent call (another sequence) uses its own.
        scratch: Box<Mutex<MoeScratch>>,
    },
    PerExpert(Vec<Mlp>),
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
        let (n, hidden, ffn) = (moe.num_experts, cfg.hidden_size, moe.moe_intermediate_size);
        let stack = |proj: &str, out, inp| w.experts(prefix, proj, n, out, inp, dtype, device);
        let (gates, ups, downs) = (
            stack("gate_proj", ffn, hidden)?,
            stack("up_proj", ffn, hidden)?,
            stack("down_proj", hidden, ffn)?,
        );
        let experts = match (gates, ups, downs, w.kernels()) {
            (
                ExpertWeights::Stacked(gate),
                ExpertWeights::Stacked(up),
                ExpertWeights::Stacked(down),
                Some(kernels),
            ) => Experts::Stacked {
                gate,
                up,
                down,
                kernels,
                scratch: Box::new(Mutex::new(MoeScratch::new())),
            },
            (gates, ups, downs, kernels) => {
                let name = |proj: &str| format!("{prefix}.experts.*.{proj}.weight");
                let linear = |stack: &ExpertWeights,
                              proj: &str,
                              e: usize|
                 -> std::result::Result<Linear, WeightsError> {
                    match (stack.expert(&name(proj), e)?, &kernels) {
                        (MatrixWeight::Dense(weight), _) => Ok(Linear::from_weight(weight)),
                        (m @ MatrixWeight::Quantized(_), Some(k)) => {
                            Ok(Linear::from_matrix(m, None, k))
                        }
                        (MatrixWeight::Quantized(_), None) => Err(WeightsError::Invalid {
                            name: name(proj),
                            file: "weight source".into(),
                            reason: "quantized experts need the model's kernels (load through Model::load)"
                                .into(),
                        }),
                    }
                };
                let mlps = (0..n)
                    .map(|e| {
                        Ok(Mlp::from_linears(
                            linear(&gates, "gate_proj", e)?,
                            linear(&ups, "up_proj", e)?,
                            linear(&downs, "down_proj", e)?,
                        ))
                    })
                    .collect::<std::result::Result<Vec<_>, WeightsError>>()?;
                Experts::PerExpert(mlps)
            }
        };
        Ok(SparseMoe {
            gate,
            experts,
            n_experts: n,
            top_k: moe.num_experts_per_tok,
            norm_topk_prob: moe.norm_topk_prob,
        })
    }

    /// [`SparseMoe::forward`] with a choice of row arithmetic: [`Rows::AsDecode`] runs the block once per row
    /// (the router's GEMM, the experts' batches and the grouped kernel's segments all depend on the row count).
    pub fn forward_rows(&self, x: &Tensor, rows: Rows) -> Result<Tensor> {
        let n = x.dim(0)?;
        if rows == Rows::Batched || n <= 1 {
            return self.forward(x);
        }
        let ys = (0..n)
            .map(|i| self.forward(&x.narrow(0, i, 1)?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&ys, 0)
    }

    /// `x`: `[n, hidden]` → `[n, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let logits = x.to_dtype(DType::F32)?.matmul(&self.gate.t()?)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?;
        let probs: Vec<f32> = probs.flatten_all()?.to_vec1()?;
        match &self.experts {
            Experts::Stacked {
                gate,
                up,
                down,
                kernels,
                scratch,
            } => {
                let (ids, weights) = top_k(&probs, self.n_experts, self.top_k, self.norm_topk_prob);
                let (n, hidden) = x.dims2()?;
                let xs: Vec<f32> = x
                    .to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1()?;
                let mut out = vec![0f32; n * hidden];
                let k = self.top_k.min(self.n_experts);
                let wrap = candle_core::Error::wrap;
                let routing = ExpertRouting::new(n, k, &ids, &weights).map_err(wrap)?;
                let (g, u, d) = (
                    gate.stack().map_err(wrap)?,
                    up.stack().map_err(wrap)?,
                    down.stack().map_err(wrap)?,
                );
                let kern = kernels.for_tokens(n);
                match scratch.try_lock() {
                    Ok(mut s) => kern.moe_ffn(&g, &u, &d, &xs, &routing, &mut out, &mut s),
                    Err(_) => {
                        kern.moe_ffn(&g, &u, &d, &xs, &routing, &mut out, &mut MoeScratch::new())
                    }
                }
                .map_err(wrap)?;
                Tensor::from_vec(out, (n, hidden), &Device::Cpu)?
                    .to_dtype(x.dtype())?
                    .to_device(x.device())
            }
            Experts::PerExpert(experts) => self.forward_per_expert(x, &probs, experts),
        }
    }

    /// The candle path for dense experts.
    fn forward_per_expert(&self, x: &Tensor, probs: &[f32], experts: &[Mlp]) -> Result<Tensor> {
        let (n, hidden) = x.dims2()?;
        let routes = route(probs, experts.len(), self.top_k, self.norm_topk_prob);
        let device = x.device();
        let mut rows = Vec::with_capacity(n * self.top_k);
        let mut outputs = Vec::new();
        for (expert, r) in experts.iter().zip(&routes) {
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

/// Top-k of `probs` (`[n, experts]` row-major softmax output) per row: `k = min(top_k, experts)` expert ids
/// and weights per row (`[n, k]`), by descending probability, ties to the lower expert index.
pub fn top_k(probs: &[f32], experts: usize, top_k: usize, normalise: bool) -> (Vec<u32>, Vec<f32>) {
    let k = top_k.min(experts);
    let rows = probs.len() / experts.max(1);
    let (mut ids, mut weights) = (Vec::with_capacity(rows * k), Vec::with_capacity(rows * k));
    let mut order: Vec<usize> = Vec::with_capacity(experts);
    for p in probs.chunks_exact(experts.max(1)) {
        order.clear();
        order.extend(0..experts);
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        let chosen = &order[..k];
        let sum: f32 = chosen.iter().map(|&e| p[e]).sum();
        for &e in chosen {
            ids.push(e as u32);
            weights.push(if normalise { p[e] / sum } else { p[e] });
        }
    }
    (ids, weights)
}

/// Top-k routing of `probs` grouped by expert: for each expert, the rows sent to it (ascending) and their
/// weights.
pub fn route(probs: &[f32], experts: usize, k: usize, normalise: bool) -> Vec<ExpertRoute> {
    let mut routes = vec![ExpertRoute::default(); experts];
    let (ids, weights) = top_k(probs, experts, k, normalise);
    let k = k.min(experts).max(1);
    for (a, (&e, &w)) in ids.iter().zip(&weights).enumerate() {
        routes[e as usize].rows.push((a / k) as u32);
        routes[e as usize].weights.push(w);
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
