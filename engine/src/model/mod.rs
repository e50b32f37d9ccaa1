//! The transformer shared by Qwen2, Qwen3 and Qwen3-MoE, in the structure of transformers' reference:
//! embeddings → decoder layers (RMSNorm → attention → residual → RMSNorm → dense or sparse MLP → residual) →
//! final RMSNorm → lm_head (tied or not).
//!
//! A [`Model`] is immutable once loaded and meant to be shared (`Arc`); the KV cache is passed in
//! (`forward(&self, tokens, &mut KvCache)`), so any number of sequences can run over one set of weights.

pub mod attention;
pub mod embedding;
pub mod linear;
pub mod mlp;
pub mod moe;
pub mod norm;
pub mod rope;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::cache::{KvCache, KvCacheKind};
use crate::cancel::CancelToken;
use crate::config::ModelConfig;
use crate::kernels::{Isa, KernelInfo};
use crate::source::{ExpertWeights, MatrixWeight, WeightSource};
use crate::threads::{ModelKernels, Threads};
use crate::weights::WeightsError;
use attention::{causal_mask, Attention};
use embedding::Embedding;
use linear::Linear;
use mlp::Mlp;
use moe::SparseMoe;
use norm::RmsNorm;
use rope::Rope;

/// Why a model could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A weight is missing, misshapen or unreadable.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The requested dtype is not one the engine computes in.
    #[error("unsupported dtype {0:?}: use f32, f16 or bf16")]
    DType(DType),
    /// The kernel thread pools could not be started (or the requested instruction set is unavailable).
    #[error("cannot start the quantized kernels: {0}")]
    Kernels(String),
    /// `forward` was called with no tokens.
    #[error("forward called with no tokens")]
    Empty,
    /// The cancel token of [`Model::forward_cancellable`] fired between two layers (the cache is as before).
    #[error("cancelled")]
    Cancelled,
    /// A token id is outside the embedding matrix.
    #[error("token id {id} is out of range (vocab_size {vocab_size})")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// Rows of the embedding matrix.
        vocab_size: usize,
    },
    /// A tensor operation failed (names where in the forward pass).
    #[error("{context}: {source}")]
    Tensor {
        /// Where in the forward pass.
        context: String,
        /// The underlying error.
        source: Box<candle_core::Error>,
    },
}

trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, ModelError>;
}

impl<T> Context<T> for candle_core::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, ModelError> {
        self.map_err(|source| ModelError::Tensor {
            context: what(),
            source: Box::new(source),
        })
    }
}

#[derive(Debug)]
enum FeedForward {
    Dense(Mlp),
    Sparse(SparseMoe),
}

#[derive(Debug)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: FeedForward,
}

/// Which positions [`Model::forward_with`] computes logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position (`[vocab]`): what generation needs; skips the lm_head for the rest.
    Last,
    /// Every position (`[len, vocab]`).
    All,
}

/// How a forward pass over several tokens computes its rows.
///
/// Prompt processing multiplies a batch of rows with batched kernels (tiled quantized GEMM, AMX tiles, candle's
/// GEMM), whose float accumulation order depends on the batch. Speculative decoding verifies drafted tokens in
/// one pass and must pick exactly the tokens one-token decode steps would pick, so its passes use
/// [`Rows::AsDecode`]: every row is computed with the arithmetic of a one-token step, and row `i`'s logits are
/// bit-identical to the logits of decoding the tokens one at a time (tested on every fixture and instruction
/// set: `engine/tests/it/speculative.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rows {
    /// Batched kernels: fastest for prompts; rows may differ from one-token steps in the last bits.
    #[default]
    Batched,
    /// Each row exactly as a one-token step computes it. Quantized matrices keep one weight pass for all rows
    /// (the int8 tile kernels keep one accumulator per token, so a row's sum does not depend on the others);
    /// dense matrices (candle's GEMM tiles by batch size) and MoE blocks run row by row.
    AsDecode,
}

/// A loaded Qwen2 / Qwen3 / Qwen3-MoE decoder.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    embed_tokens: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: Rope,
    dtype: DType,
    device: Device,
    kernels: Arc<ModelKernels>,
}

/// A source that hands the model's kernels to the quantized layers loaded through it.
struct WithKernels<'a> {
    inner: &'a dyn WeightSource,
    kernels: Arc<ModelKernels>,
}

impl WeightSource for WithKernels<'_> {
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, WeightsError> {
        self.inner.tensor(name, shape, dtype, device)
    }

    fn matrix(
        &self,
        name: &str,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<MatrixWeight, WeightsError> {
        self.inner.matrix(name, out, inp, dtype, device)
    }

    fn experts(
        &self,
        prefix: &str,
        proj: &str,
        n: usize,
        out: usize,
        inp: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<ExpertWeights, WeightsError> {
        self.inner.experts(prefix, proj, n, out, inp, dtype, device)
    }

    fn kernels(&self) -> Option<Arc<ModelKernels>> {
        Some(Arc::clone(&self.kernels))
    }
}

impl Model {
    /// Builds the model from a checkpoint, checking every tensor's shape against `config`, with the automatic
    /// thread counts and the best instruction set for its quantized layers.
    pub fn load(
        config: ModelConfig,
        w: &dyn WeightSource,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ModelError> {
        Self::load_with(config, w, dtype, device, Threads::default(), None)
    }

    /// [`Model::load`] with kernel threads per phase and, for tests and benchmarks, a forced instruction set
    /// (`None`: the best this CPU has). One set of pools serves every layer of the model.
    pub fn load_with(
        config: ModelConfig,
        w: &dyn WeightSource,
        dtype: DType,
        device: &Device,
        threads: Threads,
        isa: Option<Isa>,
    ) -> Result<Self, ModelError> {
        if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
            return Err(ModelError::DType(dtype));
        }
        let kernels = Arc::new(ModelKernels::new(threads, isa).map_err(ModelError::Kernels)?);
        let w = &WithKernels {
            inner: w,
            kernels: Arc::clone(&kernels),
        };
        let cfg = &config;
        let (hidden, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        let embed_tokens = Embedding::new(
            w.matrix(
                "model.embed_tokens.weight",
                cfg.vocab_size,
                hidden,
                dtype,
                device,
            )?,
            dtype,
        );
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let mlp = match (&cfg.moe, cfg.is_sparse_layer(i)) {
                (Some(moe), true) => FeedForward::Sparse(SparseMoe::load(
                    cfg,
                    moe,
                    w,
                    &format!("{p}.mlp"),
                    dtype,
                    device,
                )?),
                _ => {
                    // Config validation guarantees `intermediate_size` whenever a layer is dense.
                    let inter = cfg.intermediate_size.unwrap_or_default();
                    FeedForward::Dense(Mlp::load(
                        w,
                        &format!("{p}.mlp"),
                        hidden,
                        inter,
                        dtype,
                        device,
                    )?)
                }
            };
            layers.push(DecoderLayer {
                input_layernorm: RmsNorm::load(
                    w,
                    &format!("{p}.input_layernorm"),
                    hidden,
                    eps,
                    device,
                )?,
                self_attn: Attention::load(cfg, w, &format!("{p}.self_attn"), dtype, device)?,
                post_attention_layernorm: RmsNorm::load(
                    w,
                    &format!("{p}.post_attention_layernorm"),
                    hidden,
                    eps,
                    device,
                )?,
                mlp,
            });
        }
        let norm = RmsNorm::load(w, "model.norm", hidden, eps, device)?;
        let lm_head = if cfg.tie_word_embeddings {
            embed_tokens.as_linear(&kernels)
        } else {
            Linear::load(w, "lm_head", cfg.vocab_size, hidden, false, dtype, device)?
        };
        Ok(Model {
            rope: Rope::new(cfg),
            config,
            embed_tokens,
            layers,
            norm,
            lm_head,
            dtype,
            device: device.clone(),
            kernels,
        })
    }

    /// The quantized kernels' instruction set and threads, for prefill and for decode.
    pub fn kernel_info(&self) -> (KernelInfo, KernelInfo) {
        self.kernels.info()
    }

    /// The normalised configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The dtype weights and activations are held in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// An empty KV cache for this model (f32 host blocks on the CPU, candle tensors on other devices).
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(
            self.config.num_hidden_layers,
            self.config.num_key_value_heads,
            self.config.head_dim,
            self.dtype,
            &self.device,
        )
    }

    /// An empty KV cache of the given kind ([`KvCacheKind::Candle`] on non-CPU devices whatever is asked).
    pub fn new_cache_of(&self, kind: KvCacheKind) -> KvCache {
        self.new_cache().with_kind(kind)
    }

    /// Runs `tokens` at positions `cache.len() ..`, appends them to `cache`, and returns the logits of the last
    /// position as `[vocab]` f32.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor, ModelError> {
        self.forward_with(tokens, cache, Logits::Last)
    }

    /// Like [`Model::forward`], choosing which positions get logits (`[vocab]` or `[len, vocab]`, f32).
    /// On error the cache is left as it was (positions are committed only after the last layer).
    pub fn forward_with(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
    ) -> Result<Tensor, ModelError> {
        self.run(tokens, cache, logits, Rows::Batched, None)
    }

    /// Like [`Model::forward_with`], checking `cancel` before each layer: a long prompt chunk stops within
    /// one layer's time of a cancellation ([`ModelError::Cancelled`], the cache left as it was).
    pub fn forward_cancellable(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
        cancel: &CancelToken,
    ) -> Result<Tensor, ModelError> {
        self.run(tokens, cache, logits, Rows::Batched, Some(cancel))
    }

    /// Runs drafted tokens for verification: logits `[len, vocab]` f32 for every position, each row
    /// bit-identical to what a one-token [`Model::forward`] at that position returns ([`Rows::AsDecode`]).
    pub fn verify(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor, ModelError> {
        self.run(tokens, cache, Logits::All, Rows::AsDecode, None)
    }

    /// [`Model::forward_with`] with a choice of row arithmetic ([`Rows`]).
    pub fn forward_rows(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
        rows: Rows,
    ) -> Result<Tensor, ModelError> {
        self.run(tokens, cache, logits, rows, None)
    }

    fn run(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        logits: Logits,
        rows: Rows,
        cancel: Option<&CancelToken>,
    ) -> Result<Tensor, ModelError> {
        let len = tokens.len();
        if len == 0 {
            return Err(ModelError::Empty);
        }
        let vocab_size = self.config.vocab_size;
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(ModelError::TokenOutOfRange { id, vocab_size });
        }
        let past = cache.len();
        let _span = tracing::trace_span!("forward", past, len).entered();
        let ids = Tensor::new(tokens, &self.device).context(|| "token ids".into())?;
        let mut x = self
            .embed_tokens
            .forward(&ids)
            .context(|| "embedding lookup".into())?;
        let rope = self
            .rope
            .tables(past, len, &self.device)
            .context(|| "rope tables".into())?;
        // Only the candle path takes a mask (and not when it attends row by row); host caches mask inside the
        // attention kernel.
        let mask = if len > 1 && cache.kind() == KvCacheKind::Candle && rows == Rows::Batched {
            Some(causal_mask(len, past, &self.device).context(|| "causal mask".into())?)
        } else {
            None
        };
        for (i, layer) in self.layers.iter().enumerate() {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                return Err(ModelError::Cancelled);
            }
            x = layer
                .forward(&x, &rope, mask.as_ref(), cache, i, rows)
                .context(|| format!("layer {i}"))?;
        }
        cache.commit(len);
        let x = match logits {
            Logits::Last => x.narrow(0, len - 1, 1),
            Logits::All => Ok(x),
        }
        .context(|| "last position".into())?;
        let x = self.norm.forward(&x).context(|| "final norm".into())?;
        let out = self
            .lm_head
            .forward_rows(&x, rows)
            .and_then(|l| l.to_dtype(DType::F32))
            .context(|| "lm_head".into())?;
        match logits {
            Logits::Last => out.squeeze(0).context(|| "logits".into()),
            Logits::All => Ok(out),
        }
    }
}

impl DecoderLayer {
    fn forward(
        &self,
        x: &Tensor,
        rope: &rope::RopeTables,
        mask: Option<&Tensor>,
        cache: &mut KvCache,
        layer: usize,
        rows: Rows,
    ) -> candle_core::Result<Tensor> {
        let h = self.input_layernorm.forward(x)?;
        let h = self.self_attn.forward(&h, rope, mask, cache, layer, rows)?;
        let x = (x + h)?;
        let h = self.post_attention_layernorm.forward(&x)?;
        let h = match &self.mlp {
            FeedForward::Dense(mlp) => mlp.forward_rows(&h, rows)?,
            FeedForward::Sparse(moe) => moe.forward_rows(&h, rows)?,
        };
        x + h
    }
}

#[cfg(test)]
pub(crate) mod tests;
