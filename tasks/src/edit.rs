//! `refactor` and `patch`: an instruction in, a checked multi-file edit out.
//!
//! Both build a chat prompt ([`super::edit_prompt`]: edit-format instructions, packed context with the
//! instruction as the query, the code to edit), generate the answer, and turn it into a patch with
//! [`super::patch::prepare`] — against the editor's unsaved text for open documents, against the disk
//! otherwise, refusing files that changed since the model saw them. The raw answer always comes back, so a
//! front end can save or show it when it cannot be turned into a patch.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use qwen_engine::{CancelToken, Message, SpeculativeMode};

use super::checker::TreeSitterChecker;
use super::completion::TaskStats;
use super::edit_prompt::{self, Anchor, EditPromptInput, Shown};
use super::functions::function_at;
use super::generator::{
    FinishReason, Flow, GenOutput, GenPrompt, GenRequest, GenStats, Generator, Sampling, SessionKey,
};
use super::patch::{
    prepare, protected, ApplyPolicy, PatchError, PatchExit, PatchOptions, PatchOutcome,
    PreparedPatch, SeenFiles,
};
use super::{CodeActionSettings, TaskError, Workspace};

/// Edit one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefactorRequest {
    /// The document: absolute, or relative to the workspace root.
    pub path: PathBuf,
    /// The document text the range refers to; `None` = the workspace's current text.
    pub text: Option<Arc<str>>,
    /// Bytes to edit. Empty: the function or method at `range.start` (the line, if none). Widened to whole
    /// lines.
    pub range: Range<usize>,
    /// What to do ("extract a helper", [`add_documentation_instruction`], …).
    pub instruction: String,
}

/// Edit anything in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatchRequest {
    /// What to do.
    pub instruction: String,
    /// Files to show the model whole, first (absolute, or relative to the root); the rest is retrieved.
    pub files: Vec<PathBuf>,
    /// Prompt budget in tokens; `None` = `codeActions.budget`.
    pub budget: Option<usize>,
}

/// One file of a proposal, for front ends that apply edits themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// Workspace-relative path.
    pub path: String,
    /// Absolute path.
    pub abs: PathBuf,
    /// The text the edit was computed against (`None`: a new file).
    pub before: Option<String>,
    /// The new text.
    pub after: String,
    /// The editor's version of the document when it was open (edits for another version are dropped).
    pub version: Option<i32>,
    /// What the file configures, when it is editor, CI, build-tool or shell configuration that the user must
    /// confirm before it is written ([`crate::patch::protected::CONFIRM`]).
    pub confirm: Option<&'static str>,
}

/// A valid patch.
#[derive(Debug)]
pub struct EditProposal {
    patch: PreparedPatch,
    files: Vec<FileEdit>,
}

impl EditProposal {
    /// A proposal for `patch`, with each open document's version.
    pub(crate) fn new(workspace: &Workspace, patch: PreparedPatch) -> EditProposal {
        let files = patch
            .files()
            .into_iter()
            .map(|f| FileEdit {
                version: workspace.document_version(&f.path),
                confirm: protected::needs_confirmation(&f.path),
                path: f.path,
                abs: f.abs,
                before: f.before,
                after: f.after,
            })
            .collect();
        EditProposal { patch, files }
    }

    /// The unified diff, changed files, warnings and counts.
    pub fn outcome(&self) -> &PatchOutcome {
        self.patch.outcome()
    }

    /// Every changed file with its text before and after.
    pub fn files(&self) -> &[FileEdit] {
        &self.files
    }

    /// [`EditProposal::files`], owned (no copy of the texts).
    pub fn into_files(self) -> Vec<FileEdit> {
        self.files
    }

    /// Writes the files atomically, only if each still holds what the patch was computed against; otherwise
    /// nothing is written (the CLI's `--apply`; the LSP applies [`EditProposal::files`] through the editor).
    /// Configuration edits and introduced syntax errors are refused ([`PreparedPatch::apply`]).
    pub fn apply(&self) -> Result<(), PatchError> {
        self.patch.apply()
    }

    /// [`EditProposal::apply`], writing what `policy` allows.
    pub fn apply_with(&self, policy: ApplyPolicy) -> Result<(), PatchError> {
        self.patch.apply_with(policy)
    }
}

/// Why an answer was not turned into a patch.
#[derive(Debug, thiserror::Error)]
pub enum EditFailure {
    /// The answer is malformed, does not match the files, names unsafe paths, or files changed meanwhile.
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// A refactor edited other files than the one it was asked to change.
    #[error("the answer edits {} but only `{target}` may change", .paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "))]
    OutsideTarget {
        /// The file the refactor is for.
        target: String,
        /// The other files the answer edits.
        paths: Vec<String>,
    },
}

impl EditFailure {
    /// The `qwen-ls patch` exit code for this failure.
    pub fn exit(&self) -> PatchExit {
        match self {
            EditFailure::Patch(e) => e.exit(),
            EditFailure::OutsideTarget { .. } => PatchExit::InvalidAnswer,
        }
    }
}

/// The model's answer and what came of it.
#[derive(Debug)]
pub struct EditAnswer {
    /// The raw answer (save it when `result` is an error: it is what a person needs to see).
    pub answer: String,
    /// Why generation ended ([`FinishReason::MaxTokens`] often explains an unterminated block).
    pub finish: FinishReason,
    /// The patch, or why there is none.
    pub result: Result<EditProposal, EditFailure>,
    /// Timings and counters.
    pub stats: TaskStats,
}

/// A diagnostic passed to [`fix_diagnostics_instruction`], as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticInfo {
    /// First and last line (0-based, inclusive).
    pub lines: (u32, u32),
    /// The message.
    pub message: String,
    /// `error`, `warning`, … if known.
    pub severity: Option<String>,
    /// The tool that reported it (`rustc`, `pyright`, …) if known.
    pub source: Option<String>,
}

/// The instruction of the "Add documentation" code action.
pub fn add_documentation_instruction() -> String {
    "Add documentation comments to the code in the lines to change, in the language's usual style (`///` \
     doc comments in Rust, docstrings in Python, JSDoc in JavaScript and TypeScript, `//` comments before \
     declarations in Go). Describe the purpose, the parameters and the result briefly. Do not change any code."
        .to_string()
}

/// The instruction of the "Fix diagnostics in range" code action.
pub fn fix_diagnostics_instruction(diagnostics: &[DiagnosticInfo]) -> String {
    let mut out = String::from(
        "Fix these problems reported by the editor, changing as little as possible:\n",
    );
    for d in diagnostics {
        let lines = if d.lines.0 == d.lines.1 {
            format!("line {}", d.lines.0 + 1)
        } else {
            format!("lines {}-{}", d.lines.0 + 1, d.lines.1 + 1)
        };
        let label: Vec<&str> = [d.severity.as_deref(), d.source.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let label = if label.is_empty() {
            String::new()
        } else {
            format!(" ({})", label.join(", "))
        };
        out.push_str(&format!("- {lines}{label}: {}\n", d.message.trim()));
    }
    out
}

fn budget_for(generator: &dyn Generator, budget: usize, max_tokens: usize) -> usize {
    match generator.info().context_window {
        Some(window) => budget.min(window.saturating_sub(max_tokens)),
        None => budget,
    }
}

fn line_of(text: &str, offset: usize) -> u32 {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
}

/// The workspace path of a file an edit may change: one the gate lets into a prompt, inside the workspace, and
/// in its first folder.
fn editable_path(workspace: &Workspace, path: &Path) -> Result<String, TaskError> {
    workspace.admit(path)?;
    let relative = workspace
        .relative_path(path)
        .ok_or_else(|| TaskError::OutsideWorkspace(path.to_path_buf()))?;
    if workspace.mounts().locate(workspace.root(), &relative).0 != workspace.root() {
        return Err(TaskError::OtherFolder(path.to_path_buf()));
    }
    Ok(relative)
}

/// An edit prompt ready to run, with what reading its answer needs. Built by [`refactor_job`] or
/// [`patch_job`]; run once by [`refactor`]/[`patch`], or round after round by the check loop (`fix_loop/`).
pub(crate) struct EditJob {
    pub prompt: edit_prompt::EditPrompt,
    /// The one file in play (the refactor's file, or the only file given to `patch`).
    pub default_path: Option<String>,
    /// A refactor's file: the only one the answer may change.
    pub only_file: Option<String>,
    pub instruction: String,
    pub max_tokens: usize,
    /// Speculative decoding of the answer (`codeActions.speculative`).
    pub speculation: SpeculativeMode,
    pub started: Instant,
}

/// The prompt of a refactor: the range (or the function at it) of one file.
pub(crate) fn refactor_job(
    workspace: &Workspace,
    generator: &dyn Generator,
    settings: &CodeActionSettings,
    request: &RefactorRequest,
) -> Result<EditJob, TaskError> {
    let started = Instant::now();
    if request.instruction.trim().is_empty() {
        return Err(TaskError::EmptyInstruction);
    }
    let relative = editable_path(workspace, &request.path)?;
    let text = match &request.text {
        Some(text) => text.clone(),
        None => workspace.read_document(&relative)?,
    };
    let start = request.range.start.min(text.len());
    let end = request.range.end.clamp(start, text.len());
    let lines = if start == end {
        match function_at(&request.path, &text, start) {
            Some(function) => function.lines,
            None => (line_of(&text, start), line_of(&text, start)),
        }
    } else {
        // A selection ending at the start of a line does not include that line.
        let last = if end > start && text.as_bytes().get(end - 1) == Some(&b'\n') {
            end - 1
        } else {
            end
        };
        (line_of(&text, start), line_of(&text, last))
    };
    let focus = format!(
        "Change only lines {}-{} of `{relative}` unless the instruction cannot be done otherwise; edit no \
         other file.\n",
        lines.0 + 1,
        lines.1 + 1
    );
    let snapshot = workspace.snapshot();
    let budget = budget_for(generator, settings.budget, settings.max_tokens);
    let prompt = edit_prompt::build(
        workspace,
        EditPromptInput {
            snapshot: &snapshot,
            files: vec![Shown {
                path: relative.clone(),
                text: text.clone(),
                lines: Some(lines),
            }],
            focus,
            instruction: request.instruction.clone(),
            anchor: Some(Anchor {
                path: relative.clone(),
                line: lines.0,
                selection: Some(lines),
            }),
            budget,
        },
    )?;
    Ok(EditJob {
        prompt,
        default_path: Some(relative.clone()),
        only_file: Some(relative),
        instruction: request.instruction.clone(),
        max_tokens: settings.max_tokens,
        speculation: settings.speculative,
        started,
    })
}

/// The prompt of a workspace-wide patch: named files first, the rest retrieved.
pub(crate) fn patch_job(
    workspace: &Workspace,
    generator: &dyn Generator,
    settings: &CodeActionSettings,
    request: &PatchRequest,
) -> Result<EditJob, TaskError> {
    let started = Instant::now();
    if request.instruction.trim().is_empty() {
        return Err(TaskError::EmptyInstruction);
    }
    let mut files = Vec::new();
    for path in &request.files {
        let relative = editable_path(workspace, path)?;
        let text = workspace.read_document(&relative)?;
        files.push(Shown {
            path: relative,
            text,
            lines: None,
        });
    }
    let anchor = files.first().map(|f| Anchor {
        path: f.path.clone(),
        ..Anchor::default()
    });
    let default_path = match files.as_slice() {
        [only] => Some(only.path.clone()),
        _ => None,
    };
    let snapshot = workspace.snapshot();
    let budget = budget_for(
        generator,
        request.budget.unwrap_or(settings.budget),
        settings.max_tokens,
    );
    let prompt = edit_prompt::build(
        workspace,
        EditPromptInput {
            snapshot: &snapshot,
            files,
            focus: String::new(),
            instruction: request.instruction.clone(),
            anchor,
            budget,
        },
    )?;
    Ok(EditJob {
        prompt,
        default_path,
        only_file: None,
        instruction: request.instruction.clone(),
        max_tokens: settings.max_tokens,
        speculation: settings.speculative,
        started,
    })
}

/// Edits the range (or the function at it) of one file; edits to other files are refused.
pub fn refactor(
    workspace: &Workspace,
    generator: &dyn Generator,
    settings: &CodeActionSettings,
    request: &RefactorRequest,
    cancel: &CancelToken,
) -> Result<EditAnswer, TaskError> {
    let _span = tracing::info_span!("refactor", path = %request.path.display()).entered();
    let job = refactor_job(workspace, generator, settings, request)?;
    run(workspace, generator, &job, cancel)
}

/// Applies an instruction across the workspace (named files first, the rest retrieved).
pub fn patch(
    workspace: &Workspace,
    generator: &dyn Generator,
    settings: &CodeActionSettings,
    request: &PatchRequest,
    cancel: &CancelToken,
) -> Result<EditAnswer, TaskError> {
    let _span = tracing::info_span!("patch", files = request.files.len()).entered();
    let job = patch_job(workspace, generator, settings, request)?;
    run(workspace, generator, &job, cancel)
}

/// Runs a chat for `job`'s answer (in the chat session: a later round reuses the cached prefix).
pub(crate) fn generate_answer(
    generator: &dyn Generator,
    job: &EditJob,
    messages: Vec<Message>,
    sampling: Sampling,
    cancel: &CancelToken,
) -> Result<GenOutput, TaskError> {
    if cancel.is_cancelled() {
        return Err(TaskError::Cancelled);
    }
    let generation = generator.generate(
        &GenRequest {
            prompt: GenPrompt::Chat(messages),
            max_tokens: job.max_tokens,
            sampling,
            stop: Vec::new(),
            session: Some(SessionKey::chat()),
            speculation: job.speculation,
        },
        cancel,
        &mut |_| Flow::Continue,
    )?;
    if generation.finish == FinishReason::Cancelled {
        return Err(TaskError::Cancelled);
    }
    Ok(generation)
}

/// Generates the answer and prepares the patch.
fn run(
    workspace: &Workspace,
    generator: &dyn Generator,
    job: &EditJob,
    cancel: &CancelToken,
) -> Result<EditAnswer, TaskError> {
    let prompt_secs = job.started.elapsed().as_secs_f64();
    let generation = generate_answer(
        generator,
        job,
        job.prompt.messages.clone(),
        Sampling::greedy(),
        cancel,
    )?;
    let result = proposal(workspace, &generation.text, job);
    Ok(EditAnswer {
        answer: generation.text,
        finish: generation.finish,
        result,
        stats: stats(
            prompt_secs,
            job.started,
            job.prompt.tokens,
            job.prompt.context_tokens,
            generation.stats,
        ),
    })
}

fn stats(
    prompt_secs: f64,
    started: Instant,
    prompt_tokens: usize,
    context_tokens: usize,
    generation: GenStats,
) -> TaskStats {
    TaskStats {
        prompt_secs,
        total_secs: started.elapsed().as_secs_f64(),
        prompt_tokens,
        context_tokens,
        generation: Some(generation),
        ..TaskStats::default()
    }
}

/// Reads `answer` as a patch of the tree under `root` (the workspace, or the check loop's scratch copy), as
/// the job allows: `seen` is what the model saw, `overlay` the editor's unsaved text.
pub(crate) fn read_answer(
    root: &Path,
    answer: &str,
    seen: &SeenFiles,
    overlay: Option<&SeenFiles>,
    job: &EditJob,
) -> Result<PreparedPatch, EditFailure> {
    let options = PatchOptions {
        checker: &TreeSitterChecker,
        seen: Some(seen),
        overlay,
        default_path: job.default_path.as_deref(),
        instruction: &job.instruction,
    };
    let patch = prepare(root, answer, &options)?;
    if let Some(target) = &job.only_file {
        let others: Vec<String> = patch
            .files()
            .into_iter()
            .filter(|f| &f.path != target)
            .map(|f| f.path)
            .collect();
        if !others.is_empty() {
            return Err(EditFailure::OutsideTarget {
                target: target.clone(),
                paths: others,
            });
        }
    }
    Ok(patch)
}

/// The editor's text of every open document, as an overlay over the disk.
pub(crate) fn open_documents_overlay(workspace: &Workspace) -> SeenFiles {
    let snapshot = workspace.snapshot();
    let mut overlay = SeenFiles::default();
    for path in workspace.open_documents() {
        if let Some(file) = snapshot.file(&path) {
            overlay.record(path, file.text.as_bytes().to_vec());
        }
    }
    overlay
}

/// `prepare` against the editor's text of open documents (a fresh snapshot: typing during generation makes
/// the patch stale, never misapplied) and the disk for the rest.
fn proposal(
    workspace: &Workspace,
    answer: &str,
    job: &EditJob,
) -> Result<EditProposal, EditFailure> {
    let overlay = open_documents_overlay(workspace);
    let overlay = (!overlay.is_empty()).then_some(&overlay);
    let patch = read_answer(workspace.root(), answer, &job.prompt.seen, overlay, job)?;
    Ok(EditProposal::new(workspace, patch))
}
