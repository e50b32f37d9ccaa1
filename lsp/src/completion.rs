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
    TextDocumentPositionParams, TextEdit, Uri,
};

use super::commands::COMPLETION_ACCEPTED;
use super::front_door::{Arrival, Stamped};
use super::guard::cancellable;
use super::position::{lsp_range, offset};
use super::state::State;
use super::warmup::Trigger as WarmTrigger;
use qwen_tasks::{Completion, InlineAnswer, InlineRequest};

/// A suggestion in LSP coordinates.
struct Shown {
    range: Range,
    text: String,
    id: String,
}

impl Shown {
    fn inline_item(self) -> InlineCompletionItem {
        InlineCompletionItem {
            command: Some(accept_command(&self.id)),
            insert_text: self.text,
            filter_text: None,
            range: Some(self.range),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        }
    }

    fn completion_item(self) -> CompletionItem {
        let first_line = self
            .text
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        CompletionItem {
            label: first_line.trim().chars().take(80).collect(),
            kind: Some(CompletionItemKind::TEXT),
            detail: Some("qwen-ls".to_owned()),
            filter_text: None,
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
            command: Some(accept_command(&self.id)),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(
                self.range, self.text,
            ))),
            preselect: Some(true),
            ..CompletionItem::default()
        }
    }
}

/// `textDocument/inlineCompletion`.
pub async fn inline(
    state: Arc<State>,
    stamped: Stamped<InlineCompletionParams>,
) -> Result<Option<InlineCompletionResponse>> {
    let params = stamped.params;
    let explicit = params.context.trigger_kind == InlineCompletionTriggerKind::INVOKED;
    let position = &params.text_document_position;
    let shown = suggest(&state, position, stamped.arrival, explicit).await;
    let items = shown.into_iter().map(Shown::inline_item).collect();
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
    let invoked = tower_lsp_server::ls_types::CompletionTriggerKind::INVOKED;
    let explicit = (params.context.as_ref()).is_some_and(|c| c.trigger_kind == invoked);
    let position = &params.text_document_position;
    let shown = suggest(&state, position, stamped.arrival, explicit).await;
    let items = shown.into_iter().map(Shown::completion_item).collect();
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
    let uri = &position.text_document.uri;
    let Some((doc, encoding, log_name)) = state.documents.lock().with_log_name(uri) else {
        return Vec::new();
    };
    let at = offset(&doc.text, position.position, encoding);
    state.documents.warmer().request_arrived(uri, at);
    let request = InlineRequest {
        document: uri.as_str().to_owned(),
        log_name,
        at: doc.position(at),
        arrival_version: arrival.version,
        explicit,
        arrived,
    };
    let answer = serve(state, uri.clone(), request).await;
    state
        .generation_done(answer.failure.as_ref(), answer.generated)
        .await;
    if answer.warm_here {
        // The user is here: if the full prompt did not run, prefill it while the engine is idle.
        state
            .documents
            .warmer()
            .want(uri, Some(at), WarmTrigger::Request);
    }
    let shown = |c: Completion| Shown {
        range: lsp_range(&doc.text, c.range, encoding),
        text: c.text,
        id: c.id,
    };
    answer.completions.into_iter().map(shown).collect()
}

/// [`qwen_tasks::InlineCompletions::suggest`] on the blocking pool, cancelled with the request.
async fn serve(state: &Arc<State>, uri: Uri, request: InlineRequest) -> InlineAnswer {
    let state = state.clone();
    cancellable(move |cancel| {
        let (settings, ready) = (state.settings(), state.ready());
        let analysis = (ready.as_ref()).map(|(engine, ws)| engine.analysis(ws, &settings));
        let current_version = || state.documents.lock().version(&uri);
        let log = &state.log;
        (state.inline).suggest(&settings, analysis, log, &request, &current_version, cancel)
    })
    .await
}
