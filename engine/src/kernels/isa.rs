//! Runtime choice of the instruction set the kernels use. Nothing here depends on the compile-time
//! target: one binary carries every variant and picks the best the CPU reports, so a release build
//! never silently runs scalar code on a CPU with AVX2 or AVX-512.

use super::acts::{ActBlockK, Activations, RowQ8_0};
use super::matmul::{OutPtr, QuantMatrix};
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

    /// Whether this process may run the level's kernels: the CPU (and OS) support it and it is not above the
    /// process's cap ([`ISA_ENV`] or [`Isa::force`]). A capped process behaves as a CPU of that level would:
    /// every "best level" choice, and every test looping over supported levels, stays at or below the cap.
    pub fn is_supported(self) -> bool {
        self.cpu_supports()
            && match cap() {
                Ok(Some(cap)) => self.rank() <= cap.rank(),
                _ => true,
            }
    }

    /// Whether the CPU (and OS) can run the level, whatever the cap.
    pub fn cpu_supports(self) -> bool {
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
                Isa::Avx2.cpu_supports()
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Amx => Isa::Avx512Vnni.cpu_supports() && super::amx::available(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Position in the order scalar < AVX2 < AVX-512 VNNI < AMX.
    fn rank(self) -> usize {
        match self {
            Isa::Scalar => 0,
            Isa::Avx2 => 1,
            Isa::Avx512Vnni => 2,
            Isa::Avx512Amx => 3,
        }
    }

    /// The best level this process may run ([`Isa::is_supported`]: within the cap).
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|i| i.is_supported())
            .unwrap_or(Isa::Scalar)
    }

    /// The level the kernels run by default: [`Isa::best`], or an error when [`ISA_ENV`] names no level or
    /// one this CPU lacks (a requested level is never silently replaced by another).
    pub fn selected() -> Result<Isa, IsaError> {
        cap().clone()?;
        Ok(Isa::best())
    }

    /// Caps this process at `isa` (the CLI's `--isa`); must run before the first kernel call. An error if the
    /// CPU lacks the level or another cap is already in force.
    pub fn force(isa: Isa) -> Result<(), IsaError> {
        isa.check_cpu()?;
        match CAP.get_or_init(|| Ok(Some(isa))) {
            Ok(Some(c)) if *c == isa => Ok(()),
            Ok(c) => Err(IsaError::AlreadySelected {
                asked: isa,
                chosen: c.unwrap_or_else(Isa::best),
            }),
            Err(e) => Err(e.clone()),
        }
    }

    /// All levels this process may run, best first (benchmarks and tests run each).
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// `Ok` if the CPU can run the level, else an error listing what it can run.
    fn check_cpu(self) -> Result<(), IsaError> {
        if self.cpu_supports() {
            return Ok(());
        }
        Err(IsaError::Unsupported {
            asked: self,
            supported: Isa::ALL.into_iter().filter(|i| i.cpu_supports()).collect(),
        })
    }

    /// Whether this level runs the AVX-512 attention micro-kernels too.
    pub fn has_avx512(self) -> bool {
        matches!(self, Isa::Avx512Vnni | Isa::Avx512Amx)
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

/// The environment variable that forces the instruction-set level of a process (`scalar`, `avx2`,
/// `avx512-vnni`, `amx`): how a machine with a better level measures and tests the others.
pub const ISA_ENV: &str = "QWEN_LS_ISA";

static CAP: std::sync::OnceLock<Result<Option<Isa>, IsaError>> = std::sync::OnceLock::new();

/// The process's cap: forced, or read from [`ISA_ENV`] once.
fn cap() -> &'static Result<Option<Isa>, IsaError> {
    CAP.get_or_init(|| match std::env::var(ISA_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            let isa: Isa = v.parse()?;
            isa.check_cpu()?;
            Ok(Some(isa))
        }
        _ => Ok(None),
    })
}

/// Why a requested instruction-set level cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    /// The name is not a level.
    #[error("unknown instruction set {0:?}: expected one of scalar, avx2, avx512-vnni, amx")]
    Unknown(String),
    /// The CPU (or OS) lacks the level.
    #[error(
        "this CPU cannot run the {asked} kernels (it supports: {}); choose one of those with --isa or {ISA_ENV}",
        supported.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
    )]
    Unsupported {
        /// The level asked for.
        asked: Isa,
        /// What this CPU supports, best first.
        supported: Vec<Isa>,
    },
    /// The process had already chosen another level.
    #[error("this process already runs the {chosen} kernels; --isa {asked} must be set before the model loads")]
    AlreadySelected {
        /// The level asked for.
        asked: Isa,
        /// The level in use.
        chosen: Isa,
    },
}

impl std::str::FromStr for Isa {
    type Err = IsaError;

    /// Accepts each level's [`Isa::name`] and the short forms `avx512`, `vnni`, `amx`.
    fn from_str(s: &str) -> Result<Self, IsaError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512-vnni" | "avx512vnni" | "avx512" | "vnni" => Ok(Isa::Avx512Vnni),
            "amx" | "avx512-vnni+amx-bf16" | "avx512-amx" => Ok(Isa::Avx512Amx),
            _ => Err(IsaError::Unknown(s.to_string())),
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

/// Rows `r0..r1` (a multiple of [`GROUP_ROWS`] long) of a matrix for many tokens at once, writing
/// `out[slot(i) * out_stride + r]` for the `i`-th token of `tokens`.
///
/// # Safety
/// The contract of [`super::matmul::compute_rows`]; the CPU supports the kernel's level.
pub(crate) type RowsK = unsafe fn(
    w: &QuantMatrix<'_>,
    acts: &Activations,
    tokens: &[usize],
    slot: &dyn Fn(usize) -> usize,
    r0: usize,
    r1: usize,
    out: OutPtr,
    out_stride: usize,
);

/// Rows a [`RowsK`] kernel computes together.
pub(crate) const GROUP_ROWS: usize = 16;
/// Fewer tokens than this use the tile kernels: a [`RowsK`] regroups its rows first, which costs what the tiles
/// spend on about 16 tokens (AVX2, default model: 8-token chunks prefilled at 27 tok/s against the tiles' 45,
/// 16 at 42 against 46, 24 at 45–51 against 41–48).
pub(crate) const GROUP_MIN_TOKENS: usize = 20;

/// The kernels of one [`Isa`].
pub(crate) struct KernelSet {
    /// Q4_K · Q8_K.
    pub q4k: TileK,
    /// Q4_K · Q8_K, many tokens (prefill), where the level has a row-group kernel.
    pub q4k_rows: Option<RowsK>,
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

    /// The row-group kernel for `ty`, if the level has one.
    pub(crate) fn rows(&self, ty: QuantType) -> Option<RowsK> {
        match ty {
            QuantType::Q4K => self.q4k_rows,
            QuantType::Q6K | QuantType::Q8_0 => None,
        }
    }
}

static SCALAR: KernelSet = KernelSet {
    q4k: scalar::q4k_tile,
    q4k_rows: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_parses_from_its_name_and_unknown_names_are_errors() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        }
        assert_eq!("AMX".parse::<Isa>(), Ok(Isa::Avx512Amx));
        let e = "sse9".parse::<Isa>().unwrap_err().to_string();
        assert!(e.contains("sse9") && e.contains("avx512-vnni"), "{e}");
    }

    #[test]
    fn levels_are_ordered_and_scalar_always_runs() {
        assert!(Isa::Scalar.is_supported());
        let supported = Isa::supported();
        assert_eq!(supported.last(), Some(&Isa::Scalar));
        assert_eq!(supported[0], Isa::best());
        // Supported levels are a chain: a level implies every lesser one.
        for pair in Isa::ALL.windows(2) {
            assert!(
                !pair[0].is_supported() || pair[1].is_supported(),
                "{pair:?}"
            );
        }
    }
}
