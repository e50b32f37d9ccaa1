//! The language server: a tower-lsp-server adapter over `tasks`. Converts positions and documents in, makes
//! one tasks call, converts results out; owns position encodings and every LSP type (nothing else in the
//! crate names one).
//!
//! ```text
//! stdin ─► FrontDoor (front_door.rs) ─► tower-lsp LspService ─► Server (server.rs)
//!          │ didOpen/didChange/didClose applied here, in arrival order, to Documents (documents.rs)
//!          │ and queued to the one index writer thread (writer.rs)
//!          ├ document requests stamped with their document's version at arrival
//!          └ every request held until the index writer applied the changes queued before it
//! Server: lifecycle + capabilities; handlers: completion.rs, hover.rs, actions.rs, commands.rs
//!         edits out: edits.rs (minimal TextEdits), apply.rs (versioned WorkspaceEdit, checks)
//! startup.rs: model + index in the background ($/progress, qwen-ls/status, showMessage once)
//! warmup.rs: opens, edits and requests say where the user is: prefill the next prompt while idle
//! progress.rs: $/progress streams (cancellable ones answer window/workDoneProgress/cancel)
//! guard.rs: panics → InternalError responses; dropped requests cancel their generation
//! transport.rs: re-frames stdin so one malformed message is answered with an error instead of ending input
//! ```
//!
//! The composition root (the CLI) passes a [`Loader`] that turns settings into a generator, so tests can
//! serve a scripted model through the same code path.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod actions;
mod apply;
mod capabilities;
mod commands;
mod completion;
pub mod config;
pub mod documents;
pub mod edits;
pub mod front_door;
mod guard;
mod hover;
pub mod logging;
pub mod position;
mod progress;
mod server;
mod shared_documents;
mod startup;
mod state;
pub mod status;
pub mod transport;
mod warmup;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::LspService;

pub use commands::ALL as COMMANDS;

use self::documents::Documents;
use self::front_door::{internal, FrontDoor, SharedDocuments};
use self::server::Server;
use self::state::State;
use self::warmup::Warmer;
use self::writer::IndexFeed;
use qwen_store::Progress;
use qwen_tasks::measure::SuggestionLog;
use qwen_tasks::Generator;
use qwen_tasks::{InlineCompletions, Settings};

/// Turns settings into a generator (and a description for status lines); blocking, reports to `progress`.
pub type Loader = Arc<
    dyn Fn(&Settings, &dyn Progress) -> anyhow::Result<(Arc<dyn Generator>, String)> + Send + Sync,
>;

/// Called by the index writer, on its thread, before it applies each change: a test seam (a slow or held
/// writer) that the composition root leaves out.
pub type IndexHook = Arc<dyn Fn(&qwen_index::Change) + Send + Sync>;

/// How many requests tower-lsp runs at once. Handlers wait (debounce, generation) without holding a thread,
/// and superseded ones finish at once, so this only bounds memory under a flood.
const CONCURRENCY: usize = 64;

/// Options of one server run.
#[derive(Clone)]
pub struct ServeOptions {
    /// Builds the generator from settings.
    pub loader: Loader,
    /// Where the suggestion log goes (`None`: nowhere).
    pub suggestion_log: Option<PathBuf>,
    /// See [`IndexHook`] (`None` in production).
    pub index_hook: Option<IndexHook>,
}

/// Serves one client over `input`/`output` until `exit` or end of input. Returns whether the session ended
/// cleanly (`shutdown` before `exit`), which decides the process exit code.
pub async fn serve<I, O>(input: I, output: O, options: ServeOptions) -> bool
where
    I: AsyncRead + Unpin,
    O: AsyncWrite,
{
    let feed = Arc::new(IndexFeed::new(options.index_hook));
    let inflight = Arc::new(InlineCompletions::default());
    let warmer = Arc::new(Warmer::default());
    let documents = Arc::new(SharedDocuments::new(
        Documents::default(),
        Box::new(feed.clone()),
        inflight.clone(),
        warmer.clone(),
    ));
    let log = SuggestionLog::new(options.suggestion_log);
    let shared = documents.clone();
    let (service, socket) = LspService::build(|client| {
        Server::new(Arc::new(State::new(
            client,
            shared,
            feed,
            inflight,
            options.loader,
            log,
        )))
    })
    .custom_method(internal::INLINE_COMPLETION, Server::inline_completion)
    .custom_method(internal::COMPLETION, Server::completion)
    .custom_method(internal::HOVER, Server::hover)
    .custom_method(internal::CODE_ACTION, Server::code_action)
    .custom_method(internal::EXECUTE_COMMAND, Server::execute_command)
    .custom_method(transport::MALFORMED, Server::malformed)
    .custom_method(
        "window/workDoneProgress/cancel",
        Server::work_done_progress_cancel,
    )
    .finish();
    let state = service.inner().state.clone();
    let warmups = tokio::spawn(warmer.run(state.clone()));
    let service = FrontDoor::new(service, documents);
    tower_lsp_server::Server::new(transport::Sanitized::new(input), output, socket)
        .concurrency_level(CONCURRENCY)
        .serve(service)
        .await;
    warmups.abort();
    state.shut_down.load(std::sync::atomic::Ordering::SeqCst)
}

/// Applies the `logFile` setting.
fn logging_hook(path: Option<&Path>) {
    if let Err(e) = crate::logging::set_log_file(path) {
        tracing::warn!("logFile: {e}");
    }
}
