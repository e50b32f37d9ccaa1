//! `explain`: a concise Markdown explanation of the function or method at a position (the hover).
//!
//! tree-sitter finds the function (`None` at once elsewhere); the prompt holds its whole text plus the
//! definitions it calls and the functions calling it, packed within `hover.budget`; answers are cached by
//! the function's content (path, name and text), so hovering again costs nothing.

use crate::DocumentPosition;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use qwen_engine::prompt::CHAT_TEMPLATE_TOKENS;
use qwen_engine::{CancelToken, Message, Role};
use xxhash_rust::xxh3::xxh3_64;

use super::complete::strip_think;
use super::completion::TaskStats;
use super::functions::{function_at, related_code, FunctionAt, Related};
use super::generator::{
    FinishReason, Flow, GenPrompt, GenRequest, Generator, Sampling, SessionKey,
};
use super::{Caches, HoverSettings, TaskError, Workspace};
use qwen_syntax::fence_language;

/// The system message of explanations.
pub const EXPLAIN_SYSTEM: &str =
    "You are qwen-ls, a coding assistant inside a code editor. You explain code \
to a programmer who is reading it: accurately, concisely, in Markdown.";

/// An explanation of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The explanation.
    pub markdown: String,
    /// The function explained (bytes and lines of the request's text).
    pub function: FunctionAt,
    /// Whether it came from the cache.
    pub cached: bool,
    /// The request's document version.
    pub version: Option<i32>,
    /// Timings and counters.
    pub stats: TaskStats,
}

/// The function at the position, if any: the cheap check a hover makes before anything else.
pub fn explain_target(
    workspace: &Workspace,
    request: &DocumentPosition,
) -> Result<Option<FunctionAt>, TaskError> {
    let (_, _, text) = resolve(workspace, request)?;
    Ok(function_at(&request.path, &text, request.offset))
}

fn resolve(
    workspace: &Workspace,
    request: &DocumentPosition,
) -> Result<(Option<String>, String, Arc<str>), TaskError> {
    let (relative, text) = workspace.task_document(&request.path, request.text.as_ref())?;
    let display = relative
        .clone()
        .unwrap_or_else(|| request.path.display().to_string());
    Ok((relative, display, text))
}

/// Builds the chat messages: instructions, related code (as much as fits), then the function itself.
fn messages(
    workspace: &Workspace,
    display: &str,
    function: &FunctionAt,
    body: &str,
    related: &[Related],
    budget: usize,
) -> Result<(Vec<Message>, usize), TaskError> {
    let language = fence_language(Path::new(display));
    let head = format!(
        "Explain what the {kind} `{name}` in `{display}` does: its purpose, its inputs and result, side \
         effects and anything surprising. Start with one sentence, then at most five short bullet points. \
         Do not repeat the code.\n\n",
        kind = function.kind_word(),
        name = function.name,
    );
    let target = format!(
        "The {kind} (`{display}`, lines {}-{}):\n```{language}\n{body}\n```\n",
        function.lines.0 + 1,
        function.lines.1 + 1,
        kind = function.kind_word(),
    );
    let fixed = workspace.count_tokens(EXPLAIN_SYSTEM)
        + workspace.count_tokens(&head)
        + workspace.count_tokens(&target)
        + CHAT_TEMPLATE_TOKENS;
    if fixed > budget {
        return Err(TaskError::Budget {
            needed: fixed,
            budget,
        });
    }
    let mut remaining = budget - fixed;
    let mut context = String::new();
    for item in related {
        let piece = format!(
            "`{}` lines {}-{} ({}):\n```{}\n{}```\n\n",
            item.path,
            item.lines.0 + 1,
            item.lines.1 + 1,
            item.why,
            fence_language(Path::new(&*item.path)),
            item.text
        );
        let tokens = workspace.count_tokens(&piece);
        if tokens > remaining {
            continue;
        }
        remaining -= tokens;
        context.push_str(&piece);
    }
    let mut user = head;
    if !context.is_empty() {
        user.push_str("Related code from the repository:\n\n");
        user.push_str(&context);
    }
    user.push_str(target.trim_end());
    Ok((
        vec![
            Message::new(Role::System, EXPLAIN_SYSTEM),
            Message::new(Role::User, user),
        ],
        budget - remaining,
    ))
}

/// Explains the function or method at the position; `Ok(None)` at once when the position is not in one.
pub fn explain(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &HoverSettings,
    request: &DocumentPosition,
    cancel: &CancelToken,
) -> Result<Option<Explanation>, TaskError> {
    let started = Instant::now();
    let _span = tracing::info_span!("explain", path = %request.path.display()).entered();
    let (relative, display, text) = resolve(workspace, request)?;
    let Some(function) = function_at(&request.path, &text, request.offset) else {
        return Ok(None);
    };
    let body = text.get(function.range.clone()).unwrap_or("");
    let key = xxh3_64(format!("{display}\0{}\0{body}", function.name).as_bytes());
    if let Some(markdown) = caches.explanation(key) {
        return Ok(Some(Explanation {
            markdown,
            function,
            cached: true,
            version: request.version,
            stats: TaskStats {
                total_secs: started.elapsed().as_secs_f64(),
                ..TaskStats::default()
            },
        }));
    }
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let snapshot = workspace.snapshot();
    let related = related_code(
        &snapshot,
        &request.path,
        relative.as_deref(),
        &text,
        &function,
    );
    let budget = match generator.info().context_window {
        Some(window) => settings
            .budget
            .min(window.saturating_sub(settings.max_tokens)),
        None => settings.budget,
    };
    let (messages, prompt_tokens) =
        messages(workspace, &display, &function, body, &related, budget)?;
    let prompt_secs = started.elapsed().as_secs_f64();
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let generation = generator.generate(
        &GenRequest {
            prompt: GenPrompt::Chat(messages),
            max_tokens: settings.max_tokens,
            sampling: Sampling::greedy(),
            stop: Vec::new(),
            session: Some(SessionKey::chat()),
            speculation: settings.speculative,
        },
        cancel,
        &mut |_| Flow::Continue,
    )?;
    if generation.finish == FinishReason::Cancelled {
        return Err(TaskError::Cancelled);
    }
    let markdown = strip_think(&generation.text).trim().to_string();
    if markdown.is_empty() {
        return Ok(None);
    }
    caches.remember_explanation(key, &markdown);
    Ok(Some(Explanation {
        markdown,
        function,
        cached: false,
        version: request.version,
        stats: TaskStats {
            prompt_secs,
            total_secs: started.elapsed().as_secs_f64(),
            prompt_tokens,
            context_tokens: prompt_tokens,
            generation: Some(generation.stats),
            ..TaskStats::default()
        },
    }))
}
