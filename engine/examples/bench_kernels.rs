//! Benchmark of the quantized kernels against candle-core's `QMatMul` on the same bytes, in the same
//! process, at 1 and 2 threads (candle's thread pool is sized once per process, so the parent runs one
//! child process per thread count with `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS` set).
//!
//! ```sh
//! cargo run --release -p qwen-engine --example bench_kernels            # everything, ~5 min on 2 cores
//! cargo run --release -p qwen-engine --example bench_kernels -- --quick # fewer shapes, shorter runs
//! # options: --only decode,model,hot,prefill,moe   --thread-counts 1,2   --isa avx512-vnni|avx2|scalar
//! ```
//!
//! Decode numbers stream each weight matrix from memory ("cold": the call cycles through copies
//! totalling 1 GiB, more than any cache) and report weight bytes read per second, and that as a
//! fraction of the memory read bandwidth measured at the start of the same run. Prefill numbers
//! (T = 512 tokens) report GFLOP/s (2 · rows · cols · T per call).
#![allow(clippy::print_stdout)]

use std::borrow::Cow;
use std::process::Command;
use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{Device, Module, Tensor};
use qwen_engine::kernels::{
    ExpertRouting, Isa, Kernels, MoeScratch, QuantExperts, QuantMatrix, QuantType,
};

const GIB: usize = 1 << 30;

struct Opts {
    quick: bool,
    /// Run only these sections (`decode`, `hot`, `prefill`, `moe`); all when empty.
    only: Vec<String>,
    /// Thread counts to run (default 1 and 2).
    threads: Vec<usize>,
    /// Force an instruction-set level by name (`avx512-vnni`, `avx2`, …); the best one by default.
    isa: Option<String>,
}

impl Opts {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only: Vec<String> = value("--only")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let threads: Vec<usize> = value("--thread-counts")
        .map(|v| {
            v.split(',')
                .map(|s| s.parse().expect("--thread-counts 1,2"))
                .collect()
        })
        .unwrap_or_else(|| vec![1, 2]);
    let opts = Opts {
        quick,
        only,
        threads,
        isa: value("--isa"),
    };
    if let Some(n) = value("--threads") {
        child(n.parse().expect("--threads N"), &opts);
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "# bench_kernels: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    println!("load average at start: {}", loadavg());
    for &n in &opts.threads {
        let mut cmd = Command::new(&exe);
        cmd.arg("--threads").arg(n.to_string());
        if quick {
            cmd.arg("--quick");
        }
        if !opts.only.is_empty() {
            cmd.arg("--only").arg(opts.only.join(","));
        }
        if let Some(isa) = &opts.isa {
            cmd.arg("--isa").arg(isa);
        }
        cmd.env("CANDLE_NUM_THREADS", n.to_string())
            .env("RAYON_NUM_THREADS", n.to_string());
        let status = cmd.status().expect("run child");
        assert!(status.success(), "child with {n} threads failed");
    }
    println!("load average at end: {}", loadavg());
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Median seconds per call of `f` over `reps` samples of at least `min_s` each.
fn measure(mut f: impl FnMut(), min_s: f64, reps: usize) -> f64 {
    f();
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let mut n = 0u32;
        while n == 0 || t.elapsed().as_secs_f64() < min_s {
            f();
            n += 1;
        }
        v.push(t.elapsed().as_secs_f64() / n as f64);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// xorshift bytes.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut v = vec![0u8; n];
    for c in v.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let b = s.to_le_bytes();
        c.copy_from_slice(&b[..c.len()]);
    }
    v
}

/// `copies` random matrices of `ty`, with sane f16 scales (benchmark data: values do not matter).
fn random_weights(ty: QuantType, rows: usize, cols: usize, copies: usize, seed: u64) -> Vec<u8> {
    let bytes = ty.matrix_bytes(rows, cols).unwrap();
    let mut v = random_bytes(bytes * copies, seed);
    let bb = ty.block_bytes();
    let d = half::f16::from_f32(0.01).to_bits().to_le_bytes();
    for blk in v.chunks_mut(bb) {
        match ty {
            QuantType::Q8_0 => blk[0..2].copy_from_slice(&d),
            QuantType::Q4K => {
                blk[0..2].copy_from_slice(&d);
                blk[2..4].copy_from_slice(&d);
            }
            QuantType::Q6K => blk[208..210].copy_from_slice(&d),
        }
    }
    v
}

fn ggml_dtype(ty: QuantType) -> GgmlDType {
    match ty {
        QuantType::Q8_0 => GgmlDType::Q8_0,
        QuantType::Q4K => GgmlDType::Q4K,
        QuantType::Q6K => GgmlDType::Q6K,
    }
}

fn candle_matrix(ty: QuantType, rows: usize, cols: usize, bytes: &[u8]) -> QMatMul {
    let st = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, ggml_dtype(ty)).unwrap();
    QMatMul::from_qtensor(QTensor::new(st, (rows, cols)).unwrap()).unwrap()
}

fn input(tokens: usize, cols: usize) -> Vec<f32> {
    (0..tokens * cols)
        .map(|i| ((i * 7919 % 2003) as f32 / 1001.0 - 1.0) * 0.7)
        .collect()
}

/// XOR of all words, compiled for AVX2 (256-bit loads) so one core can saturate its share of DRAM
/// bandwidth like the kernels do.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn xor_all_avx2(v: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    for c in v.chunks_exact(8) {
        for i in 0..8 {
            acc[i] ^= c[i];
        }
    }
    acc.iter().fold(0, |a, &b| a ^ b)
}

fn xor_all(v: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { xor_all_avx2(v) };
    }
    v.iter().fold(0, |a, &b| a ^ b)
}

/// Read bandwidth (GB/s) of a 1 GiB buffer with the pool's threads.
fn memory_bandwidth(k: &Kernels) -> f64 {
    let buf: Vec<u64> = (0..GIB / 8).map(|i| i as u64).collect();
    let chunks = k.pool().n_threads() * 16;
    let per = buf.len() / chunks;
    let sink = std::sync::atomic::AtomicU64::new(0);
    let t = measure(
        || {
            k.pool().run(chunks, |c| {
                let s = xor_all(&buf[c * per..(c + 1) * per]);
                sink.fetch_xor(s, std::sync::atomic::Ordering::Relaxed);
            })
        },
        0.5,
        5,
    );
    std::hint::black_box(sink.load(std::sync::atomic::Ordering::Relaxed));
    buf.len() as f64 * 8.0 / t / 1e9
}

fn child(threads: usize, o: &Opts) {
    let k = match &o.isa {
        None => Kernels::new(threads).unwrap(),
        Some(name) => {
            let isa = Isa::ALL
                .into_iter()
                .find(|i| i.name() == name)
                .expect("--isa: unknown level");
            Kernels::with_isa(isa, threads).unwrap()
        }
    };
    let (min_s, reps) = if o.quick { (0.1, 3) } else { (0.25, 5) };
    let bw = memory_bandwidth(&k);
    println!();
    println!(
        "## {threads} thread(s): kernels {}, memory read bandwidth {bw:.1} GB/s (1 GiB, same run)",
        k.info()
    );
    println!();
    if o.wants("decode") {
        decode_table(&k, bw, o, min_s, reps);
    }
    if o.wants("model") {
        model_pass(&k, bw, min_s, reps);
    }
    if o.wants("hot") {
        hot_table(&k, min_s, reps);
    }
    if o.wants("prefill") {
        prefill_table(&k, o, min_s, reps);
    }
    if o.wants("moe") {
        moe_tables(&k, bw, o, min_s, reps);
    }
}

fn decode_table(k: &Kernels, bw: f64, o: &Opts, min_s: f64, reps: usize) {
    println!("### decode matvec (1 token), weights streamed from memory");
    println!();
    println!("| shape (rows×cols) | type | ours µs | ours GB/s | % of bw | candle µs | candle GB/s | ours/candle |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut cases: Vec<(&str, usize, usize, QuantType)> = Vec::new();
    for ty in [QuantType::Q4K, QuantType::Q6K, QuantType::Q8_0] {
        if o.quick && ty != QuantType::Q4K {
            cases.push(("1.5B ffn_gate/up", 8960, 1536, ty));
            continue;
        }
        cases.push(("1.5B attn_q/o", 1536, 1536, ty));
        cases.push(("1.5B ffn_gate/up", 8960, 1536, ty));
        cases.push(("1.5B ffn_down", 1536, 8960, ty));
        cases.push(("30B-A3B expert gate/up", 768, 2048, ty));
        cases.push(("30B-A3B expert down", 2048, 768, ty));
    }
    if !o.quick {
        cases.push(("1.5B output (lm_head)", 151936, 1536, QuantType::Q6K));
    }
    for (name, rows, cols, ty) in cases {
        let mbytes = ty.matrix_bytes(rows, cols).unwrap();
        let copies = GIB.div_ceil(mbytes).max(2);
        let data = random_weights(ty, rows, cols, copies, 42);
        let x = input(1, cols);
        let mut out = vec![0f32; rows];
        let ours = {
            let mats: Vec<QuantMatrix<'_>> = data
                .chunks_exact(mbytes)
                .map(|c| QuantMatrix::new(ty, rows, cols, c).unwrap())
                .collect();
            let mut i = 0;
            measure(
                || {
                    k.matvec(&mats[i % mats.len()], &x, &mut out).unwrap();
                    i += 1;
                },
                min_s,
                reps,
            )
        };
        let theirs = {
            let mats: Vec<QMatMul> = data
                .chunks_exact(mbytes)
                .map(|c| candle_matrix(ty, rows, cols, c))
                .collect();
            drop(data);
            let xt = Tensor::from_slice(&x, (1, cols), &Device::Cpu).unwrap();
            // First pass repacks every copy (candle caches a repacked layout on first use).
            for m in &mats {
                std::hint::black_box(m.forward(&xt).unwrap());
            }
            let mut i = 0;
            measure(
                || {
                    std::hint::black_box(mats[i % mats.len()].forward(&xt).unwrap());
                    i += 1;
                },
                min_s,
                reps,
            )
        };
        let (g_o, g_c) = (mbytes as f64 / ours / 1e9, mbytes as f64 / theirs / 1e9);
        println!(
            "| {name} {rows}×{cols} | {ty} | {:.0} | {g_o:.1} | {:.0}% | {:.0} | {g_c:.1} | {:.2} |",
            ours * 1e6,
            100.0 * g_o / bw,
            theirs * 1e6,
            theirs / ours
        );
    }
    println!();
}

/// One decode step's matrix-vector products of Qwen2.5-Coder-1.5B (28 layers: q, k, v, o, gate, up,
/// down, then the 151,936-row output head), Q4_K_M-like types (Q6_K for v, down and the head), each
/// layer's weights distinct (0.93 GB in all, streamed from memory like a real decode step).
fn model_pass(k: &Kernels, bw: f64, min_s: f64, reps: usize) {
    let (hidden, ffn, kv, layers, vocab) = (1536usize, 8960usize, 256usize, 28usize, 151936usize);
    let shapes: Vec<(usize, usize, QuantType)> = vec![
        (hidden, hidden, QuantType::Q4K),
        (kv, hidden, QuantType::Q4K),
        (kv, hidden, QuantType::Q6K),
        (hidden, hidden, QuantType::Q4K),
        (ffn, hidden, QuantType::Q4K),
        (ffn, hidden, QuantType::Q4K),
        (hidden, ffn, QuantType::Q6K),
    ];
    let mut data: Vec<(usize, usize, QuantType, Vec<u8>)> = Vec::new();
    for l in 0..layers {
        for (i, &(r, c, ty)) in shapes.iter().enumerate() {
            data.push((
                r,
                c,
                ty,
                random_weights(ty, r, c, 1, (l * 10 + i) as u64 + 1),
            ));
        }
    }
    data.push((
        vocab,
        hidden,
        QuantType::Q6K,
        random_weights(QuantType::Q6K, vocab, hidden, 1, 999),
    ));
    let bytes: usize = data.iter().map(|d| d.3.len()).sum();
    let x1 = input(1, hidden);
    let x2 = input(1, ffn);
    let mut out = vec![0f32; vocab];
    let ours = {
        let mats: Vec<QuantMatrix<'_>> = data
            .iter()
            .map(|(r, c, ty, b)| QuantMatrix::new(*ty, *r, *c, b).unwrap())
            .collect();
        measure(
            || {
                for m in &mats {
                    let x = if m.cols() == hidden { &x1 } else { &x2 };
                    k.matvec(m, x, &mut out[..m.rows()]).unwrap();
                }
            },
            min_s,
            reps,
        )
    };
    let theirs = {
        let mats: Vec<QMatMul> = data
            .iter()
            .map(|(r, c, ty, b)| candle_matrix(*ty, *r, *c, b))
            .collect();
        let (t1, t2) = (
            Tensor::from_slice(&x1, (1, hidden), &Device::Cpu).unwrap(),
            Tensor::from_slice(&x2, (1, ffn), &Device::Cpu).unwrap(),
        );
        let f = || {
            for (m, d) in mats.iter().zip(&data) {
                std::hint::black_box(m.forward(if d.1 == hidden { &t1 } else { &t2 }).unwrap());
            }
        };
        f();
        measure(f, min_s, reps)
    };
    println!(
        "### one decode step's matvecs, Qwen2.5-Coder-1.5B Q4_K_M shapes ({:.2} GB of weights)",
        bytes as f64 / 1e9
    );
    println!();
    println!("| engine | ms/token | tok/s | GB/s | % of bw |");
    println!("|---|---:|---:|---:|---:|");
    for (name, t) in [("ours", ours), ("candle", theirs)] {
        let g = bytes as f64 / t / 1e9;
        println!(
            "| {name} | {:.1} | {:.1} | {g:.1} | {:.0}% |",
            t * 1e3,
            1.0 / t,
            100.0 * g / bw
        );
    }
    println!();
    println!(
        "bandwidth bound: {:.1} tok/s; ours/candle: {:.2}",
        bw * 1e9 / bytes as f64,
        theirs / ours
    );
    println!();
}

fn hot_table(k: &Kernels, min_s: f64, reps: usize) {
    println!("### decode matvec, weights hot in cache (per-call overhead and compute)");
    println!();
    println!("| shape | type | ours µs | candle µs | ours/candle |");
    println!("|---|---|---:|---:|---:|");
    for (rows, cols, ty) in [
        (1536, 1536, QuantType::Q4K),
        (256, 1536, QuantType::Q4K),
        (1536, 1536, QuantType::Q8_0),
    ] {
        let data = random_weights(ty, rows, cols, 1, 7);
        let m = QuantMatrix::new(ty, rows, cols, &data).unwrap();
        let x = input(1, cols);
        let mut out = vec![0f32; rows];
        let ours = measure(|| k.matvec(&m, &x, &mut out).unwrap(), min_s, reps);
        let c = candle_matrix(ty, rows, cols, &data);
        let xt = Tensor::from_slice(&x, (1, cols), &Device::Cpu).unwrap();
        let theirs = measure(
            || drop(std::hint::black_box(c.forward(&xt).unwrap())),
            min_s,
            reps,
        );
        println!(
            "| {rows}×{cols} | {ty} | {:.1} | {:.1} | {:.2} |",
            ours * 1e6,
            theirs * 1e6,
            theirs / ours
        );
    }
    println!();
}

fn prefill_table(k: &Kernels, o: &Opts, min_s: f64, reps: usize) {
    let t = 512;
    println!("### prefill matmul, T = {t} tokens");
    println!();
    println!(
        "| shape | type | ours ms | ours GFLOP/s | candle ms | candle GFLOP/s | ours/candle |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut cases = vec![
        (1536usize, 1536usize, QuantType::Q4K),
        (8960, 1536, QuantType::Q4K),
    ];
    if !o.quick {
        cases.extend([
            (1536, 8960, QuantType::Q4K),
            (1536, 1536, QuantType::Q6K),
            (1536, 8960, QuantType::Q6K),
            (1536, 1536, QuantType::Q8_0),
            (8960, 1536, QuantType::Q8_0),
        ]);
    }
    for (rows, cols, ty) in cases {
        let data = random_weights(ty, rows, cols, 1, 9);
        let m = QuantMatrix::new(ty, rows, cols, &data).unwrap();
        let x = input(t, cols);
        let mut out = vec![0f32; t * rows];
        let ours = measure(
            || k.matmul(&m, &x, t, &mut out).unwrap(),
            min_s,
            reps.min(3),
        );
        let c = candle_matrix(ty, rows, cols, &data);
        let xt = Tensor::from_slice(&x, (t, cols), &Device::Cpu).unwrap();
        let theirs = measure(
            || drop(std::hint::black_box(c.forward(&xt).unwrap())),
            min_s,
            reps.min(3),
        );
        let flop = 2.0 * (rows * cols * t) as f64;
        println!(
            "| {rows}×{cols} | {ty} | {:.1} | {:.0} | {:.1} | {:.0} | {:.2} |",
            ours * 1e3,
            flop / ours / 1e9,
            theirs * 1e3,
            flop / theirs / 1e9,
            theirs / ours
        );
    }
    println!();
}

/// Qwen3-30B-A3B's MoE layer: 128 experts, hidden 2048, expert FFN 768, top-8.
fn moe_tables(k: &Kernels, bw: f64, o: &Opts, min_s: f64, reps: usize) {
    let (n_exp, hidden, ffn, top) = (128usize, 2048usize, 768usize, 8usize);
    println!("### MoE FFN, Qwen3-30B-A3B layer shape ({n_exp} experts, {hidden}→{ffn}→{hidden}, top-{top}), ≥ 1 GB of layers cycled");
    println!();
    println!(
        "| tokens | type | layers | ours ms | ours GB/s | % of bw | ours GFLOP/s | candle ms | ours/candle |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for ty in [QuantType::Q4K, QuantType::Q8_0] {
        let eb = ty.matrix_bytes(ffn, hidden).unwrap();
        let layers = (1_000_000_000usize).div_ceil(3 * n_exp * eb).clamp(2, 4);
        let data: Vec<[Vec<u8>; 3]> = (0..layers)
            .map(|l| {
                [
                    random_weights(ty, n_exp * ffn, hidden, 1, 100 + l as u64),
                    random_weights(ty, n_exp * ffn, hidden, 1, 200 + l as u64),
                    random_weights(ty, n_exp * hidden, ffn, 1, 300 + l as u64),
                ]
            })
            .collect();
        let token_counts: &[usize] = if o.quick { &[1] } else { &[1, 64, 512] };
        for &tokens in token_counts {
            let x = input(tokens, hidden);
            let mut rng = 12345u64;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            // Routing per layer: distinct experts per token.
            let routes: Vec<Vec<u32>> = (0..layers * 4)
                .map(|_| {
                    let mut ids = Vec::with_capacity(tokens * top);
                    for _ in 0..tokens {
                        let mut chosen: Vec<u32> = Vec::new();
                        while chosen.len() < top {
                            let e = (next() % n_exp as u64) as u32;
                            if !chosen.contains(&e) {
                                chosen.push(e);
                            }
                        }
                        ids.extend(chosen);
                    }
                    ids
                })
                .collect();
            let wts = vec![1.0 / top as f32; tokens * top];
            let mut out = vec![0f32; tokens * hidden];
            let mut scratch = MoeScratch::new();
            let exps: Vec<[QuantExperts<'_>; 3]> = data
                .iter()
                .map(|d| {
                    [
                        QuantExperts::new(ty, n_exp, ffn, hidden, &d[0]).unwrap(),
                        QuantExperts::new(ty, n_exp, ffn, hidden, &d[1]).unwrap(),
                        QuantExperts::new(ty, n_exp, hidden, ffn, &d[2]).unwrap(),
                    ]
                })
                .collect();
            let mut i = 0;
            let ours = measure(
                || {
                    let e = &exps[i % layers];
                    let r =
                        ExpertRouting::new(tokens, top, &routes[i % routes.len()], &wts).unwrap();
                    k.moe_ffn(&e[0], &e[1], &e[2], &x, &r, &mut out, &mut scratch)
                        .unwrap();
                    i += 1;
                },
                min_s,
                reps,
            );
            // Bytes of distinct experts touched per call (average over the routes).
            let touched: f64 = routes
                .iter()
                .map(|r| {
                    let mut s: Vec<u32> = r.clone();
                    s.sort_unstable();
                    s.dedup();
                    s.len() as f64
                })
                .sum::<f64>()
                / routes.len() as f64;
            let bytes = touched * 3.0 * eb as f64;
            // candle: a QMatMul per expert matrix, looping over the selected experts (as
            // candle-transformers' qwen3_moe does), with gather / scatter-add for several tokens.
            let theirs = {
                let cm: Vec<Vec<[QMatMul; 3]>> = data
                    .iter()
                    .map(|d| {
                        (0..n_exp)
                            .map(|e| {
                                let db = ty.matrix_bytes(hidden, ffn).unwrap();
                                [
                                    candle_matrix(ty, ffn, hidden, &d[0][e * eb..(e + 1) * eb]),
                                    candle_matrix(ty, ffn, hidden, &d[1][e * eb..(e + 1) * eb]),
                                    candle_matrix(ty, hidden, ffn, &d[2][e * db..(e + 1) * db]),
                                ]
                            })
                            .collect()
                    })
                    .collect();
                let xt = Tensor::from_slice(&x, (tokens, hidden), &Device::Cpu).unwrap();
                // candle repacks each matrix on first use (one cache for one token, one for 32 or
                // more): do that for every expert before timing.
                for m in cm.iter().flatten() {
                    for n in [1usize, 32] {
                        let xs = xt.narrow(0, 0, n.min(tokens)).unwrap();
                        let h = m[0].forward(&xs).unwrap();
                        std::hint::black_box((
                            m[1].forward(&xs).unwrap(),
                            m[2].forward(&h).unwrap(),
                        ));
                    }
                }
                let mut i = 0;
                measure(
                    || {
                        let ids = &routes[i % routes.len()];
                        let layer = &cm[i % layers];
                        let mut acc =
                            Tensor::zeros((tokens, hidden), candle_core::DType::F32, &Device::Cpu)
                                .unwrap();
                        let mut by_expert: std::collections::BTreeMap<u32, Vec<u32>> =
                            Default::default();
                        for (a, &e) in ids.iter().enumerate() {
                            by_expert.entry(e).or_default().push((a / top) as u32);
                        }
                        for (e, toks) in by_expert {
                            let idx = Tensor::new(toks.as_slice(), &Device::Cpu).unwrap();
                            let xs = xt.index_select(&idx, 0).unwrap();
                            let m = &layer[e as usize];
                            let g = m[0].forward(&xs).unwrap();
                            let u = m[1].forward(&xs).unwrap();
                            let h = (candle_nn::ops::silu(&g).unwrap() * u).unwrap();
                            let y = (m[2].forward(&h).unwrap() * (1.0 / top as f64)).unwrap();
                            acc = acc.index_add(&idx, &y, 0).unwrap();
                        }
                        std::hint::black_box(acc);
                        i += 1;
                    },
                    min_s,
                    reps,
                )
            };
            let g_o = bytes / ours / 1e9;
            let flop = 2.0 * 3.0 * (tokens * top * ffn * hidden) as f64;
            println!(
                "| {tokens} | {ty} | {layers} | {:.2} | {g_o:.1} | {:.0}% | {:.0} | {:.2} | {:.2} |",
                ours * 1e3,
                100.0 * g_o / bw,
                flop / ours / 1e9,
                theirs * 1e3,
                theirs / ours
            );
        }
    }
    println!();
}
