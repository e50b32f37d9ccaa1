//! Quantized CPU kernels: GGUF block formats ([`quant`]), and matrix-vector / matrix-matrix products
//! and a grouped mixture-of-experts FFN over weights held as plain byte slices (memory-mapped GGUF
//! tensor data works in place), with f32 activations in and out. No candle types are needed; a thin
//! adapter ([`Kernels::matmul_tensor`]) takes and returns f32 `candle_core::Tensor`s.
//!
//! # How a `Linear` layer uses this
//!
//! ```
//! use qwen_engine::kernels::{Kernels, QuantMatrix, QuantType};
//!
//! // Once per model: one handle per thread setting (they can differ for prefill and decode).
//! let kernels = Kernels::new(2).unwrap();
//! // A layer holds its weight bytes (a slice of the memory-mapped GGUF, or a Vec from
//! // `Kernels::quantize_weights` for `--quantize`) and its shape: [out_features, in_features].
//! let (rows, cols) = (64, 256);
//! let f32_weights = vec![0.01f32; rows * cols];
//! let bytes: Vec<u8> = kernels.quantize_weights(QuantType::Q4K, rows, cols, &f32_weights).unwrap();
//! // Per call: a checked view (cheap) and one call; x is [tokens, cols], out is [tokens, rows].
//! let w = QuantMatrix::new(QuantType::Q4K, rows, cols, &bytes).unwrap();
//! let x = vec![0.5f32; 3 * cols];
//! let mut out = vec![0f32; 3 * rows];
//! kernels.matmul(&w, &x, 3, &mut out).unwrap();
//! // Several matrices sharing an input (q/k/v, gate/up): quantize it once.
//! let acts = kernels.quantize(QuantType::Q4K, &x, 3, cols).unwrap();
//! kernels.matmul_prepared(&w, &acts, &mut out).unwrap();
//! ```
//!
//! GGUF tensors: `ne = [cols, rows]` (ggml lists the row length first), data at the file's data offset
//! plus the tensor's offset, `QuantType::from_ggml_type_id(ggml_type)`. A wrong length or shape is a
//! [`QuantError`], never a panic or undefined behaviour. MoE layers: [`QuantExperts`] over the 3-D
//! `ffn_{gate,up,down}_exps` tensors and [`Kernels::moe_ffn`] with the router's top-k ids and weights.
//!
//! # What runs
//!
//! The instruction set is chosen at runtime ([`Isa::selected`], reported by [`Kernels::info`]; `QWEN_LS_ISA`
//! forces a level):
//! AVX-512 VNNI (with AMX-BF16 tiles for 32 tokens or more where the CPU and OS allow), AVX2, or —
//! with a loud warning — the scalar reference. Every SIMD kernel is tested against the scalar one.
//! Decode (one token) streams each weight byte once with integer dot products against 8-bit
//! activations (ggml's Q8_K / Q8_0 semantics); prefill multiplies bf16 tiles on AMX.

pub mod quant;

mod acts;
#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_groups;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod isa;
mod matmul;
mod moe;
mod pool;
mod scalar;
mod tensor;

pub use acts::Activations;
pub use isa::{Isa, IsaError, KernelInfo, ISA_ENV};
pub use matmul::QuantMatrix;
pub use moe::{ExpertRouting, MoeScratch, QuantExperts};
pub use pool::{ThreadPool, DEFAULT_SPIN};
pub use quant::{QuantError, QuantType};

use matmul::{check_matmul, chunk_rows, compute_rows, OutPtr, RowGroups};
use std::sync::Mutex;

/// Below this many tokens activations are quantized on the calling thread (the pool's hand-off
/// costs more than the work).
const PARALLEL_QUANTIZE_MIN_TOKENS: usize = 8;

/// An instruction-set level and a thread pool: the handle every kernel call goes through.
#[derive(Debug)]
pub struct Kernels {
    isa: Isa,
    pool: ThreadPool,
}

impl Kernels {
    /// The process's instruction set ([`Isa::selected`]: the best of this CPU unless forced) and `threads`
    /// threads (the caller included; at least 1).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let isa = Isa::selected().map_err(std::io::Error::other)?;
        isa::warn_if_scalar(isa);
        Ok(Kernels {
            isa,
            pool: ThreadPool::new(threads)?,
        })
    }

    /// A specific instruction set (tests, benchmarks); an error if this CPU lacks it.
    pub fn with_isa(isa: Isa, threads: usize) -> Result<Self, QuantError> {
        if !isa.is_supported() {
            return Err(QuantError::Invalid(format!(
                "this CPU does not support the {isa} kernels"
            )));
        }
        let pool = ThreadPool::new(threads)
            .map_err(|e| QuantError::Invalid(format!("cannot start kernel threads: {e}")))?;
        Ok(Kernels { isa, pool })
    }

    /// A specific instruction set on a pool built by the caller (e.g. with another spin time).
    pub fn with_pool(isa: Isa, pool: ThreadPool) -> Result<Self, QuantError> {
        if !isa.is_supported() {
            return Err(QuantError::Invalid(format!(
                "this CPU does not support the {isa} kernels"
            )));
        }
        Ok(Kernels { isa, pool })
    }

    /// Which kernels run, for logs and benchmark output.
    pub fn info(&self) -> KernelInfo {
        KernelInfo {
            isa: self.isa,
            threads: self.pool.n_threads(),
        }
    }

    /// The thread pool (for callers that want to run their own parallel loops on the same threads).
    pub fn pool(&self) -> &ThreadPool {
        &self.pool
    }

    /// Quantizes `x` (`tokens × cols`) for weights of type `ty`, on the pool when it is large.
    pub fn quantize(
        &self,
        ty: QuantType,
        x: &[f32],
        tokens: usize,
        cols: usize,
    ) -> Result<Activations, QuantError> {
        let mut a = Activations::new(ty);
        self.requantize(&mut a, x, tokens, cols)?;
        Ok(a)
    }

    /// [`Kernels::quantize`] into an existing buffer, reusing its allocation. With the AMX level and
    /// at least 32 tokens the activations are kept as bf16 for the tile path instead.
    pub fn requantize(
        &self,
        acts: &mut Activations,
        x: &[f32],
        tokens: usize,
        cols: usize,
    ) -> Result<(), QuantError> {
        #[cfg(target_arch = "x86_64")]
        if self.isa == Isa::Avx512Amx && tokens >= amx::MIN_TOKENS {
            acts.resize_bf16(tokens, cols, x.len())?;
            acts.fill_tokens(x, 0, tokens);
            return Ok(());
        }
        self.requantize_int8(acts, x, tokens, cols)
    }

    /// [`Kernels::requantize`] always to the 8-bit formats of the integer dot products.
    pub(crate) fn requantize_int8(
        &self,
        acts: &mut Activations,
        x: &[f32],
        tokens: usize,
        cols: usize,
    ) -> Result<(), QuantError> {
        acts.resize(tokens, cols, x.len())?;
        let threads = self.pool.n_threads();
        if tokens < PARALLEL_QUANTIZE_MIN_TOKENS || threads == 1 {
            acts.fill_tokens(x, 0, tokens);
            return Ok(());
        }
        let per = tokens.div_ceil(threads * 4);
        let chunks: Vec<Mutex<acts::ActsChunkMut<'_>>> = acts
            .token_chunks_mut(per)
            .into_iter()
            .map(Mutex::new)
            .collect();
        self.pool.run(chunks.len(), |i| {
            let mut c = chunks[i].lock().unwrap_or_else(|e| e.into_inner());
            c.fill(x, cols);
        });
        Ok(())
    }

    /// Quantizes an f32 weight matrix (`rows × cols`, row-major) to `ty` with ggml's reference
    /// quantizer (bit-identical to `llama-quantize` without an importance matrix), rows split over the
    /// pool. For `--quantize` at load time: Q4_K runs at ~12 M values/s per thread here (its
    /// per-sub-block scale search dominates), Q6_K ~20 M, Q8_0 ~300 M.
    pub fn quantize_weights(
        &self,
        ty: QuantType,
        rows: usize,
        cols: usize,
        src: &[f32],
    ) -> Result<Vec<u8>, QuantError> {
        let row_bytes = ty.row_bytes(cols)?;
        let n = rows
            .checked_mul(cols)
            .ok_or(QuantError::TooLarge { rows, cols })?;
        quant::check_len("weights (rows × cols)", n, src.len())?;
        let mut out = vec![0u8; rows * row_bytes];
        let per = rows.div_ceil(self.pool.n_threads() * 8).max(1);
        let chunks: Vec<Mutex<&mut [u8]>> =
            out.chunks_mut(per * row_bytes).map(Mutex::new).collect();
        let failed = std::sync::atomic::AtomicBool::new(false);
        self.pool.run(chunks.len(), |i| {
            let mut dst = chunks[i].lock().unwrap_or_else(|e| e.into_inner());
            let r0 = i * per;
            let r1 = r0 + dst.len() / row_bytes;
            if quant::quantize(ty, &src[r0 * cols..r1 * cols], &mut dst).is_err() {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        drop(chunks);
        if failed.into_inner() {
            return Err(QuantError::Invalid(
                "weight quantization failed on a chunk".into(),
            ));
        }
        Ok(out)
    }

    /// `out[t, r] = Σ_c w[r, c] · x[t, c]` for `tokens` rows of `x` (`tokens × w.cols()`, row-major);
    /// `out` is `tokens × w.rows()`.
    pub fn matmul(
        &self,
        w: &QuantMatrix<'_>,
        x: &[f32],
        tokens: usize,
        out: &mut [f32],
    ) -> Result<(), QuantError> {
        let acts = self.quantize(w.quant_type(), x, tokens, w.cols())?;
        self.matmul_prepared(w, &acts, out)
    }

    /// One token: `out[r] = Σ_c w[r, c] · x[c]`.
    pub fn matvec(
        &self,
        w: &QuantMatrix<'_>,
        x: &[f32],
        out: &mut [f32],
    ) -> Result<(), QuantError> {
        self.matmul(w, x, 1, out)
    }

    /// [`Kernels::matmul`] with activations already quantized for `w`'s type.
    pub fn matmul_prepared(
        &self,
        w: &QuantMatrix<'_>,
        acts: &Activations,
        out: &mut [f32],
    ) -> Result<(), QuantError> {
        self.matmul_prepared_with(w, acts, out, RowGroups::Allowed)
    }

    /// [`Kernels::matmul_prepared`] with every token's outputs computed by the kernels of a one-token call, so
    /// that each equals what a call for that token alone gives, bit for bit (the row-group kernels sum in
    /// another order). Speculative verification needs this.
    pub fn matmul_prepared_per_token(
        &self,
        w: &QuantMatrix<'_>,
        acts: &Activations,
        out: &mut [f32],
    ) -> Result<(), QuantError> {
        self.matmul_prepared_with(w, acts, out, RowGroups::Never)
    }

    fn matmul_prepared_with(
        &self,
        w: &QuantMatrix<'_>,
        acts: &Activations,
        out: &mut [f32],
        groups: RowGroups,
    ) -> Result<(), QuantError> {
        check_matmul(w, acts, out.len())?;
        #[cfg(target_arch = "x86_64")]
        if let Some(xb) = acts.bf16() {
            if self.isa != Isa::Avx512Amx {
                return Err(QuantError::Invalid(format!(
                    "activations were prepared for the AMX tile path; these kernels are {}",
                    self.isa
                )));
            }
            // SAFETY: the AMX level is only constructed when `amx::available()`; `xb` was filled
            // for `tokens × cols` (checked above) and `out` holds `tokens × rows`.
            unsafe { amx::matmul(&self.pool, w, xb, acts.tokens(), out) };
            return Ok(());
        }
        let set = self.isa.kernels();
        let rows = w.rows();
        let chunk = chunk_rows(rows, self.pool.n_threads());
        let tokens: Vec<usize> = (0..acts.tokens()).collect();
        let outp = OutPtr(out.as_mut_ptr());
        self.pool.run(rows.div_ceil(chunk), |c| {
            let (r0, r1) = (c * chunk, ((c + 1) * chunk).min(rows));
            // SAFETY: task `c` writes only columns `r0..r1` of `out` (`tokens × rows`), disjoint from
            // every other task's; shapes were checked above; `self.isa` is supported (constructor).
            unsafe { compute_rows(set, groups, w, acts, &tokens, |t| t, r0, r1, outp, rows) };
        });
        Ok(())
    }
}
