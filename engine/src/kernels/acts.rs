//! Activations quantized once per matrix call, in the layout the dot-product kernels want.
//!
//! K-quant weights (Q4_K, Q6_K) take Q8_K activations — bit-identical quants, scale and `bsums` to
//! ggml's `quantize_row_q8_K_ref` — stored one 64-byte-aligned [`ActBlockK`] per 256 values with two
//! precomputed extras: `msum` (the scale times the sums of each 32 quants, which turns a Q4_K block's
//! minimum correction into one 8-wide FMA) and room to keep loads aligned. For Q4_K weights the quants
//! are stored in Q4_K's nibble order ([`q4k_act_pos`]): a Q4_K block's bytes `0..32` hold sub-block 0
//! in their low and 1 in their high nibbles, bytes `32..64` sub-blocks 2 and 3; storing the
//! activations as sub-blocks 0, 2, 1, 3 (per 128 values) lets a 64-byte load of nibbles meet a 64-byte
//! load of activations without shuffling either, once per call instead of once per weight block. Q8_0 weights take Q8_0
//! activations (ggml's quants and f16-rounded scale) stored column-wise: quants, the scale repeated 8
//! times and `-16 · Σq` repeated 8 times per block, so a SIMD kernel loads them as vectors and can
//! offset signed weights by 128 for `vpdpbusd` and subtract the excess with the loaded vector.

use super::quant::{q8_0, q8_k, QuantError, QuantType, QK8_0, QK_K};

/// One Q8_K activation block plus the per-32 scaled sums the Q4_K kernels use.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub(crate) struct ActBlockK {
    /// Quants (ggml Q8_K).
    pub qs: [i8; QK_K],
    /// Sums of each 16 quants (ggml Q8_K).
    pub bsums: [i16; QK_K / 16],
    /// `d * (bsums[2 j] + bsums[2 j + 1])`: the scaled sum of each 32 quants.
    pub msum: [f32; 8],
    /// Scale (ggml Q8_K).
    pub d: f32,
}

/// Where the Q4_K activation layout stores 32-value sub-block `s % 4` of each 128 values.
const Q4K_SLOT: [usize; 4] = [0, 2, 1, 3];

/// Stored position of value `i` (0..256) in a Q4_K activation block (sub-blocks 0, 2, 1, 3, 4, 6, 5, 7).
#[inline(always)]
pub(crate) const fn q4k_act_pos(i: usize) -> usize {
    (i / 128) * 128 + Q4K_SLOT[(i % 128) / 32] * 32 + i % 32
}

impl ActBlockK {
    const ZERO: ActBlockK = ActBlockK {
        qs: [0; QK_K],
        bsums: [0; 16],
        msum: [0.0; 8],
        d: 0.0,
    };

    /// Quantizes 256 values, in Q4_K order when `q4k_order`.
    #[inline(always)]
    fn quantize(x: &[f32; QK_K], out: &mut ActBlockK, q4k_order: bool) {
        let d = q8_k::quantize_into(x, &mut out.qs, &mut out.bsums);
        out.d = d;
        for j in 0..8 {
            out.msum[j] = d * (out.bsums[2 * j] as i32 + out.bsums[2 * j + 1] as i32) as f32;
        }
        if q4k_order {
            for half in out.qs.chunks_exact_mut(128) {
                let mut tmp = [0i8; 32];
                tmp.copy_from_slice(&half[32..64]);
                half.copy_within(64..96, 32);
                half[64..96].copy_from_slice(&tmp);
            }
        }
    }
}

/// Q8_0 activations for one matrix call, column-wise (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct ActsQ8_0 {
    /// Quants, `tokens * cols`.
    pub qs: Vec<i8>,
    /// Per block the f16-rounded scale, 8 times.
    pub d8: Vec<f32>,
    /// Per block `-16 * Σ q`, 8 times (8 lanes × -16 = the -128 · Σq that offsetting weights by 128 adds).
    pub corr8: Vec<i32>,
}

/// Pointers to one token's Q8_0 activations, as the kernels take them.
#[derive(Clone, Copy)]
pub(crate) struct RowQ8_0 {
    /// `nb * 32` quants.
    pub qs: *const i8,
    /// `nb * 8` scales.
    pub d8: *const f32,
    /// `nb * 8` corrections.
    pub corr8: *const i32,
}

#[derive(Clone, Debug)]
enum Data {
    K(Vec<ActBlockK>),
    Q8_0(ActsQ8_0),
    /// bf16 for the AMX tile path (any weight type).
    #[cfg(target_arch = "x86_64")]
    Bf16(super::amx::ActsBf16),
}

impl Data {
    fn int8_for(ty: QuantType) -> Data {
        match ty {
            QuantType::Q8_0 => Data::Q8_0(ActsQ8_0::default()),
            QuantType::Q4K | QuantType::Q6K => Data::K(Vec::new()),
        }
    }
}

/// `tokens × cols` activations quantized for weights of one [`QuantType`]: quantize once, multiply
/// with every weight matrix that shares the input (q/k/v, gate/up), reuse the buffers next call with
/// [`Activations::requantize`].
#[derive(Clone, Debug)]
pub struct Activations {
    ty: QuantType,
    tokens: usize,
    cols: usize,
    data: Data,
}

impl Activations {
    /// An empty buffer for weights of type `ty`, to be filled by [`Activations::requantize`].
    pub fn new(ty: QuantType) -> Self {
        Activations {
            ty,
            tokens: 0,
            cols: 0,
            data: Data::int8_for(ty),
        }
    }

    /// Quantizes `x` (`tokens × cols`, row-major) single-threaded. [`super::Kernels::quantize`] does
    /// the same on its thread pool.
    pub fn quantize(
        ty: QuantType,
        x: &[f32],
        tokens: usize,
        cols: usize,
    ) -> Result<Self, QuantError> {
        let mut a = Activations::new(ty);
        a.resize(tokens, cols, x.len())?;
        a.fill_tokens(x, 0, tokens);
        Ok(a)
    }

    /// Re-quantizes in place for a new input, reusing the allocation.
    pub fn requantize(&mut self, x: &[f32], tokens: usize, cols: usize) -> Result<(), QuantError> {
        self.resize(tokens, cols, x.len())?;
        self.fill_tokens(x, 0, tokens);
        Ok(())
    }

    /// The weight format these activations are prepared for.
    pub fn weight_type(&self) -> QuantType {
        self.ty
    }

    /// Number of tokens (rows of the input).
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Values per token.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Checks shapes and records them.
    fn set_shape(&mut self, tokens: usize, cols: usize, x_len: usize) -> Result<usize, QuantError> {
        self.ty.row_bytes(cols)?;
        let n = tokens
            .checked_mul(cols)
            .ok_or(QuantError::TooLarge { rows: tokens, cols })?;
        super::quant::check_len("activations (tokens × cols)", n, x_len)?;
        self.tokens = tokens;
        self.cols = cols;
        Ok(n)
    }

    /// Switches to bf16 storage for the AMX path (buffers are sized by `fill_tokens`).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn resize_bf16(
        &mut self,
        tokens: usize,
        cols: usize,
        x_len: usize,
    ) -> Result<(), QuantError> {
        self.set_shape(tokens, cols, x_len)?;
        if !matches!(self.data, Data::Bf16(_)) {
            self.data = Data::Bf16(Default::default());
        }
        Ok(())
    }

    /// The bf16 activations, if these are for the AMX path.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn bf16(&self) -> Option<&super::amx::ActsBf16> {
        match &self.data {
            Data::Bf16(b) => Some(b),
            _ => None,
        }
    }

    /// Checks shapes and sizes the 8-bit buffers for `tokens × cols` values.
    pub(crate) fn resize(
        &mut self,
        tokens: usize,
        cols: usize,
        x_len: usize,
    ) -> Result<(), QuantError> {
        let n = self.set_shape(tokens, cols, x_len)?;
        #[cfg(target_arch = "x86_64")]
        if matches!(self.data, Data::Bf16(_)) {
            self.data = Data::int8_for(self.ty);
        }
        match &mut self.data {
            Data::K(v) => v.resize(n / QK_K, ActBlockK::ZERO),
            Data::Q8_0(a) => {
                a.qs.resize(n, 0);
                a.d8.resize(n / QK8_0 * 8, 0.0);
                a.corr8.resize(n / QK8_0 * 8, 0);
            }
            #[cfg(target_arch = "x86_64")]
            Data::Bf16(_) => {}
        }
        Ok(())
    }

    /// Quantizes tokens `t0..t1` of `x` (the whole input, shape already set by `resize`).
    pub(crate) fn fill_tokens(&mut self, x: &[f32], t0: usize, t1: usize) {
        let cols = self.cols;
        match &mut self.data {
            Data::K(v) => fill_k(
                &x[t0 * cols..t1 * cols],
                &mut v[t0 * cols / QK_K..t1 * cols / QK_K],
                self.ty == QuantType::Q4K,
            ),
            Data::Q8_0(a) => {
                let (b0, b1) = (t0 * cols / QK8_0, t1 * cols / QK8_0);
                fill_q8_0(
                    &x[t0 * cols..t1 * cols],
                    &mut a.qs[t0 * cols..t1 * cols],
                    &mut a.d8[b0 * 8..b1 * 8],
                    &mut a.corr8[b0 * 8..b1 * 8],
                );
            }
            #[cfg(target_arch = "x86_64")]
            Data::Bf16(b) => b.fill(&x[..t1 * cols], t1, cols),
        }
    }

    /// Splits the buffers into disjoint per-token-range writers for parallel quantization.
    pub(crate) fn token_chunks_mut(&mut self, chunk: usize) -> Vec<ActsChunkMut<'_>> {
        let cols = self.cols;
        let chunk = chunk.max(1);
        let q4k_order = self.ty == QuantType::Q4K;
        match &mut self.data {
            Data::K(v) => v
                .chunks_mut(chunk * cols / QK_K)
                .enumerate()
                .map(|(i, b)| ActsChunkMut::K {
                    t0: i * chunk,
                    blocks: b,
                    q4k_order,
                })
                .collect(),
            Data::Q8_0(a) => {
                let per_tok_blocks = cols / QK8_0;
                a.qs.chunks_mut(chunk * cols)
                    .zip(a.d8.chunks_mut(chunk * per_tok_blocks * 8))
                    .zip(a.corr8.chunks_mut(chunk * per_tok_blocks * 8))
                    .enumerate()
                    .map(|(i, ((qs, d8), corr8))| ActsChunkMut::Q8_0 {
                        t0: i * chunk,
                        qs,
                        d8,
                        corr8,
                    })
                    .collect()
            }
            #[cfg(target_arch = "x86_64")]
            Data::Bf16(_) => Vec::new(),
        }
    }

    /// Token `t`'s K-quant activation blocks (`None` for Q8_0 activations).
    pub(crate) fn k_row(&self, t: usize) -> Option<&[ActBlockK]> {
        match &self.data {
            Data::K(v) => {
                let nb = self.cols / QK_K;
                v.get(t * nb..(t + 1) * nb)
            }
            _ => None,
        }
    }

    /// Token `t`'s Q8_0 activations as raw pointers (`None` for K activations or `t` out of range).
    pub(crate) fn q8_0_row(&self, t: usize) -> Option<RowQ8_0> {
        match &self.data {
            Data::Q8_0(a) if t < self.tokens => {
                let nb = self.cols / QK8_0;
                Some(RowQ8_0 {
                    qs: a.qs[t * self.cols..].as_ptr(),
                    d8: a.d8[t * nb * 8..].as_ptr(),
                    corr8: a.corr8[t * nb * 8..].as_ptr(),
                })
            }
            _ => None,
        }
    }
}

/// A writer for a contiguous range of tokens of an [`Activations`] buffer.
pub(crate) enum ActsChunkMut<'a> {
    /// K-quant blocks starting at token `t0`.
    K {
        /// First token.
        t0: usize,
        /// Blocks of this chunk's tokens.
        blocks: &'a mut [ActBlockK],
        /// Store quants in Q4_K order.
        q4k_order: bool,
    },
    /// Q8_0 columns starting at token `t0`.
    Q8_0 {
        /// First token.
        t0: usize,
        /// Quants.
        qs: &'a mut [i8],
        /// Scales ×8.
        d8: &'a mut [f32],
        /// Corrections ×8.
        corr8: &'a mut [i32],
    },
}

impl ActsChunkMut<'_> {
    /// Quantizes this chunk's tokens from the full input `x` with `cols` values per token.
    pub(crate) fn fill(&mut self, x: &[f32], cols: usize) {
        match self {
            ActsChunkMut::K {
                t0,
                blocks,
                q4k_order,
            } => {
                let n = blocks.len() * QK_K;
                fill_k(&x[*t0 * cols..*t0 * cols + n], blocks, *q4k_order)
            }
            ActsChunkMut::Q8_0 { t0, qs, d8, corr8 } => {
                fill_q8_0(&x[*t0 * cols..*t0 * cols + qs.len()], qs, d8, corr8)
            }
        }
    }
}

/// Quantizes `x` into K blocks, with the widest SIMD the CPU has (the code is the same; the target
/// features let the compiler vectorize it).
fn fill_k(x: &[f32], out: &mut [ActBlockK], q4k_order: bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the features the function is compiled for were just detected.
            return unsafe { fill_k_avx512(x, out, q4k_order) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { fill_k_avx2(x, out, q4k_order) };
        }
    }
    fill_k_generic(x, out, q4k_order)
}

#[inline(always)]
fn fill_k_generic(x: &[f32], out: &mut [ActBlockK], q4k_order: bool) {
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        ActBlockK::quantize(xb.try_into().expect("whole blocks"), b, q4k_order);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
fn fill_k_avx512(x: &[f32], out: &mut [ActBlockK], q4k_order: bool) {
    fill_k_generic(x, out, q4k_order)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fill_k_avx2(x: &[f32], out: &mut [ActBlockK], q4k_order: bool) {
    fill_k_generic(x, out, q4k_order)
}

/// Quantizes `x` into Q8_0 columns (see [`ActsQ8_0`]).
fn fill_q8_0(x: &[f32], qs: &mut [i8], d8: &mut [f32], corr8: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the features the function is compiled for were just detected.
            return unsafe { fill_q8_0_avx512(x, qs, d8, corr8) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { fill_q8_0_avx2(x, qs, d8, corr8) };
        }
    }
    fill_q8_0_generic(x, qs, d8, corr8)
}

#[inline(always)]
fn fill_q8_0_generic(x: &[f32], qs: &mut [i8], d8: &mut [f32], corr8: &mut [i32]) {
    for (((xb, q), d), c) in x
        .chunks_exact(QK8_0)
        .zip(qs.chunks_exact_mut(QK8_0))
        .zip(d8.chunks_exact_mut(8))
        .zip(corr8.chunks_exact_mut(8))
    {
        let q: &mut [i8; QK8_0] = q.try_into().expect("whole blocks");
        let dq = q8_0::quantize_into(xb.try_into().expect("whole blocks"), q);
        let dr = half::f16::from_f32(dq).to_f32();
        let sum: i32 = q.iter().map(|&v| v as i32).sum();
        d.fill(dr);
        c.fill(-16 * sum);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
fn fill_q8_0_avx512(x: &[f32], qs: &mut [i8], d8: &mut [f32], corr8: &mut [i32]) {
    fill_q8_0_generic(x, qs, d8, corr8)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn fill_q8_0_avx2(x: &[f32], qs: &mut [i8], d8: &mut [f32], corr8: &mut [i32]) {
    fill_q8_0_generic(x, qs, d8, corr8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::quant::{BlockQ8K, BlockQ8_0};

    fn input(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i % 13) as f32))
            .collect()
    }

    #[test]
    fn k_activations_equal_ggml_q8_k() {
        let x = input(3 * 512);
        for ty in [QuantType::Q4K, QuantType::Q6K] {
            let a = Activations::quantize(ty, &x, 3, 512).unwrap();
            for t in 0..3 {
                let row = a.k_row(t).unwrap();
                for (b, blk) in row.iter().enumerate() {
                    let at = t * 512 + b * 256;
                    let r = BlockQ8K::quantize(x[at..at + 256].try_into().unwrap());
                    let pos = |i: usize| {
                        if ty == QuantType::Q4K {
                            q4k_act_pos(i)
                        } else {
                            i
                        }
                    };
                    let qs: Vec<i8> = (0..256).map(|i| blk.qs[pos(i)]).collect();
                    assert_eq!((blk.d, qs, blk.bsums), (r.d, r.qs.to_vec(), r.bsums));
                    assert_eq!(
                        blk.msum[3],
                        r.d * (r.bsums[6] as i32 + r.bsums[7] as i32) as f32
                    );
                }
            }
        }
        assert_eq!(
            (0..256)
                .map(q4k_act_pos)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            256
        );
        assert_eq!(q4k_act_pos(32), 64);
        assert_eq!(q4k_act_pos(64 + 5), 32 + 5);
        assert_eq!(q4k_act_pos(128 + 96), 128 + 96);
    }

    #[test]
    fn q8_0_activations_equal_ggml_q8_0() {
        let x = input(2 * 64);
        let a = Activations::quantize(QuantType::Q8_0, &x, 2, 64).unwrap();
        let Data::Q8_0(c) = &a.data else { panic!() };
        for b in 0..4 {
            let r = BlockQ8_0::quantize(x[b * 32..b * 32 + 32].try_into().unwrap());
            assert_eq!(&c.qs[b * 32..b * 32 + 32], &r.qs);
            assert_eq!(c.d8[b * 8 + 7], r.scale());
            assert_eq!(
                c.corr8[b * 8],
                -16 * r.qs.iter().map(|&q| q as i32).sum::<i32>()
            );
        }
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(Activations::quantize(QuantType::Q4K, &[0.0; 512], 1, 256).is_err());
        assert!(Activations::quantize(QuantType::Q6K, &[0.0; 96], 1, 96).is_err());
        assert!(Activations::quantize(QuantType::Q8_0, &[0.0; 96], 1, 96).is_ok());
    }
}
