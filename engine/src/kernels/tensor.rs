//! A thin adapter for callers holding `candle_core::Tensor`s: f32 tensors in and out of
//! [`Kernels::matmul`], any leading shape (`[..., cols]` → `[..., rows]`).

use super::{Kernels, QuantMatrix};
use candle_core::{DType, Tensor};

impl Kernels {
    /// `x · wᵀ` for an f32 tensor `x` of shape `[..., w.cols()]`, returning `[..., w.rows()]` on the CPU.
    pub fn matmul_tensor(&self, w: &QuantMatrix<'_>, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let Some((&cols, lead)) = dims.split_last() else {
            candle_core::bail!("quantized matmul: a scalar input has no feature dimension")
        };
        if cols != w.cols() {
            candle_core::bail!(
                "quantized matmul: input has {cols} features, the matrix {}",
                w.cols()
            )
        }
        let tokens: usize = lead.iter().product();
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; tokens * w.rows()];
        self.matmul(w, &xs, tokens, &mut out)
            .map_err(candle_core::Error::wrap)?;
        let mut shape = lead.to_vec();
        shape.push(w.rows());
        Tensor::from_vec(out, shape, &candle_core::Device::Cpu)
    }
}
