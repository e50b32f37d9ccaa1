//! Runtime choice of the instruction set the kernels use. Nothing here depends on the compile-time
//! target: one binary carries every variant and picks the best the CPU reports, so a release build
//! never silently runs scalar code on a CPU with AVX2 or AVX-512.

use super::acts::{ActBlockK, RowQ8_0};
use super::quant::QuantType;
use super::scalar;

/// Most tokens one kernel call handles for one weight row (the tile width over tokens).
pub(crate) const MAX_TILE: usize = 8;

/// An instruction-set level with its own kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable scalar code: the reference, and the path for targets without SIMD kernels.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (Haswell, Zen 1 and later).
    Avx2,
    /// x86-64 AVX-512 F/BW/VL with VNNI (`vpdpbusd`, `vpdpwssd`): Ice Lake, Sapphire Rapids, Zen 4.
    Avx512Vnni,
    /// [`Isa::Avx512Vnni`] for decode, plus AMX-BF16 tile products for prefill (32 tokens or more):
    /// Sapphire Rapids and later, on Linux (needs the kernel's AMX permission).
    Avx512Amx,
}

impl Isa {
    /// Every level, best first.
    pub const ALL: [Isa; 4] = [Isa::Avx512Amx, Isa::Avx512Vnni, Isa::Avx2, Isa::Scalar];

    /// Whether this CPU can run the level's kernels.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => {
                Isa::Avx2.is_supported()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Amx => Isa::Avx512Vnni.is_supported() && super::amx::available(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best supported level.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// All supported levels, best first (benchmarks and tests run each).
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// A short name for logs and benchmark tables.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512-vnni",
            Isa::Avx512Amx => "avx512-vnni+amx-bf16",
        }
    }

    /// The kernels of this level. Callers must have checked [`Isa::is_supported`].
    pub(crate) fn kernels(self) -> &'static KernelSet {
        match self {
            Isa::Scalar => &SCALAR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => &super::avx2::KERNELS,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni | Isa::Avx512Amx => &super::avx512::KERNELS,
            #[cfg(not(target_arch = "x86_64"))]
            _ => &SCALAR,
        }
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which kernels a [`super::Kernels`] runs, for logs and benchmark output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// Instruction-set level.
    pub isa: Isa,
    /// Threads per call (the caller included).
    pub threads: usize,
}

impl std::fmt::Display for KernelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} × {} thread{}",
            self.isa,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }
}

/// One weight row against a tile of tokens' K-quant activations.
///
/// # Safety
/// `w` points to `nb` blocks of the weight format, every `acts[i]` to `nb` activation blocks,
/// `out.len() == acts.len()`, and `1 <= acts.len() <= MAX_TILE`; the CPU supports the kernel's level.
pub(crate) type TileK =
    unsafe fn(w: *const u8, nb: usize, acts: &[*const ActBlockK], out: &mut [f32]);

/// One Q8_0 weight row against a tile of tokens' Q8_0 activations (same contract as [`TileK`]).
pub(crate) type TileQ8 = unsafe fn(w: *const u8, nb: usize, acts: &[RowQ8_0], out: &mut [f32]);

/// The kernels of one [`Isa`].
pub(crate) struct KernelSet {
    /// Q4_K · Q8_K.
    pub q4k: TileK,
    /// Q6_K · Q8_K.
    pub q6k: TileK,
    /// Q8_0 · Q8_0.
    pub q8_0: TileQ8,
}

impl KernelSet {
    /// The K-quant tile kernel for `ty` (`None` for Q8_0).
    pub(crate) fn k_tile(&self, ty: QuantType) -> Option<TileK> {
        match ty {
            QuantType::Q4K => Some(self.q4k),
            QuantType::Q6K => Some(self.q6k),
            QuantType::Q8_0 => None,
        }
    }
}

static SCALAR: KernelSet = KernelSet {
    q4k: scalar::q4k_tile,
    q6k: scalar::q6k_tile,
    q8_0: scalar::q8_0_tile,
};

/// Logs once per process that the scalar kernels were chosen at runtime.
pub(crate) fn warn_if_scalar(isa: Isa) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if isa == Isa::Scalar {
        WARNED.call_once(|| {
            tracing::warn!(
                "quantized kernels: no SIMD level available on this CPU/target (need x86-64 AVX2+FMA+F16C or \
                 AVX-512 VNNI); running the SCALAR reference kernels, which are 10-50x slower"
            )
        });
    }
}
