//! `textDocument/codeAction` lists the four actions at once (no model work); `codeAction/resolve` computes
//! the edit of "Add documentation" and "Fix diagnostics in range" with `tasks::refactor` — or, for a fix when
//! `codeActions.checkCommand` names checks, with `tasks::edit_until_green` (the check loop, with a
//! cancellable `$/progress`). The two instruction actions are commands the client completes with the user's
//! instruction (PROTOCOL.md).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CodeActionResponse, Command,
    Diagnostic, DiagnosticSeverity, MessageType, NumberOrString, Range, Uri,
};

use super::apply::{workspace_edit, Dropped};
use super::commands::{APPLY_INSTRUCTION, REFACTOR};
use super::front_door::Stamped;
use super::guard::{blocking, CancelOnDrop};
use super::position::byte_range;
use super::progress::WorkDone;
use super::state::{State, NOT_READY};
use qwen_store::Progress;
use qwen_tasks::{ActionTarget, CancelToken, DiagnosticInfo, LoopEvent, NoEdit, RangeAction};

/// Title of the documentation action.
pub const ADD_DOCUMENTATION: &str = "qwen-ls: Add documentation";
/// Title of the diagnostics action.
pub const FIX_DIAGNOSTICS: &str = "qwen-ls: Fix diagnostics in range";
/// Title of the refactor command action.
pub const REFACTOR_WITH_INSTRUCTION: &str = "qwen-ls: Refactor with instruction…";
/// Title of the workspace command action.
pub const APPLY_ACROSS_WORKSPACE: &str = "qwen-ls: Apply instruction across workspace…";

/// What a listed action carries to `codeAction/resolve`.
#[derive(Debug, Serialize, Deserialize)]
struct ActionData {
    /// `document` or `fix`.
    action: String,
    uri: Uri,
    /// The document version the range refers to.
    version: i32,
    range: Range,
    #[serde(default)]
    diagnostics: Vec<Diagnostic>,
}

fn wanted(only: Option<&Vec<CodeActionKind>>, kind: &CodeActionKind) -> bool {
    only.is_none_or(|only| {
        only.iter().any(|o| {
            kind.as_str() == o.as_str() || kind.as_str().starts_with(&format!("{}.", o.as_str()))
        })
    })
}

/// `textDocument/codeAction`.
pub async fn code_action(
    state: Arc<State>,
    stamped: Stamped<CodeActionParams>,
) -> Result<Option<CodeActionResponse>> {
    let (params, arrival) = (stamped.params, stamped.arrival.version);
    let (uri, context) = (params.text_document.uri, params.context);
    let version = state.documents.lock().version(&uri);
    // Nothing while disabled, and nothing for a text that changed since the request was sent.
    let enabled = state.settings().code_actions.enabled;
    let Some(version) = version.filter(|v| enabled && arrival == Some(*v)) else {
        return Ok(Some(Vec::new()));
    };
    let (diagnostics, only) = (context.diagnostics, context.only.as_ref());
    let listed = list(&uri, version, params.range, diagnostics, only);
    Ok(Some(
        listed
            .into_iter()
            .map(CodeActionOrCommand::CodeAction)
            .collect(),
    ))
}

/// The actions for `range` of version `version` of `uri`, of the kinds in `only`.
fn list(
    uri: &Uri,
    version: i32,
    range: Range,
    diagnostics: Vec<Diagnostic>,
    only: Option<&Vec<CodeActionKind>>,
) -> Vec<CodeAction> {
    let data = |action: &str, diagnostics: Vec<Diagnostic>| {
        serde_json::to_value(ActionData {
            action: action.to_owned(),
            uri: uri.clone(),
            version,
            range,
            diagnostics,
        })
        .ok()
    };
    let mut actions = Vec::new();
    let rewrite = CodeActionKind::REFACTOR_REWRITE;
    if wanted(only, &rewrite) {
        actions.push(CodeAction {
            title: ADD_DOCUMENTATION.to_owned(),
            kind: Some(rewrite),
            data: data("document", Vec::new()),
            ..CodeAction::default()
        });
    }
    if !diagnostics.is_empty() && wanted(only, &CodeActionKind::QUICKFIX) {
        actions.push(CodeAction {
            title: FIX_DIAGNOSTICS.to_owned(),
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(diagnostics.clone()),
            data: data("fix", diagnostics),
            ..CodeAction::default()
        });
    }
    if wanted(only, &CodeActionKind::REFACTOR) {
        actions.push(CodeAction {
            title: REFACTOR_WITH_INSTRUCTION.to_owned(),
            kind: Some(CodeActionKind::REFACTOR),
            command: Some(Command::new(
                REFACTOR_WITH_INSTRUCTION.to_owned(),
                REFACTOR.to_owned(),
                Some(vec![json!({ "uri": uri, "range": range })]),
            )),
            ..CodeAction::default()
        });
        actions.push(CodeAction {
            title: APPLY_ACROSS_WORKSPACE.to_owned(),
            kind: Some(CodeActionKind::REFACTOR),
            command: Some(Command::new(
                APPLY_ACROSS_WORKSPACE.to_owned(),
                APPLY_INSTRUCTION.to_owned(),
                Some(vec![json!({})]),
            )),
            ..CodeAction::default()
        });
    }
    actions
}

fn severity(s: Option<DiagnosticSeverity>) -> Option<String> {
    Some(
        match s? {
            DiagnosticSeverity::ERROR => "error",
            DiagnosticSeverity::WARNING => "warning",
            DiagnosticSeverity::INFORMATION => "info",
            DiagnosticSeverity::HINT => "hint",
            _ => return None,
        }
        .to_owned(),
    )
}

fn diagnostic_info(d: &Diagnostic) -> DiagnosticInfo {
    let code = d.code.as_ref().map(|c| match c {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    });
    DiagnosticInfo {
        lines: (d.range.start.line, d.range.end.line.max(d.range.start.line)),
        message: match code {
            Some(code) => format!("[{code}] {}", d.message),
            None => d.message.clone(),
        },
        severity: severity(d.severity),
        source: d.source.clone(),
    }
}

/// `codeAction/resolve`: the action with its `edit`, or unchanged (with a message) when no edit can be made.
pub async fn resolve(state: Arc<State>, mut action: CodeAction) -> Result<CodeAction> {
    let Some(data) = action
        .data
        .clone()
        .and_then(|d| serde_json::from_value::<ActionData>(d).ok())
    else {
        return Ok(action);
    };
    match resolve_edit(&state, &data).await {
        Ok(edit) => action.edit = Some(edit),
        Err(Dropped(message)) => {
            tracing::warn!("{}: {message}", action.title);
            state
                .client
                .show_message(MessageType::WARNING, message)
                .await;
        }
    }
    Ok(action)
}

async fn resolve_edit(
    state: &Arc<State>,
    data: &ActionData,
) -> std::result::Result<tower_lsp_server::ls_types::WorkspaceEdit, Dropped> {
    let (action, target) = action_of(state, data)?;
    let (engine, workspace) = (state.ready()).ok_or_else(|| Dropped(NOT_READY.to_owned()))?;
    let settings = state.settings();
    // With checks, a fix runs rounds: they are reported as cancellable `$/progress`.
    let cancel = CancelToken::new();
    let checks = engine
        .analysis(&workspace, &settings)
        .action_runs_checks(&action);
    let progress = match checks {
        true => Some(
            WorkDone::begin_cancellable(state, FIX_DIAGNOSTICS, "starting", cancel.clone()).await,
        ),
        false => None,
    };
    let reporter = progress.as_ref().map(WorkDone::reporter);
    let note = move |event: LoopEvent<'_>| reporter.iter().for_each(|r| r.note(&event.to_string()));
    // Dropping this request (`$/cancelRequest`) cancels the generation or the loop.
    let on_drop = CancelOnDrop::new(cancel.clone());
    let files = blocking(move || {
        let analysis = engine.analysis(&workspace, &settings);
        analysis.resolve_action(&action, target, &note, &cancel)
    });
    let files = files.await;
    on_drop.disarm();
    if let Some(progress) = progress {
        progress.end().await;
    }
    workspace_edit(state, &files.map_err(|NoEdit(message)| dropped(&message))?)
}

fn dropped(message: &str) -> Dropped {
    Dropped(format!("qwen-ls: {message}"))
}

/// The action a listed one stands for, on the document as it is now (if it has not changed since).
fn action_of(
    state: &State,
    data: &ActionData,
) -> std::result::Result<(RangeAction, ActionTarget), Dropped> {
    let (doc, encoding) = (state.documents.lock().with_encoding(&data.uri))
        .ok_or_else(|| dropped("the document is no longer open"))?;
    if doc.version != data.version {
        return Err(dropped(
            "the document changed since the action was listed; nothing was applied",
        ));
    }
    let action = match data.action.as_str() {
        "fix" => {
            RangeAction::FixDiagnostics(data.diagnostics.iter().map(diagnostic_info).collect())
        }
        _ => RangeAction::Document,
    };
    let target = ActionTarget {
        path: doc.path(),
        text: Arc::from(doc.text.to_string()),
        range: byte_range(&doc.text, data.range, encoding),
    };
    Ok((action, target))
}
