//! AVX-512 kernels (placeholder).
use super::isa::KernelSet;
use super::scalar;
pub(crate) static KERNELS: KernelSet = KernelSet { q4k: scalar::q4k_tile, q6k: scalar::q6k_tile, q8_0: scalar::q8_0_tile };
