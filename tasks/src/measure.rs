//! Local measurement of inline completions: one JSON line per event in `<cache dir>/suggestions.jsonl`
//! (`$QWEN_LS_CACHE_DIR`, else `$XDG_CACHE_HOME/qwen-ls`, else `~/.cache/qwen-ls`). Nothing is ever sent
//! anywhere; [`summarize`] reads the file back for `qwen-ls stats`.
//!
//! Events: `suggestion` (every completion request that was answered: its outcome, end-to-end latency, the
//! part of it spent in the engine, and for a generation the prompt's tokens, how many came from the KV cache
//! and how many were prefilled), `warmup` (a background prefill: why, how it ended, its tokens), `accepted`
//! (the client ran the item's acceptance command) and `dismissed` (a shown suggestion was superseded by the
//! next request for the same document without being accepted).
//! The file is rotated to `suggestions.jsonl.1` past [`MAX_LOG_BYTES`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The log is rotated when it grows past this size.
pub const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// The log's file name inside the cache directory.
pub const LOG_FILE_NAME: &str = "suggestions.jsonl";

/// The default log location, when a cache directory is known.
pub fn default_log_path() -> Option<PathBuf> {
    qwen_index::CacheStore::default_dir().map(|dir| dir.join(LOG_FILE_NAME))
}

/// How a completion request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A suggestion was returned to the editor.
    Shown,
    /// Generation finished but produced nothing worth showing.
    Empty,
    /// Cancelled: superseded by a newer request for the document, or `$/cancelRequest`.
    Cancelled,
    /// The document changed while generating; the result was thrown away.
    Stale,
    /// Not ready (model loading, indexing) or disabled: answered empty at once.
    NotReady,
    /// The generation failed.
    Failed,
}

impl Outcome {
    /// The name written to the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Shown => "shown",
            Outcome::Empty => "empty",
            Outcome::Cancelled => "cancelled",
            Outcome::Stale => "stale",
            Outcome::NotReady => "not-ready",
            Outcome::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        [
            Outcome::Shown,
            Outcome::Empty,
            Outcome::Cancelled,
            Outcome::Stale,
            Outcome::NotReady,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// One answered completion request.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// The completion id (the acceptance command's argument).
    pub id: String,
    /// The document (workspace-relative path, or URI when outside the workspace).
    pub document: String,
    /// The editor's language id.
    pub language: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Request arrival to response.
    pub latency: Duration,
    /// Time deliberately waited before generating (debounce; superseded requests end here).
    pub debounce: Duration,
    /// Time inside the generator (queue, prefill, decode).
    pub engine: Duration,
    /// Time building the prompt (context packing, windows), part of the server's own time.
    pub prompt: Duration,
    /// CPU time of the request's thread up to the end of prompt building.
    pub prompt_cpu: Duration,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Characters of the suggestion shown (0 unless shown).
    pub chars: usize,
    /// The prompt of the generation, when one ran.
    pub tokens: Option<PromptTokens>,
}

/// Where a generation's prompt tokens came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTokens {
    /// Which prompt ran: `"full"` (`completion.budget`) or `"fast"` (sized to the measured speed).
    pub layout: &'static str,
    /// Its budget.
    pub budget: usize,
    /// Tokens of the prompt.
    pub prompt: usize,
    /// Tokens reused from the session's KV cache.
    pub reused: usize,
    /// Tokens run through the model.
    pub prefilled: usize,
}

/// One background prefill (warm-up).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmUp {
    /// The document.
    pub document: String,
    /// What asked for it (`open`, `edit`, `request`).
    pub trigger: &'static str,
    /// How it ended (`done`, `already-warm`, `preempted`, `cancelled`, `failed`).
    pub finish: &'static str,
    /// Tokens of the prompt part warmed.
    pub prompt_tokens: usize,
    /// Tokens already in the cache.
    pub reused_tokens: usize,
    /// Tokens prefilled.
    pub prefilled_tokens: usize,
    /// Waiting for the engine to be idle.
    pub queue: Duration,
    /// Prefilling.
    pub prefill: Duration,
}

/// The append-only log. All methods are best effort: an I/O failure is logged once and disables the log.
#[derive(Debug)]
pub struct SuggestionLog {
    path: Option<PathBuf>,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    file: Option<File>,
    failed: bool,
    /// The shown, not yet accepted suggestion of each document.
    pending: HashMap<String, String>,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// CPU time consumed by the calling thread, in seconds (immune to other processes competing for cores).
pub fn thread_cpu_seconds() -> f64 {
    // SAFETY: clock_gettime only writes into the zeroed struct we pass.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return 0.0;
    }
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl SuggestionLog {
    /// A log writing to `path` (created with its directory on the first event).
    pub fn new(path: Option<PathBuf>) -> SuggestionLog {
        SuggestionLog {
            path,
            state: Mutex::new(LogState::default()),
        }
    }

    /// Where the log is written.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Records an answered request; a shown suggestion dismisses the document's previous unaccepted one.
    pub fn suggestion(&self, s: &Suggestion) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let previous = match s.outcome {
            Outcome::Shown => state.pending.insert(s.document.clone(), s.id.clone()),
            _ => None,
        };
        if let Some(previous) = previous {
            self.write(
                &mut state,
                json!({"event": "dismissed", "ts": now_ms(), "id": previous}),
            );
        }
        let mut line = json!({
            "event": "suggestion",
            "ts": now_ms(),
            "id": s.id,
            "document": s.document,
            "language": s.language,
            "outcome": s.outcome.as_str(),
            "latency_ms": ms(s.latency),
            "debounce_ms": ms(s.debounce),
            "engine_ms": ms(s.engine),
            "prompt_ms": ms(s.prompt),
            "prompt_cpu_ms": ms(s.prompt_cpu),
            "generated_tokens": s.generated_tokens,
            "chars": s.chars,
        });
        if let Some(t) = &s.tokens {
            line["layout"] = json!(t.layout);
            line["budget"] = json!(t.budget);
            line["prompt_tokens"] = json!(t.prompt);
            line["reused_tokens"] = json!(t.reused);
            line["prefilled_tokens"] = json!(t.prefilled);
        }
        self.write(&mut state, line);
    }

    /// Records a warm-up.
    pub fn warm_up(&self, w: &WarmUp) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let line = json!({
            "event": "warmup",
            "ts": now_ms(),
            "document": w.document,
            "trigger": w.trigger,
            "finish": w.finish,
            "prompt_tokens": w.prompt_tokens,
            "reused_tokens": w.reused_tokens,
            "prefilled_tokens": w.prefilled_tokens,
            "queue_ms": ms(w.queue),
            "prefill_ms": ms(w.prefill),
        });
        self.write(&mut state, line);
    }

    /// Records that the client accepted suggestion `id`.
    pub fn accepted(&self, id: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.pending.retain(|_, pending| pending != id);
        self.write(
            &mut state,
            json!({"event": "accepted", "ts": now_ms(), "id": id}),
        );
    }

    /// Records that the client accepted part of suggestion `id`: its next word or line (`unit`), `chars` long.
    /// The suggestion stays pending: the rest may still be accepted or dismissed.
    pub fn partially_accepted(&self, id: &str, unit: PartialUnit, chars: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.write(
            &mut state,
            json!({"event": "partial", "ts": now_ms(), "id": id, "unit": unit.as_str(), "chars": chars}),
        );
    }

    /// Marks the pending suggestion of `document` (if any) dismissed: the document was closed.
    pub fn dismiss_document(&self, document: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = state.pending.remove(document) {
            self.write(
                &mut state,
                json!({"event": "dismissed", "ts": now_ms(), "id": id}),
            );
        }
    }

    fn write(&self, state: &mut LogState, line: Value) {
        if state.failed {
            return;
        }
        let Some(path) = &self.path else { return };
        let result = (|| -> std::io::Result<()> {
            if state.file.is_none() {
                if let Some(dir) = path.parent() {
                    qwen_index::cache::create_private_dir(dir)?;
                }
                if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
                    std::fs::rename(path, path.with_extension("jsonl.1"))?;
                }
                state.file = Some(OpenOptions::new().create(true).append(true).open(path)?);
            }
            if let Some(file) = state.file.as_mut() {
                writeln!(file, "{line}")?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!("suggestion log {} disabled: {e}", path.display());
            state.failed = true;
            state.file = None;
        }
    }
}

/// What a partial accept took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialUnit {
    /// The next word.
    Word,
    /// The rest of the current line.
    Line,
}

impl PartialUnit {
    /// The log's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PartialUnit::Word => "word",
            PartialUnit::Line => "line",
        }
    }

    /// From the log's (and the protocol's) spelling.
    pub fn parse(text: &str) -> Option<PartialUnit> {
        match text {
            "word" => Some(PartialUnit::Word),
            "line" => Some(PartialUnit::Line),
            _ => None,
        }
    }
}

/// The suggestion an accept names: an alternative's id is `<first id>~<n>`, and counts as its request's.
fn request_id(id: &str) -> &str {
    id.split_once('~').map_or(id, |(first, _)| first)
}

/// Counts and latencies read back from a log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Answered requests by outcome.
    pub outcomes: HashMap<Outcome, usize>,
    /// Shown suggestions later accepted.
    pub accepted: usize,
    /// Shown suggestions superseded without acceptance.
    pub dismissed: usize,
    /// Shown suggestions of which at least a word or a line was accepted.
    pub partially_accepted: usize,
    /// Partial accepts of a word.
    pub partial_words: usize,
    /// Partial accepts of a line.
    pub partial_lines: usize,
    /// End-to-end latency of shown suggestions (ms, sorted).
    pub shown_latency_ms: Vec<f64>,
    /// Server time of every generated request: latency minus debounce and engine time (ms, sorted).
    pub overhead_ms: Vec<f64>,
    /// Prompt tokens of every generation (sorted).
    pub prompt_tokens: Vec<f64>,
    /// Prompt tokens reused from the KV cache, per generation (sorted).
    pub reused_tokens: Vec<f64>,
    /// Prompt tokens prefilled, per generation (sorted).
    pub prefilled_tokens: Vec<f64>,
    /// Generations that ran the fast prompt (sized to the measured speed) instead of the full one.
    pub fast_prompts: usize,
    /// Warm-ups by how they ended.
    pub warm_ups: std::collections::BTreeMap<String, usize>,
    /// Tokens prefilled by warm-ups.
    pub warm_up_tokens: usize,
    /// Lines that were not valid events.
    pub bad_lines: usize,
}

impl Summary {
    /// Requests with this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }

    /// Accepted / shown, when anything was shown.
    pub fn acceptance_rate(&self) -> Option<f64> {
        let shown = self.count(Outcome::Shown);
        (shown > 0).then(|| self.accepted as f64 / shown as f64)
    }
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Reads a log (unknown or broken lines are counted, not fatal).
pub fn summarize(reader: impl BufRead) -> Summary {
    let mut summary = Summary::default();
    let mut shown = HashSet::new();
    let mut accepted = HashSet::new();
    let mut partial = HashSet::new();
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            summary.bad_lines += 1;
            continue;
        };
        let id = request_id(value.get("id").and_then(Value::as_str).unwrap_or_default());
        match value.get("event").and_then(Value::as_str) {
            Some("suggestion") => {
                let Some(outcome) = value
                    .get("outcome")
                    .and_then(Value::as_str)
                    .and_then(Outcome::parse)
                else {
                    summary.bad_lines += 1;
                    continue;
                };
                *summary.outcomes.entry(outcome).or_default() += 1;
                let latency = value
                    .get("latency_ms")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let engine = value
                    .get("engine_ms")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let debounce = value
                    .get("debounce_ms")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                if outcome == Outcome::Shown {
                    shown.insert(id.to_owned());
                    summary.shown_latency_ms.push(latency);
                }
                if matches!(outcome, Outcome::Shown | Outcome::Empty) {
                    summary
                        .overhead_ms
                        .push((latency - debounce - engine).max(0.0));
                }
                let count = |key: &str| value.get(key).and_then(Value::as_f64);
                if let (Some(prompt), Some(reused), Some(prefilled)) = (
                    count("prompt_tokens"),
                    count("reused_tokens"),
                    count("prefilled_tokens"),
                ) {
                    summary.prompt_tokens.push(prompt);
                    summary.reused_tokens.push(reused);
                    summary.prefilled_tokens.push(prefilled);
                    if value.get("layout").and_then(Value::as_str) == Some("fast") {
                        summary.fast_prompts += 1;
                    }
                }
            }
            Some("warmup") => {
                let finish = value.get("finish").and_then(Value::as_str).unwrap_or("?");
                *summary.warm_ups.entry(finish.to_owned()).or_default() += 1;
                summary.warm_up_tokens += value
                    .get("prefilled_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0) as usize;
            }
            Some("accepted") if shown.contains(id) => {
                if accepted.insert(id.to_owned()) {
                    summary.accepted += 1;
                }
            }
            Some("dismissed") => summary.dismissed += 1,
            Some("accepted") => {}
            Some("partial") if shown.contains(id) => {
                match value
                    .get("unit")
                    .and_then(Value::as_str)
                    .and_then(PartialUnit::parse)
                {
                    Some(PartialUnit::Word) => summary.partial_words += 1,
                    Some(PartialUnit::Line) => summary.partial_lines += 1,
                    None => {
                        summary.bad_lines += 1;
                        continue;
                    }
                }
                if partial.insert(id.to_owned()) {
                    summary.partially_accepted += 1;
                }
            }
            Some("partial") => {}
            _ => summary.bad_lines += 1,
        }
    }
    for values in [
        &mut summary.shown_latency_ms,
        &mut summary.overhead_ms,
        &mut summary.prompt_tokens,
        &mut summary.reused_tokens,
        &mut summary.prefilled_tokens,
    ] {
        values.sort_by(f64::total_cmp);
    }
    summary
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests: usize = self.outcomes.values().sum();
        writeln!(f, "completion requests   {requests}")?;
        for outcome in [
            Outcome::Shown,
            Outcome::Empty,
            Outcome::Cancelled,
            Outcome::Stale,
            Outcome::NotReady,
            Outcome::Failed,
        ] {
            writeln!(f, "  {:<20}{}", outcome.as_str(), self.count(outcome))?;
        }
        writeln!(f, "accepted              {}", self.accepted)?;
        writeln!(
            f,
            "partially accepted    {} (words {}, lines {})",
            self.partially_accepted, self.partial_words, self.partial_lines
        )?;
        writeln!(f, "dismissed             {}", self.dismissed)?;
        match self.acceptance_rate() {
            Some(rate) => writeln!(f, "acceptance rate       {:.1}%", rate * 100.0)?,
            None => writeln!(f, "acceptance rate       - (nothing shown yet)")?,
        }
        let q = |values: &[f64], p| {
            quantile(values, p).map_or("-".to_owned(), |v| format!("{v:.1} ms"))
        };
        writeln!(
            f,
            "latency (shown)       p50 {}  p95 {}",
            q(&self.shown_latency_ms, 0.5),
            q(&self.shown_latency_ms, 0.95)
        )?;
        writeln!(
            f,
            "server overhead       p50 {}  p95 {}",
            q(&self.overhead_ms, 0.5),
            q(&self.overhead_ms, 0.95)
        )?;
        let tokens =
            |values: &[f64], p| quantile(values, p).map_or("-".to_owned(), |v| format!("{v:.0}"));
        writeln!(
            f,
            "prompt tokens         p50 {}  p95 {}  ({} generations, {} with the fast prompt)",
            tokens(&self.prompt_tokens, 0.5),
            tokens(&self.prompt_tokens, 0.95),
            self.prompt_tokens.len(),
            self.fast_prompts
        )?;
        writeln!(
            f,
            "  reused from cache   p50 {}  p95 {}",
            tokens(&self.reused_tokens, 0.5),
            tokens(&self.reused_tokens, 0.95)
        )?;
        writeln!(
            f,
            "  prefilled           p50 {}  p95 {}",
            tokens(&self.prefilled_tokens, 0.5),
            tokens(&self.prefilled_tokens, 0.95)
        )?;
        if !self.warm_ups.is_empty() {
            let ends: Vec<String> = self
                .warm_ups
                .iter()
                .map(|(finish, n)| format!("{finish} {n}"))
                .collect();
            writeln!(
                f,
                "warm-ups              {} ({} tokens prefilled)",
                ends.join(", "),
                self.warm_up_tokens
            )?;
        }
        if self.bad_lines > 0 {
            writeln!(f, "unreadable lines      {}", self.bad_lines)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(id: &str, outcome: Outcome, latency: u64, engine: u64) -> Suggestion {
        Suggestion {
            id: id.into(),
            document: "src/lib.rs".into(),
            language: "rust".into(),
            outcome,
            latency: Duration::from_millis(latency),
            debounce: Duration::ZERO,
            prompt: Duration::ZERO,
            prompt_cpu: Duration::ZERO,
            engine: Duration::from_millis(engine),
            generated_tokens: 3,
            chars: 10,
            tokens: (outcome == Outcome::Shown).then(|| PromptTokens {
                layout: if latency > 250 { "fast" } else { "full" },
                budget: 2048,
                prompt: 1000 + latency as usize,
                reused: 900,
                prefilled: 100 + latency as usize,
            }),
        }
    }

    #[test]
    fn events_round_trip_through_the_summary() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("nested").join(LOG_FILE_NAME);
        let log = SuggestionLog::new(Some(path.clone()));
        log.suggestion(&suggestion("a", Outcome::Cancelled, 5, 0));
        log.suggestion(&suggestion("b", Outcome::Shown, 100, 90));
        log.suggestion(&suggestion("c", Outcome::Shown, 200, 180)); // dismisses b
        log.accepted("c");
        log.accepted("c"); // counted once
        log.suggestion(&suggestion("d", Outcome::Empty, 50, 48));
        log.suggestion(&suggestion("e", Outcome::Shown, 300, 290));
        log.dismiss_document("src/lib.rs"); // dismisses e
        log.warm_up(&WarmUp {
            document: "src/lib.rs".into(),
            trigger: "open",
            finish: "preempted",
            prompt_tokens: 500,
            reused_tokens: 20,
            prefilled_tokens: 64,
            queue: Duration::ZERO,
            prefill: Duration::from_millis(800),
        });
        let text = std::fs::read_to_string(&path).expect("log written");
        let summary = summarize(std::io::Cursor::new(format!("{text}not json\n")));
        assert_eq!(summary.count(Outcome::Shown), 3);
        assert_eq!(summary.count(Outcome::Cancelled), 1);
        assert_eq!(summary.count(Outcome::Empty), 1);
        assert_eq!((summary.accepted, summary.dismissed), (1, 2));
        assert_eq!(summary.bad_lines, 1);
        assert_eq!(summary.acceptance_rate(), Some(1.0 / 3.0));
        assert_eq!(summary.shown_latency_ms, vec![100.0, 200.0, 300.0]);
        assert_eq!(summary.overhead_ms, vec![2.0, 10.0, 10.0, 20.0]);
        assert_eq!(quantile(&summary.shown_latency_ms, 0.5), Some(200.0));
        assert_eq!(quantile(&summary.shown_latency_ms, 0.95), Some(300.0));
        assert_eq!(summary.prompt_tokens, vec![1100.0, 1200.0, 1300.0]);
        assert_eq!(summary.reused_tokens, vec![900.0; 3]);
        assert_eq!(summary.prefilled_tokens, vec![200.0, 300.0, 400.0]);
        assert_eq!(summary.fast_prompts, 1);
        assert_eq!(summary.warm_ups.get("preempted"), Some(&1));
        assert_eq!(summary.warm_up_tokens, 64);
        let shown = summary.to_string();
        assert!(shown.contains("acceptance rate       33.3%"), "{shown}");
        assert!(
            shown.contains("  prefilled           p50 300  p95 400"),
            "{shown}"
        );
        assert!(
            shown.contains("warm-ups              preempted 1 (64 tokens prefilled)"),
            "{shown}"
        );
    }

    #[test]
    fn a_log_without_a_path_or_with_a_bad_one_is_silent() {
        SuggestionLog::new(None).suggestion(&suggestion("a", Outcome::Shown, 1, 1));
        let dir = tempfile::tempdir().expect("tmp");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").expect("write");
        let log = SuggestionLog::new(Some(blocker.join("sub").join(LOG_FILE_NAME)));
        log.suggestion(&suggestion("a", Outcome::Shown, 1, 1));
        log.accepted("a");
    }

    #[test]
    fn partial_accepts_and_accepted_alternatives_count_for_their_request() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join(LOG_FILE_NAME);
        let log = SuggestionLog::new(Some(path.clone()));
        log.suggestion(&suggestion("a", Outcome::Shown, 10, 5));
        log.partially_accepted("a", PartialUnit::Word, 4);
        log.partially_accepted("a", PartialUnit::Line, 12);
        log.accepted("a");
        log.suggestion(&suggestion("b", Outcome::Shown, 10, 5));
        // The second alternative of request b.
        log.partially_accepted("b~1", PartialUnit::Word, 3);
        log.accepted("b~1");
        log.partially_accepted("never-shown", PartialUnit::Word, 3);
        let text = std::fs::read_to_string(&path).expect("log written");
        let summary = summarize(std::io::Cursor::new(text));
        assert_eq!(summary.accepted, 2);
        assert_eq!(summary.partially_accepted, 2);
        assert_eq!((summary.partial_words, summary.partial_lines), (2, 1));
        assert_eq!(summary.bad_lines, 0);
        let shown = summary.to_string();
        assert!(
            shown.contains("partially accepted    2 (words 2, lines 1)"),
            "{shown}"
        );
    }
}
