//! `qwen-ls bench typing [PATH]`: a typing session on a real repository, driven over stdio as an editor
//! drives the server, timed at the client.
//!
//! Sites are call sites of the repository (`name(` followed by arguments on the same line); at each, the rest
//! of the line after `(` is what the user is about to write (the truth for exact match). Two passes, each
//! against a fresh server process:
//!
//! - **cold**: `didOpen` of the file already cut at the cursor, and at once a completion request there —
//!   the first suggestion right after opening, before any warm-up;
//! - **warm**: `didOpen` of the whole file, a `didChange` deleting the rest of the line (the server learns
//!   where the user is), `--idle` seconds of nothing, then the request — the first suggestion after the file
//!   was open that long.
//!
//! After each first suggestion the user types characters the suggestion did not predict (the truth from the
//! first character where they differ; what it predicted is inserted at once, as an accepted word would be),
//! one `didChange` and one completion request per character, `--gap-ms` apart, each request cancelling the
//! previous one with `$/cancelRequest`, then pauses: the pause latency is the last request's. Tokens reused
//! from the KV cache and prefilled come from the server's suggestion log (older builds do not log them).
//! The server runs at this process's instruction-set level (`qwen-ls --isa LEVEL bench typing …`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use qwen_engine::kernels::{Isa, ISA_ENV};

use super::lsp_client::{file_uri, Launch, LspClient, Scratch};
use crate::tasks::measure::{quantile, LOG_FILE_NAME};

/// Arguments of `qwen-ls bench typing`.
#[derive(Debug, Args)]
pub struct TypingBenchArgs {
    /// Repository to type in (≥ 200 source files for the documented numbers).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Model (as for the `model` setting; default: the default model).
    #[arg(long)]
    model: Option<String>,
    /// `completion.budget`.
    #[arg(long, default_value_t = 2048)]
    budget: usize,
    /// `completion.suffixTokens` (default: the server's default).
    #[arg(long)]
    suffix_tokens: Option<usize>,
    /// `completion.latencyMs` (default: the server's default; 0: always the full prompt).
    #[arg(long)]
    latency_ms: Option<u64>,
    /// `completion.speculative` (default: the server's default).
    #[arg(long, value_parser = ["off", "lookup", "draft"])]
    speculative: Option<String>,
    /// Call sites to visit.
    #[arg(long, default_value_t = 10)]
    sites: usize,
    /// Seconds the file stays open, untouched, before the first request of the warm pass.
    #[arg(long, default_value_t = 10.0)]
    idle: f64,
    /// Characters typed per burst.
    #[arg(long, default_value_t = 6)]
    burst: usize,
    /// Milliseconds between keystrokes.
    #[arg(long, default_value_t = 110)]
    gap_ms: u64,
    /// Run this qwen-ls binary as the server instead of this one (to measure another build the same way).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Only the cold or only the warm pass.
    #[arg(long, value_parser = ["cold", "warm"])]
    only: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One call site.
#[derive(Debug, Clone)]
struct Site {
    path: PathBuf,
    language: &'static str,
    text: String,
    line: usize,
    /// Byte column of the cursor (just after `(`).
    column: usize,
    /// The rest of the line after the cursor (trailing whitespace trimmed).
    truth: String,
}

impl Site {
    /// Byte offset of the cursor in `text`.
    fn offset(&self) -> usize {
        self.text
            .split_inclusive('\n')
            .take(self.line)
            .map(str::len)
            .sum::<usize>()
            + self.column
    }

    /// The text with the rest of the cursor line removed.
    fn cut(&self) -> String {
        let at = self.offset();
        let end = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        format!("{}{}", &self.text[..at], &self.text[end..])
    }

    fn position(&self, column: usize) -> Value {
        json!({ "line": self.line, "character": column })
    }
}

fn language_of(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "rs" => "rust",
        "py" => "python",
        "ts" => "typescript",
        "js" => "javascript",
        "go" => "go",
        _ => return None,
    })
}

/// Where `name(` starts a call with arguments on the same line, not a definition or a comment: the column
/// after `(`.
fn call_column(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    let definition = [
        "fn ",
        "pub fn ",
        "def ",
        "func ",
        "function ",
        "async fn ",
        "pub(crate) fn ",
    ];
    let comment = ["//", "#", "*", "/*", "\"", "'"];
    if definition
        .iter()
        .chain(&comment)
        .any(|p| trimmed.starts_with(p))
        || line.len() > 120
    {
        return None;
    }
    let bytes = line.as_bytes();
    let at = (1..bytes.len()).find(|&i| {
        bytes[i] == b'(' && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
    })?;
    let rest = line[at + 1..].trim_end();
    let useful = rest.chars().filter(|c| c.is_alphanumeric()).count() >= 2;
    (useful && rest.is_ascii()).then_some(at + 1)
}

/// Up to `count` call sites spread over the repository's source files (deterministic).
fn pick_sites(root: &Path, count: usize) -> Vec<Site> {
    let mut files: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .build()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| language_of(p).is_some())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 1_000 && m.len() < 100_000))
        .collect();
    files.sort();
    let mut candidates = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lines: Vec<(usize, usize)> = text
            .lines()
            .enumerate()
            .skip(20)
            .filter_map(|(n, l)| Some((n, call_column(l)?)))
            .collect();
        if let Some(&(line, column)) = lines.get(lines.len() / 2) {
            let truth = text.lines().nth(line).map_or("", |l| &l[column..]);
            candidates.push(Site {
                language: language_of(&path).unwrap_or("rust"),
                truth: truth.trim_end().to_string(),
                path,
                text: text.clone(),
                line,
                column,
            });
        }
    }
    let stride = (candidates.len() / count.max(1)).max(1);
    candidates.into_iter().step_by(stride).take(count).collect()
}

/// One timed request.
#[derive(Debug, Clone, Default)]
struct Sample {
    latency_ms: f64,
    /// The first line of the suggestion (empty when none).
    first_line: String,
    /// The document, as the server's log names it (workspace-relative).
    document: String,
    /// When the answer arrived (ms since the epoch): the server logged the request just before.
    answered_ms: u128,
}

/// What one pass measured.
#[derive(Debug, Default)]
struct Pass {
    first: Vec<Sample>,
    exact: usize,
    pauses: Vec<Sample>,
    keystrokes: usize,
    predicted_whole_line: usize,
}

/// A document being typed in.
struct Typing<'a> {
    client: &'a mut LspClient,
    uri: String,
    document: String,
    version: i32,
}

impl Typing<'_> {
    fn insert(&mut self, site: &Site, column: usize, text: &str) -> anyhow::Result<()> {
        self.version += 1;
        let at = site.position(column);
        self.client.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": self.uri, "version": self.version },
                "contentChanges": [{ "range": { "start": at, "end": at }, "text": text }],
            }),
        )
    }

    fn ask(&mut self, site: &Site, column: usize) -> anyhow::Result<i64> {
        self.client.send(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": { "uri": self.uri },
                "position": site.position(column),
                "context": { "triggerKind": 2 },
            }),
        )
    }

    /// Waits for `id`'s answer: the sample, timed from `sent`.
    fn answer(&mut self, id: i64, sent: Instant) -> anyhow::Result<Sample> {
        let message = self.client.response(id)?;
        let latency_ms = sent.elapsed().as_secs_f64() * 1e3;
        let item = &message["result"]["items"][0];
        Ok(Sample {
            latency_ms,
            first_line: item["insertText"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
                .trim_end()
                .to_string(),
            document: self.document.clone(),
            answered_ms: now_ms(),
        })
    }

    /// Types what `first` did not predict, a request per keystroke, and returns the pause sample.
    fn burst(
        &mut self,
        site: &Site,
        first: &Sample,
        options: &TypingBenchArgs,
        pass: &mut Pass,
    ) -> anyhow::Result<()> {
        let predicted = first
            .first_line
            .bytes()
            .zip(site.truth.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        if predicted >= site.truth.len() {
            pass.predicted_whole_line += 1;
            return Ok(());
        }
        let mut column = site.column;
        if predicted > 0 {
            self.insert(site, column, &site.truth[..predicted])?;
            column += predicted;
        }
        let typed = &site.truth[predicted..(predicted + options.burst).min(site.truth.len())];
        if typed.is_empty() {
            return Ok(());
        }
        let gap = Duration::from_millis(options.gap_ms);
        let mut previous: Option<i64> = None;
        let mut last = (0, Instant::now());
        for ch in typed.chars() {
            let keystroke = Instant::now();
            self.insert(site, column, &ch.to_string())?;
            column += ch.len_utf8();
            if let Some(id) = previous {
                self.client.cancel(id)?;
            }
            let id = self.ask(site, column)?;
            previous = Some(id);
            last = (id, Instant::now());
            pass.keystrokes += 1;
            std::thread::sleep(gap.saturating_sub(keystroke.elapsed()));
        }
        pass.pauses.push(self.answer(last.0, last.1)?);
        Ok(())
    }
}

fn settings(options: &TypingBenchArgs) -> Value {
    let mut settings = json!({ "completion": { "budget": options.budget } });
    if let Some(model) = &options.model {
        settings["model"] = json!(model);
    }
    if let Some(suffix) = options.suffix_tokens {
        settings["completion"]["suffixTokens"] = json!(suffix);
    }
    if let Some(latency) = options.latency_ms {
        settings["completion"]["latencyMs"] = json!(latency);
    }
    if let Some(speculative) = &options.speculative {
        settings["completion"]["speculative"] = json!(speculative);
    }
    settings
}

/// Runs one pass over `sites` against a fresh server; returns the measurements and the server's log.
fn run_pass(
    options: &TypingBenchArgs,
    root: &Path,
    sites: &[Site],
    warm: bool,
) -> anyhow::Result<(Pass, Vec<Value>)> {
    let scratch = Scratch::new(if warm {
        "bench-typing-warm"
    } else {
        "bench-typing-cold"
    })?;
    let binary = match &options.server {
        Some(path) => path.clone(),
        None => std::env::current_exe()?,
    };
    // The server runs at this process's level (the global `--isa` / `QWEN_LS_ISA` cap, else the best).
    let env = vec![(ISA_ENV, isa()?.name().to_owned())];
    let mut client = LspClient::start(&Launch {
        binary: &binary,
        cache_dir: scratch.path(),
        env,
        root,
        settings: settings(options),
    })?;
    client.wait_ready()?;
    let mut pass = Pass::default();
    for (n, site) in sites.iter().enumerate() {
        let uri = file_uri(&site.path);
        let mut typing = Typing {
            client: &mut client,
            uri: uri.clone(),
            document: site
                .path
                .strip_prefix(root)
                .unwrap_or(&site.path)
                .to_string_lossy()
                .into_owned(),
            version: 1,
        };
        let opened = if warm { site.text.clone() } else { site.cut() };
        typing.client.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": site.language, "version": 1, "text": opened } }),
        )?;
        if warm {
            // The user deletes the rest of the line: the server learns where they are.
            typing.version += 1;
            let start = site.position(site.column);
            let line_end = site.position(site.text.lines().nth(site.line).map_or(0, str::len));
            typing.client.notify(
                "textDocument/didChange",
                json!({
                    "textDocument": { "uri": uri, "version": typing.version },
                    "contentChanges": [{ "range": { "start": start, "end": line_end }, "text": "" }],
                }),
            )?;
            std::thread::sleep(Duration::from_secs_f64(options.idle));
        }
        let sent = Instant::now();
        let id = typing.ask(site, site.column)?;
        let first = typing.answer(id, sent)?;
        if first.first_line == site.truth {
            pass.exact += 1;
        }
        typing.burst(site, &first, options, &mut pass)?;
        typing.client.notify(
            "textDocument/didClose",
            json!({ "textDocument": { "uri": uri } }),
        )?;
        eprintln!(
            "{} site {}/{}: {}:{} first {:.0} ms{}",
            if warm { "warm" } else { "cold" },
            n + 1,
            sites.len(),
            site.path.display(),
            site.line + 1,
            first.latency_ms,
            if first.first_line == site.truth {
                " (exact)"
            } else {
                ""
            }
        );
        pass.first.push(first);
    }
    client.shutdown()?;
    let log = std::fs::read_to_string(scratch.path().join(LOG_FILE_NAME)).unwrap_or_default();
    let events = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    Ok((pass, events))
}

fn isa() -> anyhow::Result<Isa> {
    Ok(Isa::selected()?)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// `{n, p50, p95, max}` of latencies.
fn latency(samples: &[Sample]) -> Value {
    let values = sorted(samples.iter().map(|s| s.latency_ms).collect());
    json!({
        "n": values.len(),
        "p50": quantile(&values, 0.5),
        "p95": quantile(&values, 0.95),
        "max": values.last(),
    })
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// The server's log event of a sample: the last generation logged for its document before the answer
/// arrived (the cancelled requests before it are logged as such and skipped).
fn event_of<'e>(sample: &Sample, events: &'e [Value]) -> Option<&'e Value> {
    events.iter().rev().find(|e| {
        e["event"] == "suggestion"
            && e["document"] == sample.document.as_str()
            && matches!(e["outcome"].as_str(), Some("shown" | "empty"))
            && e["ts"]
                .as_u64()
                .is_some_and(|ts| u128::from(ts) <= sample.answered_ms)
    })
}

/// The log's token counts for the samples (servers that log them).
fn tokens(samples: &[Sample], events: &[Value]) -> Value {
    let events: Vec<&Value> = samples
        .iter()
        .filter_map(|s| event_of(s, events))
        .filter(|e| e.get("prefilled_tokens").is_some())
        .collect();
    let field = |name: &str| sorted(events.iter().filter_map(|e| e[name].as_f64()).collect());
    let (prompt, reused, prefilled) = (
        field("prompt_tokens"),
        field("reused_tokens"),
        field("prefilled_tokens"),
    );
    json!({
        "n": events.len(),
        "fast": events.iter().filter(|e| e["layout"] == "fast").count(),
        "prompt_p50": quantile(&prompt, 0.5),
        "reused_p50": quantile(&reused, 0.5),
        "prefilled_p50": quantile(&prefilled, 0.5),
        "prefilled_p95": quantile(&prefilled, 0.95),
    })
}

fn report(pass: &Pass, events: &[Value]) -> Value {
    let warmups: Vec<&Value> = events.iter().filter(|e| e["event"] == "warmup").collect();
    let mut finishes = serde_json::Map::new();
    for w in &warmups {
        let finish = w["finish"].as_str().unwrap_or("?").to_owned();
        let n = finishes.get(&finish).and_then(Value::as_u64).unwrap_or(0);
        finishes.insert(finish, json!(n + 1));
    }
    json!({
        "first": latency(&pass.first),
        "first_tokens": tokens(&pass.first, events),
        "exact_match": { "exact": pass.exact, "of": pass.first.len() },
        "pause": latency(&pass.pauses),
        "pause_tokens": tokens(&pass.pauses, events),
        "keystrokes": pass.keystrokes,
        "predicted_whole_line": pass.predicted_whole_line,
        "warmups": warmups.len(),
        "warmup_finishes": finishes,
        "warmup_tokens": warmups.iter().filter_map(|w| w["prefilled_tokens"].as_u64()).sum::<u64>(),
    })
}

fn print_pass(name: &str, r: &Value) {
    let ms = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.0} ms"));
    let n = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.0}"));
    outln!(
        "{name}: first suggestion p50 {}  p95 {}  max {}  (n {}); exact match {}/{}",
        ms(&r["first"]["p50"]),
        ms(&r["first"]["p95"]),
        ms(&r["first"]["max"]),
        r["first"]["n"],
        r["exact_match"]["exact"],
        r["exact_match"]["of"]
    );
    outln!(
        "  first: prompt p50 {} tokens, reused p50 {}, prefilled p50 {} / p95 {}; fast prompt {} of {}",
        n(&r["first_tokens"]["prompt_p50"]),
        n(&r["first_tokens"]["reused_p50"]),
        n(&r["first_tokens"]["prefilled_p50"]),
        n(&r["first_tokens"]["prefilled_p95"]),
        r["first_tokens"]["fast"],
        r["first_tokens"]["n"]
    );
    outln!(
        "  pause after {} keystrokes: p50 {}  p95 {}  max {}  (n {}; {} sites predicted the whole line)",
        r["keystrokes"],
        ms(&r["pause"]["p50"]),
        ms(&r["pause"]["p95"]),
        ms(&r["pause"]["max"]),
        r["pause"]["n"],
        r["predicted_whole_line"]
    );
    outln!(
        "  pause: prompt p50 {} tokens, reused p50 {}, prefilled p50 {} / p95 {}; fast prompt {} of {}",
        n(&r["pause_tokens"]["prompt_p50"]),
        n(&r["pause_tokens"]["reused_p50"]),
        n(&r["pause_tokens"]["prefilled_p50"]),
        n(&r["pause_tokens"]["prefilled_p95"]),
        r["pause_tokens"]["fast"],
        r["pause_tokens"]["n"]
    );
    outln!(
        "  warm-ups {} {} ({} tokens prefilled)",
        r["warmups"],
        r["warmup_finishes"],
        r["warmup_tokens"]
    );
}

/// Runs the benchmark and prints the report.
pub fn run(options: &TypingBenchArgs) -> anyhow::Result<()> {
    let root = options
        .path
        .canonicalize()
        .with_context(|| format!("cannot open {}", options.path.display()))?;
    let sites = pick_sites(&root, options.sites);
    if sites.is_empty() {
        bail!(
            "no call sites in Rust, Python, TypeScript, JavaScript or Go files of 1-100 KB under {}",
            root.display()
        );
    }
    let load_before = load_average();
    let started = Instant::now();
    let mut passes = serde_json::Map::new();
    for (name, warm) in [("cold", false), ("warm", true)] {
        if options.only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        let (pass, events) = run_pass(options, &root, &sites, warm)?;
        passes.insert(name.to_owned(), report(&pass, &events));
    }
    let result = json!({
        "repository": root,
        "sites": sites.len(),
        "budget": options.budget,
        "suffix_tokens": options.suffix_tokens,
        "latency_ms": options.latency_ms,
        "speculative": options.speculative,
        "idle_secs": options.idle,
        "gap_ms": options.gap_ms,
        "isa": isa()?.name(),
        "server": options.server,
        "load_average": { "before": load_before, "after": load_average() },
        "secs": started.elapsed().as_secs_f64(),
        "passes": passes,
    });
    if options.json {
        outln!("{result:#}");
        return Ok(());
    }
    outln!("# qwen-ls bench typing {}", root.display());
    outln!(
        "{} call sites; completion.budget {}; keystrokes {} ms apart; warm pass after {} s idle; ISA {}; server {}",
        sites.len(),
        options.budget,
        options.gap_ms,
        options.idle,
        result["isa"].as_str().unwrap_or("?"),
        options
            .server
            .as_ref()
            .map_or("this binary".to_owned(), |p| p.display().to_string())
    );
    outln!(
        "load average before {}, after {}",
        result["load_average"]["before"],
        result["load_average"]["after"]
    );
    for (name, pass) in &passes {
        print_pass(name, pass);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_sites_are_calls_with_arguments() {
        assert_eq!(call_column("    let x = foo(a, b);"), Some(16));
        assert_eq!(call_column("    bar.baz(quux)"), Some(12));
        assert_eq!(call_column("fn foo(a: i32) {"), None);
        assert_eq!(call_column("    // call(this, that)"), None);
        assert_eq!(call_column("    foo()"), None);
        assert_eq!(call_column("    if (x) {"), None);
    }

    #[test]
    fn a_site_cuts_its_line_at_the_cursor() {
        let site = Site {
            path: PathBuf::from("a.rs"),
            language: "rust",
            text: "fn f() {\n    g(1, 2);\n}\n".into(),
            line: 1,
            column: 6,
            truth: "1, 2);".into(),
        };
        assert_eq!(site.offset(), 15);
        assert_eq!(site.cut(), "fn f() {\n    g(\n}\n");
    }
}
