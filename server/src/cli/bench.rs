//! `qwen-ls bench index PATH`: full index vs `ctags -R` on the same tree, warm restart from the cache,
//! incremental-update latency and packing time, printed with ratios to the ctags baseline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::memory::{cpu_seconds, mib, peak_rss_bytes, thread_cpu_seconds};
use crate::context::{pack, ContextRequest, PackConfig, TokenCountCache};
use crate::index::{CacheStore, Change, IndexConfig, IndexHost, TextEdit};
use crate::token_count::QwenTokenCounter;

/// Arguments of `qwen-ls bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Debug, Subcommand)]
enum BenchTarget {
    /// Index and context: full index (vs ctags), warm restart, incremental updates, packing.
    Index {
        /// Repository to index.
        path: PathBuf,
        /// Number of single-character edits to time.
        #[arg(long, default_value_t = 400)]
        edits: usize,
        /// Skip the ctags baseline.
        #[arg(long)]
        no_ctags: bool,
    },
    /// Language server: its own time per inline completion (request to response minus engine time).
    Lsp {
        /// Repository to serve (≥ 100k lines for the documented numbers).
        path: PathBuf,
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Serve a copy of the model whose config claims this many positions (the fixture models have 256).
        #[arg(long)]
        stretch_window: Option<usize>,
        /// Timed requests.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// `completion.maxTokens`.
        #[arg(long, default_value_t = 16)]
        max_tokens: usize,
        /// `completion.budget` (prompt tokens; default: the setting's default).
        #[arg(long)]
        budget: Option<usize>,
        /// Generate on this OpenAI-compatible server (`backend = "openai"`, `openai.endpoint`) instead of
        /// in-process; `--model` then only names what the server serves, for the report.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Engine: prefill and decode tok/s of qwen-ls vs llama.cpp and candle-transformers on one GGUF, with the
    /// memory-bandwidth bound.
    Engine(super::bench_engine::EngineBenchArgs),
    /// A typing session over stdio: first suggestion after opening a file (cold, and after idle warm-up),
    /// pause latency after diverging keystrokes, KV-cache reuse, exact match.
    Typing(super::bench_typing::TypingBenchArgs),
    /// Speculative decoding: tokens/s and tokens per pass of patches, refactors and explanations with it off,
    /// with prompt lookup and with a draft model, on the same tasks in one run.
    Speculative(super::bench_spec::SpeculativeBenchArgs),
    /// Context: recall of the definition about to be used (universal-ctags gold) for the packer and a BM25
    /// baseline, per repository and language, at several budgets.
    Context(super::bench_context::ContextBenchArgs),
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.target {
        BenchTarget::Index {
            path,
            edits,
            no_ctags,
        } => bench_index(path, *edits, *no_ctags),
        BenchTarget::Lsp {
            path,
            model,
            stretch_window,
            requests,
            max_tokens,
            budget,
            endpoint,
        } => super::bench_lsp::run(&super::bench_lsp::LspBench {
            root: path.clone(),
            model: model.clone(),
            stretch_window: *stretch_window,
            requests: *requests,
            max_tokens: *max_tokens,
            budget: *budget,
            endpoint: endpoint.clone(),
        }),
        BenchTarget::Engine(engine) => super::bench_engine::run(engine),
        BenchTarget::Typing(typing) => super::bench_typing::run(typing),
        BenchTarget::Speculative(spec) => super::bench_spec::run(spec),
        BenchTarget::Context(context) => super::bench_context::run(context),
    }
}

fn bench_index(path: &Path, edits: usize, no_ctags: bool) -> anyhow::Result<()> {
    let root = path
        .canonicalize()
        .with_context(|| format!("cannot open {}", path.display()))?;
    let config = IndexConfig::default();
    outln!("# qwen-ls bench index {}", root.display());
    outln!("threads: {}", config.effective_threads());

    let cpu_before = cpu_seconds(false);
    let started = Instant::now();
    let (host, report) = IndexHost::load(&root, config.clone(), None)?;
    let full = started.elapsed();
    let full_cpu = cpu_seconds(false) - cpu_before;
    let rss = peak_rss_bytes();
    let snapshot = host.snapshot();
    let lines: u64 = snapshot.files().map(|f| u64::from(f.line_count)).sum();
    let definitions: usize = snapshot.files().map(|f| f.definitions.len()).sum();
    let references: usize = snapshot.files().map(|f| f.references.len()).sum();
    let megabytes = report.bytes as f64 / 1e6;
    outln!(
        "indexed: {} files, {} lines, {:.1} MB, {definitions} definitions, {references} references, {} skipped",
        report.files,
        lines,
        megabytes,
        report.skipped.len()
    );
    let graph_started = Instant::now();
    let edges = snapshot.graph().edge_count();
    let graph_time = graph_started.elapsed();
    drop(snapshot);

    let ctags = if no_ctags { None } else { time_ctags(&root) };

    let cache_dir = std::env::temp_dir().join(format!("qwen-ls-bench-{}", std::process::id()));
    let store = CacheStore::in_dir(&cache_dir, &root);
    let (cached_host, _) = IndexHost::load(&root, config.clone(), Some(store.clone()))?;
    let save_started = Instant::now();
    cached_host.save_cache()?;
    let save_time = save_started.elapsed();
    drop(cached_host);
    let cache_bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    let warm_started = Instant::now();
    let (mut host, warm_report) = IndexHost::load(&root, config, Some(store))?;
    let warm = warm_started.elapsed();
    let _ = std::fs::remove_dir_all(&cache_dir);

    let (latencies, edit_cpu) = time_edits(&mut host, edits)?;
    // Load the tokenizer (~150 MB, ~0.5 s) before timing packs so they measure packing only.
    QwenTokenCounter::builtin().map_err(anyhow::Error::msg)?;
    let packing = time_packing(&host)?;
    let tokenizer_rate = tokenizer_throughput(&host)?;

    outln!();
    outln!("| measure | value |");
    outln!("|---|---|");
    outln!(
        "| full index (no cache) | {:.2} s wall, {:.2} s CPU |",
        full.as_secs_f64(),
        full_cpu
    );
    outln!(
        "| throughput | {:.1} MB/s |",
        megabytes / full.as_secs_f64()
    );
    outln!("| peak RSS after full index | {} |", mib(rss));
    if let Some((time, ctags_cpu, ctags_rss)) = ctags {
        outln!(
            "| ctags -R | {:.2} s wall, {:.2} s CPU, peak RSS {} |",
            time.as_secs_f64(),
            ctags_cpu,
            mib(ctags_rss)
        );
        outln!(
            "| full index / ctags | {:.2}x wall, {:.2}x CPU |",
            full.as_secs_f64() / time.as_secs_f64(),
            full_cpu / ctags_cpu.max(1e-9)
        );
    }
    outln!(
        "| file graph build | {:.0} ms, {edges} edges |",
        ms(graph_time)
    );
    outln!(
        "| cache write | {:.0} ms, {} |",
        ms(save_time),
        mib(cache_bytes)
    );
    outln!(
        "| warm restart | {:.0} ms ({} parsed, {} from cache) |",
        ms(warm),
        warm_report.parsed,
        warm_report.reused
    );
    if !latencies.is_empty() {
        outln!(
            "| incremental edit p50 / p95 / max | {:.2} / {:.2} / {:.2} ms ({} edits) |",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.95),
            percentile(&latencies, 1.0),
            latencies.len()
        );
        outln!(
            "| incremental edit CPU p50 / p95 / max | {:.2} / {:.2} / {:.2} ms |",
            percentile(&edit_cpu, 0.50),
            percentile(&edit_cpu, 0.95),
            percentile(&edit_cpu, 1.0),
        );
    }
    outln!(
        "| tokenizer throughput (one thread) | {:.0}k tokens/s |",
        tokenizer_rate / 1000.0
    );
    for (budget, used, cold, warm, restart) in packing {
        outln!(
            "| pack {budget} tokens | cold {:.0} ms, warm {:.0} ms, memo from disk {:.0} ms ({used} used) |",
            ms(cold),
            ms(warm),
            ms(restart)
        );
    }
    Ok(())
}

/// Runs `ctags -R` on the tree; returns wall time, CPU time and peak RSS (polled from `/proc`, since a
/// forked child's `ru_maxrss` includes the parent's memory before `exec`).
fn time_ctags(root: &Path) -> Option<(Duration, f64, u64)> {
    let tags = std::env::temp_dir().join(format!("qwen-ls-bench-{}.tags", std::process::id()));
    let cpu_before = cpu_seconds(true);
    let started = Instant::now();
    let spawned = Command::new("ctags")
        .arg("-R")
        .arg("-f")
        .arg(&tags)
        .arg(root)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            outln!("ctags not available: {e}");
            return None;
        }
    };
    let mut peak = 0;
    let status = loop {
        peak = peak.max(process_peak_rss_bytes(child.id()));
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(e),
        }
    };
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&tags);
    match status {
        Ok(status) if status.success() => Some((elapsed, cpu_seconds(true) - cpu_before, peak)),
        Ok(status) => {
            outln!("ctags failed: {status}");
            None
        }
        Err(e) => {
            outln!("ctags failed: {e}");
            None
        }
    }
}

fn process_peak_rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

/// Opens up to 20 source files and types/deletes single characters at pseudo-random places, timing each
/// `apply_change` (which includes reparse, re-tag, windows and symbol-table maintenance).
/// Returns sorted wall-clock and thread-CPU latencies in milliseconds.
fn time_edits(host: &mut IndexHost, edits: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let snapshot = host.snapshot();
    // Real source files (over 2 KB) when the repository has them, else any parsed file.
    let mut sources: Vec<_> = snapshot
        .files()
        .filter(|f| f.language.is_some() && f.text.len() > 2000)
        .collect();
    if sources.is_empty() {
        sources = snapshot
            .files()
            .filter(|f| f.language.is_some() && !f.text.is_empty())
            .collect();
    }
    let step = (sources.len() / 20).max(1);
    let chosen: Vec<(String, String)> = sources
        .iter()
        .step_by(step)
        .take(20)
        .map(|f| (f.path.to_string(), f.text.to_string()))
        .collect();
    drop(snapshot);
    if chosen.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut texts = Vec::new();
    for (path, text) in &chosen {
        host.apply_change(Change::Open {
            path: path.clone(),
            version: 0,
            text: text.clone(),
        })?;
        texts.push(text.clone());
    }
    let mut random = 0x9E37_79B9_7F4A_7C15u64;
    let mut latencies = Vec::with_capacity(edits);
    let mut cpu = Vec::with_capacity(edits);
    for i in 0..edits {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let which = (random % chosen.len() as u64) as usize;
        let text = &mut texts[which];
        let mut at = (random >> 20) as usize % text.len().max(1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        // Alternate typing a character and deleting one, like a user editing.
        let edit = if i % 2 == 0 || at + 1 > text.len() || !text.is_char_boundary(at + 1) {
            TextEdit {
                range: at..at,
                new_text: "x".into(),
            }
        } else {
            TextEdit {
                range: at..at + 1,
                new_text: String::new(),
            }
        };
        text.replace_range(edit.range.clone(), &edit.new_text);
        let cpu_started = thread_cpu_seconds();
        let started = Instant::now();
        host.apply_change(Change::Edit {
            path: chosen[which].0.clone(),
            version: i as i32 + 1,
            edits: vec![edit],
        })?;
        latencies.push(ms(started.elapsed()));
        cpu.push((thread_cpu_seconds() - cpu_started) * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Ok((latencies, cpu))
}

/// Packs at 8k, 128k and 1M tokens for a cursor in the middle of the most recently edited file: cold (empty
/// token-count memo) and warm (the same request again, as on the next keystroke).
/// Per budget: (budget, used tokens, cold, warm, after a restart with the memo loaded from disk).
type PackTimes = Vec<(usize, usize, Duration, Duration, Duration)>;

fn time_packing(host: &IndexHost) -> anyhow::Result<PackTimes> {
    let counter = QwenTokenCounter::builtin().map_err(anyhow::Error::msg)?;
    let snapshot = host.snapshot();
    let Some(path) = snapshot
        .recent_files()
        .first()
        .cloned()
        .or_else(|| snapshot.files().next().map(|f| f.path.clone()))
    else {
        return Ok(Vec::new());
    };
    let lines = snapshot.file(&path).map_or(0, |f| f.line_count);
    let mut results = Vec::new();
    for budget in [8_192, 131_072, 1_048_576] {
        let request = ContextRequest {
            path: path.clone(),
            cursor_line: lines / 2,
            cursor_column: 0,
            selection: None,
            instruction: None,
            budget,
        };
        let cache = TokenCountCache::new();
        let config = PackConfig::default();
        let started = Instant::now();
        let packed = pack(&snapshot, &request, &config, counter, &cache);
        let cold = started.elapsed();
        let started = Instant::now();
        let again = pack(&snapshot, &request, &config, counter, &cache);
        let warm = started.elapsed();
        anyhow::ensure!(packed == again, "packing is not deterministic");
        // A restart: the memo comes back from disk into a fresh process-level cache.
        let memo = std::env::temp_dir().join(format!("qwen-ls-bench-{}.memo", std::process::id()));
        cache.save(&memo)?;
        let started = Instant::now();
        let restored = TokenCountCache::load(&memo);
        let after_restart = pack(&snapshot, &request, &config, counter, &restored);
        let restart = started.elapsed();
        let _ = std::fs::remove_file(&memo);
        anyhow::ensure!(
            after_restart == packed,
            "a restored memo changed the result"
        );
        results.push((budget, packed.used_tokens, cold, warm, restart));
    }
    Ok(results)
}

/// Tokens per second of the built-in tokenizer on ~2 MB of the repository's text, on one thread: what a
/// cold pack (nothing memoized yet) is bound by.
fn tokenizer_throughput(host: &IndexHost) -> anyhow::Result<f64> {
    use crate::context::TokenCounter;
    let counter = QwenTokenCounter::builtin().map_err(anyhow::Error::msg)?;
    let snapshot = host.snapshot();
    let mut sample = String::new();
    for file in snapshot.files() {
        if sample.len() > 2_000_000 {
            break;
        }
        sample.push_str(&file.text);
    }
    let started = Instant::now();
    let tokens = counter.count(&sample);
    Ok(tokens as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
