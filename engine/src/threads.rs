//! Kernel threads of a loaded model: [`Threads`] (what the caller asks for, per phase) and [`ModelKernels`]
//! (the [`Kernels`] handles every quantized layer of one model shares). A call with one token (decode) runs on
//! the decode handle, a call with more (prefill) on the prefill handle; when both ask for the same number of
//! threads they are one pool.

use std::sync::Arc;

use crate::kernels::{Isa, KernelInfo, Kernels};

/// Threads per phase; 0 = automatic ([`Threads::AUTO_PREFILL`] / [`Threads::AUTO_DECODE`] capped at the
/// available cores).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Threads {
    /// Threads for prompt processing (calls with more than one token).
    pub prefill: usize,
    /// Threads for decoding (one token per call).
    pub decode: usize,
}

impl Threads {
    /// Automatic prefill threads: every core. Measured on the 2-core development machine with the default
    /// model (docs/BENCHMARKS.md, "Default model on qwen-ls kernels"): 2 threads beat 1.
    pub const AUTO_PREFILL: usize = usize::MAX;
    /// Automatic decode threads: every core (decode is bandwidth-bound and one core reads ~15 GB/s of the
    /// ~28 GB/s two reach on that machine; see the same section).
    pub const AUTO_DECODE: usize = usize::MAX;

    /// The thread counts actually used: 0 becomes the automatic default, everything is capped at the cores
    /// this process may use.
    pub fn resolve(self) -> (usize, usize) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pick = |asked: usize, auto: usize| match asked {
            0 => auto.min(cores),
            n => n,
        };
        (
            pick(self.prefill, Self::AUTO_PREFILL),
            pick(self.decode, Self::AUTO_DECODE),
        )
    }
}

/// The kernel handles of one model.
#[derive(Debug)]
pub struct ModelKernels {
    prefill: Arc<Kernels>,
    decode: Arc<Kernels>,
}

impl ModelKernels {
    /// Starts the pools for `threads` with the best instruction set, or `isa` (an error if the CPU lacks it).
    pub fn new(threads: Threads, isa: Option<Isa>) -> Result<Self, String> {
        let (prefill, decode) = threads.resolve();
        let start = |n: usize| match isa {
            None => Kernels::new(n).map(Arc::new).map_err(|e| e.to_string()),
            Some(isa) => Kernels::with_isa(isa, n)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
        };
        let prefill = start(prefill)?;
        let decode = if decode == prefill.info().threads {
            Arc::clone(&prefill)
        } else {
            start(decode)?
        };
        Ok(ModelKernels { prefill, decode })
    }

    /// The handle for a call over `tokens` rows.
    pub fn for_tokens(&self, tokens: usize) -> &Kernels {
        if tokens <= 1 {
            &self.decode
        } else {
            &self.prefill
        }
    }

    /// What runs for prefill and for decode.
    pub fn info(&self) -> (KernelInfo, KernelInfo) {
        (self.prefill.info(), self.decode.info())
    }
}
