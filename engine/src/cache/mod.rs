//! The KV cache of one sequence: per layer, the keys and values of every position held.
//!
//! Three storage kinds ([`KvCacheKind`]):
//! - `F32` (CPU default): host blocks of `block` positions in f32, read in place by the tiled attention kernel
//!   ([`crate::attn`]), in panels of [`PANEL`] lanes so that every micro-kernel pass reads memory sequentially:
//!   keys as `[kv_heads][block/32][head_dim][32]` (32 consecutive keys of one dimension are contiguous: the
//!   score loop broadcasts one query value against them), values as `[kv_heads][head_dim/32][block][32]` (32
//!   dimensions of one position are contiguous, consecutive positions follow: the `P·V` loop). Partial panels
//!   are padded. f32 whatever the model dtype: f16/bf16 models round K/V to their dtype before they are stored,
//!   so the values are the model's, and the kernel needs no conversion in its inner loop.
//! - `Q8`: the same blocks with K/V as symmetric int8 in groups of 32 along `head_dim` (one f32 scale per
//!   group, position and head: 1.125 bytes per value, 3.6× smaller than f32). The kernel dequantizes each key
//!   tile once per KV head and query tile, inside its tile loop.
//! - `Candle`: `[kv_heads, capacity, head_dim]` candle tensors in the model dtype on the model's device, with
//!   attention through candle matmul/softmax. The only kind on a GPU (chosen there whatever was asked); on the
//!   CPU the baseline that benchmarks and tests compare the tiled kernel with.
//!
//! Capacity grows on demand, one block at a time for host kinds (nothing is ever copied: a new block is simply
//! added), never `max_position_embeddings` up front. `truncate` is O(1): positions past `len` are overwritten
//! later. The cache lives outside the `Model` (immutable and shared): each request owns its own.

use std::str::FromStr;

use candle_core::{DType, Device, Result, Tensor};

pub mod q8;

/// Default growth granularity, in positions.
pub const DEFAULT_BLOCK: usize = 256;

/// How a cache stores keys and values (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvCacheKind {
    /// f32 host blocks read by the tiled attention kernel (exact).
    #[default]
    F32,
    /// int8 host blocks with a scale per 32 values (3.6× smaller than f32; small logit error).
    Q8,
    /// candle tensors in the model dtype, attention through candle ops (GPUs; a baseline on CPU).
    Candle,
}

impl FromStr for KvCacheKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(KvCacheKind::F32),
            "q8" | "q8_0" | "int8" => Ok(KvCacheKind::Q8),
            "candle" => Ok(KvCacheKind::Candle),
            other => Err(format!(
                "unknown KV cache kind {other:?}: expected f32, q8 or candle"
            )),
        }
    }
}

/// Lanes per panel of the host layouts (two AVX-512 registers of f32).
pub const PANEL: usize = 32;

/// One block of `block` positions of one layer, all KV heads (layouts in the module documentation; offsets in
/// [`Layout`]).
#[derive(Debug)]
pub(crate) enum HostBlock {
    /// Keys and values in their panel layouts.
    F32 { k: Vec<f32>, v: Vec<f32> },
    /// The same layouts in int8, with scales `[kv_heads][groups][block]` (keys) and `[kv_heads][block][groups]`
    /// (values); `groups = head_dim / q8::group(head_dim)`.
    Q8 {
        k: Vec<i8>,
        k_scale: Vec<f32>,
        v: Vec<i8>,
        v_scale: Vec<f32>,
    },
}

#[derive(Debug)]
enum LayerKv {
    Host(Vec<HostBlock>),
    /// `[kv_heads, capacity, head_dim]` each, allocated on first use.
    Tensors {
        kv: Option<(Tensor, Tensor)>,
        capacity: usize,
    },
}

/// Keys and values of every layer for the first `len` positions of one sequence.
///
/// Not `Clone`: the buffers are written in place, so two owners must never share them.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    len: usize,
    block: usize,
    kv_heads: usize,
    head_dim: usize,
    kind: KvCacheKind,
    dtype: DType,
    device: Device,
}

/// A read-only view of one layer's host blocks, as the attention kernel reads them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostLayer<'a> {
    pub blocks: &'a [HostBlock],
    pub layout: Layout,
    pub kv_heads: usize,
}

/// Offsets into a host block's panel layouts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub block: usize,
    pub head_dim: usize,
}

impl Layout {
    /// Values per KV head of the key array (positions padded to whole panels).
    pub fn k_head(&self) -> usize {
        self.block.div_ceil(PANEL) * PANEL * self.head_dim
    }

    /// Values per KV head of the value array (dimensions padded to whole panels).
    pub fn v_head(&self) -> usize {
        self.head_dim.div_ceil(PANEL) * PANEL * self.block
    }

    /// Key `(d, j)` of head `h` (`j` the position inside the block).
    pub fn k_at(&self, h: usize, d: usize, j: usize) -> usize {
        h * self.k_head() + (j / PANEL) * self.head_dim * PANEL + d * PANEL + j % PANEL
    }

    /// Value `(j, d)` of head `h`.
    pub fn v_at(&self, h: usize, j: usize, d: usize) -> usize {
        h * self.v_head() + (d / PANEL) * self.block * PANEL + j * PANEL + d % PANEL
    }
}

impl KvCache {
    /// An empty cache for a model with these dimensions: [`KvCacheKind::F32`] on the CPU,
    /// [`KvCacheKind::Candle`] on any other device.
    pub fn new(
        layers: usize,
        kv_heads: usize,
        head_dim: usize,
        dtype: DType,
        device: &Device,
    ) -> Self {
        let kind = if device.is_cpu() {
            KvCacheKind::F32
        } else {
            KvCacheKind::Candle
        };
        KvCache {
            layers: (0..layers).map(|_| Self::empty_layer(kind)).collect(),
            len: 0,
            block: DEFAULT_BLOCK,
            kv_heads,
            head_dim,
            kind,
            dtype,
            device: device.clone(),
        }
    }

    fn empty_layer(kind: KvCacheKind) -> LayerKv {
        match kind {
            KvCacheKind::F32 | KvCacheKind::Q8 => LayerKv::Host(Vec::new()),
            KvCacheKind::Candle => LayerKv::Tensors {
                kv: None,
                capacity: 0,
            },
        }
    }

    /// Chooses the storage kind (drops every position held). Host kinds exist only on the CPU: on another
    /// device the cache stays [`KvCacheKind::Candle`] and a warning is logged.
    pub fn with_kind(mut self, kind: KvCacheKind) -> Self {
        let kind = if kind != KvCacheKind::Candle && !self.device.is_cpu() {
            tracing::warn!(
                ?kind,
                "host KV cache kinds run on the CPU only; keeping candle tensors on the device"
            );
            KvCacheKind::Candle
        } else {
            kind
        };
        self.kind = kind;
        self.clear();
        self
    }

    /// Sets the growth granularity (positions per block, at least 1). Drops every position held.
    pub fn with_block(mut self, block: usize) -> Self {
        self.block = block.max(1);
        self.clear();
        self
    }

    /// The storage kind.
    pub fn kind(&self) -> KvCacheKind {
        self.kind
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions that fit without growing (the smallest over layers; 0 before first use).
    pub fn capacity(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                LayerKv::Host(blocks) => blocks.len() * self.block,
                LayerKv::Tensors { capacity, .. } => *capacity,
            })
            .min()
            .unwrap_or(0)
    }

    /// Bytes allocated for keys and values (all layers, including unused capacity).
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                LayerKv::Host(blocks) => blocks
                    .iter()
                    .map(|b| match b {
                        HostBlock::F32 { k, v } => 4 * (k.len() + v.len()),
                        HostBlock::Q8 {
                            k,
                            k_scale,
                            v,
                            v_scale,
                        } => k.len() + v.len() + 4 * (k_scale.len() + v_scale.len()),
                    })
                    .sum(),
                LayerKv::Tensors { capacity, .. } => {
                    2 * self.kv_heads * self.head_dim * capacity * self.dtype.size_in_bytes()
                }
            })
            .sum()
    }

    /// Forgets every position from `n` on (no-op if `n >= len`). Memory is kept for reuse.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Drops all positions and frees the buffers.
    pub fn clear(&mut self) {
        self.len = 0;
        let kind = self.kind;
        for layer in &mut self.layers {
            *layer = Self::empty_layer(kind);
        }
    }

    /// Marks `n` appended positions as held (after every layer appended them).
    pub fn commit(&mut self, n: usize) {
        self.len += n;
    }

    /// Writes `n` positions of `layer` at `len .. len + n` into a host cache. `k`, `v`: `[kv_heads, n, head_dim]`
    /// f32. Call for every layer, then [`KvCache::commit`] once.
    pub fn append_host(&mut self, layer: usize, k: &[f32], v: &[f32], n: usize) -> Result<()> {
        let (kvh, hd, block, offset) = (self.kv_heads, self.head_dim, self.block, self.len);
        if k.len() != kvh * n * hd || v.len() != k.len() {
            candle_core::bail!(
                "kv cache append: {} / {} values for {n} positions of {kvh} heads x {hd}",
                k.len(),
                v.len()
            )
        }
        let kind = self.kind;
        let blocks = match self.layers.get_mut(layer) {
            Some(LayerKv::Host(blocks)) => blocks,
            Some(LayerKv::Tensors { .. }) => {
                candle_core::bail!("kv cache append_host on a candle-tensor cache")
            }
            None => candle_core::bail!("kv cache has no layer {layer}"),
        };
        let needed = (offset + n).div_ceil(block);
        while blocks.len() < needed {
            blocks.push(new_block(kind, kvh, hd, block));
        }
        let layout = Layout {
            block,
            head_dim: hd,
        };
        let group = q8::group(hd);
        let groups = hd / group;
        let mut kq = vec![0i8; hd];
        let mut vq = vec![0i8; hd];
        let mut scales = vec![0f32; groups];
        for h in 0..kvh {
            for i in 0..n {
                let pos = offset + i;
                let Some(b) = blocks.get_mut(pos / block) else {
                    candle_core::bail!("kv cache block {} missing", pos / block)
                };
                let j = pos % block;
                let src = (h * n + i) * hd;
                let (kr, vr) = (&k[src..src + hd], &v[src..src + hd]);
                match b {
                    HostBlock::F32 { k: kb, v: vb } => {
                        for d in 0..hd {
                            kb[layout.k_at(h, d, j)] = kr[d];
                            vb[layout.v_at(h, j, d)] = vr[d];
                        }
                    }
                    HostBlock::Q8 {
                        k: kb,
                        k_scale,
                        v: vb,
                        v_scale,
                    } => {
                        q8::quantize(kr, group, &mut kq, &mut scales);
                        for (g, &s) in scales.iter().enumerate() {
                            k_scale[(h * groups + g) * block + j] = s;
                        }
                        q8::quantize(
                            vr,
                            group,
                            &mut vq,
                            &mut v_scale[(h * block + j) * groups..][..groups],
                        );
                        for d in 0..hd {
                            kb[layout.k_at(h, d, j)] = kq[d];
                            vb[layout.v_at(h, j, d)] = vq[d];
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The host blocks of `layer` (for the attention kernel), `None` for a candle-tensor cache.
    pub(crate) fn host_layer(&self, layer: usize) -> Option<HostLayer<'_>> {
        match self.layers.get(layer)? {
            LayerKv::Host(blocks) => Some(HostLayer {
                blocks,
                layout: Layout {
                    block: self.block,
                    head_dim: self.head_dim,
                },
                kv_heads: self.kv_heads,
            }),
            LayerKv::Tensors { .. } => None,
        }
    }

    /// Writes `k`, `v` (`[kv_heads, n, head_dim]`) of `layer` at positions `len .. len + n` of a candle-tensor
    /// cache and returns views of all `len + n` positions. Call for every layer, then [`KvCache::commit`] once.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = k.dim(1)?;
        let offset = self.len;
        let needed = offset + n;
        let (kv_heads, head_dim, dtype, device, block) = (
            self.kv_heads,
            self.head_dim,
            self.dtype,
            self.device.clone(),
            self.block,
        );
        let (slot_kv, slot_capacity) = match self.layers.get_mut(layer) {
            Some(LayerKv::Tensors { kv, capacity }) => (kv, capacity),
            Some(LayerKv::Host(_)) => {
                candle_core::bail!("kv cache append of tensors on a host cache")
            }
            None => candle_core::bail!("kv cache has no layer {layer}"),
        };
        if needed > *slot_capacity || slot_kv.is_none() {
            // Grow by at least a quarter so long prompts do not copy the cache once per block.
            let target = needed.max(*slot_capacity + *slot_capacity / 4);
            let capacity = target.div_ceil(block) * block;
            let fresh = |old: Option<&Tensor>| -> Result<Tensor> {
                let zeros = |len| Tensor::zeros((kv_heads, len, head_dim), dtype, &device);
                match old {
                    Some(old) if offset > 0 => {
                        Tensor::cat(&[&old.narrow(1, 0, offset)?, &zeros(capacity - offset)?], 1)
                    }
                    _ => zeros(capacity),
                }
            };
            let (k_old, v_old) = match &*slot_kv {
                Some((k, v)) => (Some(k), Some(v)),
                None => (None, None),
            };
            *slot_kv = Some((fresh(k_old)?, fresh(v_old)?));
            *slot_capacity = capacity;
        }
        let Some((k_all, v_all)) = &*slot_kv else {
            candle_core::bail!("kv cache layer {layer} was not allocated")
        };
        let k = k.to_dtype(dtype)?.contiguous()?;
        let v = v.to_dtype(dtype)?.contiguous()?;
        k_all.slice_set(&k, 1, offset)?;
        v_all.slice_set(&v, 1, offset)?;
        Ok((k_all.narrow(1, 0, needed)?, v_all.narrow(1, 0, needed)?))
    }
}

fn new_block(kind: KvCacheKind, kvh: usize, hd: usize, block: usize) -> HostBlock {
    let layout = Layout {
        block,
        head_dim: hd,
    };
    let (k_len, v_len) = (kvh * layout.k_head(), kvh * layout.v_head());
    match kind {
        KvCacheKind::Q8 => {
            let scales = kvh * (hd / q8::group(hd)) * block;
            HostBlock::Q8 {
                k: vec![0; k_len],
                k_scale: vec![0.0; scales],
                v: vec![0; v_len],
                v_scale: vec![0.0; scales],
            }
        }
        // Candle caches never hold host blocks; f32 is the host default.
        KvCacheKind::F32 | KvCacheKind::Candle => HostBlock::F32 {
            k: vec![0.0; k_len],
            v: vec![0.0; v_len],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_cache_grows_in_blocks_and_truncates() -> Result<()> {
        let dev = Device::Cpu;
        let mut cache = KvCache::new(1, 2, 3, DType::F32, &dev)
            .with_kind(KvCacheKind::Candle)
            .with_block(4);
        let step = |cache: &mut KvCache, value: f32, n: usize| -> Result<(Tensor, Tensor)> {
            let k = Tensor::full(value, (2, n, 3), &dev)?;
            let out = cache.append(0, &k, &(k.clone() * 2.0)?)?;
            cache.commit(n);
            Ok(out)
        };
        step(&mut cache, 1.0, 3)?;
        assert_eq!(cache.capacity(), 4);
        let (k, v) = step(&mut cache, 2.0, 2)?;
        assert_eq!((cache.len(), cache.capacity()), (5, 8));
        assert_eq!(k.dims(), [2, 5, 3]);
        let row: Vec<f32> = k.get(1)?.get(4)?.to_vec1()?;
        assert_eq!(row, [2.0, 2.0, 2.0]);
        let first: Vec<Vec<f32>> = v.get(0)?.narrow(0, 0, 3)?.to_vec2()?;
        assert!(first.iter().flatten().all(|&x| x == 2.0));
        // Truncate and overwrite: old values past the cut are never visible.
        cache.truncate(1);
        let (k, _) = step(&mut cache, 7.0, 1)?;
        let col: Vec<f32> = k.get(0)?.get(1)?.to_vec1()?;
        assert_eq!((cache.len(), col), (2, vec![7.0; 3]));
        assert_eq!(cache.capacity(), 8);
        Ok(())
    }

    #[test]
    fn host_cache_adds_blocks_on_demand_and_keeps_them_on_truncate() -> Result<()> {
        for kind in [KvCacheKind::F32, KvCacheKind::Q8] {
            let mut cache = KvCache::new(2, 2, 32, DType::F32, &Device::Cpu)
                .with_kind(kind)
                .with_block(32);
            assert_eq!((cache.capacity(), cache.bytes()), (0, 0));
            let k = vec![0.5f32; 2 * 5 * 32];
            for layer in 0..2 {
                cache.append_host(layer, &k, &k, 5)?;
            }
            cache.commit(5);
            assert_eq!((cache.len(), cache.capacity()), (5, 32));
            let bytes = cache.bytes();
            let f32_bytes = 2 * 2 * 2 * 32 * 32 * 4;
            match kind {
                KvCacheKind::F32 => assert_eq!(bytes, f32_bytes),
                _ => assert_eq!(bytes, f32_bytes * 9 / 32),
            }
            cache.truncate(2);
            assert_eq!((cache.len(), cache.capacity()), (2, 32));
            assert!(cache.append_host(0, &k[..10], &k[..10], 5).is_err());
            assert!(cache.append_host(2, &k, &k, 5).is_err());
        }
        Ok(())
    }
}
