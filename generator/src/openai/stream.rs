//! One streamed generation: a reader thread sends the request and turns the event stream into [`Event`]s; the
//! caller's thread consumes them — stop strings, restoring defused markers, the callback, statistics — and
//! polls the cancel token between events, so a cancelled request returns within one poll interval whatever
//! the server does. Ending early (cancel, the callback's `Flow::Stop`, a stop string) shuts the agent down,
//! which closes the connection at once; the server sees the client leave and stops generating.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use qwen_engine::stop::StopScanner;
use qwen_engine::CancelToken;

use super::config::redact_userinfo;
use super::defuse::Restore;
use super::sse::{excerpt, SseError, SseEvent, SseReader};
use super::transport::{Client, Failure, RetryKind};
use super::wire::{self, Chunk, Usage};
use crate::{FinishReason, Flow, GenError, GenOutput, GenStats};

/// How often the caller's thread looks at the cancel token while it waits for the server.
const POLL: Duration = Duration::from_millis(20);

/// Events queued between the reader thread and the consumer (back-pressure beyond that).
const QUEUE: usize = 256;

/// What the reader thread reports.
#[derive(Debug)]
enum Event {
    /// The server accepted the request (2xx headers).
    Started,
    /// A parsed chunk.
    Chunk(Box<Chunk>),
    /// `data: [DONE]`.
    Done,
    /// The body ended without `[DONE]`.
    Eof,
    /// The request failed before any answer (may be retried).
    Rejected(Failure),
    /// Reading the stream failed after it started.
    Broken(ureq::Error),
    /// The stream is not what an OpenAI-compatible server sends.
    Malformed(String),
}

/// One request to run.
pub(crate) struct Attempt<'a> {
    /// The client (key, timeouts, messages).
    pub(crate) client: &'a Client,
    /// Full URL.
    pub(crate) url: &'a str,
    /// The JSON body.
    pub(crate) body: &'a [u8],
    /// The request's own stop strings (a match is `FinishReason::StopString`).
    pub(crate) request_stops: &'a [String],
    /// The prompt kind's special-token texts (a match is `FinishReason::EndOfText`).
    pub(crate) special_stops: &'a [String],
}

/// How an attempt ended.
pub(crate) enum Outcome {
    /// An answer (possibly cut short by cancel/stop).
    Finished(GenOutput),
    /// Failed before any answer text; the caller decides about a retry.
    Rejected(Failure),
    /// Failed for good.
    Failed(GenError),
}

/// Runs one attempt; see the module documentation.
pub(crate) fn run(
    attempt: &Attempt<'_>,
    cancel: &CancelToken,
    on_text: &mut dyn FnMut(&str) -> Flow,
) -> Outcome {
    let agent = attempt.client.stream_agent();
    let events = spawn_reader(attempt, agent.clone());
    let mut state = Consumer::new(attempt);
    let outcome = loop {
        if cancel.is_cancelled() {
            break state.finish(FinishReason::Cancelled);
        }
        let event = match events.recv_timeout(POLL) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                break state
                    .malformed("the reader stopped without a result (a bug; see the log)".into())
            }
        };
        if let Some(outcome) = state.handle(event, on_text) {
            break outcome;
        }
    };
    // Closes the connection if the stream is still open (cancel, stop, error): the reader thread's blocked
    // read fails at once and it exits; the server notices the client is gone.
    agent.shutdown();
    outcome
}

fn spawn_reader(attempt: &Attempt<'_>, agent: ureq::Agent) -> Receiver<Event> {
    let (tx, rx) = sync_channel(QUEUE);
    let client = attempt.client.clone();
    let url = attempt.url.to_string();
    let body = attempt.body.to_vec();
    // The reader's logs go where the caller's go (a test's capturing subscriber, the LSP's log file).
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let span = tracing::Span::current();
    let spawned = std::thread::Builder::new()
        .name("qwen-ls-openai".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                span.in_scope(|| read_stream(&client, &agent, &url, &body, &tx));
            });
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the remote reader thread: {e}");
    }
    rx
}

/// The reader thread: request, headers, events. Returns when the stream ends, fails, or nobody listens.
fn read_stream(
    client: &Client,
    agent: &ureq::Agent,
    url: &str,
    body: &[u8],
    tx: &SyncSender<Event>,
) {
    tracing::debug!(bytes = body.len(), "POST {}", redact_userinfo(url));
    let response = match client.post_stream(agent, url, body) {
        Ok(response) => response,
        Err(failure) => {
            let _ = tx.send(Event::Rejected(failure));
            return;
        }
    };
    tracing::debug!(status = response.status().as_u16(), "streaming");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.is_empty() && !content_type.contains("event-stream") {
        // A web page, or a server that ignored `stream: true`: not something this client can read.
        let mut head = String::new();
        let _ = response
            .into_body()
            .into_with_config()
            .limit(4096)
            .lossy_utf8(true)
            .reader()
            .read_to_string(&mut head);
        let _ = tx.send(Event::Malformed(format!(
            "the answer is {content_type}, not an event stream: {}",
            excerpt(&head)
        )));
        return;
    }
    if tx.send(Event::Started).is_err() {
        return;
    }
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let mut sse = SseReader::new(reader);
    loop {
        let event = match sse.next_event() {
            Ok(Some(SseEvent::Done)) => Event::Done,
            Ok(None) => Event::Eof,
            Ok(Some(SseEvent::Data(data))) => match serde_json::from_str::<Chunk>(&data) {
                Ok(chunk) => Event::Chunk(Box::new(chunk)),
                Err(e) => Event::Malformed(format!(
                    "an event is not a valid chunk ({e}): {}",
                    excerpt(&data)
                )),
            },
            Err(SseError::Io(e)) => Event::Broken(ureq::Error::from(e)),
            Err(SseError::Malformed(reason)) => Event::Malformed(reason),
        };
        let last = !matches!(event, Event::Chunk(_));
        // A send fails when the consumer is gone (cancelled, stopped): dropping the body closes the stream.
        if tx.send(event).is_err() || last {
            return;
        }
    }
}

/// The consumer's state: text so far, stop scanning, counters.
struct Consumer<'a> {
    attempt: &'a Attempt<'a>,
    scanner: StopScanner,
    restore: Restore,
    text: String,
    started: Instant,
    headers_at: Option<Instant>,
    first_text_at: Option<Instant>,
    chunks_with_text: usize,
    /// Chunks received (with or without text).
    chunks: usize,
    server_finish: Option<(String, Option<serde_json::Value>)>,
    usage: Option<Usage>,
}

impl<'a> Consumer<'a> {
    fn new(attempt: &'a Attempt<'a>) -> Self {
        let all: Vec<String> = attempt
            .request_stops
            .iter()
            .chain(attempt.special_stops)
            .cloned()
            .collect();
        Consumer {
            attempt,
            scanner: StopScanner::new(&all),
            restore: Restore::default(),
            text: String::new(),
            started: Instant::now(),
            headers_at: None,
            first_text_at: None,
            chunks_with_text: 0,
            chunks: 0,
            server_finish: None,
            usage: None,
        }
    }

    fn url(&self) -> String {
        redact_userinfo(self.attempt.url)
    }

    /// Handles one event; `Some` when the attempt is over.
    fn handle(&mut self, event: Event, on_text: &mut dyn FnMut(&str) -> Flow) -> Option<Outcome> {
        match event {
            Event::Started => {
                self.headers_at = Some(Instant::now());
                None
            }
            Event::Rejected(failure) => Some(Outcome::Rejected(failure)),
            Event::Chunk(chunk) => self.chunk(*chunk, on_text),
            Event::Done => Some(self.end(on_text)),
            Event::Eof if self.server_finish.is_some() => Some(self.end(on_text)),
            Event::Eof => Some(self.ended_early()),
            Event::Malformed(reason) => Some(self.malformed(reason)),
            Event::Broken(error) => Some(self.broken(error)),
        }
    }

    fn chunk(&mut self, chunk: Chunk, on_text: &mut dyn FnMut(&str) -> Flow) -> Option<Outcome> {
        self.chunks += 1;
        if let Some(error) = &chunk.error {
            let message = self
                .attempt
                .client
                .redact(&wire::error_value_message(error).unwrap_or_else(|| error.to_string()));
            tracing::debug!("error event in the stream: {message}");
            let error = if wire::is_context_length_error(&message) {
                GenError::ContextLength {
                    window: wire::stated_window(&message),
                    message: excerpt(&message),
                }
            } else {
                GenError::Backend(format!(
                    "the server at {} reported an error mid-answer: {}",
                    self.url(),
                    excerpt(&message)
                ))
            };
            return Some(Outcome::Failed(error));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.text().filter(|t| !t.is_empty()) {
                self.chunks_with_text += 1;
                if self.first_text_at.is_none() {
                    self.first_text_at = Some(Instant::now());
                    tracing::debug!(
                        secs = self.started.elapsed().as_secs_f64(),
                        "first text from the server"
                    );
                }
                let released = self.scanner.push(delta);
                if self.emit(&released.text, on_text) == Flow::Stop {
                    return Some(self.finish(FinishReason::Stopped));
                }
                if let Some(stop) = released.stop {
                    let finish = self.stop_finish(&stop);
                    return Some(self.finish(finish));
                }
            }
            if let Some(reason) = &choice.finish_reason {
                self.server_finish = Some((reason.clone(), choice.stop_reason.clone()));
            }
        }
        None
    }

    /// Sends restored text to the callback (and keeps it).
    fn emit(&mut self, raw: &str, on_text: &mut dyn FnMut(&str) -> Flow) -> Flow {
        if raw.is_empty() {
            return Flow::Continue;
        }
        let text = self.restore.push(raw);
        self.text.push_str(&text);
        on_text(&text)
    }

    fn stop_finish(&self, stop: &str) -> FinishReason {
        if self.attempt.request_stops.iter().any(|s| s == stop) {
            FinishReason::StopString(stop.to_string())
        } else {
            FinishReason::EndOfText
        }
    }

    /// The stream ended normally: release held-back text, map the server's finish reason.
    fn end(&mut self, on_text: &mut dyn FnMut(&str) -> Flow) -> Outcome {
        let rest = self.scanner.finish();
        if self.emit(&rest, on_text) == Flow::Stop {
            return self.finish(FinishReason::Stopped);
        }
        let finish = match self.server_finish.take() {
            Some((reason, _)) if reason == "length" => FinishReason::MaxTokens,
            Some((reason, Some(serde_json::Value::String(s)))) if reason == "stop" => {
                self.stop_finish(&s)
            }
            Some((reason, _)) if reason == "stop" || reason == "eos" => FinishReason::EndOfText,
            Some((reason, _)) => {
                tracing::debug!("unknown finish_reason {reason:?}, taken as the end of the answer");
                FinishReason::EndOfText
            }
            None => FinishReason::EndOfText,
        };
        self.finish(finish)
    }

    fn finish(&mut self, finish: FinishReason) -> Outcome {
        let now = Instant::now();
        let total = now.duration_since(self.started).as_secs_f64();
        let headers = self
            .headers_at
            .map_or(total, |t| t.duration_since(self.started).as_secs_f64());
        let first = self
            .first_text_at
            .map(|t| t.duration_since(self.started).as_secs_f64());
        let usage = self.usage.unwrap_or_default();
        let prompt_tokens = usage.prompt_tokens.unwrap_or(0);
        let cached_tokens = usage.cached_tokens();
        let generated_tokens = usage.completion_tokens.unwrap_or(self.chunks_with_text);
        let prefill_secs = first.map_or(0.0, |f| (f - headers).max(0.0));
        let decode_secs = first.map_or(0.0, |f| (total - f).max(0.0));
        let stats = GenStats {
            prompt_tokens,
            reused_tokens: 0,
            cached_tokens,
            prefilled_tokens: prompt_tokens.saturating_sub(cached_tokens.unwrap_or(0)),
            generated_tokens,
            queue_secs: headers,
            prefill_secs,
            decode_secs,
            prefill_tok_s: rate(prompt_tokens, prefill_secs),
            decode_tok_s: rate(generated_tokens.saturating_sub(1), decode_secs),
            ..GenStats::default()
        };
        tracing::debug!(
            ?finish,
            prompt_tokens,
            cached_tokens,
            generated_tokens,
            secs = total,
            "remote generation finished"
        );
        Outcome::Finished(GenOutput {
            text: std::mem::take(&mut self.text),
            finish,
            stats,
        })
    }

    /// The body ended before a finish reason or `[DONE]`: cut off mid-answer (a server that died or restarted),
    /// or, with nothing sent at all, a request the server failed after accepting it.
    fn ended_early(&self) -> Outcome {
        let url = self.url();
        if self.chunks == 0 {
            return Outcome::Failed(GenError::Backend(format!(
                "the server at {url} accepted the request but ended the stream without an answer; its log says \
                 why (llama-cpp-python does this when the prompt exceeds its context window: lower the budgets \
                 or serve the model with a larger context)"
            )));
        }
        Outcome::Failed(GenError::Interrupted {
            url,
            received: self.text.chars().count(),
            reason: "the stream ended before the answer was complete".into(),
        })
    }

    fn malformed(&self, reason: String) -> Outcome {
        Outcome::Failed(GenError::MalformedStream {
            url: self.url(),
            reason,
        })
    }

    fn broken(&self, error: ureq::Error) -> Outcome {
        let url = self.url();
        if let ureq::Error::Timeout(kind) = error {
            return Outcome::Failed(self.attempt.client.timeout_error(url, kind));
        }
        if matches!(&error, ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut) {
            return Outcome::Failed(GenError::Timeout {
                url,
                phase: "next chunk of the answer",
                secs: self.attempt.client.timeouts.idle.as_secs().max(1),
            });
        }
        let reason = self.attempt.client.redact(&error.to_string());
        if self.text.is_empty() && self.first_text_at.is_none() {
            // Nothing reached the caller: as good as a failed connection, so it may be retried.
            return Outcome::Rejected(Failure {
                error: GenError::Interrupted {
                    url,
                    received: 0,
                    reason,
                },
                retry: RetryKind::Connect,
            });
        }
        Outcome::Failed(GenError::Interrupted {
            url,
            received: self.text.chars().count(),
            reason,
        })
    }
}

fn rate(tokens: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        tokens as f64 / secs
    } else {
        0.0
    }
}
