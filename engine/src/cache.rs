//! The KV cache of one sequence: per layer, keys and values `[kv_heads, capacity, head_dim]`.
//!
//! Capacity grows in blocks on demand (never `max_position_embeddings` up front); new positions are written in
//! place with `slice_set`, and attention reads a `narrow`ed view, so a decode step copies only the new token's
//! keys and values, not the whole cache. `truncate` is O(1): positions past `len` are simply overwritten later.
//! The cache lives outside the `Model` (which is immutable and shared): each request owns its own.

use candle_core::{DType, Device, Result, Tensor};

/// Default growth granularity, in positions.
pub const DEFAULT_BLOCK: usize = 256;

#[derive(Debug, Default)]
struct LayerKv {
    /// `[kv_heads, capacity, head_dim]` each, allocated on first use.
    kv: Option<(Tensor, Tensor)>,
    capacity: usize,
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
    dtype: DType,
    device: Device,
}

impl KvCache {
    /// An empty cache for a model with these dimensions.
    pub fn new(
        layers: usize,
        kv_heads: usize,
        head_dim: usize,
        dtype: DType,
        device: &Device,
    ) -> Self {
        KvCache {
            layers: (0..layers).map(|_| LayerKv::default()).collect(),
            len: 0,
            block: DEFAULT_BLOCK,
            kv_heads,
            head_dim,
            dtype,
            device: device.clone(),
        }
    }

    /// Sets the growth granularity (positions per block, at least 1).
    pub fn with_block(mut self, block: usize) -> Self {
        self.block = block.max(1);
        self
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
        self.layers.iter().map(|l| l.capacity).min().unwrap_or(0)
    }

    /// Forgets every position from `n` on (no-op if `n >= len`). Memory is kept for reuse.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Drops all positions and frees the buffers.
    pub fn clear(&mut self) {
        self.len = 0;
        for layer in &mut self.layers {
            *layer = LayerKv::default();
        }
    }

    /// Writes `k`, `v` (`[kv_heads, n, head_dim]`) of `layer` at positions `len .. len + n` and returns views of
    /// all `len + n` positions. Call for every layer, then [`KvCache::commit`] once.
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
        let Some(slot) = self.layers.get_mut(layer) else {
            candle_core::bail!("kv cache has no layer {layer}")
        };
        if needed > slot.capacity || slot.kv.is_none() {
            // Grow by at least a quarter so long prompts do not copy the cache once per block.
            let target = needed.max(slot.capacity + slot.capacity / 4);
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
            let (k_old, v_old) = match &slot.kv {
                Some((k, v)) => (Some(k), Some(v)),
                None => (None, None),
            };
            slot.kv = Some((fresh(k_old)?, fresh(v_old)?));
            slot.capacity = capacity;
        }
        let Some((k_all, v_all)) = &slot.kv else {
            candle_core::bail!("kv cache layer {layer} was not allocated")
        };
        let k = k.to_dtype(dtype)?.contiguous()?;
        let v = v.to_dtype(dtype)?.contiguous()?;
        k_all.slice_set(&k, 1, offset)?;
        v_all.slice_set(&v, 1, offset)?;
        Ok((k_all.narrow(1, 0, needed)?, v_all.narrow(1, 0, needed)?))
    }

    /// Marks `n` appended positions as held (after every layer appended them).
    pub fn commit(&mut self, n: usize) {
        self.len += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_in_blocks_and_truncates() -> Result<()> {
        let dev = Device::Cpu;
        let mut cache = KvCache::new(1, 2, 3, DType::F32, &dev).with_block(4);
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
}
