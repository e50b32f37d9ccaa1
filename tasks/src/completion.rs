//! `complete`: one inline completion, from a cursor to the edit the editor shows as ghost text.
//!
//! forward cache (typing through a shown suggestion: no generation) → FIM prompts ([`super::fim`]) → stream
//! through a [`CompletionSession`] (its stop rules end the generation mid-stream) → post-processing →
//! remembered in the forward cache. Cancellation is checked before packing, before generating and, inside
//! the generator, every token; a cancelled request answers [`TaskError::Cancelled`], never a stale edit.
//!
//! **Latency.** On a backend that keeps sessions (the local engine), with a latency target
//! (`completion.latencyMs`), two prompts are offered, each in its own editing region and KV session: the
//! full one (`completion.budget`) and a fast one sized so that its cold prefill fits the target at the
//! measured prefill speed. The generator runs the full one when its cache makes it fast enough (while typing
//! in a region, or after a warm-up), else whichever it can prefill sooner.
//! [`warm_up`] prefills the fast prompt, then the full one, at the cursor in the background, so that the next
//! answer is quick and the budget grows back as the cache warms.

use crate::DocumentPosition;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qwen_engine::CancelToken;

use super::complete::{CompletionSession, Mode, Stop};
use super::fim::{self, CompletionPrompt, FimInput, Layout, Pin};
use super::generator::GenError;
use super::generator::{
    FinishReason, Flow, GenPrompt, GenRequest, GenStats, Generator, Sampling, SessionKey,
    WarmFinish, WarmOutput,
};
use super::{Caches, CompletionSettings, TaskError, Workspace};
use qwen_syntax::language_for_path;

/// The fast prompt's budget at least (below it the model sees too little to be useful), and while the
/// prefill speed is not measured yet.
pub const MIN_FAST_BUDGET: usize = 256;
/// Tokens a single-line suggestion is expected to take, for the decode estimate; a multi-line one 3×.
const EXPECTED_LINE_TOKENS: usize = 16;
/// Decode time assumed until a generation has measured the speed.
const UNMEASURED_DECODE: Duration = Duration::from_millis(500);

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
    /// The budget of the prompt run (the full `completion.budget`, or the fast prompt's), 0 when none ran.
    pub prompt_budget: usize,
    /// Which prompt ran (`None` when none did).
    pub layout: Option<Layout>,
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

fn resolve(workspace: &Workspace, request: &DocumentPosition) -> Result<Resolved, TaskError> {
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

/// The KV session of a layout's prompts for a document.
fn session_of(display_path: &str, layout: Layout) -> SessionKey {
    match layout {
        Layout::Full => SessionKey::document(display_path),
        Layout::Fast => SessionKey(format!("doc-fast:{display_path}")),
    }
}

fn build_prompt(
    workspace: &Workspace,
    caches: &Caches,
    settings: &CompletionSettings,
    resolved: &Resolved,
    layout: Layout,
    budget: usize,
    accept: std::ops::RangeInclusive<usize>,
) -> CompletionPrompt {
    let snapshot = workspace.snapshot();
    fim::build(
        workspace,
        &FimInput {
            snapshot: &snapshot,
            relative: resolved.relative.as_deref(),
            display_path: &resolved.display_path,
            text: &resolved.text,
            offset: resolved.offset,
            suffix_tokens: settings.suffix_tokens,
        },
        &Pin {
            regions: caches.regions(),
            layout,
            budget,
            accept,
        },
    )
}

fn full_prompt(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    resolved: &Resolved,
) -> CompletionPrompt {
    let budget = prompt_budget(generator, settings);
    build_prompt(
        workspace,
        caches,
        settings,
        resolved,
        Layout::Full,
        budget,
        budget..=budget,
    )
}

/// How long the prefill of a prompt may take so that the answer meets `completion.latencyMs` at the measured
/// speed, and the fast prompt's budget for a new region; `None` without a target or without sessions.
fn fast_plan(
    generator: &dyn Generator,
    settings: &CompletionSettings,
    mode: Mode,
) -> Option<(Duration, usize)> {
    let target = settings.latency_target()?;
    if !generator.keeps_sessions() {
        return None;
    }
    let speed = generator.speed();
    let expected_tokens = match mode {
        Mode::SingleLine => EXPECTED_LINE_TOKENS,
        Mode::MultiLine => 3 * EXPECTED_LINE_TOKENS,
    }
    .min(settings.max_tokens);
    let decode = speed
        .and_then(|s| s.decode_tok_s)
        .map_or(UNMEASURED_DECODE, |rate| {
            Duration::from_secs_f64(expected_tokens as f64 / rate)
        });
    let prefill_limit = target.saturating_sub(decode);
    let fast_budget = speed
        .map_or(0, |s| {
            (s.prefill_tok_s * prefill_limit.as_secs_f64()) as usize
        })
        .max(MIN_FAST_BUDGET);
    Some((prefill_limit, fast_budget))
}

fn fast_prompt(
    workspace: &Workspace,
    caches: &Caches,
    settings: &CompletionSettings,
    resolved: &Resolved,
    budget: usize,
    full_budget: usize,
) -> CompletionPrompt {
    build_prompt(
        workspace,
        caches,
        settings,
        resolved,
        Layout::Fast,
        budget,
        MIN_FAST_BUDGET.min(budget)..=full_budget.saturating_sub(1),
    )
}

/// The prompts to offer, best first, and how long the prefill of the chosen one may take (see the module
/// documentation).
fn offers(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    resolved: &Resolved,
    mode: Mode,
) -> (Vec<(Layout, CompletionPrompt)>, Duration) {
    let full = full_prompt(workspace, generator, caches, settings, resolved);
    match fast_plan(generator, settings, mode) {
        Some((prefill_limit, fast_budget)) if fast_budget < full.budget => {
            let fast = fast_prompt(
                workspace,
                caches,
                settings,
                resolved,
                fast_budget,
                full.budget,
            );
            (
                vec![(Layout::Full, full), (Layout::Fast, fast)],
                prefill_limit,
            )
        }
        Some((prefill_limit, _)) => (vec![(Layout::Full, full)], prefill_limit),
        None => (vec![(Layout::Full, full)], Duration::MAX),
    }
}

/// The exact prompt text [`crate::Analysis::complete`] sends in `layout` for `request` (for `qwen-ls.debug.dumpPrompt`): the
/// document's remembered region in `caches` when the request is still in it.
pub fn completion_prompt(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    request: &DocumentPosition,
    layout: Layout,
) -> Result<CompletionPrompt, TaskError> {
    let resolved = resolve(workspace, request)?;
    let full = prompt_budget(generator, settings);
    Ok(match layout {
        Layout::Full => full_prompt(workspace, generator, caches, settings, &resolved),
        Layout::Fast => fast_prompt(
            workspace,
            caches,
            settings,
            &resolved,
            MIN_FAST_BUDGET.min(full.saturating_sub(1)),
            full,
        ),
    })
}

/// Prefills, at low priority, the completion prompts at `request`'s cursor, so that the next request there
/// starts warm: the fast prompt first (with a latency target: a few seconds of idle time make the next answer
/// quick), then the full one. A request at the same place reuses all of it; after a keystroke, everything
/// before the cursor (the suffix window after it is re-run anyway).
/// Waits until the generator is idle and gives way to any request ([`Generator::warm`]); does nothing on a
/// backend without sessions. The counts are summed over both prompts; the finish is the last one's.
pub fn warm_up(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    request: &DocumentPosition,
    cancel: &CancelToken,
) -> Result<WarmOutput, TaskError> {
    if !generator.keeps_sessions() {
        return Ok(WarmOutput::nothing(WarmFinish::Unsupported));
    }
    let resolved = resolve(workspace, request)?;
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let _span = tracing::debug_span!("warm_up", path = %resolved.display_path).entered();
    let full = full_prompt(workspace, generator, caches, settings, &resolved);
    let mut prompts = Vec::new();
    if let Some((_, fast_budget)) = fast_plan(generator, settings, Mode::SingleLine) {
        if fast_budget < full.budget {
            let fast = fast_prompt(
                workspace,
                caches,
                settings,
                &resolved,
                fast_budget,
                full.budget,
            );
            prompts.push((Layout::Fast, fast));
        }
    }
    prompts.push((Layout::Full, full));
    let mut total = WarmOutput::nothing(WarmFinish::AlreadyWarm);
    for (layout, prompt) in prompts {
        let output = generator.warm(
            &GenRequest {
                prompt: GenPrompt::Raw(prompt.prompt),
                max_tokens: 0,
                sampling: Sampling::greedy(),
                stop: Vec::new(),
                session: Some(session_of(&resolved.display_path, layout)),
                // Only the completion model's cache is prefilled here, never a draft model's.
                speculation: settings.speculative,
            },
            cancel,
        )?;
        total.prompt_tokens += output.prompt_tokens;
        total.reused_tokens += output.reused_tokens;
        total.prefilled_tokens += output.prefilled_tokens;
        total.queue_secs += output.queue_secs;
        total.prefill_secs += output.prefill_secs;
        total.finish = output.finish;
        if !matches!(output.finish, WarmFinish::Done | WarmFinish::AlreadyWarm) {
            break;
        }
    }
    Ok(total)
}

/// The inline completion at the cursor (`None`: nothing useful to show), with the call's timings and counters also when nothing is shown (a generation whose output
/// post-processing rejected still ran a prompt: the suggestion log records its tokens). With `alternative`,
/// one more suggestion drawn with that sampling: an alternative neither reads nor fills the forward cache
/// (which holds the suggestion on screen).
pub fn complete_with_stats(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    request: &DocumentPosition,
    cancel: &CancelToken,
    alternative: Option<Sampling>,
) -> Result<(Option<Completion>, TaskStats), TaskError> {
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
        let stats = TaskStats {
            total_secs: started.elapsed().as_secs_f64(),
            ..TaskStats::default()
        };
        let completion = Completion {
            range: resolved.offset..end,
            text: cached.text,
            id: caches.next_completion_id(),
            version: request.version,
            source: CompletionSource::ForwardCache,
            stop: None,
            stats: stats.clone(),
        };
        return Ok((Some(completion), stats));
    }
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
    let grammar = language_for_path(Path::new(&resolved.display_path));
    let mut session = CompletionSession::new(text, resolved.offset, &language_id, grammar);
    let (offers, prefill_limit) = offers(
        workspace,
        generator,
        caches,
        settings,
        &resolved,
        session.context().mode,
    );
    let prompt_secs = started.elapsed().as_secs_f64();
    let prompt_cpu_secs = super::measure::thread_cpu_seconds() - cpu_started;
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let requests: Vec<GenRequest> = offers
        .iter()
        .map(|(layout, prompt)| GenRequest {
            prompt: GenPrompt::Raw(prompt.prompt.clone()),
            max_tokens: settings.max_tokens,
            sampling: alternative
                .unwrap_or_else(|| Sampling::with_temperature(settings.temperature)),
            stop: Vec::new(),
            session: Some(session_of(&resolved.display_path, *layout)),
            speculation: settings.speculative,
        })
        .collect();
    let (chosen, generation) =
        generator.generate_within(&requests, prefill_limit, cancel, &mut |delta| match session
            .push(delta)
        {
            Some(_) => Flow::Stop,
            None => Flow::Continue,
        })?;
    let (layout, prompt) = offers.into_iter().nth(chosen).ok_or_else(|| {
        TaskError::Generate(GenError::Backend(format!(
            "the generator ran offer {chosen}, which was never made"
        )))
    })?;
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
    let stats = TaskStats {
        prompt_secs,
        prompt_cpu_secs,
        total_secs: started.elapsed().as_secs_f64(),
        prompt_tokens: prompt.tokens,
        context_tokens: prompt.context.as_ref().map_or(0, |c| c.used_tokens),
        prompt_budget: prompt.budget,
        layout: Some(layout),
        generation: Some(generation.stats),
    };
    let Ok(edit) = outcome.result else {
        return Ok((None, stats));
    };
    if edit.range.start == resolved.offset && alternative.is_none() {
        caches
            .forward()
            .insert(prefix, suffix, &edit.text, edit.range.len());
    }
    let completion = Completion {
        range: edit.range,
        text: edit.text,
        id: caches.next_completion_id(),
        version: request.version,
        source: CompletionSource::Generated,
        stop: outcome.stop,
        stats: stats.clone(),
    };
    Ok((Some(completion), stats))
}
