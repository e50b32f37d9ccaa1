//! `textDocument/inlineCompletion` and its fallback `textDocument/completion`: from_proto, one
//! `tasks::complete` call on the blocking pool (`tasks::complete_alternatives` when the user invoked it: up to
//! three suggestions to cycle through), to_proto — wrapped in the policies that make a keystroke
//! stream cheap and safe: per-document supersession (a newer request cancels the older generation at its next
//! token), adaptive debounce, and a version check before answering (a result computed for an older text is
//! never shown).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ropey::Rope;
use serde_json::json;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    Command, CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse,
    CompletionTextEdit, InlineCompletionItem, InlineCompletionList, InlineCompletionParams,
    InlineCompletionResponse, InlineCompletionTriggerKind, InsertTextFormat, Range,
    TextDocumentPositionParams, TextEdit, Uri,
};

use super::commands::COMPLETION_ACCEPTED;
use super::front_door::{Arrival, Stamped};
use super::guard::blocking;
use super::position::{lsp_range, offset};
use super::state::{Engine, State};
use super::warmup::Trigger as WarmTrigger;
use qwen_index::CacheStore;
use qwen_tasks::complete::{debounce_delay, DebounceConfig, Trigger};
use qwen_tasks::measure::{Outcome, PromptTokens, Suggestion as Record};
use qwen_tasks::{
    complete_alternatives, complete_with_stats, completion_prompt, CancelToken, CompletionRequest,
    Flow, GenError, GenOutput, GenRequest, Generator, GeneratorInfo, Layout, Settings, Speed,
    TaskError, Workspace,
};

/// A suggestion in LSP coordinates.
struct Shown {
    range: Range,
    text: String,
    id: String,
}

/// `textDocument/inlineCompletion`.
pub async fn inline(
    state: Arc<State>,
    stamped: Stamped<InlineCompletionParams>,
) -> Result<Option<InlineCompletionResponse>> {
    let params = stamped.params;
    let explicit = params.context.trigger_kind == InlineCompletionTriggerKind::INVOKED;
    let shown = suggest(
        &state,
        &params.text_document_position,
        stamped.arrival,
        explicit,
    )
    .await;
    let items = shown
        .into_iter()
        .map(|s| InlineCompletionItem {
            insert_text: s.text,
            filter_text: None,
            range: Some(s.range),
            command: Some(accept_command(&s.id)),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        })
        .collect();
    Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
        items,
    })))
}

/// `textDocument/completion`: the same suggestions as items, for clients without inline completion.
pub async fn completion(
    state: Arc<State>,
    stamped: Stamped<CompletionParams>,
) -> Result<Option<CompletionResponse>> {
    let params = stamped.params;
    let explicit = params.context.as_ref().is_some_and(|c| {
        c.trigger_kind == tower_lsp_server::ls_types::CompletionTriggerKind::INVOKED
    });
    let position = params.text_document_position;
    let shown = suggest(&state, &position, stamped.arrival, explicit).await;
    let items: Vec<CompletionItem> = shown
        .into_iter()
        .map(|s| {
            let first_line = s.text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            CompletionItem {
                label: first_line.trim().chars().take(80).collect(),
                kind: Some(CompletionItemKind::TEXT),
                detail: Some("qwen-ls".to_owned()),
                filter_text: None,
                insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
                text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(s.range, s.text))),
                command: Some(accept_command(&s.id)),
                preselect: Some(true),
                ..CompletionItem::default()
            }
        })
        .collect();
    Ok(Some(CompletionResponse::Array(items)))
}

fn accept_command(id: &str) -> Command {
    Command::new(
        "qwen-ls: suggestion accepted".to_owned(),
        COMPLETION_ACCEPTED.to_owned(),
        Some(vec![json!({ "id": id })]),
    )
}

/// Whether `offset` is at the start of a line (only indentation before it).
fn at_line_start(text: &Rope, offset: usize) -> bool {
    let line = text.byte_to_line(offset);
    let start = text.line_to_byte(line);
    text.byte_slice(start..offset)
        .chars()
        .all(|c| c == ' ' || c == '\t')
}

/// Measures the time a request spends inside the generator (queue, prefill, decode), whatever the task
/// returns — the server's own time is the rest.
struct Timed<'a> {
    inner: &'a dyn Generator,
    spent: Mutex<Duration>,
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
    ) -> std::result::Result<GenOutput, GenError> {
        let started = Instant::now();
        let result = self.inner.generate(request, cancel, on_text);
        *self.spent.lock().unwrap_or_else(|e| e.into_inner()) += started.elapsed();
        result
    }

    fn generate_within(
        &self,
        offers: &[GenRequest],
        prefill_limit: Duration,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> std::result::Result<(usize, GenOutput), GenError> {
        let started = Instant::now();
        let result = self
            .inner
            .generate_within(offers, prefill_limit, cancel, on_text);
        *self.spent.lock().unwrap_or_else(|e| e.into_inner()) += started.elapsed();
        result
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

/// Removes the in-flight entry (and cancels the generation, if still running) however the request ends —
/// including when tower-lsp drops the request future on `$/cancelRequest`.
struct InflightGuard<'a> {
    state: &'a State,
    uri: &'a Uri,
    seq: u64,
    cancel: CancelToken,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.state.inflight.end(self.uri, self.seq);
    }
}

async fn suggest(
    state: &Arc<State>,
    position: &TextDocumentPositionParams,
    arrival: Arrival,
    explicit: bool,
) -> Vec<Shown> {
    let arrived = Instant::now();
    let uri = &position.text_document.uri;
    let (doc, encoding) = {
        let docs = state.documents.lock();
        let Some(doc) = docs.get(uri) else {
            return Vec::new();
        };
        (doc, docs.encoding)
    };
    let settings = state.settings();
    if !settings.completion.enabled {
        return Vec::new();
    }
    let document = state
        .documents
        .lock()
        .relative_path_of_uri(uri)
        .unwrap_or_else(|| uri.as_str().to_owned());
    let mut record = Record {
        id: String::new(),
        document,
        language: doc.language_id.clone(),
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
    if arrival.version != Some(doc.version) {
        // Edited between the request and now: its position is for a text that is gone.
        record.outcome = Outcome::Stale;
        record.id = format!("r{}", state.inflight.next_seq());
        record.latency = arrived.elapsed();
        state.log.suggestion(&record);
        return Vec::new();
    }
    let gaps = state.keystroke(uri, arrived);
    let Some((engine, workspace)) = state.ready() else {
        record.latency = arrived.elapsed();
        state.log.suggestion(&record);
        return Vec::new();
    };
    let at = offset(&doc.text, position.position, encoding);
    let (seq, cancel, mut superseded) = state.inflight.begin(uri);
    let _inflight = InflightGuard {
        state,
        uri,
        seq,
        cancel: cancel.clone(),
    };
    // An edit applied between the version check above and `begin` cancelled nothing (there was nothing to
    // cancel yet): check again. The front door applies an edit before it cancels, so from here on an edit
    // is either seen by this check or cancels this request.
    if state.documents.lock().version(uri) != Some(doc.version) {
        record.outcome = Outcome::Stale;
        record.id = format!("r{seq}");
        record.latency = arrived.elapsed();
        state.log.suggestion(&record);
        return Vec::new();
    }
    let trigger = if explicit {
        Trigger::Explicit
    } else if at_line_start(&doc.text, at) {
        Trigger::NewLine
    } else {
        Trigger::Typing
    };
    let config = DebounceConfig {
        base: settings.completion.debounce(),
        ..DebounceConfig::default()
    };
    let delay = debounce_delay(&config, trigger, &gaps, &state.latencies());
    if !delay.is_zero() {
        let waiting = Instant::now();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = &mut superseded => {}
        }
        record.debounce = waiting.elapsed();
    }
    let (result, engine_time) = if cancel.is_cancelled() {
        (Err(TaskError::Cancelled), Duration::ZERO)
    } else {
        let request = CompletionRequest {
            path: doc
                .file
                .clone()
                .unwrap_or_else(|| uri.path().as_str().into()),
            text: Some(Arc::from(doc.text.to_string())),
            offset: at,
            version: Some(doc.version),
            language_id: doc.language_id.clone(),
        };
        let generation_cancel = cancel.clone();
        blocking(move || {
            let timed = Timed {
                inner: engine.generator.as_ref(),
                spent: Mutex::new(Duration::ZERO),
            };
            let (ws, generator, caches) = (&*workspace, &timed, &engine.caches);
            let (completion, cancel) = (&settings.completion, &generation_cancel);
            let result = if explicit {
                complete_alternatives(ws, generator, caches, completion, &request, cancel)
            } else {
                complete_with_stats(ws, generator, caches, completion, &request, cancel, None)
                    .map(|(c, stats)| (c.into_iter().collect::<Vec<_>>(), stats))
            };
            if settings.debug.dump_prompt {
                let (name, layout) = match &result {
                    Ok((completions, stats)) => (
                        completions
                            .first()
                            .map_or_else(|| format!("r{seq}"), |c| c.id.clone()),
                        stats.layout.unwrap_or(Layout::Full),
                    ),
                    Err(_) => (format!("r{seq}"), Layout::Full),
                };
                dump_prompt(&workspace, &engine, &settings, &request, layout, &name);
            }
            let spent = *timed.spent.lock().unwrap_or_else(|e| e.into_inner());
            (result, spent)
        })
        .await
    };
    record.engine = engine_time;
    let stale = state.documents.lock().version(uri) != Some(doc.version);
    let (outcome, shown) = match result {
        Err(TaskError::Cancelled) => (Outcome::Cancelled, Vec::new()),
        Err(e) => {
            tracing::warn!("completion failed: {e}");
            state.generation_failed(&e).await;
            (Outcome::Failed, Vec::new())
        }
        Ok((completions, stats)) => {
            state.generation_succeeded().await;
            let completion = completions.first();
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
            if !engine_time.is_zero() {
                state.record_latency(engine_time);
            }
            match completion {
                _ if stale => (Outcome::Stale, Vec::new()),
                None => (Outcome::Empty, Vec::new()),
                Some(c) => {
                    // The log records the first (best) suggestion; accepting another one is logged by its id.
                    record.id = c.id.clone();
                    record.chars = c.text.chars().count();
                    // Alternatives are named after the request's first suggestion (`<id>~<n>`), so the log
                    // counts accepting one for the request.
                    let first_id = c.id.clone();
                    let shown = completions
                        .into_iter()
                        .enumerate()
                        .map(|(n, c)| Shown {
                            range: lsp_range(&doc.text, c.range, encoding),
                            text: c.text,
                            id: if n == 0 {
                                c.id
                            } else {
                                format!("{first_id}~{n}")
                            },
                        })
                        .collect();
                    (Outcome::Shown, shown)
                }
            }
        }
    };
    if matches!(outcome, Outcome::Shown | Outcome::Empty) {
        // The user is here: if the full prompt did not run, prefill it while the engine is idle.
        state
            .documents
            .warmer()
            .want(uri, Some(at), WarmTrigger::Request);
    }
    record.outcome = outcome;
    record.latency = arrived.elapsed();
    if record.id.is_empty() {
        record.id = format!("r{seq}");
    }
    state.log.suggestion(&record);
    shown
}

/// Where `debug.dumpPrompt` writes: next to `logFile`, else in the cache directory.
pub fn prompt_dir(settings: &Settings) -> Option<PathBuf> {
    match settings.log_file.as_deref().and_then(Path::parent) {
        Some(dir) => Some(dir.join("qwen-ls-prompts")),
        None => CacheStore::default_dir().map(|d| d.join("prompts")),
    }
}

/// `debug.dumpPrompt`: writes the exact prompt of a completion request (rebuilt: packing is deterministic).
fn dump_prompt(
    workspace: &Workspace,
    engine: &Engine,
    settings: &Settings,
    request: &CompletionRequest,
    layout: Layout,
    name: &str,
) {
    let Some(dir) = prompt_dir(settings) else {
        return;
    };
    let written = completion_prompt(
        workspace,
        engine.generator.as_ref(),
        &engine.caches,
        &settings.completion,
        request,
        layout,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_starts() {
        let rope = Rope::from_str("fn a() {\n    \n    x\n");
        assert!(at_line_start(&rope, 0));
        assert!(at_line_start(&rope, 13));
        assert!(!at_line_start(&rope, 19));
        assert!(!at_line_start(&rope, 3));
    }
}
