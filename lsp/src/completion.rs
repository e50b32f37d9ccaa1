//! `textDocument/inlineCompletion` and its fallback `textDocument/completion`: convert in, one
//! [`qwen_tasks::InlineCompletions::suggest`] on the blocking pool (the keystroke policy — supersession, debounce, stale
//! checks, the suggestion record — lives in tasks), convert out.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    Command, CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse,
    CompletionTextEdit, InlineCompletionItem, InlineCompletionList, InlineCompletionParams,
    InlineCompletionResponse, InlineCompletionTriggerKind, InsertTextFormat, Range,
    TextDocumentPositionParams, TextEdit,
};

use super::commands::COMPLETION_ACCEPTED;
use super::front_door::{Arrival, Stamped};
use super::guard::cancellable;
use super::position::{lsp_range, offset};
use super::state::State;
use super::warmup::Trigger as WarmTrigger;
use qwen_tasks::InlineRequest;

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

/// One request through the tasks' keystroke policy, in LSP coordinates.
async fn suggest(
    state: &Arc<State>,
    position: &TextDocumentPositionParams,
    arrival: Arrival,
    explicit: bool,
) -> Vec<Shown> {
    let arrived = Instant::now();
    let uri = position.text_document.uri.clone();
    let Some((doc, encoding, log_name)) = state.documents.lock().with_log_name(&uri) else {
        return Vec::new();
    };
    let at = offset(&doc.text, position.position, encoding);
    let request = InlineRequest {
        document: uri.as_str().to_owned(),
        log_name,
        at: doc.position(at),
        arrival_version: arrival.version,
        explicit,
        arrived,
    };
    let serving = state.clone();
    let answer = cancellable(move |cancel| {
        let (settings, ready) = (serving.settings(), serving.ready());
        let analysis =
            (ready.as_ref()).map(|(engine, workspace)| engine.analysis(workspace, &settings));
        let current_version = || serving.documents.lock().version(&uri);
        serving.inline.suggest(
            &settings,
            analysis,
            &serving.log,
            &request,
            &current_version,
            cancel,
        )
    })
    .await;
    state
        .generation_done(answer.failure.as_ref(), answer.generated)
        .await;
    if answer.warm_here {
        // The user is here: if the full prompt did not run, prefill it while the engine is idle.
        let uri = &position.text_document.uri;
        state
            .documents
            .warmer()
            .want(uri, Some(at), WarmTrigger::Request);
    }
    let range = |c: &qwen_tasks::Completion| lsp_range(&doc.text, c.range.clone(), encoding);
    answer
        .completions
        .into_iter()
        .map(|c| Shown {
            range: range(&c),
            text: c.text,
            id: c.id,
        })
        .collect()
}
