//! The one index writer: a thread that applies document changes to the workspace in arrival order.
//!
//! The front door queues each change while it holds the document lock, so the queue order is the arrival
//! order. Until the workspace is loaded there is nothing to apply to: changes are not queued, and when the
//! index is ready [`IndexFeed::go_live`] replays every open document (its current text and version) and goes
//! live in one step under the same lock — no change can fall between the replay and the first live one.
//! The writer is a plain thread: a tree-sitter parse of a large file never occupies an async worker.
//!
//! Every queued change gets a mark (1, 2, …); the writer publishes the mark of the last change it applied.
//! The front door takes [`IndexFeed::mark`] when a request arrives and holds the request until
//! [`IndexFeed::reached`] that mark, so a request never reads an index older than the notifications that
//! arrived before it (a refactor would otherwise see the document's new text in the editor and its old text
//! in the index, and drop its own edit as stale).

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::{BoxFuture, FutureExt};
use tokio::sync::watch;

use super::front_door::{ChangeSink, SharedDocuments};
use super::IndexHook;
use qwen_index::Change;
use qwen_tasks::Workspace;

/// The queue to the live writer and the mark of the last change queued.
#[derive(Default)]
struct Live {
    sender: Option<Sender<(u64, Change)>>,
    queued: u64,
}

impl Live {
    /// Queues `change`; false when the writer is gone (nothing it was sent will be applied).
    fn send(&mut self, change: Change) -> bool {
        let Some(sender) = &self.sender else {
            return true;
        };
        self.queued += 1;
        sender.send((self.queued, change)).is_ok()
    }
}

/// Where the front door sends index changes.
pub struct IndexFeed {
    live: Mutex<Live>,
    /// The mark of the last change applied (or skipped after an error).
    applied: Arc<watch::Sender<u64>>,
    hook: Option<IndexHook>,
}

impl Default for IndexFeed {
    fn default() -> IndexFeed {
        IndexFeed::new(None)
    }
}

impl IndexFeed {
    /// A feed whose writer calls `hook` (a test seam) before applying each change.
    pub fn new(hook: Option<IndexHook>) -> IndexFeed {
        IndexFeed {
            live: Mutex::new(Live::default()),
            applied: Arc::new(watch::channel(0).0),
            hook,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a writer thread for `workspace`, replays the open documents into it and routes every later
    /// change to it. A previous writer (an earlier workspace) finishes its queue and stops.
    pub fn go_live(&self, documents: &SharedDocuments, workspace: Arc<Workspace>) {
        let (sender, receiver) = channel::<(u64, Change)>();
        {
            let docs = documents.lock();
            let mut live = self.lock();
            live.sender = Some(sender);
            for change in docs.replay() {
                live.send(change);
            }
            // (A writer that cannot start is handled below.)
        }
        let applied = self.applied.clone();
        let hook = self.hook.clone();
        let spawned = std::thread::Builder::new()
            .name("qwen-ls-index-writer".to_owned())
            .spawn(move || {
                for (mark, change) in receiver {
                    let what = describe(&change);
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if let Some(hook) = &hook {
                            hook(&change);
                        }
                        workspace.apply_change(change)
                    }));
                    match result {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!("index: {what}: {e}"),
                        Err(_) => tracing::error!("index: {what}: panicked; change skipped"),
                    }
                    publish(&applied, mark);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the index writer: {e}; the index will not follow edits");
            let mut live = self.lock();
            live.sender = None;
            // Nothing will apply what was queued: nobody may wait for it.
            publish(&self.applied, live.queued);
        }
    }

    /// Queues a change that does not come from the front door (file events); ignored until live.
    pub fn send_change(&self, change: Change) {
        let mut live = self.lock();
        if !live.send(change) {
            tracing::error!("the index writer stopped; the index no longer follows edits");
            live.sender = None;
            // Nothing will apply what was queued: nobody may wait for it.
            publish(&self.applied, live.queued);
        }
    }

    /// The mark of the last change queued.
    pub fn mark(&self) -> u64 {
        self.lock().queued
    }

    /// Resolves once the writer has applied every change up to `mark`.
    pub fn reached(&self, mark: u64) -> BoxFuture<'static, ()> {
        let mut applied = self.applied.subscribe();
        async move {
            // The sender lives as long as the feed, which outlives every request.
            let _ = applied.wait_for(|&done| done >= mark).await;
        }
        .boxed()
    }
}

/// Raises the applied mark to `mark` (an earlier workspace's writer finishing its queue never lowers it).
fn publish(applied: &watch::Sender<u64>, mark: u64) {
    applied.send_if_modified(|done| {
        let newer = mark > *done;
        if newer {
            *done = mark;
        }
        newer
    });
}

impl ChangeSink for IndexFeed {
    fn send(&self, change: Change) {
        self.send_change(change);
    }

    fn mark(&self) -> u64 {
        IndexFeed::mark(self)
    }

    fn reached(&self, mark: u64) -> BoxFuture<'static, ()> {
        IndexFeed::reached(self, mark)
    }
}

/// `Arc<IndexFeed>` is what the front door holds.
impl ChangeSink for Arc<IndexFeed> {
    fn send(&self, change: Change) {
        self.send_change(change);
    }

    fn mark(&self) -> u64 {
        IndexFeed::mark(self)
    }

    fn reached(&self, mark: u64) -> BoxFuture<'static, ()> {
        IndexFeed::reached(self, mark)
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
        Change::IgnoreRules { dir } => format!("ignore rules of {dir:?}"),
    }
}
