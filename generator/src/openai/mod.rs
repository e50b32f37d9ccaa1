//! `OpenAiGenerator`: the [`Generator`] boundary over an OpenAI-compatible HTTP server — vLLM, SGLang or
//! llama.cpp's server — for models too large for one machine (Qwen3-Coder-480B-A35B).
//!
//! - **Raw prompts** (FIM, repository FIM) go to streaming `/v1/completions` as text: special tokens as their
//!   literal text, which these servers tokenize as specials, and user text *defused* so it never does
//!   (`defuse.rs`). The prompt kind's stop tokens are sent as `stop` strings (`<|endoftext|>`, `<|fim_pad|>`,
//!   `<|file_sep|>`, `<|im_end|>`) next to the request's own, and are also scanned for on our side, so no server
//!   can stream part of one.
//! - **Chat prompts** go to streaming `/v1/chat/completions`; the server applies the model's chat template.
//! - **Discovery**: `/v1/models` names the model (empty `openai.model` = the first listed; an unknown name is
//!   [`GenError::ModelNotFound`] listing the served ones) and, on vLLM/SGLang, its context window
//!   (`max_model_len`), which the tasks use to size prompts. A server's context-length error teaches the window
//!   too, so the next prompt is sized to fit.
//! - **Every wait is bounded** (connect, response headers, each read of the stream); busy answers (429/502/503/
//!   504) and failed connections are retried with exponential back-off and jitter, honouring `Retry-After`,
//!   but only while no text has reached the caller; other 4xx answers never are.
//! - **Cancellation and early stop close the connection** (see `stream.rs`), so the server stops generating.
//! - **Prefix caching** is the server's: prompts are built prefix-stable by the tasks; the cached-token count a
//!   server reports (`usage.prompt_tokens_details.cached_tokens`) lands in [`GenStats::cached_tokens`].
//! - **The API key** comes from the environment variable `openai.apiKeyEnv` names and is sent as
//!   `Authorization: Bearer`; it is never logged, never in a `Debug` output, and redacted from error messages.
//!
//! [`GenStats::cached_tokens`]: super::GenStats::cached_tokens

mod config;
mod defuse;
mod sse;
mod stream;
mod transport;
mod wire;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qwen_engine::CancelToken;

pub use config::{OpenAiConfig, OpenAiSettings, RetryPolicy, Timeouts};

use self::config::{check_key_env, check_transport, normalize_endpoint, redact_userinfo, ApiKey};
use self::stream::{Attempt, Outcome};
use self::transport::{Client, Failure, RetryKind};
use super::{
    FinishReason, Flow, GenError, GenOutput, GenPrompt, GenRequest, GenStats, Generator,
    GeneratorInfo,
};

/// The model a server serves, as `/v1/models` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteModel {
    /// The name to send in requests.
    pub id: String,
    /// The server's context window, when it states one (vLLM and SGLang do; llama.cpp's servers do not).
    pub context_window: Option<usize>,
}

/// The remote generator; see the module documentation.
pub struct OpenAiGenerator {
    config: OpenAiConfig,
    /// The endpoint, normalised (no trailing slash).
    base: String,
    client: Client,
    resolved: Mutex<Option<RemoteModel>>,
    /// A context window learned from a context-length error (0: none).
    learned_window: AtomicUsize,
}

impl std::fmt::Debug for OpenAiGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiGenerator")
            .field("endpoint", &self.client.endpoint_display)
            .field("model", &self.config.model)
            .field("api_key", &self.client.key)
            .finish_non_exhaustive()
    }
}

impl OpenAiGenerator {
    /// A generator for `config`. No network traffic: the server is first asked at [`discover`] or at the first
    /// generation. Fails on an unusable endpoint URL, a plain `http://` endpoint on another machine that is not
    /// explicitly allowed, and an API-key variable outside the accepted names. The API key is read from the
    /// environment now.
    ///
    /// [`discover`]: OpenAiGenerator::discover
    pub fn new(config: OpenAiConfig) -> Result<OpenAiGenerator, GenError> {
        let base = normalize_endpoint(&config.endpoint).map_err(GenError::Config)?;
        check_transport(&base, config.allow_http).map_err(GenError::Config)?;
        check_key_env(&config.api_key_env).map_err(GenError::Config)?;
        let key = ApiKey::from_env(&config.api_key_env);
        tracing::debug!(
            endpoint = %redact_userinfo(&base),
            api_key = key.is_some(),
            "remote backend configured"
        );
        let client = Client {
            endpoint_display: redact_userinfo(&base),
            key,
            key_env: config.api_key_env.clone(),
            timeouts: config.timeouts,
        };
        Ok(OpenAiGenerator {
            config,
            base,
            client,
            resolved: Mutex::new(None),
            learned_window: AtomicUsize::new(0),
        })
    }

    /// The endpoint, as configured (normalised; credentials in the URL redacted).
    pub fn endpoint(&self) -> &str {
        &self.client.endpoint_display
    }

    /// Asks `/v1/models` which model to use (the configured one, or the first listed) and remembers it.
    pub fn discover(&self) -> Result<RemoteModel, GenError> {
        self.discover_unless(&CancelToken::new())
    }

    /// [`discover`](OpenAiGenerator::discover), giving up between retries when `cancel` fires.
    fn discover_unless(&self, cancel: &CancelToken) -> Result<RemoteModel, GenError> {
        let models = self.list_models(cancel)?;
        let wanted = self.config.model.trim();
        let found = if wanted.is_empty() {
            models.first()
        } else {
            models.iter().find(|m| m.id == wanted)
        };
        let Some(found) = found else {
            if models.is_empty() {
                return Err(GenError::MalformedStream {
                    url: format!("{}/models", self.client.endpoint_display),
                    reason: "the server lists no models".into(),
                });
            }
            return Err(GenError::ModelNotFound {
                endpoint: self.client.endpoint_display.clone(),
                model: wanted.to_string(),
                available: models.into_iter().map(|m| m.id).collect(),
            });
        };
        let model = RemoteModel {
            id: found.id.clone(),
            context_window: found.max_model_len,
        };
        tracing::info!(
            model = %model.id,
            context_window = ?model.context_window,
            "remote model at {}",
            self.client.endpoint_display
        );
        *self.lock_resolved() = Some(model.clone());
        Ok(model)
    }

    /// `/v1/models`, with the retry policy (the last failure is returned if `cancel` fires while waiting).
    fn list_models(&self, cancel: &CancelToken) -> Result<Vec<wire::ModelEntry>, GenError> {
        let url = format!("{}/models", self.base);
        let mut retries = Retries::default();
        loop {
            let agent = self.client.discovery_agent();
            match self.client.get_json::<wire::ModelList>(&agent, &url) {
                Ok(list) => return Ok(list.data),
                Err(failure) => {
                    let Some(delay) = retries.delay(&self.config.retry, failure.retry) else {
                        return Err(retries.give_up(failure));
                    };
                    tracing::warn!("{}; retrying in {delay:.1?}", failure.error);
                    if !sleep_unless_cancelled(delay, cancel) {
                        return Err(failure.error);
                    }
                }
            }
        }
    }

    fn lock_resolved(&self) -> std::sync::MutexGuard<'_, Option<RemoteModel>> {
        self.resolved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The model to use, discovering it on first use.
    fn model(&self, cancel: &CancelToken) -> Result<RemoteModel, GenError> {
        if let Some(model) = self.lock_resolved().clone() {
            return Ok(model);
        }
        self.discover_unless(cancel)
    }

    /// A model-not-found error that lists what the server serves (best effort), forgetting the resolved model.
    fn model_not_found(&self, model: &str) -> GenError {
        *self.lock_resolved() = None;
        let available = self
            .list_models(&CancelToken::new())
            .map(|m| m.into_iter().map(|m| m.id).collect())
            .unwrap_or_default();
        GenError::ModelNotFound {
            endpoint: self.client.endpoint_display.clone(),
            model: model.to_string(),
            available,
        }
    }
}

/// Retry bookkeeping for one request.
#[derive(Debug, Default)]
struct Retries {
    busy: u32,
    connect: u32,
}

impl Retries {
    /// The wait before the next try after a failure of kind `retry`; `None` to give up.
    fn delay(&mut self, policy: &RetryPolicy, retry: RetryKind) -> Option<Duration> {
        match retry {
            RetryKind::Never => None,
            RetryKind::Busy { retry_after, .. } => {
                let too_long = retry_after.is_some_and(|d| d > policy.max_retry_after);
                if self.busy >= policy.busy_retries || too_long {
                    return None;
                }
                let delay = policy.delay(self.busy, retry_after);
                self.busy += 1;
                Some(delay)
            }
            RetryKind::Connect => {
                if self.connect >= policy.connect_retries {
                    return None;
                }
                let delay = policy.delay(self.connect, None);
                self.connect += 1;
                Some(delay)
            }
        }
    }

    /// The error to report when giving up (a busy error counts the attempts made).
    fn give_up(&self, failure: Failure) -> GenError {
        let mut error = failure.error;
        if let GenError::Busy { attempts, .. } = &mut error {
            *attempts = self.busy + self.connect + 1;
        }
        error
    }
}

/// Sleeps `delay` in short steps; false when `cancel` fired meanwhile.
fn sleep_unless_cancelled(delay: Duration, cancel: &CancelToken) -> bool {
    let until = Instant::now() + delay;
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

fn cancelled(started: Instant) -> GenOutput {
    GenOutput {
        text: String::new(),
        finish: FinishReason::Cancelled,
        stats: GenStats {
            queue_secs: started.elapsed().as_secs_f64(),
            ..GenStats::default()
        },
    }
}

impl Generator for OpenAiGenerator {
    fn info(&self) -> GeneratorInfo {
        let resolved = self.lock_resolved().clone();
        let learned = match self.learned_window.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        };
        let stated = resolved.as_ref().and_then(|m| m.context_window);
        let context_window = match (stated, learned) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let model = match resolved {
            Some(m) => m.id,
            None if !self.config.model.trim().is_empty() => self.config.model.trim().to_string(),
            None => format!("the first model of {}", self.client.endpoint_display),
        };
        GeneratorInfo {
            backend: "openai",
            model,
            context_window,
        }
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        let started = Instant::now();
        if cancel.is_cancelled() {
            return Ok(cancelled(started));
        }
        let model = match self.model(cancel) {
            Ok(model) => model,
            Err(_) if cancel.is_cancelled() => return Ok(cancelled(started)),
            Err(e) => return Err(e),
        };
        let session = request.session.as_ref().map_or("", |s| s.0.as_str());
        let _span =
            tracing::debug_span!("generate", backend = "openai", session, model = %model.id)
                .entered();
        let special_stops: Vec<String> = match &request.prompt {
            GenPrompt::Raw(prompt) => prompt.stop_specials(),
            GenPrompt::Chat(messages) => qwen_engine::Prompt::chat(messages, true).stop_specials(),
        }
        .iter()
        .map(|s| s.text().to_string())
        .collect();
        let mut stop = request.stop.clone();
        stop.extend(
            special_stops
                .iter()
                .filter(|s| !request.stop.contains(s))
                .cloned(),
        );
        let (api, body) = wire::request_body(request, &model.id, &stop);
        let body = serde_json::to_vec(&body).map_err(|e| GenError::Backend(e.to_string()))?;
        let url = format!("{}{}", self.base, api.path());
        let attempt = Attempt {
            client: &self.client,
            url: &url,
            body: &body,
            request_stops: &request.stop,
            special_stops: &special_stops,
        };
        let mut retries = Retries::default();
        loop {
            match stream::run(&attempt, cancel, on_text) {
                Outcome::Finished(mut output) => {
                    output.stats.queue_secs = started.elapsed().as_secs_f64()
                        - output.stats.prefill_secs
                        - output.stats.decode_secs;
                    return Ok(output);
                }
                Outcome::Failed(error) => return Err(self.learn(error, &model)),
                Outcome::Rejected(failure) => {
                    let Some(delay) = retries.delay(&self.config.retry, failure.retry) else {
                        return Err(self.learn(retries.give_up(failure), &model));
                    };
                    tracing::warn!("{}; retrying in {delay:.1?}", failure.error);
                    if !sleep_unless_cancelled(delay, cancel) {
                        return Ok(cancelled(started));
                    }
                }
            }
        }
    }

    fn reset_sessions(&self) {
        // The server keeps its own prefix cache; forget the discovered model so a restarted server with a
        // different model is asked again.
        *self.lock_resolved() = None;
    }
}

impl OpenAiGenerator {
    /// Learns from an error before returning it: a stated context window shrinks later prompts; a model the
    /// server no longer has is looked up again.
    fn learn(&self, error: GenError, model: &RemoteModel) -> GenError {
        match error {
            GenError::ContextLength {
                window: Some(window),
                ..
            } => {
                self.learned_window.store(window, Ordering::Relaxed);
                error
            }
            GenError::ModelNotFound { .. } => self.model_not_found(&model.id),
            other => other,
        }
    }
}
