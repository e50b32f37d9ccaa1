//! `$/progress` work-done streams: created with `window/workDoneProgress/create` when the client supports them
//! (a no-op otherwise), fed from any thread through a [`Reporter`] (which is also the store's `Progress`), ended
//! once every report is out. A stream begun with [`WorkDone::begin_cancellable`] is offered to the user as
//! cancellable; `window/workDoneProgress/cancel` for its token fires the work's cancel token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qwen_engine::CancelToken;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tower_lsp_server::ls_types::notification::Progress as ProgressNotification;
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::{
    NumberOrString, ProgressParams, ProgressParamsValue, ProgressToken, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressCancelParams, WorkDoneProgressCreateParams,
    WorkDoneProgressEnd, WorkDoneProgressReport,
};

use super::state::State;
use qwen_store::Progress;

/// A work-done progress stream (a no-op when the client does not support them).
pub struct WorkDone {
    sender: Option<UnboundedSender<Event>>,
    pump: Option<tokio::task::JoinHandle<()>>,
    /// The token a cancellable stream registered in the state (removed at the end).
    registered: Option<(Arc<State>, String)>,
}

enum Event {
    Phase(u64, String),
    Advance(u64),
    Note(String),
}

impl WorkDone {
    const NONE: WorkDone = WorkDone {
        sender: None,
        pump: None,
        registered: None,
    };

    /// Begins a stream the user cannot cancel.
    pub async fn begin(state: &Arc<State>, title: &str, message: &str) -> WorkDone {
        WorkDone::start(state, title, message, None).await
    }

    /// Begins a stream the user can cancel: `window/workDoneProgress/cancel` fires `cancel`.
    pub async fn begin_cancellable(
        state: &Arc<State>,
        title: &str,
        message: &str,
        cancel: CancelToken,
    ) -> WorkDone {
        WorkDone::start(state, title, message, Some(cancel)).await
    }

    async fn start(
        state: &Arc<State>,
        title: &str,
        message: &str,
        cancel: Option<CancelToken>,
    ) -> WorkDone {
        if !state.support().work_done_progress {
            return WorkDone::NONE;
        }
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("qwen-ls/progress/{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let token = NumberOrString::String(name.clone());
        let created = state
            .client
            .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                token: token.clone(),
            })
            .await;
        if let Err(e) = created {
            tracing::info!("client refused a progress token: {e}");
            return WorkDone::NONE;
        }
        let cancellable = cancel.is_some();
        let registered = cancel.map(|cancel| {
            state.progress_cancels.register(&name, cancel);
            (state.clone(), name)
        });
        send(
            state,
            &token,
            WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_owned(),
                cancellable: Some(cancellable),
                message: Some(message.to_owned()),
                percentage: None,
            }),
        )
        .await;
        let (sender, receiver) = unbounded_channel();
        let pump = tokio::spawn(pump(state.clone(), token.clone(), cancellable, receiver));
        WorkDone {
            sender: Some(sender),
            pump: Some(pump),
            registered,
        }
    }

    /// A `store::Progress` that forwards to this stream from any thread.
    pub fn reporter(&self) -> Reporter {
        Reporter {
            sender: self.sender.clone(),
        }
    }

    /// Ends the stream (the pump sends `end` once every report is out).
    pub async fn end(mut self) {
        self.sender = None;
        if let Some((state, name)) = self.registered.take() {
            state.progress_cancels.remove(&name);
        }
        if let Some(pump) = self.pump.take() {
            let _ = pump.await;
        }
    }
}

/// `window/workDoneProgress/cancel`: fires the cancel token of the stream, if it is still running.
pub fn cancel(state: &State, params: &WorkDoneProgressCancelParams) {
    let name = match &params.token {
        NumberOrString::String(s) => s.clone(),
        NumberOrString::Number(n) => n.to_string(),
    };
    if state.progress_cancels.cancel(&name) {
        tracing::info!("cancelled by the user: {name}");
    }
}

/// Sends one `$/progress`.
async fn send(state: &State, token: &ProgressToken, value: WorkDoneProgress) {
    state
        .client
        .send_notification::<ProgressNotification>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}

/// Forwards reporter events as `$/progress` reports (at most every 200 ms), then sends the end.
async fn pump(
    state: Arc<State>,
    token: ProgressToken,
    cancellable: bool,
    mut events: UnboundedReceiver<Event>,
) {
    let (mut total, mut done, mut label) = (0u64, 0u64, String::new());
    let mut last_sent = Instant::now() - Duration::from_secs(1);
    while let Some(event) = events.recv().await {
        let message = match event {
            Event::Phase(t, l) => {
                (total, done, label) = (t, 0, l);
                Some(label.clone())
            }
            Event::Advance(bytes) => {
                done = done.saturating_add(bytes);
                (last_sent.elapsed() >= Duration::from_millis(200)).then(|| label.clone())
            }
            Event::Note(note) => Some(note),
        };
        if let Some(message) = message {
            last_sent = Instant::now();
            let percentage = (total > 0).then(|| ((done.min(total) * 100) / total) as u32);
            send(
                &state,
                &token,
                WorkDoneProgress::Report(WorkDoneProgressReport {
                    cancellable: Some(cancellable),
                    message: Some(message),
                    percentage,
                }),
            )
            .await;
        }
    }
    send(
        &state,
        &token,
        WorkDoneProgress::End(WorkDoneProgressEnd { message: None }),
    )
    .await;
}

/// The store's progress trait over a channel (called from the blocking loader thread).
pub struct Reporter {
    sender: Option<UnboundedSender<Event>>,
}

impl Reporter {
    fn emit(&self, event: Event) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(event);
        }
    }
}

impl Progress for Reporter {
    fn start(&self, total: u64, label: &str) {
        self.emit(Event::Phase(total, label.to_owned()));
    }

    fn advance(&self, bytes: u64) {
        self.emit(Event::Advance(bytes));
    }

    fn finish(&self) {}

    fn note(&self, message: &str) {
        tracing::info!("{message}");
        self.emit(Event::Note(message.to_owned()));
    }
}
