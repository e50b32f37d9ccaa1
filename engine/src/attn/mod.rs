//! Causal grouped-query attention on the CPU over a host KV cache ([`crate::cache`]): a tiled online softmax
//! (flash-attention's recurrence) over raw f32 slices.
//!
//! Work is split into items of (KV head, tile of up to [`QUERY_TILE`] query rows), where the rows of a KV head
//! are its group's query heads at each query position, position-major. An item walks the keys its last row
//! can see in tiles of up to [`KEY_TILE`] positions (a tile never crosses a cache block) and, for each tile,
//! runs every block of [`ROW_BLOCK`] rows through: scores `Q·Kᵀ` (f32), causal cut from the rows' positions
//! (no mask tensor: a row only looks at keys `≤` its position), online softmax update of the running max and
//! sum (f32, exp2 on log2-scaled scores), rescale of the accumulator, `+= P·V`. So:
//! - no score matrix beyond one `ROW_BLOCK × KEY_TILE` tile per thread, whatever the context;
//! - K/V are read in place from the cache (f32) or dequantized once per tile and item (q8), and each tile
//!   serves all the item's rows: the query heads of a group share every K/V load, nothing is copied per head;
//! - a tile is reused by `QUERY_TILE / ROW_BLOCK` row blocks while it sits in L2, which is what keeps prefill
//!   at long context compute-bound rather than bound by memory bandwidth.
//!
//! Items run in parallel on rayon's pool when the call is big enough to pay for the hand-off. The inner loops
//! are AVX-512 when the CPU has it, else AVX2 + FMA, else portable loops (chosen at run time, within the
//! process's `QWEN_LS_ISA` cap).

mod avx2;
mod avx512;
mod portable;

use candle_core::Result;
use rayon::prelude::*;

use crate::cache::{q8, HostBlock, HostLayer, KvCache, PANEL};
use crate::kernels::Isa;

/// Keys per tile (at most; a tile also ends at a cache block boundary).
pub const KEY_TILE: usize = 128;
/// Query rows per micro-kernel call (register block).
pub const ROW_BLOCK: usize = 8;
/// Query rows per work item: the rows that share one load of each K/V tile.
pub const QUERY_TILE: usize = 64;
/// Below this many multiply-adds a call runs on the calling thread (rayon's hand-off costs more).
const PARALLEL_MIN_WORK: usize = 1 << 18;

/// Which micro-kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttnIsa {
    /// Plain loops (any CPU).
    Portable,
    /// AVX2 + FMA intrinsics.
    Avx2,
    /// AVX-512F intrinsics.
    Avx512,
}

impl AttnIsa {
    /// The best level this CPU supports within the process's kernel level ([`Isa::selected`]): a process
    /// capped at AVX2 runs the AVX2 attention, one capped at scalar the portable loops, so a capped level
    /// measures what a CPU of that level runs.
    pub fn best() -> Self {
        let cap = Isa::selected().unwrap_or(Isa::Scalar);
        #[cfg(target_arch = "x86_64")]
        {
            if cap.has_avx512() && std::arch::is_x86_feature_detected!("avx512f") {
                return AttnIsa::Avx512;
            }
            if cap != Isa::Scalar
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return AttnIsa::Avx2;
            }
        }
        let _ = cap;
        AttnIsa::Portable
    }

    /// Every level this process may run (for tests and benchmarks), portable first.
    pub fn available() -> Vec<Self> {
        let best = AttnIsa::best();
        [AttnIsa::Portable, AttnIsa::Avx2, AttnIsa::Avx512]
            .into_iter()
            .filter(|&i| i.rank() <= best.rank())
            .collect()
    }

    fn rank(self) -> usize {
        match self {
            AttnIsa::Portable => 0,
            AttnIsa::Avx2 => 1,
            AttnIsa::Avx512 => 2,
        }
    }

    fn scores(self, q: &[f32], rows: usize, hd: usize, k: &[f32], n: usize, s: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self == AttnIsa::Avx512 {
            // Checked here so the unsafe kernels' contracts hold whatever the caller passed.
            let fits = rows <= ROW_BLOCK
                && n <= KEY_TILE
                && q.len() >= rows * hd
                && s.len() >= rows * KEY_TILE
                && k.len() >= n.div_ceil(PANEL) * PANEL * hd;
            if fits {
                // SAFETY: `attend_with` turns `Avx512` into `Portable` unless `best()` saw AVX-512F, and it is
                // the only caller; the slice bounds were checked just above.
                unsafe {
                    match rows {
                        1 => avx512::scores::<1>(q, hd, k, n, s),
                        2 => avx512::scores::<2>(q, hd, k, n, s),
                        3 => avx512::scores::<3>(q, hd, k, n, s),
                        4 => avx512::scores::<4>(q, hd, k, n, s),
                        5 => avx512::scores::<5>(q, hd, k, n, s),
                        6 => avx512::scores::<6>(q, hd, k, n, s),
                        7 => avx512::scores::<7>(q, hd, k, n, s),
                        _ => avx512::scores::<8>(q, hd, k, n, s),
                    }
                }
                return;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self == AttnIsa::Avx2 {
            let fits = rows <= ROW_BLOCK
                && n <= KEY_TILE
                && q.len() >= rows * hd
                && s.len() >= rows * KEY_TILE
                && k.len() >= n.div_ceil(PANEL) * PANEL * hd;
            if fits {
                // Row blocks of at most `avx2::ROWS` (the AVX2 register file holds half of AVX-512's).
                for r0 in (0..rows).step_by(avx2::ROWS) {
                    let (q, s) = (&q[r0 * hd..], &mut s[r0 * KEY_TILE..]);
                    // SAFETY: `attend_with` turns `Avx2` into `Portable` unless `best()` saw AVX2 and FMA, and
                    // it is the only caller; the bounds were checked above for all `rows`, so they hold for
                    // this block of them.
                    unsafe {
                        match (rows - r0).min(avx2::ROWS) {
                            1 => avx2::scores::<1>(q, hd, k, n, s),
                            2 => avx2::scores::<2>(q, hd, k, n, s),
                            3 => avx2::scores::<3>(q, hd, k, n, s),
                            _ => avx2::scores::<4>(q, hd, k, n, s),
                        }
                    }
                }
                return;
            }
        }
        portable::scores(q, rows, hd, k, n, s)
    }

    #[allow(clippy::too_many_arguments)] // the micro-kernel's operands; a struct would only rename them
    fn pv(self, p: &[f32], rows: usize, n: usize, v: &[f32], vps: usize, hd: usize, o: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self == AttnIsa::Avx512 {
            let fits = rows <= ROW_BLOCK
                && (rows == 0 || p.len() >= (rows - 1) * KEY_TILE + n)
                && (hd == 0 || v.len() >= (hd.div_ceil(PANEL) - 1) * vps + n * PANEL)
                && o.len() >= rows * hd;
            if fits {
                // SAFETY: as in `scores`; bounds checked above.
                unsafe {
                    match rows {
                        1 => avx512::pv::<1>(p, n, v, vps, hd, o),
                        2 => avx512::pv::<2>(p, n, v, vps, hd, o),
                        3 => avx512::pv::<3>(p, n, v, vps, hd, o),
                        4 => avx512::pv::<4>(p, n, v, vps, hd, o),
                        5 => avx512::pv::<5>(p, n, v, vps, hd, o),
                        6 => avx512::pv::<6>(p, n, v, vps, hd, o),
                        7 => avx512::pv::<7>(p, n, v, vps, hd, o),
                        _ => avx512::pv::<8>(p, n, v, vps, hd, o),
                    }
                }
                return;
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self == AttnIsa::Avx2 {
            let fits = rows <= ROW_BLOCK
                && (rows == 0 || p.len() >= (rows - 1) * KEY_TILE + n)
                && (hd == 0 || v.len() >= (hd.div_ceil(PANEL) - 1) * vps + n * PANEL)
                && o.len() >= rows * hd;
            if fits {
                for r0 in (0..rows).step_by(avx2::ROWS) {
                    let (p, o) = (&p[r0 * KEY_TILE..], &mut o[r0 * hd..]);
                    // SAFETY: as in `scores`; bounds checked above for all rows.
                    unsafe {
                        match (rows - r0).min(avx2::ROWS) {
                            1 => avx2::pv::<1>(p, n, v, vps, hd, o),
                            2 => avx2::pv::<2>(p, n, v, vps, hd, o),
                            3 => avx2::pv::<3>(p, n, v, vps, hd, o),
                            _ => avx2::pv::<4>(p, n, v, vps, hd, o),
                        }
                    }
                }
                return;
            }
        }
        portable::pv(p, rows, n, v, vps, hd, o)
    }

    fn softmax_row(self, s: &mut [f32], valid: usize, m_old: f32) -> (f32, f32) {
        #[cfg(target_arch = "x86_64")]
        if self == AttnIsa::Avx512 && valid <= s.len() {
            // SAFETY: AVX-512F as in `scores`; `valid ≤ s.len()` checked.
            return unsafe { avx512::softmax_row(s, valid, m_old) };
        }
        #[cfg(target_arch = "x86_64")]
        if self == AttnIsa::Avx2 && valid <= s.len() {
            // SAFETY: AVX2 + FMA as in `scores`; `valid ≤ s.len()` checked.
            return unsafe { avx2::softmax_row(s, valid, m_old) };
        }
        portable::softmax_row(s, valid, m_old)
    }
}

/// Queries of one call: `[heads, len, head_dim]` f32, already rotated, at positions `past .. past + len`.
#[derive(Debug, Clone, Copy)]
pub struct Queries<'a> {
    /// The values, `[heads, len, head_dim]`.
    pub data: &'a [f32],
    /// Query heads (a multiple of the cache's KV heads).
    pub heads: usize,
    /// Query positions.
    pub len: usize,
    /// Position of the first query; the cache must hold (committed or appended) `past + len` positions.
    pub past: usize,
    /// Softmax scale (`1/√head_dim`).
    pub scale: f32,
}

/// Causal attention of `q` over `layer` of `cache` with the best micro-kernels; returns `[len, heads·head_dim]`.
/// `layer`'s K/V for the query positions must have been appended ([`KvCache::append_host`]).
pub fn attend(cache: &KvCache, layer: usize, q: Queries<'_>) -> Result<Vec<f32>> {
    attend_with(AttnIsa::best(), cache, layer, q)
}

/// [`attend`] with a chosen micro-kernel level (levels this CPU lacks fall back to portable loops).
pub fn attend_with(
    isa: AttnIsa,
    cache: &KvCache,
    layer: usize,
    q: Queries<'_>,
) -> Result<Vec<f32>> {
    // A level above what this process may run falls back to the portable loops (the kernels' safety rests
    // on this check).
    let isa = if isa.rank() > AttnIsa::best().rank() {
        AttnIsa::Portable
    } else {
        isa
    };
    let Some(kv) = cache.host_layer(layer) else {
        candle_core::bail!("attention: layer {layer} is not a host KV cache")
    };
    let (kvh, hd) = (kv.kv_heads, kv.layout.head_dim);
    if kvh == 0 || !q.heads.is_multiple_of(kvh) || q.data.len() != q.heads * q.len * hd {
        candle_core::bail!(
            "attention: {} query values for {} heads x {} positions x {hd} (kv heads {kvh})",
            q.data.len(),
            q.heads,
            q.len
        )
    }
    let kv_len = q.past + q.len;
    if kv.blocks.len() * kv.layout.block < kv_len {
        candle_core::bail!("attention: the cache holds fewer than {kv_len} positions")
    }
    let group = q.heads / kvh;
    let tiles = (q.len * group).div_ceil(QUERY_TILE);
    let items = kvh * tiles;
    let item = |it: usize| run_item(isa, &kv, &q, it / tiles, it % tiles);
    // Multiply-adds, roughly (causal: half the keys on average for prefill).
    let work = q.heads * q.len * (q.past + q.len / 2 + 1) * hd;
    let outputs: Vec<Vec<f32>> = if work < PARALLEL_MIN_WORK || items == 1 {
        (0..items).map(item).collect()
    } else {
        (0..items).into_par_iter().map(item).collect()
    };
    // Scatter rows (position i, group member g of KV head kh) to `[len, heads·hd]`.
    let mut out = vec![0f32; q.len * q.heads * hd];
    for (it, o) in outputs.iter().enumerate() {
        let (kh, r0) = (it / tiles, (it % tiles) * QUERY_TILE);
        for (r, row) in o.chunks_exact(hd).enumerate() {
            let (i, g) = ((r0 + r) / group, (r0 + r) % group);
            let h = kh * group + g;
            out[(i * q.heads + h) * hd..][..hd].copy_from_slice(row);
        }
    }
    Ok(out)
}

/// One work item: rows `tile·QUERY_TILE ..` of KV head `kh`; returns their outputs `[rows, hd]`.
fn run_item(isa: AttnIsa, kv: &HostLayer<'_>, q: &Queries<'_>, kh: usize, tile: usize) -> Vec<f32> {
    let (hd, block) = (kv.layout.head_dim, kv.layout.block);
    let group = q.heads / kv.kv_heads;
    let r0 = tile * QUERY_TILE;
    let n = QUERY_TILE.min(q.len * group - r0);
    // Queries pre-scaled by scale·log2(e): the softmax then runs on exp2.
    let qscale = q.scale * std::f32::consts::LOG2_E;
    let mut qbuf = vec![0f32; n * hd];
    let mut pos = vec![0usize; n];
    for r in 0..n {
        let (i, g) = ((r0 + r) / group, (r0 + r) % group);
        let src = &q.data[((kh * group + g) * q.len + i) * hd..][..hd];
        for (dst, &x) in qbuf[r * hd..][..hd].iter_mut().zip(src) {
            *dst = x * qscale;
        }
        pos[r] = q.past + i;
    }
    let mut m = vec![f32::NEG_INFINITY; n];
    let mut l = vec![0f32; n];
    let mut o = vec![0f32; n * hd];
    let mut s = vec![0f32; ROW_BLOCK * KEY_TILE];
    let mut scratch = TileScratch::default();
    // Rows are position-major, so the last row sees the most keys.
    let kv_end = pos[n - 1] + 1;
    let mut j0 = 0;
    while j0 < kv_end {
        let (b, jb) = (j0 / block, j0 % block);
        let kt = KEY_TILE.min(block - jb).min(kv_end - j0);
        let Some(blk) = kv.blocks.get(b) else { break };
        let (k, v, vps) = scratch.tile(blk, kh, jb, kt, kv);
        for rb in (0..n).step_by(ROW_BLOCK) {
            let rows = ROW_BLOCK.min(n - rb);
            let last = pos[rb + rows - 1];
            if j0 > last {
                continue;
            }
            let ktr = kt.min(last + 1 - j0);
            isa.scores(&qbuf[rb * hd..], rows, hd, k, ktr, &mut s);
            for r in 0..rows {
                let srow = &mut s[r * KEY_TILE..][..ktr];
                let p = pos[rb + r];
                let valid = if p >= j0 { ktr.min(p + 1 - j0) } else { 0 };
                if valid == 0 {
                    srow.fill(0.0);
                    continue;
                }
                let (m_new, sum) = isa.softmax_row(srow, valid, m[rb + r]);
                let alpha = (m[rb + r] - m_new).exp2();
                l[rb + r] = l[rb + r] * alpha + sum;
                m[rb + r] = m_new;
                if alpha != 1.0 {
                    for x in &mut o[(rb + r) * hd..][..hd] {
                        *x *= alpha;
                    }
                }
            }
            isa.pv(&s, rows, ktr, v, vps, hd, &mut o[rb * hd..][..rows * hd]);
        }
        j0 += kt;
    }
    for (row, &l) in o.chunks_exact_mut(hd).zip(&l) {
        // Every row sees at least its own position, so l ≥ 1.
        let inv = 1.0 / l;
        for x in row {
            *x *= inv;
        }
    }
    o
}

/// Dequantized K/V tiles of a q8 cache (unused for f32, which is read in place).
#[derive(Default)]
struct TileScratch {
    k: Vec<f32>,
    v: Vec<f32>,
}

impl TileScratch {
    /// The key tile, the value tile and the value tile's panel stride, for positions `jb .. jb + kt` of `blk`
    /// and KV head `kh`, in the panel layouts of [`crate::cache`] (`jb` is a multiple of the panel width: tiles
    /// start at block starts or `KEY_TILE` steps after them).
    fn tile<'a>(
        &'a mut self,
        blk: &'a HostBlock,
        kh: usize,
        jb: usize,
        kt: usize,
        kv: &HostLayer<'_>,
    ) -> (&'a [f32], &'a [f32], usize) {
        let layout = kv.layout;
        let (hd, block) = (layout.head_dim, layout.block);
        let (k_at, v_at) = (layout.k_at(kh, 0, jb), layout.v_at(kh, jb, 0));
        match blk {
            HostBlock::F32 { k, v } => (&k[k_at..], &v[v_at..], block * PANEL),
            HostBlock::Q8 {
                k,
                k_scale,
                v,
                v_scale,
            } => {
                let group = q8::group(hd);
                let groups = hd / group;
                let out_panel = KEY_TILE * PANEL;
                self.k.resize(KEY_TILE * hd, 0.0);
                self.v.resize(hd.div_ceil(PANEL) * out_panel, 0.0);
                q8::dequantize_keys(
                    &k[k_at..],
                    &k_scale[kh * groups * block + jb..],
                    block,
                    hd,
                    group,
                    kt,
                    &mut self.k,
                );
                q8::dequantize_values(
                    &v[v_at..],
                    block * PANEL,
                    &v_scale[(kh * block + jb) * groups..],
                    hd,
                    group,
                    kt,
                    &mut self.v,
                    out_panel,
                );
                (&self.k, &self.v, out_panel)
            }
        }
    }
}
