//! The façade both front ends (LSP and CLI) call: plain types in and out (paths, byte offsets, strings), no
//! LSP or clap vocabulary. This is the only layer that builds prompts and calls a model.
//!
//! ```text
//! Analysis            analysis.rs     the façade object: workspace + generator + caches + settings, one method
//!                                     per task; DocumentPosition is the position-based tasks' one request type
//! Settings            settings.rs     every configuration key, with the documented defaults
//! Workspace           workspace.rs    root + index (one writer) + token counter and memo + open documents
//! Generator           qwen-generator  the model boundary (crate): LocalGenerator (engine), OpenAiGenerator;
//!                                     the binary's load.rs builds one from settings
//! Caches              caches.rs       forward cache, explanations, completion ids (per model/configuration)
//! .complete(…)        completion.rs   inline completion (FIM prompt and editing regions in fim/, rules in
//!                                     complete/); .warm_up(…) prefills the next prompt in the background
//! .complete_alternatives(…) alternatives.rs  up to 3 distinct suggestions for an invoked completion
//! InlineCompletions   inline.rs       the keystroke policy around .complete: one generation in flight per
//!                                     document, adaptive debounce, stale checks, the suggestion record
//! .resolve_action(…) action.rs      "Add documentation" / "Fix diagnostics": instruction, range, check loop
//! .explain(…)         explain.rs      hover explanation of the function at a position (functions.rs)
//! .refactor(…), .patch(…)  edit.rs    instruction → checked patch (prompt in edit_prompt.rs, qwen-patch)
//! .edit_until_green(…)     fix_loop/  the same, applied to a scratch copy and checked with the project's
//!                                     commands, round after round until green
//! SuggestionLog       measure.rs      local log of completion outcomes (LSP writes, `qwen-ls stats` reads)
//! ```
//!
//! Every task is synchronous (the LSP runs it with `spawn_blocking`), takes a `CancelToken`, and returns
//! `Result<_, TaskError>` with [`TaskError::Cancelled`] for a cancelled request.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod action;
mod alternatives;
mod analysis;
mod caches;
mod checker;
pub mod complete;
mod completion;
mod edit;
mod edit_prompt;
mod error;
mod explain;
mod fim;
pub mod fix_loop;
mod functions;
mod inline;
pub mod measure;
pub mod settings;
mod workspace;

pub use action::{ActionTarget, NoEdit, RangeAction};
pub use alternatives::MAX_ALTERNATIVES;
pub use analysis::{Analysis, DocumentPosition};
pub use caches::Caches;
pub use checker::TreeSitterChecker;
pub use completion::{Completion, CompletionSource, TaskStats, MIN_FAST_BUDGET};
pub use edit::{
    add_documentation_instruction, fix_diagnostics_instruction, DiagnosticInfo, EditAnswer,
    EditFailure, EditProposal, FileEdit, PatchRequest, RefactorRequest,
};
pub use edit_prompt::EDIT_SYSTEM;
pub use error::TaskError;
pub use explain::{Explanation, EXPLAIN_SYSTEM};
pub use fim::{CompletionPrompt, Layout, MOVE_DOWN_LINES, PREFIX_SHARE, SUFFIX_SHARE};
pub use fix_loop::{
    CheckedEdit, LoopError, LoopEvent, LoopOptions, LoopResult, Round, RoundOutcome, Verdict,
};
pub use functions::{function_at, function_named, functions_in, FunctionAt};
pub use generator::{
    FinishReason, Flow, GenError, GenOutput, GenPrompt, GenRequest, GenStats, Generator,
    GeneratorInfo, LocalGenerator, LocalOptions, Sampling, SessionKey, Speed, WarmFinish,
    WarmOutput,
};
pub use inline::{InlineAnswer, InlineCompletions, InlineRequest};
pub use settings::{
    Backend, CodeActionSettings, CompletionSettings, DTypeSetting, DebugSettings, HoverSettings,
    OpenAiSettings, Settings, SpeculativeMode, ThreadSettings, DEFAULT_DRAFT_MODEL,
};
pub use workspace::{Workspace, WorkspaceOptions};

/// The model boundary and the patch engine, crates of their own, under the names tasks always used.
pub use qwen_generator as generator;
pub use qwen_patch as patch;

/// Re-exported so front ends need not depend on the engine for cancellation.
pub use qwen_engine::CancelToken;
/// Re-exported: the changes a front end feeds [`Workspace::apply_change`].
pub use qwen_index::{Change, ChangeError, IndexSnapshot, LoadReport, TextEdit};
