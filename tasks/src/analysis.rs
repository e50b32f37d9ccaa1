//! The façade's one object (rust-analyzer's `Analysis` is the model): a front end builds it from what a
//! request needs — the workspace, the generator, the caches, the settings — and calls one method per task,
//! with one request type each ([`DocumentPosition`] for the position-based ones).

use std::path::PathBuf;
use std::sync::Arc;

use super::edit::{EditAnswer, PatchRequest, RefactorRequest};
use super::fix_loop::{CheckedEdit, LoopError, LoopEvent, LoopOptions, LoopResult};
use super::generator::{Generator, WarmOutput};
use super::{
    alternatives, completion, edit, explain, fix_loop, Caches, Completion, CompletionPrompt,
    Explanation, FunctionAt, Layout, Settings, TaskError, TaskStats, Workspace,
};
use qwen_engine::CancelToken;

/// A position in a document, in the tasks' coordinates (bytes): where the cursor or the hover is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPosition {
    /// The document: absolute, or relative to the workspace root. Files outside the workspace are served
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

/// Everything a task reads, borrowed for one request. Every method is synchronous (the LSP runs it on the
/// blocking pool), takes a [`CancelToken`] when it may run the model, and returns
/// [`TaskError::Cancelled`] for a cancelled request.
#[derive(Clone, Copy)]
pub struct Analysis<'a> {
    workspace: &'a Workspace,
    generator: &'a dyn Generator,
    caches: &'a Caches,
    settings: &'a Settings,
}

impl<'a> Analysis<'a> {
    /// The façade over one workspace, model and configuration.
    pub fn new(
        workspace: &'a Workspace,
        generator: &'a dyn Generator,
        caches: &'a Caches,
        settings: &'a Settings,
    ) -> Self {
        Analysis {
            workspace,
            generator,
            caches,
            settings,
        }
    }

    /// The workspace.
    pub fn workspace(&self) -> &'a Workspace {
        self.workspace
    }

    /// The settings.
    pub fn settings(&self) -> &'a Settings {
        self.settings
    }

    /// The generator.
    pub fn generator(&self) -> &'a dyn Generator {
        self.generator
    }

    /// The same analysis over another generator (one that wraps this one, e.g. to time it).
    pub fn with_generator<'b>(&self, generator: &'b dyn Generator) -> Analysis<'b>
    where
        'a: 'b,
    {
        Analysis { generator, ..*self }
    }

    /// The inline completion at `at` (`None`: nothing worth showing).
    pub fn complete(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Result<Option<Completion>, TaskError> {
        self.complete_with_stats(at, cancel)
            .map(|(completion, _)| completion)
    }

    /// [`Analysis::complete`] with what it cost (prompt, layout, generation counters).
    pub fn complete_with_stats(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Result<(Option<Completion>, TaskStats), TaskError> {
        let (ws, generator, caches, settings) = self.parts();
        completion::complete_with_stats(ws, generator, caches, settings, at, cancel, None)
    }

    /// Up to [`super::MAX_ALTERNATIVES`] distinct suggestions at `at`, best first (an invoked completion).
    pub fn complete_alternatives(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Result<(Vec<Completion>, TaskStats), TaskError> {
        let (ws, generator, caches, settings) = self.parts();
        alternatives::complete_alternatives(ws, generator, caches, settings, at, cancel)
    }

    /// The exact prompt a completion at `at` runs with `layout` (`debug.dumpPrompt`, tests).
    pub fn completion_prompt(
        &self,
        at: &DocumentPosition,
        layout: Layout,
    ) -> Result<CompletionPrompt, TaskError> {
        let (ws, generator, caches, settings) = self.parts();
        completion::completion_prompt(ws, generator, caches, settings, at, layout)
    }

    /// Prefills the part of the next completion prompt at `at` before the cursor, while nothing else runs.
    pub fn warm_up(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Result<WarmOutput, TaskError> {
        let (ws, generator, caches, settings) = self.parts();
        completion::warm_up(ws, generator, caches, settings, at, cancel)
    }

    /// The function or method an explanation at `at` would explain, without running the model.
    pub fn explain_target(&self, at: &DocumentPosition) -> Result<Option<FunctionAt>, TaskError> {
        explain::explain_target(self.workspace, at)
    }

    /// The explanation of the function or method at `at` (`None` at once when `at` is not in one).
    pub fn explain(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Result<Option<Explanation>, TaskError> {
        let hover = &self.settings.hover;
        explain::explain(
            self.workspace,
            self.generator,
            self.caches,
            hover,
            at,
            cancel,
        )
    }

    /// [`Analysis::explain`] only when `at` is on the function's declaration line (the line with its name):
    /// hovers follow the mouse, and explaining every body the pointer crosses would keep the model busy for
    /// nothing. Elsewhere `None` at once, without the model.
    pub fn explain_declaration(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Result<Option<Explanation>, TaskError> {
        let Some(function) = self.explain_target(at)? else {
            return Ok(None);
        };
        let text = match &at.text {
            Some(text) => text.clone(),
            None => self.workspace.task_document(&at.path, None)?.1,
        };
        let mut end = at.offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let line = text[..end].matches('\n').count();
        if line != function.lines.0 as usize {
            return Ok(None);
        }
        self.explain(at, cancel)
    }

    /// An instruction applied to a range of one document, as a checked patch.
    pub fn refactor(
        &self,
        request: &RefactorRequest,
        cancel: &CancelToken,
    ) -> Result<EditAnswer, TaskError> {
        let actions = &self.settings.code_actions;
        edit::refactor(self.workspace, self.generator, actions, request, cancel)
    }

    /// An instruction applied anywhere in the workspace, as a checked patch.
    pub fn patch(
        &self,
        request: &PatchRequest,
        cancel: &CancelToken,
    ) -> Result<EditAnswer, TaskError> {
        let actions = &self.settings.code_actions;
        edit::patch(self.workspace, self.generator, actions, request, cancel)
    }

    /// The check loop: `edit` applied to a scratch copy and checked with the project's commands, round
    /// after round until green (see [`fix_loop`]).
    pub fn edit_until_green(
        &self,
        edit: CheckedEdit<'_>,
        options: &LoopOptions,
        progress: &dyn Fn(LoopEvent<'_>),
        cancel: &CancelToken,
    ) -> Result<LoopResult, LoopError> {
        let actions = &self.settings.code_actions;
        fix_loop::edit_until_green(
            self.workspace,
            self.generator,
            actions,
            edit,
            options,
            progress,
            cancel,
        )
    }

    fn parts(
        &self,
    ) -> (
        &'a Workspace,
        &'a dyn Generator,
        &'a Caches,
        &'a super::CompletionSettings,
    ) {
        (
            self.workspace,
            self.generator,
            self.caches,
            &self.settings.completion,
        )
    }
}
