//! The front door: a `tower::Service` around tower-lsp's `LspService` that sees every message synchronously,
//! in arrival order, before any handler runs.
//!
//! tower-lsp runs handlers concurrently (up to the server's concurrency level), so a `didChange` handler and
//! the completion request that follows it may run in either order. rust-analyzer avoids this with a
//! single-threaded main loop; we get the same guarantee here, because `Service::call` is invoked by the
//! transport for each message in the order it was read:
//!
//! - `didOpen` / `didChange` / `didClose` are applied to [`Documents`] right here (a rope edit: microseconds)
//!   and the implied index [`Change`] is queued to the one index writer, in the same order; so are the
//!   changes of `workspace/didChangeWatchedFiles` (files changed outside the editor, `watch.rs`);
//! - requests that read a document (`inlineCompletion`, `completion`, `hover`, `codeAction`,
//!   `executeCommand`) are stamped with the document's version *at arrival* and routed to internal methods
//!   ([`internal`]) that receive `{ "params": <original>, "arrival": <stamp> }`. A handler compares the stamp
//!   with the version it reads: if the document changed in between, the request's position belongs to a text
//!   that no longer exists and the answer is empty — never computed against the wrong text;
//! - every request (anything with an id) also takes the index writer's mark at arrival and starts only once
//!   the writer has applied every change queued before it (`writer.rs`): the index a request reads is never
//!   older than the notifications that arrived before it. The wait is a rope edit or a re-parse of the
//!   edited file, and it happens outside the arrival order (later messages are read meanwhile);
//! - a document request about a document the gate refuses (a secret, `.qwenignore`) is answered here, empty
//!   (an error for a command), and never reaches a handler.
//!
//! Request ids, `$/cancelRequest` and the initialization state machine stay tower-lsp's: the renamed request
//! keeps its id and goes through the same `LspService`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::Service;
use tower_lsp_server::jsonrpc::{Id, Request, Response};
use tower_lsp_server::ls_types::Uri;
use tower_lsp_server::ExitedError;

use super::documents::{Documents, SyncError};
use super::state::InflightCompletions;
use crate::index::{Change, SkipReason};

/// Internal method names (never sent by a client; tower-lsp routes them like any custom method).
pub mod internal {
    /// `textDocument/inlineCompletion`, stamped.
    pub const INLINE_COMPLETION: &str = "qwen-ls/internal/inlineCompletion";
    /// `textDocument/completion`, stamped.
    pub const COMPLETION: &str = "qwen-ls/internal/completion";
    /// `textDocument/hover`, stamped.
    pub const HOVER: &str = "qwen-ls/internal/hover";
    /// `textDocument/codeAction`, stamped.
    pub const CODE_ACTION: &str = "qwen-ls/internal/codeAction";
    /// `workspace/executeCommand`, stamped with the document of its first argument's `uri` (if any).
    pub const EXECUTE_COMMAND: &str = "qwen-ls/internal/executeCommand";
}

/// File events are index changes like the editor's own: queued here, in arrival order, so that a request
/// sent after them reads an index that includes them.
const WATCHED_FILES: &str = "workspace/didChangeWatchedFiles";

/// The state of the request's document when the request arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    /// The document's version (`None`: not open, or the request names no document).
    pub version: Option<i32>,
}

/// What an internal method receives.
#[derive(Debug, Deserialize)]
pub struct Stamped<P> {
    /// The client's params.
    pub params: P,
    /// The stamp.
    #[serde(default)]
    pub arrival: Arrival,
}

/// Where index changes go, in order. Called with the document lock held, so the order of calls is the
/// order of arrival.
pub trait ChangeSink: Send + Sync {
    /// Queues one change.
    fn send(&self, change: Change);
    /// The mark of the last change queued.
    fn mark(&self) -> u64;
    /// Resolves once every change up to `mark` is applied.
    fn reached(&self, mark: u64) -> BoxFuture<'static, ()>;
}

/// The document store shared by the front door (the only writer) and the handlers (readers).
pub struct SharedDocuments {
    documents: Mutex<Documents>,
    sink: Box<dyn ChangeSink>,
    inflight: Arc<InflightCompletions>,
}

impl SharedDocuments {
    /// A store that queues index changes into `sink` and cancels a document's completion in `inflight` when
    /// the document changes.
    pub fn new(
        documents: Documents,
        sink: Box<dyn ChangeSink>,
        inflight: Arc<InflightCompletions>,
    ) -> SharedDocuments {
        SharedDocuments {
            documents: Mutex::new(documents),
            sink,
            inflight,
        }
    }

    /// Locks the documents (briefly: every reader clones what it needs).
    pub fn lock(&self) -> MutexGuard<'_, Documents> {
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the store (at `initialize`, when the root and encoding are known).
    pub fn reset(&self, documents: Documents) {
        *self.lock() = documents;
    }

    /// Applies one text-sync notification; returns whether it was one.
    fn sync(&self, method: &str, params: Option<Value>) -> bool {
        let params = params.unwrap_or(Value::Null);
        let uri = params
            .pointer("/textDocument/uri")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Uri>().ok());
        let mut docs = self.lock();
        let result: Result<Vec<Change>, String> = match method {
            "textDocument/didOpen" => serde_json::from_value(params)
                .map(|p| docs.open(p).into_iter().collect())
                .map_err(|e| e.to_string()),
            "textDocument/didChange" => serde_json::from_value(params)
                .map_err(|e| e.to_string())
                .and_then(|p| docs.change(p).map_err(|e: SyncError| e.to_string()))
                .map(|c| c.into_iter().collect()),
            "textDocument/didClose" => serde_json::from_value(params)
                .map_err(|e| e.to_string())
                .and_then(|p| docs.close(p).map_err(|e: SyncError| e.to_string()))
                .map(|c| c.into_iter().collect()),
            WATCHED_FILES => serde_json::from_value(params)
                .map(|p| super::watch::changes(&docs, &p))
                .map_err(|e| e.to_string()),
            _ => return false,
        };
        match result {
            Ok(changes) => changes.into_iter().for_each(|c| self.sink.send(c)),
            Err(e) => tracing::warn!("{method}: {e}"),
        }
        drop(docs);
        // A generation for the old text can only produce a stale answer: stop it now.
        if let Some(uri) = uri.filter(|_| method != "textDocument/didOpen") {
            self.inflight.cancel(&uri);
        }
        true
    }

    /// Resolves once the index holds every change queued so far (take it when a request arrives).
    fn index_caught_up(&self) -> BoxFuture<'static, ()> {
        self.sink.reached(self.sink.mark())
    }

    /// The arrival stamp of a request for `method` with `params`.
    fn stamp(&self, method: &str, params: Option<&Value>) -> Arrival {
        Arrival {
            version: request_uri(method, params).and_then(|u| self.lock().version(&u)),
        }
    }

    /// Why the gate refuses the request's document, if it does (the request is then never served).
    fn refused(&self, method: &str, params: Option<&Value>) -> Option<SkipReason> {
        request_uri(method, params).and_then(|u| self.lock().refused(&u))
    }

    /// Whether the document `params` opens is refused (the server tells the user why, once).
    fn opened_refused(&self, params: Option<&Value>) -> bool {
        self.refused("textDocument/didOpen", params).is_some()
    }
}

/// The document a request is about: `textDocument.uri`, or a command's first argument's `uri`.
fn request_uri(method: &str, params: Option<&Value>) -> Option<Uri> {
    let uri = params.and_then(|p| match method {
        "workspace/executeCommand" => p.pointer("/arguments/0/uri"),
        _ => p.pointer("/textDocument/uri"),
    });
    uri.and_then(Value::as_str)
        .and_then(|s| s.parse::<Uri>().ok())
}

/// The answer to a request about a refused document: nothing for the editor's own requests (completion,
/// hover, code actions), an error that says why for a command the user ran.
fn refusal(method: &str, id: Id, reason: &SkipReason) -> Response {
    if method == "workspace/executeCommand" {
        return Response::from_error(
            id,
            tower_lsp_server::jsonrpc::Error {
                code: tower_lsp_server::jsonrpc::ErrorCode::ServerError(-32803),
                message: format!(
                    "qwen-ls never reads or sends this file: it {reason} (see SECURITY.md)"
                )
                .into(),
                data: None,
            },
        );
    }
    Response::from_ok(id, Value::Null)
}

/// `didOpen` params with the document's text left out.
fn without_text(mut params: Value) -> Value {
    if let Some(text) = params.pointer_mut("/textDocument/text") {
        *text = Value::String(String::new());
    }
    params
}

fn internal_name(method: &str) -> Option<&'static str> {
    Some(match method {
        "textDocument/inlineCompletion" => internal::INLINE_COMPLETION,
        "textDocument/completion" => internal::COMPLETION,
        "textDocument/hover" => internal::HOVER,
        "textDocument/codeAction" => internal::CODE_ACTION,
        "workspace/executeCommand" => internal::EXECUTE_COMMAND,
        _ => return None,
    })
}

/// The wrapper service (see the module documentation).
pub struct FrontDoor<S> {
    inner: S,
    documents: Arc<SharedDocuments>,
}

impl<S> FrontDoor<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, documents: Arc<SharedDocuments>) -> FrontDoor<S> {
        FrontDoor { inner, documents }
    }
}

impl<S> Service<Request> for FrontDoor<S>
where
    S: Service<Request, Response = Option<Response>, Error = ExitedError>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = BoxFuture<'static, Result<Option<Response>, ExitedError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ExitedError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = request.method();
        if method.starts_with("qwen-ls/internal/") {
            // Only the front door may use internal names.
            let (method, id, _) = request.into_parts();
            tracing::warn!("refusing client call to internal method {method}");
            return future::ok(id.map(|id| {
                Response::from_error(id, tower_lsp_server::jsonrpc::Error::method_not_found())
            }))
            .boxed();
        }
        if method.starts_with("$/")
            && method != super::transport::MALFORMED
            && request.id().is_some()
        {
            // A `$/` request the server does not know must be answered with MethodNotFound (tower-lsp would
            // stay silent, leaving the client waiting).
            let (_, id, _) = request.into_parts();
            return future::ok(id.map(|id| {
                Response::from_error(id, tower_lsp_server::jsonrpc::Error::method_not_found())
            }))
            .boxed();
        }
        if matches!(
            method,
            "textDocument/didOpen"
                | "textDocument/didChange"
                | "textDocument/didClose"
                | WATCHED_FILES
        ) {
            let (method, id, params) = request.into_parts();
            let close = (method == "textDocument/didClose" && id.is_none()).then(|| params.clone());
            let open = method == "textDocument/didOpen" && id.is_none();
            // Without its text: the server only needs to know which document it refuses.
            let open = open.then(|| params.clone().map(without_text)).flatten();
            self.documents.sync(&method, params);
            let forward = match open {
                Some(params) if self.documents.opened_refused(Some(&params)) => Some(Some(params)),
                _ => close,
            };
            if let Some(params) = forward {
                // Handlers keep per-document state (in-flight requests, typing rhythm) to forget, and tell
                // the user why a refused document gets nothing.
                let mut forwarded = Request::build(method);
                if let Some(params) = params {
                    forwarded = forwarded.params(params);
                }
                return self.inner.call(forwarded.finish()).boxed();
            }
            // A sync method sent as a request (with an id) still gets an answer.
            return future::ok(id.map(|id| Response::from_ok(id, Value::Null))).boxed();
        }
        let caught_up = request
            .id()
            .is_some()
            .then(|| self.documents.index_caught_up());
        if let (Some(_), Some(id)) = (internal_name(method), request.id().cloned()) {
            if let Some(reason) = self.documents.refused(method, request.params()) {
                return future::ok(Some(refusal(method, id, &reason))).boxed();
            }
        }
        let handler = match (internal_name(method), request.id().cloned()) {
            (Some(name), Some(id)) => {
                let (method, _, params) = request.into_parts();
                let arrival = self.documents.stamp(&method, params.as_ref());
                let wrapped = serde_json::json!({
                    "params": params.unwrap_or(Value::Null),
                    "arrival": arrival,
                });
                let stamped = Request::build(name).id(id).params(wrapped).finish();
                self.inner.call(stamped)
            }
            _ => self.inner.call(request),
        };
        match caught_up {
            // The handler future is lazy: it starts when first polled, after the index caught up.
            Some(caught_up) => async move {
                caught_up.await;
                handler.await
            }
            .boxed(),
            None => handler.boxed(),
        }
    }
}
