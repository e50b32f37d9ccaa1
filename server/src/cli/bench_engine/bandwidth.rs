//! Memory read bandwidth: `threads` threads stream-read disjoint parts of one buffer (XOR of 64-bit words, in
//! the widest SIMD the CPU has), best of several passes. The denominator of the decode bound, measured in the same
//! run as the engines (NOTES: ~28 GB/s with 2 threads on the project's machine, OpenMP xor over 2 GiB).

use std::sync::Barrier;
use std::time::Instant;

use crate::cli::memory::thread_cpu_seconds;

/// One bandwidth measurement.
#[derive(Debug, Clone)]
pub struct Bandwidth {
    /// Best pass, bytes per second.
    pub best: f64,
    /// Every pass, bytes per second.
    pub passes: Vec<f64>,
    /// Buffer size in bytes.
    pub bytes: usize,
    /// Reading threads.
    pub threads: usize,
    /// Which loop ran (`avx512`, `avx2` or `scalar`).
    pub isa: &'static str,
    /// Best pass by CPU time: bytes ÷ (the reading threads' CPU seconds ÷ threads). Equal to `best` on an idle
    /// machine; far above it when other processes take the cores (wall time then measures CPU share, not memory).
    pub best_cpu: f64,
}

/// Reads a `bytes`-byte buffer (rounded down to whole 128-byte lines) with `threads` threads, `passes` times.
pub fn measure(bytes: usize, threads: usize, passes: usize) -> Bandwidth {
    let threads = threads.max(1);
    let words = (bytes / 128 * 16).max(16 * threads);
    // Written, not just allocated: untouched pages would all map the shared zero page and read from cache.
    let buffer: Vec<u64> = (0..words as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let per_thread = words.div_ceil(threads).next_multiple_of(16);
    let parts: Vec<&[u64]> = buffer.chunks(per_thread).collect();
    let isa = isa();
    let mut rates = Vec::with_capacity(passes);
    let mut cpu_rates = Vec::with_capacity(passes);
    for _ in 0..passes.max(1) {
        let barrier = Barrier::new(parts.len() + 1);
        let (elapsed, checksum, cpu) = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .iter()
                .map(|part| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let cpu = thread_cpu_seconds();
                        let x = xor_words(part);
                        (x, thread_cpu_seconds() - cpu)
                    })
                })
                .collect();
            barrier.wait();
            let started = Instant::now();
            let mut checksum = 0;
            let mut cpu = 0.0;
            for handle in handles {
                let (x, seconds) = handle.join().unwrap_or((0, 0.0));
                checksum ^= x;
                cpu += seconds;
            }
            (started.elapsed(), checksum, cpu)
        });
        std::hint::black_box(checksum);
        rates.push((words * 8) as f64 / elapsed.as_secs_f64().max(1e-9));
        cpu_rates.push((words * 8) as f64 / (cpu / parts.len() as f64).max(1e-9));
    }
    Bandwidth {
        best: rates.iter().copied().fold(0.0, f64::max),
        passes: rates,
        bytes: words * 8,
        threads,
        isa,
        best_cpu: cpu_rates.iter().copied().fold(0.0, f64::max),
    }
}

fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "scalar"
}

fn xor_words(words: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { xor_avx512(words) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { xor_avx2(words) };
        }
    }
    xor_body(words)
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn xor_avx512(words: &[u64]) -> u64 {
    xor_body(words)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn xor_avx2(words: &[u64]) -> u64 {
    xor_body(words)
}

/// 16 independent accumulators (two 64-byte lines per iteration): the compiler turns this into wide vector
/// loads and XORs under the caller's target features.
#[inline(always)]
fn xor_body(words: &[u64]) -> u64 {
    let mut acc = [0u64; 16];
    let chunks = words.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, w) in acc.iter_mut().zip(chunk) {
            *a ^= w;
        }
    }
    acc.iter().chain(rest).fold(0, |a, b| a ^ b)
}
