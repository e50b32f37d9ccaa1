//! `textDocument/hover`: an explanation of the function or method whose declaration line is under the
//! cursor (`tasks::explain`), `null` at once anywhere else, while not ready, or when disabled.
//!
//! Hovers follow the mouse in VS Code: explaining whatever function body the pointer crosses would keep the
//! model busy for nothing, so a hover answers on the declaration line (the line with the name); the
//! `qwen-ls.explain` command answers anywhere inside the function.

use std::sync::Arc;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    Hover, HoverContents, HoverParams, MarkupContent, MarkupKind, Position, Uri,
};

use super::front_door::{Arrival, Stamped};
use super::position::offset;
use super::state::State;

/// `textDocument/hover`.
pub async fn hover(state: Arc<State>, stamped: Stamped<HoverParams>) -> Result<Option<Hover>> {
    let position = stamped.params.text_document_position_params;
    if !state.settings().hover.enabled {
        return Ok(None);
    }
    let (uri, at) = (&position.text_document.uri, position.position);
    let explained = explain_at(&state, uri, at, stamped.arrival, Where::DeclarationLine).await;
    let markdown = |value| MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    };
    Ok(explained.map(|value| Hover {
        contents: HoverContents::Markup(markdown(value)),
        range: None,
    }))
}

/// Which positions of a function get an explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Only the function's first line (hovers).
    DeclarationLine,
    /// Anywhere inside it (the explain command).
    Anywhere,
}

/// The explanation at a position; `None` when there is nothing to explain, the server is not ready, the
/// document changed meanwhile, or the model failed (logged).
pub async fn explain_at(
    state: &Arc<State>,
    uri: &Uri,
    position: Position,
    arrival: Arrival,
    place: Where,
) -> Option<String> {
    let (doc, encoding) = state.documents.lock().with_encoding(uri)?;
    if arrival.version.is_some_and(|v| v != doc.version) {
        return None;
    }
    let at = doc.position(offset(&doc.text, position, encoding));
    let result = state
        .run(move |analysis, cancel| match place {
            Where::DeclarationLine => analysis.explain_declaration(&at, cancel),
            Where::Anywhere => analysis.explain(&at, cancel),
        })
        .await?;
    if state.documents.lock().version(uri) != Some(doc.version) {
        return None;
    }
    let explanation = state.settle("explain", result, Option::is_some).await??;
    Some(explanation.markdown).filter(|m| !m.trim().is_empty())
}
