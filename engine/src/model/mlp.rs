//! The dense SwiGLU MLP: `down(silu(gate(x)) * up(x))`. Also the shape of every MoE expert.

use candle_core::{DType, Device, Result, Tensor};

use super::linear::Linear;
use super::Rows;
use crate::source::WeightSource;
use crate::weights::WeightsError;

/// A SwiGLU feed-forward block.
#[derive(Debug, Clone)]
pub struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    /// Loads `{prefix}.{gate,up,down}_proj` for widths `hidden -> intermediate -> hidden`.
    pub fn load(
        w: &dyn WeightSource,
        prefix: &str,
        hidden: usize,
        intermediate: usize,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let lin = |name: &str, out, inp| {
            Linear::load(
                w,
                &format!("{prefix}.{name}"),
                out,
                inp,
                false,
                dtype,
                device,
            )
        };
        Ok(Mlp {
            gate_proj: lin("gate_proj", intermediate, hidden)?,
            up_proj: lin("up_proj", intermediate, hidden)?,
            down_proj: lin("down_proj", hidden, intermediate)?,
        })
    }

    /// An MLP over loaded projections (MoE experts).
    pub fn from_linears(gate_proj: Linear, up_proj: Linear, down_proj: Linear) -> Self {
        Mlp {
            gate_proj,
            up_proj,
            down_proj,
        }
    }

    /// `x`: `[n, hidden]` → `[n, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_rows(x, Rows::Batched)
    }

    /// [`Mlp::forward`] with a choice of row arithmetic (see [`Rows`]).
    pub fn forward_rows(&self, x: &Tensor, rows: Rows) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate_proj.forward_rows(x, rows)?)?;
        let up = self.up_proj.forward_rows(x, rows)?;
        self.down_proj.forward_rows(&(gate * up)?, rows)
    }
}
