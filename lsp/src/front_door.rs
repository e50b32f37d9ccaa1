//! The front door: a `tower::Service` around tower-lsp's `LspService` that sees every message synchronously,
//! in arrival order, before any handler runs.
//!
//! tower-lsp runs handlers concurrently (up to the server's concurrency level), so a `didChange` handler and
//! the completion request that follows it may run in either order. rust-analyzer avoids this with a
//! single-threaded main loop; we get the same guarantee here, because `Service::call` is invoked by the
//! transport for each message in the order it was read:
//!
//! - `didOpen` / `didChange` / `didClose` are applied to the documents right here ([`SharedDocuments`]) (a rope edit: microseconds)
//!   and the implied index change is queued to the one index writer, in the same order; so are the
//!   changes of `workspace/didChangeWatchedFiles` (files changed outside the editor, `watch.rs`); the warm-up
//!   scheduler is told where the user is (`warmup.rs`);
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

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture, FutureExt};
use serde::Deserialize;
use serde_json::Value;
use tower::Service;
use tower_lsp_server::jsonrpc::{Id, Request, Response};
use tower_lsp_server::ExitedError;

use super::shared_documents::WATCHED_FILES;
pub use super::shared_documents::{Arrival, ChangeSink, SharedDocuments};
use qwen_index::SkipReason;

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

/// What an internal method receives.
#[derive(Debug, Deserialize)]
pub struct Stamped<P> {
    /// The client's params.
    pub params: P,
    /// The stamp.
    #[serde(default)]
    pub arrival: Arrival,
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
