//! The `LanguageServer` implementation: lifecycle, configuration, capabilities; and the registration of the
//! stamped request handlers (see `front_door.rs`). Every handler body runs inside [`catch_panics`].

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionParams, CodeActionResponse, CompletionParams, CompletionResponse,
    DidChangeConfigurationParams, DidChangeWorkspaceFoldersParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, ExecuteCommandParams, Hover, HoverParams, InitializeParams,
    InitializeResult, InitializedParams, InlineCompletionParams, InlineCompletionResponse,
    MessageType, WorkDoneProgressCancelParams, WorkspaceFoldersChangeEvent,
};
use tower_lsp_server::LanguageServer;

use super::documents::{file_path, Documents};
use super::front_door::Stamped;
use super::guard::catch_panics;
use super::position::Encoding;
use super::state::{ClientSupport, State};
use super::{
    actions, capabilities, commands, completion, config, hover, logging_hook, progress, startup,
    watch,
};
use qwen_index::{Gate, IndexConfig, Mounts};

/// The server: a handle on the shared [`State`].
pub struct Server {
    pub(crate) state: Arc<State>,
}

/// The workspace folders from `initialize`: every workspace folder, else `rootUri`, else `rootPath`. The first
/// is the root; the others are indexed beside it (`index/mounts.rs`).
#[allow(deprecated)] // rootUri/rootPath are still what older clients send.
fn workspace_folders(params: &InitializeParams) -> Vec<PathBuf> {
    let folders: Vec<PathBuf> = params
        .workspace_folders
        .iter()
        .flatten()
        .filter_map(|f| file_path(&f.uri))
        .filter(|p| p.is_dir())
        .collect();
    if !folders.is_empty() {
        return folders;
    }
    params
        .root_uri
        .as_ref()
        .and_then(file_path)
        .or_else(|| params.root_path.as_ref().map(PathBuf::from))
        .filter(|p| p.is_dir())
        .into_iter()
        .collect()
}

/// Whether two paths name the same directory (compared canonically when they exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// `folders` after a `workspace/didChangeWorkspaceFolders` event: removed ones out, new directories in (once).
fn changed_folders(mut folders: Vec<PathBuf>, event: &WorkspaceFoldersChangeEvent) -> Vec<PathBuf> {
    for removed in event.removed.iter().filter_map(|f| file_path(&f.uri)) {
        folders.retain(|f| !same_dir(f, &removed));
    }
    for added in event.added.iter().filter_map(|f| file_path(&f.uri)) {
        if added.is_dir() && !folders.iter().any(|f| same_dir(f, &added)) {
            folders.push(added);
        }
    }
    folders
}

impl Server {
    /// A server over `state`.
    pub fn new(state: Arc<State>) -> Server {
        Server { state }
    }

    /// Records the workspace folders (the first is the root) and places the open documents in them, each
    /// judged by the gate of the folder that holds it.
    fn set_folders(&self, folders: Vec<PathBuf>) {
        let root = folders.first().cloned();
        let others = folders.get(1..).unwrap_or_default().to_vec();
        let mounts = root
            .as_deref()
            .map(|r| Mounts::new(r, &others))
            .unwrap_or_default();
        let gate = Gate::for_folders(root.as_deref(), &mounts, IndexConfig::default());
        self.state
            .documents
            .lock()
            .refolder(root.clone(), mounts, gate);
        self.state.set_root(root);
        self.state.set_folders(others);
    }

    fn apply_settings(&self, parsed: config::Parsed) -> Arc<qwen_tasks::Settings> {
        self.state
            .report_config_keys(&parsed.unknown, &parsed.invalid);
        let log_file = parsed.settings.log_file.clone();
        let previous = self.state.set_settings(parsed.settings);
        if previous.log_file != log_file {
            logging_hook(log_file.as_deref());
        }
        previous
    }

    /// `textDocument/inlineCompletion` (stamped).
    pub async fn inline_completion(
        &self,
        params: Stamped<InlineCompletionParams>,
    ) -> Result<Option<InlineCompletionResponse>> {
        let state = self.state.clone();
        catch_panics(
            "textDocument/inlineCompletion",
            completion::inline(state, params),
        )
        .await
    }

    /// `textDocument/completion` (stamped).
    pub async fn completion(
        &self,
        params: Stamped<CompletionParams>,
    ) -> Result<Option<CompletionResponse>> {
        let state = self.state.clone();
        catch_panics(
            "textDocument/completion",
            completion::completion(state, params),
        )
        .await
    }

    /// `textDocument/hover` (stamped).
    pub async fn hover(&self, params: Stamped<HoverParams>) -> Result<Option<Hover>> {
        let state = self.state.clone();
        catch_panics("textDocument/hover", hover::hover(state, params)).await
    }

    /// `window/workDoneProgress/cancel`: the user cancelled a cancellable progress (a running fix loop).
    pub async fn work_done_progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        progress::cancel(&self.state, &params);
    }

    /// `textDocument/codeAction` (stamped).
    pub async fn code_action(
        &self,
        params: Stamped<CodeActionParams>,
    ) -> Result<Option<CodeActionResponse>> {
        let state = self.state.clone();
        catch_panics(
            "textDocument/codeAction",
            actions::code_action(state, params),
        )
        .await
    }

    /// A malformed message, replaced by the transport (`transport.rs`): answered with its JSON-RPC error.
    pub async fn malformed(&self, params: Value) -> Result<Value> {
        let code = params["code"].as_i64().unwrap_or(-32700);
        let message = params["message"].as_str().unwrap_or("malformed message");
        Err(tower_lsp_server::jsonrpc::Error {
            code: tower_lsp_server::jsonrpc::ErrorCode::from(code),
            message: message.to_owned().into(),
            data: None,
        })
    }

    /// `workspace/executeCommand` (stamped).
    pub async fn execute_command(
        &self,
        params: Stamped<ExecuteCommandParams>,
    ) -> Result<Option<Value>> {
        let state = self.state.clone();
        catch_panics("workspace/executeCommand", commands::execute(state, params)).await
    }
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let client = &params.capabilities;
        let general = client.general.as_ref();
        let encoding = Encoding::negotiate(general.and_then(|g| g.position_encodings.as_deref()));
        self.state.set_support(ClientSupport::announced(client));
        let folders = workspace_folders(&params);
        let client_name = params.client_info.as_ref().map(|c| &c.name);
        tracing::info!("initialize: folders {folders:?}, position encoding {encoding:?}, client {client_name:?}");
        // The folders (and their gate) are set right below.
        let documents = Documents::new(None, encoding, Gate::default());
        self.state.documents.reset(documents);
        self.set_folders(folders);
        let options = params.initialization_options.as_ref();
        self.apply_settings(config::parse(options.unwrap_or(&Value::Null)));
        let client_has_inline =
            (client.text_document.as_ref()).is_some_and(|t| t.inline_completion.is_some());
        Ok(capabilities::initialize_result(encoding, client_has_inline))
    }

    async fn initialized(&self, _: InitializedParams) {
        startup::start(&self.state);
        let state = self.state.clone();
        tokio::spawn(
            async move { watch::register(&state.client, state.support().watch_files).await },
        );
    }

    async fn shutdown(&self) -> Result<()> {
        tracing::info!("shutdown");
        self.state.shut_down.store(true, Ordering::SeqCst);
        if let Some(workspace) = self.state.workspace() {
            let saved = tokio::task::spawn_blocking(move || workspace.save_caches()).await;
            if saved.is_err() {
                tracing::warn!("saving the caches failed");
            }
        }
        Ok(())
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let parsed = config::from_did_change(&params.settings);
        let new = parsed.settings.clone();
        let previous = self.apply_settings(parsed);
        if previous.needs_new_generator(&new) {
            tracing::info!("model settings changed: reloading");
            tokio::spawn(startup::load_model(self.state.clone()));
        } else if *previous != new {
            // Same model, other settings: cached answers may depend on budgets and limits.
            if let Some(engine) = self.state.engine() {
                engine.caches.clear();
            }
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let current = self.state.root().into_iter().chain(self.state.folders());
        let folders = changed_folders(current.collect(), &params.event);
        tracing::info!("workspace folders now {folders:?}: indexing again");
        self.set_folders(folders);
        tokio::spawn(startup::load_index(self.state.clone()));
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        // The front door already took the text in; here the user learns, once per file, why a refused
        // document gets nothing from qwen-ls.
        let uri = params.text_document.uri;
        let Some(reason) = self.state.documents.lock().refused(&uri) else {
            return;
        };
        let name =
            file_path(&uri).map_or_else(|| uri.as_str().to_owned(), |p| p.display().to_string());
        self.state
            .show_problem(
                &format!("refused:{}", uri.as_str()),
                MessageType::INFO,
                format!(
                    "qwen-ls: {name} {reason}: it is never read, indexed or sent to a model, so it gets no \
                     completions, hovers or code actions (see SECURITY.md)"
                ),
            )
            .await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        // The front door already forgot the text; here the per-document request state goes.
        let uri = params.text_document.uri;
        self.state.forget_document(&uri);
        let key = self
            .state
            .documents
            .lock()
            .relative_path_of_uri(&uri)
            .unwrap_or_else(|| uri.as_str().to_owned());
        self.state.log.dismiss_document(&key);
    }

    async fn code_action_resolve(&self, params: CodeAction) -> Result<CodeAction> {
        let state = self.state.clone();
        catch_panics("codeAction/resolve", actions::resolve(state, params)).await
    }
}
