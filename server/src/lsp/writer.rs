//! The one index writer: a thread that applies document changes to the workspace in arrival order.
//!
//! The front door queues each change while it holds the document lock, so the queue order is the arrival
//! order. Until the workspace is loaded there is nothing to apply to: changes are not queued, and when the
//! index is ready [`IndexFeed::go_live`] replays every open document (its current text and version) and goes
//! live in one step under the same lock — no change can fall between the replay and the first live one.
//! The writer is a plain thread: a tree-sitter parse of a large file never occupies an async worker.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use super::front_door::{ChangeSink, SharedDocuments};
use crate::index::Change;
use crate::tasks::Workspace;

/// Where the front door sends index changes.
#[derive(Default)]
pub struct IndexFeed {
    live: Mutex<Option<Sender<Change>>>,
}

impl IndexFeed {
    fn lock(&self) -> MutexGuard<'_, Option<Sender<Change>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a writer thread for `workspace`, replays the open documents into it and routes every later
    /// change to it. A previous writer (an earlier workspace) finishes its queue and stops.
    pub fn go_live(&self, documents: &SharedDocuments, workspace: Arc<Workspace>) {
        let (sender, receiver) = channel::<Change>();
        {
            let docs = documents.lock();
            for change in docs.replay() {
                let _ = sender.send(change);
            }
            *self.lock() = Some(sender);
        }
        let spawned = std::thread::Builder::new()
            .name("qwen-ls-index-writer".to_owned())
            .spawn(move || {
                for change in receiver {
                    let what = describe(&change);
                    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        workspace.apply_change(change)
                    }));
                    match applied {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!("index: {what}: {e}"),
                        Err(_) => tracing::error!("index: {what}: panicked; change skipped"),
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the index writer: {e}; the index will not follow edits");
            *self.lock() = None;
        }
    }

    /// Queues a change that does not come from the front door (file events); ignored until live.
    pub fn send_change(&self, change: Change) {
        if let Some(sender) = self.lock().as_ref() {
            let _ = sender.send(change);
        }
    }
}

impl ChangeSink for IndexFeed {
    fn send(&self, change: Change) {
        self.send_change(change);
    }
}

/// `Arc<IndexFeed>` is what the front door holds.
impl ChangeSink for Arc<IndexFeed> {
    fn send(&self, change: Change) {
        self.send_change(change);
    }
}

fn describe(change: &Change) -> String {
    match change {
        Change::Open { path, version, .. } => format!("open {path} v{version}"),
        Change::Edit { path, version, .. } => format!("edit {path} v{version}"),
        Change::Close { path } => format!("close {path}"),
        Change::Write { path } => format!("write {path}"),
        Change::Delete { path } => format!("delete {path}"),
        Change::Rename { from, to } => format!("rename {from} -> {to}"),
    }
}
