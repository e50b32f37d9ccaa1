//! `qwen-ls bench engine --model X.gguf`: prefill and decode speed of qwen-ls's engine next to llama.cpp and
//! candle-transformers on the same weights and the same prompt ids, in one run, with the memory-bandwidth bound
//! (weight bytes read per decoded token ÷ read bandwidth measured in the same run) and each engine's fraction
//! of it. Results go to stdout as Markdown; progress to stderr.
//!
//! Engines run one after the other (only one copy of the weights in memory at a time): qwen-ls in this
//! process, llama.cpp as a child Python process (`benches/engine/time_llama_cpp.py`), candle-transformers in
//! this process when built with `--features bench-baseline`. Every engine gets a warm-up, then `--repeat`
//! repetitions of one 512-token prefill + 128 greedy decode steps on a fresh cache; the table shows the best
//! repetition (the machine is shared: the best is the one least disturbed) and every repetition is printed.

pub(crate) mod bandwidth;
#[cfg(feature = "bench-baseline")]
mod candle;
mod llama;
mod ours;
mod runner;
pub mod traffic;

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use qwen_engine::GgufFile;

use runner::{prompt_ids, time_runner, Timings};
use traffic::{decode_traffic, kv_cache_read, DecodeTraffic};

/// Arguments of `qwen-ls bench engine`.
#[derive(Debug, Clone, Args)]
pub struct EngineBenchArgs {
    /// The GGUF file qwen-ls and llama.cpp both run.
    #[arg(long)]
    pub model: PathBuf,
    /// The Hugging Face checkpoint of the same weights, for candle-transformers' dense `qwen3_moe` (MoE
    /// models; candle has no quantized CPU `qwen3_moe`).
    #[arg(long)]
    pub hf_dir: Option<PathBuf>,
    /// A Python with llama-cpp-python (benches/engine/make_models.sh builds one). Default: $QWEN_LS_LLAMA_PYTHON,
    /// else target/bench-models/llama-venv/bin/python if it exists.
    #[arg(long, env = "QWEN_LS_LLAMA_PYTHON")]
    pub llama_python: Option<PathBuf>,
    /// Do not run llama.cpp.
    #[arg(long)]
    pub no_llama: bool,
    /// Do not run candle-transformers.
    #[arg(long)]
    pub no_candle: bool,
    /// Threads for every engine (default: all cores). Sets RAYON_NUM_THREADS for this process.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Prompt length (one prefill).
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Greedy decode steps.
    #[arg(long, default_value_t = 128)]
    pub decode_tokens: usize,
    /// Repetitions per engine (the table shows the best).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Buffer for the read-bandwidth measurement, MiB.
    #[arg(long, default_value_t = 2048)]
    pub bandwidth_mib: usize,
    /// Weight dtype of candle's dense `qwen3_moe`: f16, bf16 or f32.
    #[arg(long, default_value = "f16")]
    pub candle_dtype: String,
}

/// One engine's row.
struct Row {
    engine: String,
    note: String,
    load_s: f64,
    timings: Timings,
    /// Bytes this engine reads per decoded token (its own weight format).
    bytes_per_token: u64,
}

impl Row {
    fn best_prefill(&self) -> f64 {
        self.timings.prefill.iter().copied().fold(0.0, f64::max)
    }
    fn best_decode(&self) -> f64 {
        self.timings.decode.iter().copied().fold(0.0, f64::max)
    }
}

/// Runs the benchmark.
pub fn run(args: &EngineBenchArgs) -> anyhow::Result<()> {
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    anyhow::ensure!(threads > 0, "--threads must be at least 1");
    anyhow::ensure!(args.prompt_tokens > 0, "--prompt-tokens must be at least 1");
    // candle (the engine's matmuls today, and the candle baseline) sizes its work by RAYON_NUM_THREADS; set
    // before any parallel work starts in this process.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());

    let file = GgufFile::open(&args.model).with_context(|| {
        format!(
            "--model must be a GGUF file (benches/engine/make_models.sh makes the benchmark's); {} is not usable",
            args.model.display()
        )
    })?;
    let config = qwen_engine::gguf::config::model_config(&file)?;
    let architecture = file
        .metadata("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_else(|| "?".into());
    let tensors = file.tensors();
    let experts = config
        .moe
        .as_ref()
        .map(|m| (m.num_experts, m.num_experts_per_tok));
    let traffic = decode_traffic(&tensors, experts, None)?;
    let traffic_f16 = decode_traffic(&tensors, experts, Some(2.0))?;
    let file_bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
    let types = file.tensor_type_counts();
    drop(file);

    let prompt = prompt_ids(args.prompt_tokens, config.vocab_size.min(151_643));
    let load_before = load_average();

    outln!("# qwen-ls bench engine {}", args.model.display());
    outln!();
    outln!(
        "machine: {}, {} threads for every engine",
        cpu_name(),
        threads
    );
    outln!(
        "load average before: {load_before} (the machine may be shared: compare engines within one run)"
    );
    outln!(
        "model: {architecture}, {} layers, hidden {}, {} q / {} kv heads × {}, experts {}, vocab {}; tensors {}; \
         {:.2} GB of tensors",
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.head_dim,
        experts.map_or("none".into(), |(n, k)| format!("{n} top-{k}")),
        config.vocab_size,
        types
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", "),
        file_bytes as f64 / 1e9,
    );
    outln!(
        "run: prompt {} tokens (one prefill, the same ids for every engine), decode {} greedy tokens, best of {}",
        args.prompt_tokens, args.decode_tokens, args.repeat
    );

    eprintln!(
        "measuring read bandwidth ({} MiB, {threads} threads)…",
        args.bandwidth_mib
    );
    let bw = bandwidth::measure(args.bandwidth_mib << 20, threads, 5);
    outln!();
    outln!(
        "read bandwidth: {:.1} GB/s (best of {} passes over {} MiB, {} threads, {} loop; passes: {})",
        bw.best / 1e9,
        bw.passes.len(),
        bw.bytes >> 20,
        bw.threads,
        bw.isa,
        join(&bw.passes, |r| format!("{:.1}", r / 1e9)),
    );
    outln!(
        "read bandwidth per CPU-second of the reading threads: {:.1} GB/s (≫ the wall figure means the cores \
         were busy with other work, and every wall-clock number below is depressed the same way)",
        bw.best_cpu / 1e9
    );
    print_traffic(&traffic, &config, args);
    let bound = bw.best / traffic.total() as f64;
    outln!(
        "decode bound: {:.1} tok/s ({:.1} MB per token ÷ {:.1} GB/s)",
        bound,
        traffic.total() as f64 / 1e6,
        bw.best / 1e9
    );

    let mut rows = Vec::new();
    let mut missing = Vec::new();

    eprintln!("qwen-ls: loading {}…", args.model.display());
    let mut ours = ours::Ours::load(&args.model)?;
    eprintln!("qwen-ls: timing…");
    let timings = time_runner(&mut ours, &prompt, args.decode_tokens, args.repeat)?;
    rows.push(Row {
        engine: "qwen-ls".into(),
        note: ours.describe(),
        load_s: ours.load_s,
        timings,
        bytes_per_token: traffic.total(),
    });
    drop(ours);

    let llama_python = llama::find_python(args.llama_python.as_deref());
    match (args.no_llama, llama_python) {
        (true, _) => missing.push("llama.cpp: skipped (--no-llama)".to_string()),
        (false, None) => missing.push(
            "llama.cpp: NOT MEASURED: no Python with llama-cpp-python was given. Pass --llama-python PATH (or \
             set QWEN_LS_LLAMA_PYTHON); benches/engine/make_models.sh builds one"
                .to_string(),
        ),
        (false, Some(python)) => {
            eprintln!("llama.cpp: running {}…", python.display());
            match llama::run(
                &python,
                &args.model,
                &prompt,
                args.decode_tokens,
                args.repeat,
                threads,
            ) {
                Ok(run) => rows.push(Row {
                    engine: "llama.cpp".into(),
                    note: format!("{} ({})", run.version, run.system_info),
                    load_s: run.load_s,
                    timings: run.timings,
                    bytes_per_token: traffic.total(),
                }),
                Err(e) => missing.push(format!("llama.cpp: FAILED: {e:#}")),
            }
        }
    }

    if args.no_candle {
        missing.push("candle-transformers: skipped (--no-candle)".into());
    } else {
        match run_candle(args, &architecture, &prompt, &traffic, &traffic_f16) {
            Ok(row) => rows.push(row),
            Err(e) => missing.push(format!("candle-transformers: NOT MEASURED: {e:#}")),
        }
    }

    print_results(&rows, bw.best, &missing, args);
    outln!();
    outln!("load average after: {}", load_average());
    Ok(())
}

fn print_traffic(
    traffic: &DecodeTraffic,
    config: &qwen_engine::ModelConfig,
    args: &EngineBenchArgs,
) {
    let mb = |b: u64| b as f64 / 1e6;
    outln!(
        "weight bytes per decoded token: {:.1} MB = routed experts {:.1} + dense (attention, norms, router, FFN) \
         {:.1} + lm_head {:.1} + embedding row {:.3}",
        mb(traffic.total()),
        mb(traffic.experts),
        mb(traffic.dense),
        mb(traffic.lm_head),
        mb(traffic.embedding_row),
    );
    let last = args.prompt_tokens + args.decode_tokens;
    outln!(
        "(not counted: the KV cache, {:.1} MB per token at position {last} in f32, {:.1} MB in f16)",
        mb(kv_cache_read(
            config.num_hidden_layers,
            config.num_key_value_heads,
            config.head_dim,
            last,
            4
        )),
        mb(kv_cache_read(
            config.num_hidden_layers,
            config.num_key_value_heads,
            config.head_dim,
            last,
            2
        )),
    );
}

#[cfg(feature = "bench-baseline")]
fn run_candle(
    args: &EngineBenchArgs,
    architecture: &str,
    prompt: &[u32],
    traffic: &DecodeTraffic,
    traffic_f16: &DecodeTraffic,
) -> anyhow::Result<Row> {
    let (mut model, bytes) = if architecture == "qwen3moe" {
        let dir = args.hf_dir.as_deref().context(
            "candle has no quantized CPU qwen3_moe; pass --hf-dir with the Hugging Face checkpoint of the same \
             weights to run its dense qwen3_moe",
        )?;
        let dtype = match args.candle_dtype.as_str() {
            "f16" => candle_core::DType::F16,
            "bf16" => candle_core::DType::BF16,
            "f32" => candle_core::DType::F32,
            other => anyhow::bail!("--candle-dtype {other}: expected f16, bf16 or f32"),
        };
        eprintln!(
            "candle-transformers: loading {} as dense {dtype:?}…",
            dir.display()
        );
        let per_element = dtype.size_in_bytes() as u64;
        let model = candle::Candle::load_qwen3_moe(
            dir,
            dtype,
            args.prompt_tokens + args.decode_tokens + 16,
        )?;
        (model, traffic_f16.total() / 2 * per_element)
    } else {
        eprintln!("candle-transformers: loading {}…", args.model.display());
        (
            candle::Candle::load_gguf(&args.model, architecture)?,
            traffic.total(),
        )
    };
    eprintln!("candle-transformers: timing…");
    let timings = time_runner(&mut model, prompt, args.decode_tokens, args.repeat)?;
    Ok(Row {
        engine: "candle-transformers".into(),
        note: model.description.clone(),
        load_s: model.load_s,
        timings,
        bytes_per_token: bytes,
    })
}

#[cfg(not(feature = "bench-baseline"))]
fn run_candle(
    _args: &EngineBenchArgs,
    _architecture: &str,
    _prompt: &[u32],
    _traffic: &DecodeTraffic,
    _traffic_f16: &DecodeTraffic,
) -> anyhow::Result<Row> {
    anyhow::bail!(
        "this qwen-ls was built without candle-transformers; rebuild with \
         `cargo build --release -p qwen-ls --features bench-baseline`"
    )
}

fn print_results(rows: &[Row], bandwidth: f64, missing: &[String], args: &EngineBenchArgs) {
    let llama = rows.iter().find(|r| r.engine == "llama.cpp");
    outln!();
    outln!(
        "| engine | load s | prefill tok/s | decode tok/s | prefill vs llama.cpp | decode vs llama.cpp | \
         decode bound tok/s | fraction of bound |"
    );
    outln!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let bound = bandwidth / row.bytes_per_token.max(1) as f64;
        let ratio = |ours: f64, theirs: fn(&Row) -> f64| {
            llama.map_or("—".to_string(), |l| format!("{:.2}x", ours / theirs(l)))
        };
        outln!(
            "| {} | {:.1} | {:.1} | {:.2} | {} | {} | {:.1} | {:.0}% |",
            row.engine,
            row.load_s,
            row.best_prefill(),
            row.best_decode(),
            ratio(row.best_prefill(), Row::best_prefill),
            ratio(row.best_decode(), Row::best_decode),
            bound,
            100.0 * row.best_decode() / bound,
        );
    }
    outln!();
    for row in rows {
        outln!(
            "- {}: {}; prefill runs {} tok/s; decode runs {} tok/s; bound from {:.1} MB per token",
            row.engine,
            row.note,
            join(&row.timings.prefill, |r| format!("{r:.1}")),
            join(&row.timings.decode, |r| format!("{r:.2}")),
            row.bytes_per_token as f64 / 1e6,
        );
    }
    if let (Some(l), Some(o)) = (llama, rows.iter().find(|r| r.engine == "qwen-ls")) {
        let agree = o
            .timings
            .tokens
            .iter()
            .zip(&l.timings.tokens)
            .take_while(|(a, b)| a == b)
            .count();
        outln!(
            "- greedy tokens qwen-ls vs llama.cpp: the first {agree} of {} agree",
            args.decode_tokens
        );
        let decode_ok = o.best_decode() >= l.best_decode();
        let prefill_ok = o.best_prefill() >= 0.5 * l.best_prefill();
        let bound_ok = o.best_decode() >= 0.7 * bandwidth / o.bytes_per_token.max(1) as f64;
        outln!(
            "- targets: decode ≥ llama.cpp: {}; prefill ≥ 0.5× llama.cpp: {}; decode ≥ 70% of the bound: {}",
            yes_no(decode_ok),
            yes_no(prefill_ok),
            yes_no(bound_ok)
        );
    }
    for line in missing {
        outln!();
        outln!("**{line}**");
    }
}

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

fn join(values: &[f64], format: impl Fn(f64) -> String) -> String {
    values
        .iter()
        .map(|&v| format(v))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(", "),
    )
}

pub(crate) fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
