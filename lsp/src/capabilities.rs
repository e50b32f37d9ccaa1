//! What the server announces at `initialize` (PROTOCOL.md) and what it reads of the client's announcement.

use tower_lsp_server::ls_types::{
    ClientCapabilities, CodeActionKind, CodeActionOptions, CodeActionProviderCapability,
    CompletionOptions, ExecuteCommandOptions, HoverProviderCapability, InitializeResult, OneOf,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind,
    TextDocumentSyncOptions, WorkspaceFoldersServerCapabilities, WorkspaceServerCapabilities,
};

use super::commands;
use super::position::Encoding;
use super::state::ClientSupport;
use qwen_syntax::lsp_language_ids;

/// The answer to `initialize`: the capabilities and who we are.
pub fn initialize_result(encoding: Encoding, client_has_inline: bool) -> InitializeResult {
    InitializeResult {
        capabilities: server(encoding, client_has_inline),
        server_info: Some(ServerInfo {
            name: "qwen-ls".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }),
        offset_encoding: None,
    }
}

/// The server's capabilities for a client that negotiated `encoding` (and has inline completion or not).
pub fn server(encoding: Encoding, client_has_inline: bool) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                ..TextDocumentSyncOptions::default()
            },
        )),
        // Always announced (PROTOCOL.md): clients that do not announce it may still ask.
        inline_completion_provider: Some(OneOf::Left(true)),
        // The fallback only for clients without inline completion: a client with both would generate
        // twice per keystroke, each request cancelling the other.
        completion_provider: (!client_has_inline).then(CompletionOptions::default),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![
                CodeActionKind::QUICKFIX,
                CodeActionKind::REFACTOR,
                CodeActionKind::REFACTOR_REWRITE,
            ]),
            resolve_provider: Some(true),
            ..CodeActionOptions::default()
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: commands::ALL.iter().map(|c| (*c).to_owned()).collect(),
            ..ExecuteCommandOptions::default()
        }),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        // The languages with a grammar (PROTOCOL.md): clients register for exactly these.
        experimental: Some(serde_json::json!({
            "qwenLs": { "languageIds": lsp_language_ids() }
        })),
        ..ServerCapabilities::default()
    }
}

impl ClientSupport {
    /// What the client announced that changes what the server sends.
    pub fn announced(client: &ClientCapabilities) -> ClientSupport {
        let workspace = client.workspace.as_ref();
        let edits = workspace.and_then(|w| w.workspace_edit.as_ref());
        let window = client.window.as_ref();
        ClientSupport {
            work_done_progress: window.and_then(|w| w.work_done_progress).unwrap_or(false),
            apply_edit: workspace.and_then(|w| w.apply_edit).unwrap_or(false),
            document_changes: edits.and_then(|e| e.document_changes).unwrap_or(false),
            change_annotations: edits.is_some_and(|e| e.change_annotation_support.is_some()),
            watch_files: workspace
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|w| w.dynamic_registration)
                .unwrap_or(false),
        }
    }
}
