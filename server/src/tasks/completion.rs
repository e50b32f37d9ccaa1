//! `complete`: one inline completion, from a cursor to the edit the editor shows as ghost text.
//!
//! forward cache (typing through a shown suggestion: no generation) → FIM prompt ([`super::fim`]) → stream
//! through a [`CompletionSession`] (its stop rules end the generation mid-stream) → post-processing →
//! remembered in the forward cache. Cancellation is checked before packing, before generating and, inside
//! the generator, every token; a cancelled request answers [`TaskError::Cancelled`], never a stale edit.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use qwen_engine::CancelToken;

use super::complete::{CompletionSession, Stop};
use super::fim::{self, CompletionPrompt, FimInput};
use super::generator::{
    FinishReason, Flow, GenPrompt, GenRequest, GenStats, Generator, Sampling, SessionKey,
};
use super::{Caches, CompletionSettings, TaskError, Workspace};
use crate::syntax::language_for_path;

/// Where the cursor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRequest {
    /// The document: absolute, or relative to the workspace root. Files outside the workspace are completed
    /// without repository context.
    pub path: PathBuf,
    /// The document text the offset refers to; `None` = the workspace's current text (open document first,
    /// then disk).
    pub text: Option<Arc<str>>,
    /// Cursor, in bytes (moved back onto a char boundary if needed).
    pub offset: usize,
    /// The editor's document version, returned with the answer (results for older versions are dropped by
    /// the front end).
    pub version: Option<i32>,
    /// The editor's `languageId` (empty: from the file extension).
    pub language_id: String,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionSource {
    /// A new generation.
    Generated,
    /// The rest of a suggestion the user is typing through (forward cache).
    ForwardCache,
}

/// Timings and counters of one task call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskStats {
    /// Seconds spent building the prompt (packing context, cutting windows).
    pub prompt_secs: f64,
    /// CPU seconds the calling thread spent up to the end of prompt building (0 where not measured): unlike
    /// `prompt_secs`, not inflated by other processes competing for the cores.
    pub prompt_cpu_secs: f64,
    /// Seconds for the whole call.
    pub total_secs: f64,
    /// Tokens of the prompt as budgeted (built-in Qwen tokenizer).
    pub prompt_tokens: usize,
    /// Tokens of packed repository context in it.
    pub context_tokens: usize,
    /// The generation's counters (`None` when nothing was generated).
    pub generation: Option<GenStats>,
}

/// A completion to show: replace `range` of the request's text with `text`.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Bytes of the request's text replaced (starts at the cursor; empty for a plain insertion).
    pub range: Range<usize>,
    /// The text to insert, in the document's line ending.
    pub text: String,
    /// Identifies this suggestion (for `qwen-ls.completionAccepted`).
    pub id: String,
    /// The request's document version.
    pub version: Option<i32>,
    /// Generated now or taken from the forward cache.
    pub source: CompletionSource,
    /// Which stop rule cut the generation, if one did.
    pub stop: Option<Stop>,
    /// Timings and counters.
    pub stats: TaskStats,
}

/// A request resolved against the workspace.
struct Resolved {
    relative: Option<String>,
    display_path: String,
    text: Arc<str>,
    offset: usize,
}

fn resolve(workspace: &Workspace, request: &CompletionRequest) -> Result<Resolved, TaskError> {
    let (relative, text) = workspace.task_document(&request.path, request.text.as_ref())?;
    let mut offset = request.offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let display_path = relative.clone().unwrap_or_else(|| {
        request.path.file_name().map_or_else(
            || "untitled".to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    Ok(Resolved {
        relative,
        display_path,
        text,
        offset,
    })
}

/// The prompt budget: `completion.budget`, shrunk so prompt and answer fit the model's context window.
fn prompt_budget(generator: &dyn Generator, settings: &CompletionSettings) -> usize {
    match generator.info().context_window {
        Some(window) => settings
            .budget
            .min(window.saturating_sub(settings.max_tokens)),
        None => settings.budget,
    }
}

fn build_prompt(workspace: &Workspace, resolved: &Resolved, budget: usize) -> CompletionPrompt {
    let snapshot = workspace.snapshot();
    fim::build(
        workspace,
        &FimInput {
            snapshot: &snapshot,
            relative: resolved.relative.as_deref(),
            display_path: &resolved.display_path,
            text: &resolved.text,
            offset: resolved.offset,
            budget,
        },
    )
}

/// The exact prompt text [`complete`] would send for `request` (for `qwen-ls.debug.dumpPrompt`).
pub fn completion_prompt(
    workspace: &Workspace,
    generator: &dyn Generator,
    settings: &CompletionSettings,
    request: &CompletionRequest,
) -> Result<CompletionPrompt, TaskError> {
    let resolved = resolve(workspace, request)?;
    Ok(build_prompt(
        workspace,
        &resolved,
        prompt_budget(generator, settings),
    ))
}

/// Computes the inline completion at the cursor; `Ok(None)` when there is nothing useful to show.
pub fn complete(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    request: &CompletionRequest,
    cancel: &CancelToken,
) -> Result<Option<Completion>, TaskError> {
    complete_sampled(
        workspace, generator, caches, settings, request, cancel, None,
    )
}

/// [`complete`], or with `alternative` one more suggestion drawn with that sampling: an alternative neither
/// reads nor fills the forward cache (which holds the suggestion on screen).
pub(super) fn complete_sampled(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    request: &CompletionRequest,
    cancel: &CancelToken,
    alternative: Option<Sampling>,
) -> Result<Option<Completion>, TaskError> {
    let started = Instant::now();
    let cpu_started = super::measure::thread_cpu_seconds();
    let _span = tracing::info_span!("complete", path = %request.path.display()).entered();
    let resolved = resolve(workspace, request)?;
    let text: &str = &resolved.text;
    let (prefix, suffix) = text.split_at(resolved.offset);
    let cached = match alternative {
        None => caches.forward().get(prefix, suffix),
        Some(_) => None,
    };
    if let Some(cached) = cached {
        let end = (resolved.offset + cached.replace_len).min(text.len());
        return Ok(Some(Completion {
            range: resolved.offset..end,
            text: cached.text,
            id: caches.next_completion_id(),
            version: request.version,
            source: CompletionSource::ForwardCache,
            stop: None,
            stats: TaskStats {
                total_secs: started.elapsed().as_secs_f64(),
                ..TaskStats::default()
            },
        }));
    }
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let prompt = build_prompt(workspace, &resolved, prompt_budget(generator, settings));
    let prompt_secs = started.elapsed().as_secs_f64();
    let prompt_cpu_secs = super::measure::thread_cpu_seconds() - cpu_started;
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let language_id = if request.language_id.is_empty() {
        Path::new(&resolved.display_path)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_string()
    } else {
        request.language_id.clone()
    };
    let grammar = language_for_path(Path::new(&resolved.display_path)).map(|spec| spec.grammar());
    let mut session = CompletionSession::new(text, resolved.offset, &language_id, grammar.as_ref());
    let generation = generator.generate(
        &GenRequest {
            prompt: GenPrompt::Raw(prompt.prompt.clone()),
            max_tokens: settings.max_tokens,
            sampling: alternative
                .unwrap_or_else(|| Sampling::with_temperature(settings.temperature)),
            stop: Vec::new(),
            session: Some(SessionKey::document(&resolved.display_path)),
        },
        cancel,
        &mut |delta| match session.push(delta) {
            Some(_) => Flow::Stop,
            None => Flow::Continue,
        },
    )?;
    if generation.finish == FinishReason::Cancelled || cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let outcome = session.finish();
    tracing::debug!(
        finish = ?generation.finish,
        stop = ?outcome.stop,
        result = ?outcome.result.as_ref().err(),
        "completion generated"
    );
    let Ok(edit) = outcome.result else {
        return Ok(None);
    };
    if edit.range.start == resolved.offset && alternative.is_none() {
        caches
            .forward()
            .insert(prefix, suffix, &edit.text, edit.range.len());
    }
    Ok(Some(Completion {
        range: edit.range,
        text: edit.text,
        id: caches.next_completion_id(),
        version: request.version,
        source: CompletionSource::Generated,
        stop: outcome.stop,
        stats: TaskStats {
            prompt_secs,
            prompt_cpu_secs,
            total_secs: started.elapsed().as_secs_f64(),
            prompt_tokens: prompt.tokens,
            context_tokens: prompt.context.as_ref().map_or(0, |c| c.used_tokens),
            generation: Some(generation.stats),
        },
    }))
}
