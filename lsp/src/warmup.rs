//! Warm-ups: when the editor shows where the user is — a document opened, an edit, a completion request —
//! prefill the part of the next completion prompt before the cursor while the engine has nothing else to do
//! (`tasks::warm_up`), so that the next suggestion there starts from a warm KV cache.
//!
//! One target at a time, the newest: a new one cancels the warm-up running for an older one. A target is
//! acted on only after [`QUIET`] without a newer one (no prompt is built per keystroke), and the generator
//! runs it only while no request waits, stopping within one layer when a request arrives. A completion
//! request cancels every warm-up, running or pending, as soon as it arrives: a warm-up prepared for an older
//! target (the start of a just-opened file) would otherwise take the engine the moment the request is done and
//! cut the KV session the request filled back to their common prefix; the answered request sets the next
//! target. What the server does not know it guesses: a document opened without an edit is warmed where its
//! last request was, else at its start.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// [`Warmer::news`] when it was set.
    news: u64,
}

/// The warm-up scheduler; see the module documentation.
#[derive(Default)]
pub struct Warmer {
    latest: Mutex<Option<Target>>,
    wake: Notify,
    running: Mutex<Option<CancelToken>>,
    /// The last request position per document (for a document opened again).
    last_request: Mutex<HashMap<Uri, usize>>,
    /// Counts targets and arrived requests: a warm-up whose target is not the newest news is stale.
    news: AtomicU64,
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
            news: self.news.fetch_add(1, Ordering::SeqCst) + 1,
        });
        self.cancel_running();
        self.wake.notify_one();
    }

    /// A completion request at `offset` of `uri` arrived: no warm-up runs until it is answered (see the
    /// module documentation).
    pub fn request_arrived(&self, uri: &Uri, offset: usize) {
        lock(&self.last_request).insert(uri.clone(), offset);
        self.news.fetch_add(1, Ordering::SeqCst);
        *lock(&self.latest) = None;
        self.cancel_running();
    }

    fn cancel_running(&self) {
        if let Some(running) = lock(&self.running).take() {
            running.cancel();
        }
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
        // News between taking the target and registering `cancel` found nothing to cancel.
        if self.news.load(Ordering::SeqCst) != target.news {
            cancel.cancel();
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A host whose warm-up holds the engine until it is cancelled, recording where each one ran.
    struct Host {
        document: Document,
        /// (offset, cancelled) of each warm-up that started; `cancelled` is set when it ends.
        runs: Mutex<Vec<(usize, bool)>>,
    }

    impl WarmHost for Host {
        fn completions_enabled(&self) -> bool {
            true
        }

        fn document(&self, _: &Uri) -> Option<(Document, Option<String>)> {
            Some((self.document.clone(), None))
        }

        fn warm_up(
            &self,
            at: &DocumentPosition,
            cancel: &CancelToken,
        ) -> Option<Result<WarmOutput, TaskError>> {
            let run = {
                let mut runs = lock(&self.runs);
                runs.push((at.offset, false));
                runs.len() - 1
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cancel.is_cancelled() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            lock(&self.runs)[run].1 = cancel.is_cancelled();
            Some(Err(TaskError::Cancelled))
        }

        fn log(&self, _: &WarmUp) {}
    }

    fn started() -> (Arc<Warmer>, Arc<Host>, Uri) {
        let uri = Uri::from_str("file:///w/src/lib.rs").expect("uri");
        let host = Arc::new(Host {
            document: Document {
                uri: uri.clone(),
                language_id: "rust".into(),
                version: 1,
                text: ropey::Rope::from_str("fn a() {}\nfn b() {}\n"),
                file: None,
                indexed_path: None,
                last_edit: None,
                refused: None,
            },
            runs: Mutex::new(Vec::new()),
        });
        let warmer = Arc::new(Warmer::default());
        tokio::spawn(warmer.clone().run(host.clone()));
        (warmer, host, uri)
    }

    async fn runs_after(host: &Host, wait: Duration) -> Vec<(usize, bool)> {
        tokio::time::sleep(wait).await;
        lock(&host.runs).clone()
    }

    /// The runs once they equal `want` (a loaded machine may start a warm-up late), or what they are after 10 s.
    async fn runs_become(host: &Host, want: &[(usize, bool)]) -> Vec<(usize, bool)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let runs = lock(&host.runs).clone();
            if runs == want || Instant::now() > deadline {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_cancels_the_running_warm_up_and_the_answer_sets_the_next_target() {
        let (warmer, host, uri) = started();
        warmer.want(&uri, None, Trigger::Open);
        // Opened without an edit: warmed at the start, holding the engine.
        assert_eq!(runs_become(&host, &[(0, false)]).await, vec![(0, false)]);
        warmer.request_arrived(&uri, 12);
        // Cancelled at once, and nothing else runs while the request is served.
        assert_eq!(runs_become(&host, &[(0, true)]).await, vec![(0, true)]);
        assert_eq!(runs_after(&host, QUIET * 3).await, vec![(0, true)]);
        warmer.want(&uri, Some(12), Trigger::Request);
        let want = [(0, true), (12, false)];
        assert_eq!(runs_become(&host, &want).await, want);
        warmer.request_arrived(&uri, 12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_right_after_opening_leaves_no_warm_up_for_the_opening() {
        let (warmer, host, uri) = started();
        warmer.want(&uri, None, Trigger::Open);
        warmer.request_arrived(&uri, 12);
        assert_eq!(runs_after(&host, QUIET * 3).await, vec![]);
    }
}
