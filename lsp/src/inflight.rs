//! The completion in flight for each document: a new request or an edit to the document cancels the one
//! before it (its answer could only be stale) and wakes it out of its debounce.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use qwen_tasks::CancelToken;
use tokio::sync::oneshot;
use tower_lsp_server::ls_types::Uri;

use super::guard::lock;

/// A completion being computed for a document.
struct Inflight {
    seq: u64,
    cancel: CancelToken,
    /// Dropped when superseded: wakes the request out of its debounce.
    _wake: oneshot::Sender<()>,
}

/// The completion in flight for each document. Shared with the front door, which cancels a document's
/// generation as soon as an edit to it arrives (its result could only be stale).
#[derive(Default)]
pub struct InflightCompletions {
    map: Mutex<HashMap<Uri, Inflight>>,
    next_seq: AtomicU64,
}

impl InflightCompletions {
    /// Registers a completion for `uri`, cancelling (and waking) the document's previous one. Returns the
    /// request's sequence number, its cancel token and a receiver that resolves when it is superseded.
    pub fn begin(&self, uri: &Uri) -> (u64, CancelToken, oneshot::Receiver<()>) {
        let seq = self.next_seq();
        let cancel = CancelToken::new();
        let (wake, superseded) = oneshot::channel();
        let previous = lock(&self.map).insert(
            uri.clone(),
            Inflight {
                seq,
                cancel: cancel.clone(),
                _wake: wake,
            },
        );
        if let Some(previous) = previous {
            previous.cancel.cancel();
        }
        (seq, cancel, superseded)
    }

    /// A fresh sequence number (for a request answered without registering, e.g. a stale one).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Forgets the completion `seq` of `uri` if it is still the current one.
    pub fn end(&self, uri: &Uri, seq: u64) {
        let mut map = lock(&self.map);
        if map.get(uri).is_some_and(|i| i.seq == seq) {
            map.remove(uri);
        }
    }

    /// Cancels (and wakes) the document's completion, if any.
    pub fn cancel(&self, uri: &Uri) {
        if let Some(previous) = lock(&self.map).remove(uri) {
            previous.cancel.cancel();
        }
    }
}
