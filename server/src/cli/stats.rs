//! `qwen-ls stats`: summarises the local suggestion log the language server writes (counts, acceptance
//! rate, latency and server-overhead percentiles, prompt tokens reused from the KV cache and prefilled,
//! warm-ups). The log never leaves the machine.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::tasks::measure::{default_log_path, quantile, summarize, Outcome};

/// Arguments of `qwen-ls stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The log file to read (default: `suggestions.jsonl` in the cache directory, with its rotated `.1`).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints the summary.
pub fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let path = match &args.file {
        Some(path) => path.clone(),
        None => default_log_path()
            .context("no cache directory: set QWEN_LS_CACHE_DIR or HOME, or pass --file")?,
    };
    let rotated = path.with_extension("jsonl.1");
    let mut text = String::new();
    if args.file.is_none() && rotated.exists() {
        text = std::fs::read_to_string(&rotated)
            .with_context(|| format!("cannot read {}", rotated.display()))?;
    }
    match std::fs::read_to_string(&path) {
        Ok(current) => text.push_str(&current),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && text.is_empty() => {
            outln!(
                "no suggestions recorded yet ({} does not exist)",
                path.display()
            );
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let reader = std::io::Cursor::new(text);
    let summary = summarize(reader);
    if args.json {
        let outcomes: serde_json::Map<String, serde_json::Value> = [
            Outcome::Shown,
            Outcome::Empty,
            Outcome::Cancelled,
            Outcome::Stale,
            Outcome::NotReady,
            Outcome::Failed,
        ]
        .into_iter()
        .map(|o| (o.as_str().to_owned(), json!(summary.count(o))))
        .collect();
        let value = json!({
            "log": path,
            "outcomes": outcomes,
            "accepted": summary.accepted,
            "dismissed": summary.dismissed,
            "partiallyAccepted": summary.partially_accepted,
            "partialWords": summary.partial_words,
            "partialLines": summary.partial_lines,
            "acceptanceRate": summary.acceptance_rate(),
            "latencyMs": { "p50": quantile(&summary.shown_latency_ms, 0.5), "p95": quantile(&summary.shown_latency_ms, 0.95) },
            "overheadMs": { "p50": quantile(&summary.overhead_ms, 0.5), "p95": quantile(&summary.overhead_ms, 0.95) },
            "promptTokens": percentiles(&summary.prompt_tokens),
            "reusedTokens": percentiles(&summary.reused_tokens),
            "prefilledTokens": percentiles(&summary.prefilled_tokens),
            "generations": summary.prompt_tokens.len(),
            "fastPrompts": summary.fast_prompts,
            "warmUps": summary.warm_ups,
            "warmUpTokens": summary.warm_up_tokens,
        });
        outln!("{value:#}");
    } else {
        outln!("# {}", path.display());
        out!("{summary}");
    }
    Ok(())
}

/// `{ "p50", "p95" }` of sorted values (`null` when there are none).
fn percentiles(sorted: &[f64]) -> serde_json::Value {
    json!({ "p50": quantile(sorted, 0.5), "p95": quantile(sorted, 0.95) })
}
