//! `qwen-ls bench lsp ROOT --model DIR`: the language server's own time per inline completion.
//!
//! Starts `qwen-ls serve` as an editor would (stdio, JSON-RPC), indexes ROOT, then for each request edits a
//! document (`didChange`) and asks for an inline completion at the edit (`Invoked`: no debounce), timing
//! request to response at the client. The server's suggestion log gives each request's engine time (inside
//! the generator: queue, prefill, decode) and prompt-building time; overhead = client latency − engine time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::lsp_client::{file_uri, Launch, LspClient, Scratch};
use crate::tasks::measure::{quantile, LOG_FILE_NAME};

/// Options of `qwen-ls bench lsp`.
#[derive(Debug, Clone)]
pub struct LspBench {
    /// The repository.
    pub root: PathBuf,
    /// The model directory.
    pub model: PathBuf,
    /// Give a copy of the model this context window (the fixture models have 256 positions).
    pub stretch_window: Option<usize>,
    /// Timed requests (after warm-up).
    pub requests: usize,
    /// `completion.maxTokens`.
    pub max_tokens: usize,
    /// `completion.budget`, when not the default.
    pub budget: Option<usize>,
    /// Generate on this OpenAI-compatible server instead of in-process.
    pub endpoint: Option<String>,
}

/// A copy of `model` (weights linked, not copied) whose config claims `window` positions.
fn stretched_model(model: &Path, window: usize, dir: &Path) -> anyhow::Result<PathBuf> {
    let out = dir.join("model");
    std::fs::create_dir_all(&out)?;
    for entry in std::fs::read_dir(model)? {
        let entry = entry?;
        let target = out.join(entry.file_name());
        if entry.file_name() == "config.json" {
            let mut config: Value = serde_json::from_str(&std::fs::read_to_string(entry.path())?)?;
            config["max_position_embeddings"] = json!(window);
            std::fs::write(&target, serde_json::to_string_pretty(&config)?)?;
        } else {
            std::os::unix::fs::symlink(entry.path().canonicalize()?, &target)?;
        }
    }
    Ok(out)
}

fn source_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .build()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 2_000 && m.len() < 200_000))
        .collect();
    files.sort();
    files
}

/// Runs the benchmark and prints the table.
pub fn run(options: &LspBench) -> anyhow::Result<()> {
    let root = options
        .root
        .canonicalize()
        .with_context(|| format!("cannot open {}", options.root.display()))?;
    let scratch = Scratch::new("bench-lsp")?;
    let model = match options.stretch_window {
        Some(window) => stretched_model(&options.model, window, scratch.path())?,
        None => options.model.canonicalize()?,
    };
    let files = source_files(&root);
    let lines: usize = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.lines().count())
        .sum();
    if files.is_empty() {
        bail!("no Rust files of 2-200 KB under {}", root.display());
    }
    outln!("# qwen-ls bench lsp {}", root.display());
    outln!("repository: {} Rust files of 2-200 KB with {lines} lines (timed files are drawn from them)", files.len());
    let mut settings = json!({
        "model": model,
        "completion": { "maxTokens": options.max_tokens, "debounceMs": 0 },
    });
    if let Some(budget) = options.budget {
        settings["completion"]["budget"] = json!(budget);
    }
    if let Some(endpoint) = &options.endpoint {
        settings["backend"] = json!("openai");
        settings["openai"] = json!({ "endpoint": endpoint });
    }
    let started = Instant::now();
    let binary = std::env::current_exe()?;
    let mut rpc = LspClient::start(&Launch {
        binary: &binary,
        cache_dir: scratch.path(),
        env: Vec::new(),
        root: &root,
        settings,
    })?;
    let status = rpc.wait_ready()?;
    outln!(
        "ready in {:.1} s: {} files indexed, model {}",
        started.elapsed().as_secs_f64(),
        status["indexedFiles"],
        status["model"]
    );
    let warmup = 5;
    let mut versions = std::collections::HashMap::new();
    let mut texts = std::collections::HashMap::new();
    let mut client_ms = Vec::new();
    for i in 0..warmup + options.requests {
        let file = &files[(i * 7919) % files.len()];
        let uri = file_uri(file);
        if !texts.contains_key(&uri) {
            let text = std::fs::read_to_string(file)?;
            rpc.notify(
                "textDocument/didOpen",
                json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
            )?;
            versions.insert(uri.clone(), 1);
            texts.insert(uri.clone(), text);
        }
        let text = &texts[&uri];
        let line_count = text.lines().count().max(1);
        let line = (i * 31) % line_count;
        let column = text.lines().nth(line).map_or(0, str::len);
        let version = versions.get(&uri).copied().unwrap_or(1) + 1;
        versions.insert(uri.clone(), version);
        // One typed character at the end of the line (the client's copy is not needed: positions are the
        // line ends of the original text, shifted by the characters typed there before).
        let at = json!({ "line": line, "character": column });
        rpc.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "range": { "start": at, "end": at }, "text": " " }] }),
        )?;
        let position = json!({ "line": line, "character": column + 1 });
        let sent = Instant::now();
        let result = rpc.request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": uri }, "position": position, "context": { "triggerKind": 1 } }),
        )?;
        let elapsed = sent.elapsed().as_secs_f64() * 1e3;
        if !result["items"].is_array() {
            bail!("unexpected answer: {result}");
        }
        // Keep the text in step so later positions stay on real line ends.
        if let Some(t) = texts.get_mut(&uri) {
            let offset: usize = t.lines().take(line).map(|l| l.len() + 1).sum::<usize>() + column;
            if offset <= t.len() {
                t.insert(offset, ' ');
            }
        }
        if i >= warmup {
            client_ms.push(elapsed);
        }
    }
    rpc.shutdown()?;
    let log = std::fs::read_to_string(scratch.path().join(LOG_FILE_NAME))
        .context("the suggestion log")?;
    let events: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "suggestion")
        .skip(warmup)
        .collect();
    if events.len() != client_ms.len() {
        bail!(
            "{} log events for {} requests",
            events.len(),
            client_ms.len()
        );
    }
    let field = |name: &str| -> Vec<f64> {
        events
            .iter()
            .map(|e| e[name].as_f64().unwrap_or(0.0))
            .collect()
    };
    let (engine, prompt, latency) = (field("engine_ms"), field("prompt_ms"), field("latency_ms"));
    let prompt_cpu = field("prompt_cpu_ms");
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let overhead = sorted(
        client_ms
            .iter()
            .zip(&engine)
            .map(|(c, e)| (c - e).max(0.0))
            .collect(),
    );
    let server = sorted(
        latency
            .iter()
            .zip(&engine)
            .map(|(l, e)| (l - e).max(0.0))
            .collect(),
    );
    let plumbing = sorted(
        latency
            .iter()
            .zip(&engine)
            .zip(&prompt)
            .map(|((l, e), p)| (l - e - p).max(0.0))
            .collect(),
    );
    let outcomes = events
        .iter()
        .fold(std::collections::BTreeMap::new(), |mut m, e| {
            *m.entry(e["outcome"].as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
            m
        });
    outln!(
        "requests: {} timed after {warmup} warm-up; outcomes {outcomes:?}",
        client_ms.len()
    );
    let row = |name: &str, values: &[f64]| {
        let q = |p| quantile(values, p).unwrap_or(0.0);
        outln!(
            "{name:<44} p50 {:>8.2} ms   p95 {:>8.2} ms   max {:>8.2} ms",
            q(0.5),
            q(0.95),
            values.last().copied().unwrap_or(0.0)
        );
    };
    row("client request → response", &sorted(client_ms.clone()));
    row(
        "  engine (generator: queue, prefill, decode)",
        &sorted(engine),
    );
    row("  prompt building (packing, windows)", &sorted(prompt));
    row("  prompt building, thread CPU", &sorted(prompt_cpu));
    row("overhead = client latency − engine", &overhead);
    row("  of which inside the server", &server);
    row("  of which LSP plumbing (server − prompt)", &plumbing);
    let p95 = quantile(&overhead, 0.95).unwrap_or(0.0);
    outln!("overhead p95 vs the 10 ms target: {:.2}x", p95 / 10.0);
    Ok(())
}
