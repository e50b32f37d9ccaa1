//! Inline completions as a stream of keystrokes: the policy around [`Analysis::complete`] that makes typing
//! cheap and safe, kept here so that every front end gets it and the LSP handler stays a conversion.
//!
//! - **One generation per document.** A new request for a document cancels the one before it (at its next
//!   token) and wakes it out of its debounce; so does an edit to the document ([`InlineCompletions::cancel`],
//!   which the LSP front door calls on `didChange`): its answer could only be stale.
//! - **Adaptive debounce** from the document's typing rhythm and the recent generation latencies
//!   ([`debounce_delay`]); nothing waits on a new line or for an invoked completion.
//! - **Never an answer for a text that is gone**: the document version is checked at arrival, once the
//!   request is registered, and after the generation (`current_version`).
//! - **One record per request** in the suggestion log: outcome, latency, debounce, engine and prompt time,
//!   prompt tokens reused and prefilled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::complete::{debounce_delay, DebounceConfig, History, Trigger};
use super::generator::{Flow, GenError, GenOutput, GenRequest, Generator, GeneratorInfo, Speed};
use super::measure::{Outcome, PromptTokens, Suggestion, SuggestionLog};
use super::{Analysis, Completion, DocumentPosition, Layout, Settings, TaskError, TaskStats};
use qwen_engine::CancelToken;
use qwen_index::CacheStore;

/// How many keystroke gaps / latencies the debounce policy looks at.
const HISTORY: usize = 16;
/// How often a debounce wait checks its cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// One inline-completion request.
#[derive(Debug, Clone)]
pub struct InlineRequest {
    /// The document's key (its URI): requests and edits of one document supersede each other.
    pub document: String,
    /// The document as the suggestion log names it (workspace-relative path, or the URI).
    pub log_name: String,
    /// Where, in which text and version.
    pub at: DocumentPosition,
    /// The document's version when the request arrived (`None`: not open then).
    pub arrival_version: Option<i32>,
    /// The user asked for it (up to three alternatives, no debounce).
    pub explicit: bool,
    /// When the request arrived.
    pub arrived: Instant,
}

/// What a request produced.
#[derive(Debug, Default)]
pub struct InlineAnswer {
    /// The suggestions, best first; each `id` is what the acceptance command reports (alternatives are
    /// `<first id>~<n>`, so accepting one counts for the request).
    pub completions: Vec<Completion>,
    /// The generation failed with this error (a front end shows it); `None` for success or cancellation.
    pub failure: Option<TaskError>,
    /// A generation ran to the end: past failures may be cleared.
    pub generated: bool,
    /// The user is here and the full prompt may not have run: warm it while the engine is idle.
    pub warm_here: bool,
}

/// The per-document state of the policy (see the module documentation).
#[derive(Default)]
pub struct InlineCompletions {
    inflight: Mutex<HashMap<String, Inflight>>,
    next_seq: AtomicU64,
    rhythm: Mutex<HashMap<String, Rhythm>>,
    latencies: Mutex<Option<History>>,
}

/// A completion being computed for a document.
struct Inflight {
    seq: u64,
    cancel: CancelToken,
    /// Dropped when superseded: wakes the request out of its debounce.
    _wake: mpsc::Sender<()>,
}

/// Per-document typing rhythm, for the debounce policy.
#[derive(Default)]
struct Rhythm {
    last_request: Option<Instant>,
    gaps: Option<History>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl InlineCompletions {
    /// Cancels (and wakes) the document's completion, if any: the document changed.
    pub fn cancel(&self, document: &str) {
        if let Some(previous) = lock(&self.inflight).remove(document) {
            previous.cancel.cancel();
        }
    }

    /// Forgets a closed document.
    pub fn forget(&self, document: &str) {
        lock(&self.rhythm).remove(document);
        self.cancel(document);
    }

    /// Serves one request: `analysis` is `None` while the model or the workspace is not ready;
    /// `current_version` reads the document's version now; `cancel` fires when the front end drops the
    /// request. Blocks through the debounce and the generation.
    pub fn suggest(
        &self,
        settings: &Settings,
        analysis: Option<Analysis<'_>>,
        log: &SuggestionLog,
        request: &InlineRequest,
        current_version: &dyn Fn() -> Option<i32>,
        cancel: &CancelToken,
    ) -> InlineAnswer {
        if !settings.completion.enabled {
            return InlineAnswer::default();
        }
        let mut record = Suggestion {
            id: String::new(),
            document: request.log_name.clone(),
            language: request.at.language_id.clone(),
            outcome: Outcome::NotReady,
            latency: Duration::ZERO,
            debounce: Duration::ZERO,
            engine: Duration::ZERO,
            prompt: Duration::ZERO,
            prompt_cpu: Duration::ZERO,
            generated_tokens: 0,
            chars: 0,
            tokens: None,
        };
        let mut answer = InlineAnswer::default();
        let seq = 'served: {
            if request.arrival_version != request.at.version {
                // Edited between the request and now: its position is for a text that is gone.
                record.outcome = Outcome::Stale;
                break 'served self.next_seq();
            }
            let gaps = self.keystroke(&request.document, request.arrived);
            let Some(analysis) = analysis else {
                break 'served self.next_seq();
            };
            let (seq, superseded) = self.begin(&request.document, cancel);
            let _inflight = InflightGuard {
                owner: self,
                document: &request.document,
                seq,
            };
            // An edit applied between the version check above and `begin` cancelled nothing (there was
            // nothing to cancel yet): check again. From here on an edit either is seen by this check or
            // cancels this request.
            if current_version() != request.at.version {
                record.outcome = Outcome::Stale;
                break 'served seq;
            }
            let delay = self.debounce(settings, request, &gaps);
            if !delay.is_zero() {
                let waiting = Instant::now();
                wait(&superseded, delay, cancel);
                record.debounce = waiting.elapsed();
            }
            let (result, engine) = if cancel.is_cancelled() {
                (Err(TaskError::Cancelled), Duration::ZERO)
            } else {
                generate(analysis, request, seq, cancel)
            };
            record.engine = engine;
            let stale = current_version() != request.at.version;
            record.outcome = self.outcome(result, stale, engine, &mut record, &mut answer);
            answer.warm_here = matches!(record.outcome, Outcome::Shown | Outcome::Empty);
            seq
        };
        record.latency = request.arrived.elapsed();
        if record.id.is_empty() {
            record.id = format!("r{seq}");
        }
        log.suggestion(&record);
        answer
    }

    /// Files the generation's result into the record and the answer; returns the outcome.
    fn outcome(
        &self,
        result: Result<(Vec<Completion>, TaskStats), TaskError>,
        stale: bool,
        engine: Duration,
        record: &mut Suggestion,
        answer: &mut InlineAnswer,
    ) -> Outcome {
        let (completions, stats) = match result {
            Err(TaskError::Cancelled) => return Outcome::Cancelled,
            Err(e) => {
                tracing::warn!("completion failed: {e}");
                answer.failure = Some(e);
                return Outcome::Failed;
            }
            Ok(done) => done,
        };
        answer.generated = true;
        record.prompt = Duration::from_secs_f64(stats.prompt_secs);
        record.prompt_cpu = Duration::from_secs_f64(stats.prompt_cpu_secs);
        if let Some(generation) = stats.generation.as_ref() {
            record.generated_tokens = generation.generated_tokens;
            record.tokens = Some(PromptTokens {
                layout: match stats.layout {
                    Some(Layout::Fast) => "fast",
                    _ => "full",
                },
                budget: stats.prompt_budget,
                prompt: generation.prompt_tokens,
                reused: generation.reused_tokens,
                prefilled: generation.prefilled_tokens,
            });
        }
        if !engine.is_zero() {
            lock(&self.latencies)
                .get_or_insert_with(|| History::new(HISTORY))
                .record(engine);
        }
        if stale {
            return Outcome::Stale;
        }
        let Some(first) = completions.first() else {
            return Outcome::Empty;
        };
        // The log records the first (best) suggestion; accepting another one is logged by its id.
        record.id = first.id.clone();
        record.chars = first.text.chars().count();
        let first_id = first.id.clone();
        answer.completions = completions
            .into_iter()
            .enumerate()
            .map(|(n, mut c)| {
                if n > 0 {
                    c.id = format!("{first_id}~{n}");
                }
                c
            })
            .collect();
        Outcome::Shown
    }

    /// Registers a completion for `document`, cancelling (and waking) the document's previous one. Returns
    /// the request's sequence number and a receiver that disconnects when it is superseded.
    fn begin(&self, document: &str, cancel: &CancelToken) -> (u64, mpsc::Receiver<()>) {
        let seq = self.next_seq();
        let (wake, superseded) = mpsc::channel();
        let previous = lock(&self.inflight).insert(
            document.to_owned(),
            Inflight {
                seq,
                cancel: cancel.clone(),
                _wake: wake,
            },
        );
        if let Some(previous) = previous {
            previous.cancel.cancel();
        }
        (seq, superseded)
    }

    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records a request's arrival; returns the document's recent keystroke gaps.
    fn keystroke(&self, document: &str, now: Instant) -> Vec<Duration> {
        let mut rhythm = lock(&self.rhythm);
        let entry = rhythm.entry(document.to_owned()).or_default();
        let gaps = entry.gaps.get_or_insert_with(|| History::new(HISTORY));
        if let Some(last) = entry.last_request {
            gaps.record(now.saturating_duration_since(last));
        }
        entry.last_request = Some(now);
        gaps.values()
    }

    fn debounce(
        &self,
        settings: &Settings,
        request: &InlineRequest,
        gaps: &[Duration],
    ) -> Duration {
        let trigger = if request.explicit {
            Trigger::Explicit
        } else if request
            .at
            .text
            .as_deref()
            .is_some_and(|text| at_line_start(text, request.at.offset))
        {
            Trigger::NewLine
        } else {
            Trigger::Typing
        };
        let config = DebounceConfig {
            base: settings.completion.debounce(),
            ..DebounceConfig::default()
        };
        let latencies = lock(&self.latencies)
            .as_ref()
            .map(History::values)
            .unwrap_or_default();
        debounce_delay(&config, trigger, gaps, &latencies)
    }
}

/// Removes the in-flight entry (and cancels the generation, if still running) however the request ends.
struct InflightGuard<'a> {
    owner: &'a InlineCompletions,
    document: &'a str,
    seq: u64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        let mut inflight = lock(&self.owner.inflight);
        if let Some(entry) = inflight.get(self.document).filter(|i| i.seq == self.seq) {
            entry.cancel.cancel();
            inflight.remove(self.document);
        }
    }
}

/// Sleeps `delay`, or less when the request is superseded or cancelled.
fn wait(superseded: &mpsc::Receiver<()>, delay: Duration, cancel: &CancelToken) {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || cancel.is_cancelled() {
            return;
        }
        match superseded.recv_timeout(left.min(CANCEL_POLL)) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Runs the completion (alternatives when invoked); returns the result and the time spent in the generator.
fn generate(
    analysis: Analysis<'_>,
    request: &InlineRequest,
    seq: u64,
    cancel: &CancelToken,
) -> (Result<(Vec<Completion>, TaskStats), TaskError>, Duration) {
    let timed = Timed {
        inner: analysis.generator(),
        spent: Mutex::new(Duration::ZERO),
    };
    let timed_analysis = analysis.with_generator(&timed);
    let result = if request.explicit {
        timed_analysis.complete_alternatives(&request.at, cancel)
    } else {
        timed_analysis
            .complete_with_stats(&request.at, cancel)
            .map(|(c, stats)| (c.into_iter().collect(), stats))
    };
    if analysis.settings().debug.dump_prompt {
        let (name, layout) = match &result {
            Ok((completions, stats)) => (
                completions
                    .first()
                    .map_or_else(|| format!("r{seq}"), |c| c.id.clone()),
                stats.layout.unwrap_or(Layout::Full),
            ),
            Err(_) => (format!("r{seq}"), Layout::Full),
        };
        dump_prompt(analysis, &request.at, layout, &name);
    }
    let spent = *lock(&timed.spent);
    (result, spent)
}

/// Whether `offset` is at the start of a line (only indentation before it).
fn at_line_start(text: &str, offset: usize) -> bool {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    before[line_start..].chars().all(|c| c == ' ' || c == '\t')
}

/// Where `debug.dumpPrompt` writes: next to `logFile`, else in the cache directory.
fn prompt_dir(settings: &Settings) -> Option<PathBuf> {
    match settings
        .log_file
        .as_deref()
        .and_then(std::path::Path::parent)
    {
        Some(dir) => Some(dir.join("qwen-ls-prompts")),
        None => CacheStore::default_dir().map(|d| d.join("prompts")),
    }
}

/// `debug.dumpPrompt`: writes the exact prompt of a completion request (rebuilt: packing is deterministic).
fn dump_prompt(analysis: Analysis<'_>, at: &DocumentPosition, layout: Layout, name: &str) {
    let Some(dir) = prompt_dir(analysis.settings()) else {
        return;
    };
    let written = analysis
        .completion_prompt(at, layout)
        .map_err(|e| e.to_string())
        .and_then(|prompt| {
            qwen_index::cache::create_private_dir(&dir).map_err(|e| e.to_string())?;
            let path = dir.join(format!("completion-{name}.txt"));
            std::fs::write(&path, prompt.prompt.to_text()).map_err(|e| e.to_string())?;
            Ok(path)
        });
    match written {
        Ok(path) => tracing::info!("prompt written to {}", path.display()),
        Err(e) => tracing::warn!("debug.dumpPrompt: {e}"),
    }
}

/// Measures the time a request spends inside the generator (queue, prefill, decode), whatever the task
/// returns — the server's own time is the rest.
struct Timed<'a> {
    inner: &'a dyn Generator,
    spent: Mutex<Duration>,
}

impl Timed<'_> {
    fn timed<T>(&self, run: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = run();
        *lock(&self.spent) += started.elapsed();
        result
    }
}

impl Generator for Timed<'_> {
    fn info(&self) -> GeneratorInfo {
        self.inner.info()
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        self.timed(|| self.inner.generate(request, cancel, on_text))
    }

    fn generate_within(
        &self,
        offers: &[GenRequest],
        prefill_limit: Duration,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<(usize, GenOutput), GenError> {
        self.timed(|| {
            self.inner
                .generate_within(offers, prefill_limit, cancel, on_text)
        })
    }

    fn keeps_sessions(&self) -> bool {
        self.inner.keeps_sessions()
    }

    fn speed(&self) -> Option<Speed> {
        self.inner.speed()
    }

    fn reset_sessions(&self) {
        self.inner.reset_sessions();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_starts() {
        let text = "fn a() {\n    \n    x\n";
        assert!(at_line_start(text, 0));
        assert!(at_line_start(text, 13));
        assert!(!at_line_start(text, 19));
        assert!(!at_line_start(text, 3));
    }

    #[test]
    fn a_new_request_supersedes_the_documents_previous_one() {
        let inline = InlineCompletions::default();
        let (first_cancel, second_cancel) = (CancelToken::new(), CancelToken::new());
        let (first, superseded) = inline.begin("doc", &first_cancel);
        let (second, _) = inline.begin("doc", &second_cancel);
        assert!(second > first);
        assert!(first_cancel.is_cancelled());
        assert!(!second_cancel.is_cancelled());
        // The first request's debounce ends at once.
        let started = Instant::now();
        wait(&superseded, Duration::from_secs(5), &first_cancel);
        assert!(started.elapsed() < Duration::from_secs(1));
        inline.cancel("doc");
        assert!(second_cancel.is_cancelled());
    }
}
