//! Warm-ups: when the editor shows where the user is — a document opened, an edit, a completion request —
//! prefill the part of the next completion prompt before the cursor while the engine has nothing else to do
//! (`tasks::warm_up`), so that the next suggestion there starts from a warm KV cache.
//!
//! One target at a time, the newest: a new one cancels the warm-up running for an older one. A target is
//! acted on only after [`QUIET`] without a newer one (no prompt is built per keystroke), and the generator
//! runs it only while no request waits, stopping within one layer when a request arrives. What the server
//! does not know it guesses: a document opened without an edit is warmed where its last request was, else
//! at its start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tower_lsp_server::ls_types::Uri;

use super::documents::Document;
use super::guard::blocking;
use super::guard::lock;
use qwen_tasks::measure::WarmUp;
use qwen_tasks::{CancelToken, DocumentPosition, TaskError, WarmFinish, WarmOutput};

/// What a warm-up reads from the server and where it reports. The server state implements it; a trait so
/// that the scheduler, which the document store holds, does not depend on the state that holds the store.
pub trait WarmHost: Send + Sync + 'static {
    /// Whether inline completions are on (`completion.enabled`).
    fn completions_enabled(&self) -> bool;
    /// The open document and its workspace-relative path (for the log), if it is open.
    fn document(&self, uri: &Uri) -> Option<(Document, Option<String>)>;
    /// Runs the warm-up at `at` (`None`: the model or the workspace is not ready).
    fn warm_up(
        &self,
        at: &DocumentPosition,
        cancel: &CancelToken,
    ) -> Option<Result<WarmOutput, TaskError>>;
    /// Records a finished warm-up in the suggestion log.
    fn log(&self, warm_up: &WarmUp);
}

/// How long targets must stop coming before one is acted on.
pub const QUIET: Duration = Duration::from_millis(200);

/// What showed where the user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `didOpen`.
    Open,
    /// `didChange`.
    Edit,
    /// A completion request (answered).
    Request,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Open => "open",
            Trigger::Edit => "edit",
            Trigger::Request => "request",
        }
    }
}

#[derive(Debug, Clone)]
struct Target {
    uri: Uri,
    /// The cursor, when the trigger knew it (a request); else the document's last edit is used.
    offset: Option<usize>,
    trigger: Trigger,
    at: Instant,
}

/// The warm-up scheduler; see the module documentation.
#[derive(Default)]
pub struct Warmer {
    latest: Mutex<Option<Target>>,
    wake: Notify,
    running: Mutex<Option<CancelToken>>,
    /// The last request position per document (for a document opened again).
    last_request: Mutex<HashMap<Uri, usize>>,
}

impl Warmer {
    /// The user is at `offset` of `uri` (or wherever its last edit left the cursor, for `None`).
    pub fn want(&self, uri: &Uri, offset: Option<usize>, trigger: Trigger) {
        if let (Some(offset), Trigger::Request) = (offset, trigger) {
            lock(&self.last_request).insert(uri.clone(), offset);
        }
        *lock(&self.latest) = Some(Target {
            uri: uri.clone(),
            offset,
            trigger,
            at: Instant::now(),
        });
        if let Some(running) = lock(&self.running).take() {
            running.cancel();
        }
        self.wake.notify_one();
    }

    /// Forgets a closed document.
    pub fn forget(&self, uri: &Uri) {
        lock(&self.last_request).remove(uri);
        let mut latest = lock(&self.latest);
        if latest.as_ref().is_some_and(|t| &t.uri == uri) {
            *latest = None;
        }
    }

    /// The target once no newer one came for [`QUIET`].
    async fn settled(&self) -> Option<Target> {
        loop {
            let at = lock(&self.latest).as_ref()?.at;
            tokio::time::sleep_until((at + QUIET).into()).await;
            let mut latest = lock(&self.latest);
            if latest.as_ref().is_some_and(|t| t.at == at) {
                return latest.take();
            }
        }
    }

    /// Serves targets until the server ends (spawned once per server).
    pub async fn run(self: Arc<Self>, host: Arc<impl WarmHost>) {
        loop {
            self.wake.notified().await;
            let Some(target) = self.settled().await else {
                continue;
            };
            self.warm(&host, target).await;
        }
    }

    async fn warm(&self, host: &Arc<impl WarmHost>, target: Target) {
        if !host.completions_enabled() {
            return;
        }
        let Some((doc, relative_path)) = host.document(&target.uri) else {
            return;
        };
        let remembered = lock(&self.last_request).get(&target.uri).copied();
        let offset = target
            .offset
            .or(doc.last_edit)
            .or(remembered)
            .unwrap_or(0)
            .min(doc.text.len_bytes());
        let document = relative_path.unwrap_or_else(|| target.uri.as_str().to_owned());
        let cancel = CancelToken::new();
        *lock(&self.running) = Some(cancel.clone());
        let at = doc.position(offset);
        let warming = host.clone();
        // A panic inside a warm-up must not end the warm-ups: it is one failed warm-up.
        let result = blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                warming.warm_up(&at, &cancel)
            }))
        })
        .await
        .unwrap_or_else(|_| {
            Some(Err(TaskError::Generate(qwen_tasks::GenError::Backend(
                "the warm-up panicked (a bug; see the log)".to_owned(),
            ))))
        });
        let Some(result) = result else {
            return;
        };
        let (finish, output) = match result {
            Ok(output) => {
                let finish = match output.finish {
                    WarmFinish::Unsupported => return,
                    WarmFinish::Done => "done",
                    WarmFinish::AlreadyWarm => "already-warm",
                    WarmFinish::Preempted => "preempted",
                    WarmFinish::Cancelled => "cancelled",
                };
                (finish, Some(output))
            }
            Err(TaskError::Cancelled) => ("cancelled", None),
            Err(e) => {
                tracing::warn!("warm-up failed: {e}");
                ("failed", None)
            }
        };
        tracing::debug!(document, finish, "warm-up");
        host.log(&WarmUp {
            document,
            trigger: target.trigger.as_str(),
            finish,
            prompt_tokens: output.as_ref().map_or(0, |o| o.prompt_tokens),
            reused_tokens: output.as_ref().map_or(0, |o| o.reused_tokens),
            prefilled_tokens: output.as_ref().map_or(0, |o| o.prefilled_tokens),
            queue: Duration::from_secs_f64(output.as_ref().map_or(0.0, |o| o.queue_secs)),
            prefill: Duration::from_secs_f64(output.as_ref().map_or(0.0, |o| o.prefill_secs)),
        });
    }
}
