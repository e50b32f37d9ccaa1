//! The `Generator` boundary: the only way the tasks reach a model. One implementation runs the in-process
//! engine ([`LocalGenerator`]); the remote backend ([`OpenAiGenerator`]: vLLM, SGLang, llama.cpp servers)
//! implements the same trait, so completions, explanations, refactors and patches do not change with it.
//!
//! The boundary is shaped by what both backends can do:
//! - prompts are engine [`Prompt`]s (pieces: text or named special token) for raw/FIM completion, or chat
//!   [`Message`]s. A local backend tokenizes the pieces (user text can never become a special token); a remote
//!   one sends `Prompt::to_text` to `/v1/completions` and the messages to `/v1/chat/completions`;
//! - a [`SessionKey`] names the KV cache a request should reuse (one per document and prompt layout for
//!   completions, one for chat). Locally it picks a warm `Sequence`; remotely prefix caching is automatic and
//!   the key is a hint;
//! - cancellation is a [`CancelToken`] checked before every layer of a prefill chunk and every token; the
//!   streaming callback can also end the generation ([`Flow::Stop`]) — completion stop rules decide mid-stream;
//! - [`GenStats`] carries both the local counters (reused/prefilled tokens, tok/s) and the server-reported
//!   cached-token count the remote backend fills when the server reports one;
//! - a caller with a latency target offers several prompts, best first ([`Generator::generate_within`]): the
//!   backend runs the first one its warm cache and measured [`Speed`] can prefill in time. Only the backend
//!   can tell, and only once it holds the slot: until then the previous request of the same session may still
//!   be writing the cache;
//! - [`Generator::warm`] prefills a prompt the editor will probably continue, in the background: it runs only
//!   while no request waits and gives way to any request that arrives.
//!
//! Calls are synchronous and may block for seconds: the LSP calls them from `spawn_blocking`.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod local;
pub mod openai;
mod queue;
mod split;

pub use local::{LocalGenerator, LocalOptions};
pub use openai::{
    OpenAiConfig, OpenAiGenerator, OpenAiSettings, RemoteModel, RetryPolicy, Timeouts,
};
pub use split::SplitGenerator;

use qwen_engine::{CancelToken, Message, Prompt, SpeculativeMode};

/// Which KV cache (conversation state) a request continues. Requests with the same key share a warm prefix;
/// keys are cheap strings chosen by the tasks (e.g. `doc:src/lib.rs`, `chat`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(pub String);

impl SessionKey {
    /// The session of inline completions in one document (workspace-relative path).
    pub fn document(path: &str) -> SessionKey {
        SessionKey(format!("doc:{path}"))
    }

    /// The shared session of chat requests (explain, refactor, patch): their system prompts share a prefix.
    pub fn chat() -> SessionKey {
        SessionKey("chat".to_string())
    }
}

/// What to send to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenPrompt {
    /// A raw or fill-in-the-middle prompt, continued as is (remote: `/v1/completions` with `to_text`).
    Raw(Prompt),
    /// A chat conversation; the backend applies the chat template and opens the assistant turn.
    Chat(Vec<Message>),
}

impl GenPrompt {
    /// The exact text the model is given (chat: the ChatML template with the assistant turn opened), for
    /// debugging (`qwen-ls.debug.dumpPrompt`) and for remote raw completions.
    pub fn to_text(&self) -> String {
        match self {
            GenPrompt::Raw(prompt) => prompt.to_text(),
            GenPrompt::Chat(messages) => Prompt::chat(messages, true).to_text(),
        }
    }

    /// The engine prompt (chat: the ChatML template with the assistant turn opened).
    pub fn to_prompt(&self) -> Prompt {
        match self {
            GenPrompt::Raw(prompt) => prompt.clone(),
            GenPrompt::Chat(messages) => Prompt::chat(messages, true),
        }
    }
}

/// Token selection. `temperature == 0` is greedy (and then `top_p`/`seed` do not matter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; 0 = greedy.
    pub temperature: f32,
    /// Nucleus sampling threshold (1.0 = off).
    pub top_p: f32,
    /// RNG seed: the same seed, prompt and model give the same text.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Greedy decoding.
    pub fn greedy() -> Sampling {
        Sampling::default()
    }

    /// Sampling at `temperature` (greedy at 0) with the defaults qwen-ls uses for code: top-p 0.95, seed 0.
    pub fn with_temperature(temperature: f32) -> Sampling {
        if temperature > 0.0 {
            Sampling {
                temperature,
                top_p: 0.95,
                seed: 0,
            }
        } else {
            Sampling::greedy()
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRequest {
    /// The prompt.
    pub prompt: GenPrompt,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Token selection.
    pub sampling: Sampling,
    /// Strings that end generation (cut from the output, never streamed in part). The prompt kind's natural
    /// stop tokens (end of turn, end of text, FIM/file separators) are added by the backend.
    pub stop: Vec<String>,
    /// The KV cache to continue; `None` for a one-off request that keeps no state.
    pub session: Option<SessionKey>,
    /// Speculative decoding (local backend; the output is the same either way, only the speed differs). A
    /// `Draft` request on a generator without a draft model runs with prompt lookup.
    pub speculation: SpeculativeMode,
}

/// What the streaming callback wants after a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep generating.
    Continue,
    /// Stop now: the text so far is the answer ([`FinishReason::Stopped`]).
    Stop,
}

/// Why a generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer (end of text, end of turn, FIM/file separator).
    EndOfText,
    /// One of the request's stop strings appeared (it is not part of the text).
    StopString(String),
    /// `max_tokens` were generated.
    MaxTokens,
    /// The model's context window is full.
    ContextFull,
    /// The streaming callback returned [`Flow::Stop`].
    Stopped,
    /// The cancel token fired (the text is what was generated until then).
    Cancelled,
}

/// Counters and speeds of one generation. Local and remote backends fill what they know.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenStats {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused from the session's cache (local backend).
    pub reused_tokens: usize,
    /// Prompt tokens the server reported as served from its prefix cache (remote backend).
    pub cached_tokens: Option<usize>,
    /// Prompt tokens run through the model.
    pub prefilled_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Seconds spent waiting for the model (queue behind other requests).
    pub queue_secs: f64,
    /// Seconds of prefill.
    pub prefill_secs: f64,
    /// Seconds of decoding.
    pub decode_secs: f64,
    /// Prefill speed, tokens per second.
    pub prefill_tok_s: f64,
    /// Decode speed, tokens per second.
    pub decode_tok_s: f64,
    /// Forward passes while decoding (local backend; with speculative decoding a pass can yield several
    /// tokens).
    pub decode_passes: usize,
    /// Drafted tokens accepted by speculative decoding (local backend).
    pub accepted_tokens: usize,
    /// Mean log-probability of the generated tokens, where the backend reports it (the local engine does;
    /// remote servers are not asked for logprobs): alternatives are ranked by it.
    pub mean_logprob: Option<f64>,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOutput {
    /// The generated text (stop strings and stop tokens excluded).
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// Counters and speeds.
    pub stats: GenStats,
}

/// A generator's measured speed (moving averages over recent generations), for sizing prompts to a latency
/// target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    /// Prompt tokens run through the model per second.
    pub prefill_tok_s: f64,
    /// Tokens generated per second (`None` until a generation decoded a few tokens).
    pub decode_tok_s: Option<f64>,
}

/// How a warm-up ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarmFinish {
    /// The whole prompt is in the session's cache now.
    Done,
    /// The session's cache already held the whole prompt: nothing ran.
    AlreadyWarm,
    /// A request arrived: the warm-up stopped and gave way (what it prefilled stays in the cache).
    Preempted,
    /// The caller cancelled it (a newer warm-up superseded it).
    Cancelled,
    /// The backend keeps no cache it could warm (a remote server).
    Unsupported,
}

/// The result of [`Generator::warm`].
#[derive(Debug, Clone, PartialEq)]
pub struct WarmOutput {
    /// How it ended.
    pub finish: WarmFinish,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens the session's cache held before.
    pub reused_tokens: usize,
    /// Prompt tokens run through the model (fewer than the rest when it stopped early).
    pub prefilled_tokens: usize,
    /// Seconds waiting for the engine to be idle.
    pub queue_secs: f64,
    /// Seconds of prefill.
    pub prefill_secs: f64,
}

impl WarmOutput {
    /// A warm-up that did nothing and ended with `finish`.
    pub fn nothing(finish: WarmFinish) -> WarmOutput {
        WarmOutput {
            finish,
            prompt_tokens: 0,
            reused_tokens: 0,
            prefilled_tokens: 0,
            queue_secs: 0.0,
            prefill_secs: 0.0,
        }
    }
}

/// What a generator is, for status lines and prompt sizing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorInfo {
    /// `"local"` or `"openai"`.
    pub backend: &'static str,
    /// The model, as a person would name it (a path or a model id).
    pub model: String,
    /// The model's context window in tokens, when known: prompts plus generated tokens must fit.
    pub context_window: Option<usize>,
}

/// Why a generation failed. Cancellation is not a failure: it is [`FinishReason::Cancelled`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// The prompt alone does not fit the model's context window (prompts are never clipped: the tasks size
    /// them to the window; this is a bug or a too small model).
    #[error("the prompt has {tokens} tokens but the model's context window is {window}")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// The context window.
        window: usize,
    },
    /// The prompt could not be tokenized (the model's tokenizer lacks a special token the prompt uses).
    #[error("cannot tokenize the prompt: {0}")]
    Prompt(String),
    /// The backend failed (an engine error, or a remote failure no variant below describes).
    #[error("generation failed: {0}")]
    Backend(String),
    /// The remote backend's configuration is unusable (an endpoint that is not an http(s) URL).
    #[error("invalid remote backend configuration: {0}")]
    Config(String),
    /// The remote server could not be reached (refused, unknown host, TLS failure, reset before answering).
    #[error(
        "cannot reach the model server at {url}: {reason}. Start the server, or fix `openai.endpoint` \
         (CLI: --endpoint)"
    )]
    Unreachable {
        /// The URL requested.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The remote server did not answer in time.
    #[error("no answer from the model server at {url} within {secs} s ({phase}); it may be overloaded or stuck")]
    Timeout {
        /// The URL requested.
        url: String,
        /// Which wait ran out (`connect`, `response headers`, `next chunk`, …).
        phase: &'static str,
        /// The limit, in seconds.
        secs: u64,
    },
    /// The configured model name is not one the remote server serves.
    #[error(
        "the server at {endpoint} does not serve the model {model:?}; it serves: {}. Set `openai.model` \
         (CLI: --remote-model) to one of them, or leave it empty to use the first",
        .available.join(", ")
    )]
    ModelNotFound {
        /// The endpoint.
        endpoint: String,
        /// The configured name.
        model: String,
        /// What `/v1/models` lists (empty when it could not be asked).
        available: Vec<String>,
    },
    /// The request does not fit the remote model's context window (the server said so).
    #[error(
        "the prompt does not fit the server's context window{}: {message}. Lower `completion.budget` / \
         `hover.budget` / `codeActions.budget` (CLI: --budget) or the maxTokens settings, or serve the model \
         with a longer context (vLLM --max-model-len, SGLang --context-length)",
        .window.map(|w| format!(" of {w} tokens")).unwrap_or_default()
    )]
    ContextLength {
        /// The server's context window, when its message states it.
        window: Option<usize>,
        /// The server's message (excerpt).
        message: String,
    },
    /// The server's answer is not a well-formed OpenAI-compatible event stream.
    #[error(
        "malformed answer from {url}: {reason}. Is `openai.endpoint` an OpenAI-compatible server \
         (vLLM, SGLang, llama.cpp) and its /v1 base URL?"
    )]
    MalformedStream {
        /// The URL requested.
        url: String,
        /// What was wrong (with an excerpt of the offending data).
        reason: String,
    },
    /// The connection broke after part of the answer had arrived (a server restart, a network failure).
    #[error(
        "the connection to {url} broke after {received} characters of the answer ({reason}); the server may \
         have restarted: try again"
    )]
    Interrupted {
        /// The URL requested.
        url: String,
        /// Characters of answer text received before the break.
        received: usize,
        /// What the transport said.
        reason: String,
    },
    /// The server refused the credentials (HTTP 401/403).
    #[error(
        "the server at {url} refused the request (HTTP {status}: {body}). Put a valid API key in the \
         environment variable {env_var} (the one `openai.apiKeyEnv` names) before starting qwen-ls"
    )]
    Unauthorized {
        /// The URL requested.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The environment variable the key is read from.
        env_var: String,
        /// An excerpt of the server's answer (with the key, if echoed, redacted).
        body: String,
    },
    /// The server stayed rate-limited or unavailable (429/502/503/504) through every retry.
    #[error(
        "the server at {url} is busy (HTTP {status}) and still was after {attempts} attempts: {body}. Try again \
         later, or give the deployment more capacity"
    )]
    Busy {
        /// The URL requested.
        url: String,
        /// The last status.
        status: u16,
        /// Requests made.
        attempts: u32,
        /// An excerpt of the last answer.
        body: String,
    },
    /// Any other HTTP error answer.
    #[error("{url} answered HTTP {status}: {body}")]
    Http {
        /// The URL requested.
        url: String,
        /// The status.
        status: u16,
        /// An excerpt of the answer (with the key, if echoed, redacted).
        body: String,
    },
}

impl GenError {
    /// The kind of failure, as a short stable name (front ends show one message per kind while it lasts).
    pub fn kind(&self) -> &'static str {
        match self {
            GenError::PromptTooLong { .. } => "prompt-too-long",
            GenError::Prompt(_) => "prompt",
            GenError::Backend(_) => "backend",
            GenError::Config(_) => "config",
            GenError::Unreachable { .. } => "unreachable",
            GenError::Timeout { .. } => "timeout",
            GenError::ModelNotFound { .. } => "model-not-found",
            GenError::ContextLength { .. } => "context-length",
            GenError::MalformedStream { .. } => "malformed-stream",
            GenError::Interrupted { .. } => "interrupted",
            GenError::Unauthorized { .. } => "unauthorized",
            GenError::Busy { .. } => "busy",
            GenError::Http { .. } => "http",
        }
    }

    /// Whether the failure is about the model server or backend as a whole (it will fail the next request
    /// too, until someone fixes it), rather than about this one prompt.
    pub fn is_lasting(&self) -> bool {
        !matches!(
            self,
            GenError::PromptTooLong { .. } | GenError::Prompt(_) | GenError::ContextLength { .. }
        )
    }

    /// Whether the failure may go away by itself (a server starting, restarting or overloaded): a remote
    /// backend is then still installed, and the next request tries again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GenError::Unreachable { .. }
                | GenError::Timeout { .. }
                | GenError::Busy { .. }
                | GenError::Interrupted { .. }
        )
    }
}

/// A model behind the tasks. Implementations are shared across threads (`Arc<dyn Generator>`).
pub trait Generator: Send + Sync {
    /// What this generator is.
    fn info(&self) -> GeneratorInfo;

    /// Runs one generation, streaming text deltas to `on_text` (never part of a stop string or of a UTF-8
    /// character). Blocks until done; requests may be queued behind others. A request whose `cancel` fires
    /// while it waits never starts.
    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError>;

    /// Runs the first of `offers` (best first) whose prompt the backend expects to prefill within
    /// `prefill_limit`, judged by what its session's cache holds and the measured [`Speed`], else the one it
    /// can prefill soonest; returns the index of the offer run with its output. A backend that cannot tell
    /// runs the first.
    fn generate_within(
        &self,
        offers: &[GenRequest],
        prefill_limit: std::time::Duration,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<(usize, GenOutput), GenError> {
        let _ = prefill_limit;
        let first = offers
            .first()
            .ok_or_else(|| GenError::Prompt("no prompt was offered".to_string()))?;
        self.generate(first, cancel, on_text)
            .map(|output| (0, output))
    }

    /// Prefills `request`'s prompt into its session's cache at low priority, so that a request continuing it
    /// starts warm: it waits until no request is queued or running, and stops at its next check (within one
    /// small prefill chunk) when a request arrives. Nothing is generated. Backends without a cache of their
    /// own answer [`WarmFinish::Unsupported`].
    fn warm(&self, request: &GenRequest, cancel: &CancelToken) -> Result<WarmOutput, GenError> {
        let _ = (request, cancel);
        Ok(WarmOutput::nothing(WarmFinish::Unsupported))
    }

    /// Whether the backend keeps a KV cache per [`SessionKey`] that [`Generator::generate_within`] weighs
    /// and [`Generator::warm`] fills (the local engine); a remote server's prefix cache is its own business.
    fn keeps_sessions(&self) -> bool {
        false
    }

    /// The measured speed, once known (`None` for backends that do not measure it).
    fn speed(&self) -> Option<Speed> {
        None
    }

    /// Forgets every session's cached state (e.g. after a configuration change).
    fn reset_sessions(&self) {}
}
