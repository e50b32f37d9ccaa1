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
use super::guard::{blocking, cancellable, CancelOnDrop};
use super::position::byte_range;
use super::progress::WorkDone;
use super::state::{Engine, State};
use qwen_store::Progress;
use qwen_tasks::{
    add_documentation_instruction, fix_diagnostics_instruction, Analysis, CancelToken, CheckedEdit,
    DiagnosticInfo, LoopOptions, RefactorRequest, Settings, Verdict, Workspace,
};

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
    let params = stamped.params;
    let uri = params.text_document.uri;
    if !state.settings().code_actions.enabled {
        return Ok(Some(Vec::new()));
    }
    let Some(version) = state.documents.lock().version(&uri) else {
        return Ok(Some(Vec::new()));
    };
    if stamped.arrival.version != Some(version) {
        return Ok(Some(Vec::new()));
    }
    let only = params.context.only.as_ref();
    let data = |action: &str, diagnostics: Vec<Diagnostic>| {
        serde_json::to_value(ActionData {
            action: action.to_owned(),
            uri: uri.clone(),
            version,
            range: params.range,
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
    let diagnostics = params.context.diagnostics;
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
                Some(vec![json!({ "uri": uri, "range": params.range })]),
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
    Ok(Some(
        actions
            .into_iter()
            .map(CodeActionOrCommand::CodeAction)
            .collect(),
    ))
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
    let (doc, encoding) = {
        let docs = state.documents.lock();
        (docs.get(&data.uri), docs.encoding)
    };
    let doc = doc.ok_or_else(|| Dropped("qwen-ls: the document is no longer open".to_owned()))?;
    if doc.version != data.version {
        return Err(Dropped(
            "qwen-ls: the document changed since the action was listed; nothing was applied"
                .to_owned(),
        ));
    }
    let (engine, workspace) = state
        .ready()
        .ok_or_else(|| Dropped("qwen-ls is not ready yet (see qwen-ls.status)".to_owned()))?;
    let instruction = match data.action.as_str() {
        "fix" => {
            let infos: Vec<DiagnosticInfo> = data.diagnostics.iter().map(diagnostic_info).collect();
            fix_diagnostics_instruction(&infos)
        }
        _ => add_documentation_instruction(),
    };
    // Fixes cover every diagnostic's lines as well as the requested range.
    let mut range = data.range;
    for d in &data.diagnostics {
        range.start = range.start.min(d.range.start);
        range.end = range.end.max(d.range.end);
    }
    let request = RefactorRequest {
        path: doc
            .file
            .clone()
            .unwrap_or_else(|| doc.uri.path().as_str().into()),
        text: Some(Arc::from(doc.text.to_string())),
        range: byte_range(&doc.text, range, encoding),
        instruction,
    };
    let settings = state.settings();
    if data.action == "fix" {
        if let Some(options) = LoopOptions::for_fix(&settings.code_actions) {
            return fix_until_green(state, engine, workspace, settings, request, options).await;
        }
    }
    let answer = cancellable(move |cancel| {
        Analysis::new(
            &workspace,
            engine.generator.as_ref(),
            &engine.caches,
            &settings,
        )
        .refactor(&request, cancel)
    })
    .await;
    let answer = answer.map_err(|e| Dropped(format!("qwen-ls: {e}")))?;
    let proposal = answer.result.map_err(|failure| {
        tracing::warn!(
            "answer was not a valid edit ({failure}):\n{}",
            answer.answer
        );
        Dropped(format!(
            "qwen-ls: the model's answer could not be turned into an edit: {failure}"
        ))
    })?;
    if proposal.files().is_empty() {
        return Err(Dropped("qwen-ls: the model proposed no change".to_owned()));
    }
    workspace_edit(state, proposal.files())
}

/// "Fix diagnostics in range" with checks: the check loop on the blocking pool, its rounds reported as
/// cancellable `$/progress`; only a green result becomes an edit.
async fn fix_until_green(
    state: &Arc<State>,
    engine: Engine,
    workspace: Arc<Workspace>,
    settings: Arc<Settings>,
    request: RefactorRequest,
    options: LoopOptions,
) -> std::result::Result<tower_lsp_server::ls_types::WorkspaceEdit, Dropped> {
    let cancel = CancelToken::new();
    let progress =
        WorkDone::begin_cancellable(state, FIX_DIAGNOSTICS, "starting", cancel.clone()).await;
    let reporter = progress.reporter();
    // Dropping this request (`$/cancelRequest`) cancels the loop too.
    let on_drop = CancelOnDrop::new(cancel.clone());
    let result = blocking(move || {
        Analysis::new(
            &workspace,
            engine.generator.as_ref(),
            &engine.caches,
            &settings,
        )
        .edit_until_green(
            CheckedEdit::Refactor(&request),
            &options,
            &|event| reporter.note(&event.to_string()),
            &cancel,
        )
    })
    .await;
    on_drop.disarm();
    progress.end().await;
    let result = result.map_err(|e| Dropped(format!("qwen-ls: {e}")))?;
    for round in &result.rounds {
        tracing::info!("{}", round.summary());
    }
    match (result.verdict, &result.proposal) {
        (Verdict::Green, Some(proposal)) if !proposal.files().is_empty() => {
            workspace_edit(state, proposal.files())
        }
        (Verdict::Green, _) => Err(Dropped(
            "qwen-ls: the checks pass and the model proposed no change".to_owned(),
        )),
        _ => Err(Dropped(format!(
            "qwen-ls: {}; nothing was applied",
            result.summary()
        ))),
    }
}
