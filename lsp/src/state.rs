//! What the server shares between handlers: documents, settings, the loaded model and workspace, the status,
//! in-flight completions and the suggestion log. Every lock here is held for a copy or a swap, never across
//! an `.await` or a generation; poisoned locks are recovered (their data is always consistent).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use qwen_engine::CancelToken;
use tower_lsp_server::ls_types::{MessageType, Uri};
use tower_lsp_server::Client;

use super::documents::Document;
use super::guard::{cancellable, lock};
use super::shared_documents::SharedDocuments;
use super::status::{ModelState, Status};
use super::warmup::WarmHost;
use super::writer::IndexFeed;
use super::Loader;
use qwen_tasks::measure::{SuggestionLog, WarmUp};
use qwen_tasks::Generator;
use qwen_tasks::{
    Analysis, Caches, DocumentPosition, InlineCompletions, Settings, TaskError, WarmOutput,
    Workspace,
};

/// What a request that needs the model answers while it or the index is loading.
pub const NOT_READY: &str = "qwen-ls is not ready yet (see qwen-ls.status)";

/// `show_problem` keys of generation failures start with this (one key per `GenError::kind`).
const GENERATION_PROBLEM: &str = "generation:";

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(lock: &RwLock<T>, value: T) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
}

/// A loaded model and the caches that belong to it and to the configuration it was loaded with.
#[derive(Clone)]
pub struct Engine {
    /// The model.
    pub generator: Arc<dyn Generator>,
    /// Forward cache, explanations, completion ids.
    pub caches: Arc<Caches>,
}

impl Engine {
    /// The façade over this model, `workspace` and `settings`, for one request.
    pub fn analysis<'a>(
        &'a self,
        workspace: &'a Workspace,
        settings: &'a Settings,
    ) -> Analysis<'a> {
        Analysis::new(workspace, self.generator.as_ref(), &self.caches, settings)
    }
}

/// What the client announced at `initialize` that changes what we send.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientSupport {
    /// `window.workDoneProgress`: we may create progress tokens.
    pub work_done_progress: bool,
    /// `workspace.applyEdit`.
    pub apply_edit: bool,
    /// `workspace.workspaceEdit.documentChanges`.
    pub document_changes: bool,
    /// `workspace.didChangeWatchedFiles.dynamicRegistration`: we may ask the client to watch files.
    pub watch_files: bool,
    /// `workspace.workspaceEdit.changeAnnotationSupport`: the editor can ask before applying an edit.
    pub change_annotations: bool,
}

/// Cancel tokens of the cancellable `$/progress` streams in flight, by token name.
#[derive(Default)]
pub struct ProgressCancels(Mutex<HashMap<String, CancelToken>>);

impl ProgressCancels {
    /// Registers the cancel token of stream `name`.
    pub fn register(&self, name: &str, cancel: CancelToken) {
        lock(&self.0).insert(name.to_owned(), cancel);
    }

    /// Forgets stream `name`.
    pub fn remove(&self, name: &str) {
        lock(&self.0).remove(name);
    }

    /// Fires the cancel token of stream `name`; whether it was in flight.
    pub fn cancel(&self, name: &str) -> bool {
        let cancel = lock(&self.0).get(name).cloned();
        cancel.inspect(CancelToken::cancel).is_some()
    }
}

/// The shared state.
pub struct State {
    /// The connection to the editor.
    pub client: Client,
    /// Open documents (written only by the front door).
    pub documents: Arc<SharedDocuments>,
    /// Index changes to the writer thread.
    pub feed: Arc<IndexFeed>,
    /// Builds a generator from settings.
    pub loader: Loader,
    /// The local suggestion log.
    pub log: SuggestionLog,
    settings: RwLock<Arc<Settings>>,
    engine: RwLock<Option<Engine>>,
    workspace: RwLock<Option<Arc<Workspace>>>,
    status: Mutex<Status>,
    support: Mutex<ClientSupport>,
    root: Mutex<Option<PathBuf>>,
    /// Inline completions: one in flight per document, typing rhythm, latencies.
    pub inline: Arc<InlineCompletions>,
    /// Cancellable progress streams in flight.
    pub progress_cancels: ProgressCancels,
    reported_keys: Mutex<HashSet<String>>,
    shown_problems: Mutex<HashSet<String>>,
    /// A lasting generation failure put the status in `error` (cleared by the next success).
    generation_failing: AtomicBool,
    /// Incremented by every model (re)load; a load that finishes after a newer one started is discarded.
    pub model_epoch: AtomicU64,
    /// The same for the index (re)loads (the workspace folders changed).
    pub index_epoch: AtomicU64,
    folders: Mutex<Vec<PathBuf>>,
    /// `shutdown` was received (the exit code after `exit` is 0 only then).
    pub shut_down: AtomicBool,
}

impl State {
    /// Fresh state.
    pub fn new(
        client: Client,
        documents: Arc<SharedDocuments>,
        feed: Arc<IndexFeed>,
        inline: Arc<InlineCompletions>,
        loader: Loader,
        log: SuggestionLog,
    ) -> State {
        State {
            client,
            documents,
            feed,
            loader,
            log,
            settings: RwLock::new(Arc::new(Settings::default())),
            engine: RwLock::new(None),
            workspace: RwLock::new(None),
            status: Mutex::new(Status::default()),
            support: Mutex::new(ClientSupport::default()),
            root: Mutex::new(None),
            inline,
            progress_cancels: ProgressCancels::default(),
            reported_keys: Mutex::new(HashSet::new()),
            shown_problems: Mutex::new(HashSet::new()),
            generation_failing: AtomicBool::new(false),
            model_epoch: AtomicU64::new(0),
            index_epoch: AtomicU64::new(0),
            folders: Mutex::new(Vec::new()),
            shut_down: AtomicBool::new(false),
        }
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        read(&self.settings)
    }

    /// Replaces the settings; returns the previous ones.
    pub fn set_settings(&self, settings: Settings) -> Arc<Settings> {
        let previous = self.settings();
        write(&self.settings, Arc::new(settings));
        previous
    }

    /// The loaded model, if any.
    pub fn engine(&self) -> Option<Engine> {
        read(&self.engine)
    }

    /// Installs (or removes, while reloading) the model.
    pub fn set_engine(&self, engine: Option<Engine>) {
        write(&self.engine, engine);
    }

    /// The loaded workspace, if any.
    pub fn workspace(&self) -> Option<Arc<Workspace>> {
        read(&self.workspace)
    }

    /// Installs the workspace.
    pub fn set_workspace(&self, workspace: Arc<Workspace>) {
        write(&self.workspace, Some(workspace));
    }

    /// Model and workspace, when both are ready.
    pub fn ready(&self) -> Option<(Engine, Arc<Workspace>)> {
        Some((self.engine()?, self.workspace()?))
    }

    /// What the client supports.
    pub fn support(&self) -> ClientSupport {
        *lock(&self.support)
    }

    /// Records what the client supports (at `initialize`).
    pub fn set_support(&self, support: ClientSupport) {
        *lock(&self.support) = support;
    }

    /// The workspace root given at `initialize`.
    pub fn root(&self) -> Option<PathBuf> {
        lock(&self.root).clone()
    }

    /// Records the workspace root.
    pub fn set_root(&self, root: Option<PathBuf>) {
        *lock(&self.root) = root;
    }

    /// The workspace folders after the root (indexed under `@name/`).
    pub fn folders(&self) -> Vec<PathBuf> {
        lock(&self.folders).clone()
    }

    /// Records the folders after the root.
    pub fn set_folders(&self, folders: Vec<PathBuf>) {
        *lock(&self.folders) = folders;
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Changes the status and sends `qwen-ls/status` when the state or message changed.
    pub async fn update_status(&self, change: impl FnOnce(&mut Status)) {
        let notification = {
            let mut status = lock(&self.status);
            let before = status.notification();
            change(&mut status);
            let after = status.notification();
            (before != after).then_some(after)
        };
        if let Some(params) = notification {
            tracing::info!("status: {params}");
            self.client
                .send_notification::<StatusNotification>(params)
                .await;
        }
    }

    /// `window/showMessage` for a lasting problem, once until [`State::problem_solved`] is called for it.
    pub async fn show_problem(&self, key: &str, typ: MessageType, message: String) {
        let first = lock(&self.shown_problems).insert(key.to_owned());
        if first {
            self.client.show_message(typ, message).await;
        }
    }

    /// The problem `key` is gone: show it again if it comes back.
    pub fn problem_solved(&self, key: &str) {
        lock(&self.shown_problems).remove(key);
    }

    /// A request the editor did not ask for explicitly (a completion, a hover) failed. A generation failure
    /// (server unreachable, wrong model name, context length, malformed stream…) is shown once per kind
    /// (`window/showMessage`) until a generation succeeds; a lasting one also puts the status in `error`.
    /// Other failures are only logged, by the caller.
    pub async fn generation_failed(&self, error: &TaskError) {
        let TaskError::Generate(error) = error else {
            return;
        };
        let message = format!("qwen-ls: {error}");
        if error.is_lasting() {
            self.generation_failing.store(true, Ordering::SeqCst);
            let failed = ModelState::Failed(message.clone());
            self.update_status(|s| s.model = failed).await;
        }
        let key = format!("{GENERATION_PROBLEM}{}", error.kind());
        self.show_problem(&key, MessageType::ERROR, message).await;
    }

    /// Runs `task` over the façade on the blocking pool, cancelled when the request is dropped; `None` while
    /// the model or the workspace is not ready.
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce(Analysis<'_>, &CancelToken) -> T + Send + 'static,
    ) -> Option<T> {
        let ((engine, workspace), settings) = (self.ready()?, self.settings());
        Some(cancellable(move |cancel| task(engine.analysis(&workspace, &settings), cancel)).await)
    }

    /// A task's result for the editor: the value, or `None` after logging the failure (and showing a model
    /// failure to the user); a cancelled task is silent. `generated` says whether a value came from the model
    /// (a success clears the failures shown).
    pub async fn settle<T>(
        &self,
        what: &str,
        result: Result<T, TaskError>,
        generated: impl FnOnce(&T) -> bool,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                self.generation_done(None, generated(&value)).await;
                Some(value)
            }
            Err(TaskError::Cancelled) => None,
            Err(e) => {
                tracing::warn!("{what} failed: {e}");
                self.generation_done(Some(&e), false).await;
                None
            }
        }
    }

    /// Reports how a request's generation went: a failure is shown (once per kind), a success clears them.
    pub async fn generation_done(&self, failure: Option<&TaskError>, generated: bool) {
        if let Some(error) = failure {
            self.generation_failed(error).await;
        } else if generated {
            self.generation_succeeded().await;
        }
    }

    /// A generation succeeded: the status is `ready` again and past failures are shown again if they recur.
    pub async fn generation_succeeded(&self) {
        lock(&self.shown_problems).retain(|k| !k.starts_with(GENERATION_PROBLEM));
        if self.generation_failing.swap(false, Ordering::SeqCst) {
            self.update_status(|s| {
                if matches!(s.model, ModelState::Failed(_)) {
                    s.model = ModelState::Loaded;
                }
            })
            .await;
        }
    }

    /// Logs unknown or invalid configuration keys, each once per session.
    pub fn report_config_keys(&self, unknown: &[String], invalid: &[String]) {
        let mut reported = lock(&self.reported_keys);
        for key in unknown {
            if reported.insert(format!("unknown:{key}")) {
                tracing::warn!("configuration: unknown key `{key}` ignored (see docs/PROTOCOL.md)");
            }
        }
        for problem in invalid {
            if reported.insert(format!("invalid:{problem}")) {
                tracing::warn!("configuration: {problem}; using the default");
            }
        }
    }

    /// Forgets per-document state of a closed document.
    pub fn forget_document(&self, uri: &Uri) {
        self.inline.forget(uri.as_str());
    }
}

/// `qwen-ls/status`.
pub enum StatusNotification {}

impl tower_lsp_server::ls_types::notification::Notification for StatusNotification {
    type Params = serde_json::Value;
    const METHOD: &'static str = "qwen-ls/status";
}

impl WarmHost for State {
    fn completions_enabled(&self) -> bool {
        self.settings().completion.enabled
    }

    fn document(&self, uri: &Uri) -> Option<(Document, Option<String>)> {
        let documents = self.documents.lock();
        Some((documents.get(uri)?, documents.relative_path_of_uri(uri)))
    }

    fn warm_up(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Option<Result<WarmOutput, TaskError>> {
        let (settings, (engine, workspace)) = (self.settings(), self.ready()?);
        let analysis = engine.analysis(&workspace, &settings);
        Some(analysis.warm_up(at, cancel))
    }

    fn log(&self, warm_up: &WarmUp) {
        self.log.warm_up(warm_up);
    }
}
