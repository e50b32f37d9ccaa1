//! The document store the front door writes and the handlers read: every text-sync notification is applied
//! here in arrival order, its index change queued to the one writer ([`ChangeSink`]), the document's
//! completion in flight cancelled and the warm-up scheduler told where the user is.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::ls_types::Uri;

use super::documents::{Documents, SyncError};
use super::warmup::{Trigger, Warmer};
use qwen_index::{Change, SkipReason};
use qwen_tasks::InlineCompletions;

/// File events are index changes like the editor's own: queued here, in arrival order, so that a request
/// sent after them reads an index that includes them.
pub const WATCHED_FILES: &str = "workspace/didChangeWatchedFiles";

/// The state of the request's document when the request arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    /// The document's version (`None`: not open, or the request names no document).
    pub version: Option<i32>,
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
    inflight: Arc<InlineCompletions>,
    warmer: Arc<Warmer>,
}

impl SharedDocuments {
    /// A store that queues index changes into `sink`, cancels a document's completion in `inflight` when
    /// the document changes, and tells `warmer` where the user is.
    pub fn new(
        documents: Documents,
        sink: Box<dyn ChangeSink>,
        inflight: Arc<InlineCompletions>,
        warmer: Arc<Warmer>,
    ) -> SharedDocuments {
        SharedDocuments {
            documents: Mutex::new(documents),
            sink,
            inflight,
            warmer,
        }
    }

    /// Locks the documents (briefly: every reader clones what it needs).
    pub fn lock(&self) -> MutexGuard<'_, Documents> {
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The warm-up scheduler.
    pub fn warmer(&self) -> &Warmer {
        &self.warmer
    }

    /// Replaces the store (at `initialize`, when the root and encoding are known).
    pub fn reset(&self, documents: Documents) {
        *self.lock() = documents;
    }

    /// Applies one text-sync notification; returns whether it was one.
    pub(crate) fn sync(&self, method: &str, params: Option<Value>) -> bool {
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
        if let Some(uri) = uri {
            match method {
                "textDocument/didOpen" => self.warmer.want(&uri, None, Trigger::Open),
                "textDocument/didChange" => {
                    // A generation for the old text can only produce a stale answer: stop it now.
                    self.inflight.cancel(uri.as_str());
                    self.warmer.want(&uri, None, Trigger::Edit);
                }
                _ => {
                    self.inflight.cancel(uri.as_str());
                    self.warmer.forget(&uri);
                }
            }
        }
        true
    }

    /// Resolves once the index holds every change queued so far (take it when a request arrives).
    pub(crate) fn index_caught_up(&self) -> BoxFuture<'static, ()> {
        self.sink.reached(self.sink.mark())
    }

    /// The arrival stamp of a request for `method` with `params`.
    pub(crate) fn stamp(&self, method: &str, params: Option<&Value>) -> Arrival {
        Arrival {
            version: request_uri(method, params).and_then(|u| self.lock().version(&u)),
        }
    }

    /// Why the gate refuses the request's document, if it does (the request is then never served).
    pub(crate) fn refused(&self, method: &str, params: Option<&Value>) -> Option<SkipReason> {
        request_uri(method, params).and_then(|u| self.lock().refused(&u))
    }

    /// Whether the document `params` opens is refused (the server tells the user why, once).
    pub(crate) fn opened_refused(&self, params: Option<&Value>) -> bool {
        self.refused("textDocument/didOpen", params).is_some()
    }
}

/// The document a request is about: `textDocument.uri`, or a command's first argument's `uri`.
pub(crate) fn request_uri(method: &str, params: Option<&Value>) -> Option<Uri> {
    let uri = params.and_then(|p| match method {
        "workspace/executeCommand" => p.pointer("/arguments/0/uri"),
        _ => p.pointer("/textDocument/uri"),
    });
    uri.and_then(Value::as_str)
        .and_then(|s| s.parse::<Uri>().ok())
}
