//! Grouped-query self-attention: q/k/v projections (bias for Qwen2), per-head q/k RMSNorm (Qwen3*) and RoPE in
//! f32, KV-cache append, causal softmax attention in f32, o_proj.
//!
//! On a host KV cache (CPU: f32 or q8) attention is [`crate::attn`]'s tiled online softmax: causal masking from
//! positions inside the kernel, K/V read in place, no score matrix. On a candle-tensor cache (GPUs; the CPU
//! baseline for benchmarks) queries are laid out `[kv_heads, group * len, head_dim]` so one batched matmul per KV
//! head serves its whole group; decode needs no mask, prefill uses a `[len, kv_len]` causal mask and processes
//! queries in blocks so the score matrix stays bounded.

use candle_core::{DType, Device, Result, Tensor};

use super::linear::{matmul, Linear};
use super::norm::RmsNorm;
use super::rope::RopeTables;
use super::Rows;
use crate::attn::{self, Queries};
use crate::cache::{KvCache, KvCacheKind};
use crate::config::ModelConfig;
use crate::source::WeightSource;
use crate::weights::WeightsError;

/// Upper bound on the f32 score matrix of one query block of the candle path, in bytes.
const SCORE_BLOCK_BYTES: usize = 64 << 20;

/// One layer's attention block.
#[derive(Debug, Clone)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl Attention {
    /// Loads `{prefix}.{q,k,v,o}_proj` (and `{q,k}_norm` when the config has q/k norm).
    pub fn load(
        cfg: &ModelConfig,
        w: &dyn WeightSource,
        prefix: &str,
        dtype: DType,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let (h, kvh, hd, hidden) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
            cfg.hidden_size,
        );
        let lin = |name: &str, out, inp, bias| {
            Linear::load(
                w,
                &format!("{prefix}.{name}"),
                out,
                inp,
                bias,
                dtype,
                device,
            )
        };
        let norm = |name: &str| -> std::result::Result<Option<RmsNorm>, WeightsError> {
            if cfg.qk_norm {
                let prefix = format!("{prefix}.{name}");
                Ok(Some(RmsNorm::load(
                    w,
                    &prefix,
                    hd,
                    cfg.rms_norm_eps,
                    device,
                )?))
            } else {
                Ok(None)
            }
        };
        Ok(Attention {
            q_proj: lin("q_proj", h * hd, hidden, cfg.qkv_bias)?,
            k_proj: lin("k_proj", kvh * hd, hidden, cfg.qkv_bias)?,
            v_proj: lin("v_proj", kvh * hd, hidden, cfg.qkv_bias)?,
            o_proj: lin("o_proj", hidden, h * hd, cfg.o_bias)?,
            q_norm: norm("q_norm")?,
            k_norm: norm("k_norm")?,
            heads: h,
            kv_heads: kvh,
            head_dim: hd,
            scale: 1.0 / (hd as f64).sqrt(),
        })
    }

    /// `x`: `[len, hidden]` at positions `cache.len() ..`; `mask`: `[len, cache.len() + len]` f32, needed only by
    /// a candle-tensor cache with `len > 1` and batched rows (host caches mask inside the kernel). Appends this
    /// layer's K/V to `cache` (the caller commits after the last layer).
    ///
    /// With [`Rows::AsDecode`] every query row gets exactly a one-token step's result: the host kernel already
    /// computes each row on its own (per-row accumulators, key tiles at fixed block offsets; keys past a row's
    /// position enter `P·V` with weight 0, which adds exactly nothing), and the candle path attends row by row.
    pub fn forward(
        &self,
        x: &Tensor,
        rope: &RopeTables,
        mask: Option<&Tensor>,
        cache: &mut KvCache,
        layer: usize,
        rows: Rows,
    ) -> Result<Tensor> {
        let (len, _) = x.dims2()?;
        let dtype = x.dtype();
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let q = self.q_proj.forward_rows(x, rows)?.reshape((len, h, hd))?;
        let k = self.k_proj.forward_rows(x, rows)?.reshape((len, kvh, hd))?;
        let v = self.v_proj.forward_rows(x, rows)?.reshape((len, kvh, hd))?;
        let q = match &self.q_norm {
            Some(n) => n.forward_f32(&q)?,
            None => q,
        };
        let k = match &self.k_norm {
            Some(n) => n.forward_f32(&k)?,
            None => k,
        };
        // [heads, len, hd], rotated in f32, then rounded to the model dtype (what the reference attends with).
        let q = rope.apply(&q.transpose(0, 1)?)?.to_dtype(dtype)?;
        let k = rope.apply(&k.transpose(0, 1)?)?.to_dtype(dtype)?;
        let v = v.transpose(0, 1)?.contiguous()?;
        let out = if cache.kind() == KvCacheKind::Candle {
            self.attend_candle(&q, &k, &v, mask, cache, layer, rows)?
        } else {
            let host = |t: &Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
            cache.append_host(layer, &host(&k)?, &host(&v)?, len)?;
            let q = host(&q)?;
            let out = attn::attend(
                cache,
                layer,
                Queries {
                    data: &q,
                    heads: h,
                    len,
                    past: cache.len(),
                    scale: self.scale as f32,
                },
            )?;
            Tensor::from_vec(out, (len, h * hd), x.device())?.to_dtype(dtype)?
        };
        self.o_proj.forward_rows(&out, rows)
    }

    /// The candle path: append to the cache's tensors, attend to strided views of them with candle matmuls;
    /// returns `[len, heads·hd]`. [`Rows::AsDecode`] attends one query position at a time, over the keys up to
    /// it and without a mask: a one-token step's exact operands.
    #[allow(clippy::too_many_arguments)] // the layer's operands plus the row mode
    fn attend_candle(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut KvCache,
        layer: usize,
        rows: Rows,
    ) -> Result<Tensor> {
        let (h, kvh, hd) = (self.heads, self.kv_heads, self.head_dim);
        let len = q.dim(1)?;
        let (k_all, v_all) = cache.append(layer, k, v)?;
        let q = q.reshape((kvh, h / kvh, len, hd))?;
        let out = if rows == Rows::AsDecode && len > 1 {
            let past = k_all.dim(1)? - len;
            let per_row = (0..len)
                .map(|i| {
                    let visible = past + i + 1;
                    candle_attention(
                        &q.narrow(2, i, 1)?.contiguous()?,
                        &k_all.narrow(1, 0, visible)?,
                        &v_all.narrow(1, 0, visible)?,
                        None,
                        self.scale,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&per_row, 2)?
        } else {
            candle_attention(&q, &k_all, &v_all, mask, self.scale)? // [kvh, group, len, hd]
        };
        out.reshape((h, len, hd))?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((len, h * hd))
    }
}

/// The candle path's softmax attention of `q` `[kvh, group, len, hd]` over `k`, `v` `[kvh, kv_len, hd]` (strided
/// views of a candle-tensor cache; `mask` `[len, kv_len]` when `len > 1`). Query rows are processed in blocks that
/// keep the score matrix under `SCORE_BLOCK_BYTES`. Public for the benchmark that compares it with
/// [`crate::attn`].
pub fn candle_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let (kvh, group, len, hd) = q.dims4()?;
    let kv_len = k.dim(1)?;
    let past = kv_len - len;
    let rows_per_block = (SCORE_BLOCK_BYTES / (4 * kvh * group * kv_len).max(1)).max(1);
    let mut outputs = Vec::new();
    let mut start = 0;
    while start < len {
        let rows = rows_per_block.min(len - start);
        // Causality: query rows up to `start + rows` see keys up to `past + start + rows`.
        let visible = past + start + rows;
        let q_blk = if rows == len {
            q.reshape((kvh, group * len, hd))?
        } else {
            q.narrow(2, start, rows)?
                .contiguous()?
                .reshape((kvh, group * rows, hd))?
        };
        let k_blk = k.narrow(1, 0, visible)?;
        let v_blk = v.narrow(1, 0, visible)?;
        let scores = matmul(&q_blk, &k_blk.t()?)?.to_dtype(DType::F32)?;
        let scores = (scores * scale)?.reshape((kvh, group, rows, visible))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(&m.narrow(0, start, rows)?.narrow(1, 0, visible)?)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?
            .to_dtype(q.dtype())?
            .reshape((kvh, group * rows, visible))?;
        let out = matmul(&probs, &v_blk)?.reshape((kvh, group, rows, hd))?;
        outputs.push(out);
        start += rows;
    }
    if outputs.len() == 1 {
        Ok(outputs.remove(0))
    } else {
        Tensor::cat(&outputs, 2)
    }
}

/// The additive causal mask `[len, past + len]` (0 where visible, -inf after the query's own position).
pub fn causal_mask(len: usize, past: usize, device: &Device) -> Result<Tensor> {
    let kv_len = past + len;
    let mask: Vec<f32> = (0..len)
        .flat_map(|i| (0..kv_len).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (len, kv_len), device)?.contiguous()
}
