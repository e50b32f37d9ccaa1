//! The OpenAI-compatible wire format, converted by hand at this edge: request bodies for `/v1/completions`
//! and `/v1/chat/completions`, the streamed chunks and `usage`, `/v1/models`, and the error bodies vLLM,
//! SGLang and llama.cpp send (including which of them mean "the prompt is too long").
//!
//! Parsing is lenient about what it does not use (servers add fields) and strict about what it does: a chunk
//! that is not JSON, or whose text is not a string, is a malformed stream.

use serde::Deserialize;
use serde_json::{json, Value};

use super::defuse::defuse;
use crate::{GenPrompt, GenRequest};
use qwen_engine::Role;

/// Which endpoint a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/v1/completions`: raw prompt text (FIM, repository FIM).
    Completions,
    /// `/v1/chat/completions`: messages; the server applies the model's chat template.
    Chat,
}

impl Api {
    /// The path under the endpoint.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Api::Completions => "/completions",
            Api::Chat => "/chat/completions",
        }
    }
}

/// The JSON body for `request` against `model`, and the endpoint it goes to. `stop` is sent as given (the
/// request's own stop strings plus the prompt kind's special-token texts). Prompt text is defused (see
/// `defuse.rs`) so user text can never become a special token on the server.
pub(crate) fn request_body(request: &GenRequest, model: &str, stop: &[String]) -> (Api, Value) {
    let (api, mut body) = match &request.prompt {
        GenPrompt::Raw(prompt) => (
            Api::Completions,
            json!({ "model": model, "prompt": super::defuse::prompt_text(prompt) }),
        ),
        GenPrompt::Chat(messages) => {
            let messages: Vec<Value> = messages
                .iter()
                .map(|m| json!({ "role": role_name(m.role), "content": defuse(&m.content) }))
                .collect();
            (Api::Chat, json!({ "model": model, "messages": messages }))
        }
    };
    body["max_tokens"] = json!(request.max_tokens);
    body["temperature"] = json!(request.sampling.temperature);
    if request.sampling.temperature > 0.0 {
        body["top_p"] = json!(request.sampling.top_p);
        body["seed"] = json!(request.sampling.seed);
    }
    if !stop.is_empty() {
        body["stop"] = json!(stop);
    }
    body["stream"] = json!(true);
    // vLLM and SGLang then send a last chunk with `usage` (and the cached-token count when enabled).
    body["stream_options"] = json!({ "include_usage": true });
    (api, body)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// One streamed chunk (`text_completion` or `chat.completion.chunk`).
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub(crate) choices: Vec<Choice>,
    #[serde(default)]
    pub(crate) usage: Option<Usage>,
    /// vLLM and SGLang report failures inside the stream as `{"error": {…}}`.
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

/// One choice of a chunk (we ask for one).
#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub(crate) index: u32,
    /// `/v1/completions`.
    #[serde(default)]
    pub(crate) text: Option<String>,
    /// `/v1/chat/completions`.
    #[serde(default)]
    pub(crate) delta: Option<Delta>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
    /// vLLM: the stop string (or token id) that ended the generation.
    #[serde(default)]
    pub(crate) stop_reason: Option<Value>,
}

impl Choice {
    /// The text this chunk adds.
    pub(crate) fn text(&self) -> Option<&str> {
        self.text
            .as_deref()
            .or_else(|| self.delta.as_ref().and_then(|d| d.content.as_deref()))
    }
}

/// A chat delta.
#[derive(Debug, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub(crate) content: Option<String>,
}

/// Token counts of a request.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct Usage {
    #[serde(default)]
    pub(crate) prompt_tokens: Option<usize>,
    #[serde(default)]
    pub(crate) completion_tokens: Option<usize>,
    #[serde(default)]
    pub(crate) prompt_tokens_details: Option<PromptDetails>,
}

impl Usage {
    /// Prompt tokens served from the server's prefix cache (vLLM with `--enable-prompt-tokens-details`,
    /// SGLang with `--enable-cache-report`, llama.cpp's server).
    pub(crate) fn cached_tokens(&self) -> Option<usize> {
        self.prompt_tokens_details.and_then(|d| d.cached_tokens)
    }
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct PromptDetails {
    #[serde(default)]
    pub(crate) cached_tokens: Option<usize>,
}

/// One entry of `/v1/models`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ModelEntry {
    pub(crate) id: String,
    /// vLLM (and SGLang) state the context window here.
    #[serde(default)]
    pub(crate) max_model_len: Option<usize>,
}

/// `/v1/models`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelList {
    pub(crate) data: Vec<ModelEntry>,
}

/// The human-readable message of an error body: `error.message` (OpenAI, llama.cpp, newer vLLM), `message`
/// (vLLM, SGLang), `detail` (FastAPI), else the body itself.
pub(crate) fn error_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_string();
    };
    error_value_message(&value).unwrap_or_else(|| body.trim().to_string())
}

/// The message inside an error JSON value (`{"error": …}`, `{"message": …}`, `{"detail": …}`).
pub(crate) fn error_value_message(value: &Value) -> Option<String> {
    let candidates = [
        value.pointer("/error/message"),
        value.get("error").filter(|e| e.is_string()),
        value.get("message"),
        value.get("detail"),
    ];
    candidates.into_iter().flatten().find_map(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// Whether a server's error message says the request exceeds the context window. The phrases are the ones
/// vLLM ("This model's maximum context length is N tokens"), SGLang ("… is longer than the model's context
/// length (N tokens)", "exceeds the maximum context length"), llama.cpp's server ("exceeds the available context
/// size (N tokens)", `exceed_context_size_error`), llama-cpp-python (`context_length_exceeded`) and OpenAI use.
pub(crate) fn is_context_length_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "context length",
        "context window",
        "context size",
        "context_length_exceeded",
        "maximum model length",
        "max_model_len",
        "exceed_context_size",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// The context window a context-length message states, if it does ("maximum context length is 32768
/// tokens", "context length of 32768", "context length (32768 tokens)", "context window of 512").
pub(crate) fn stated_window(message: &str) -> Option<usize> {
    let m = message.to_ascii_lowercase();
    for anchor in [
        "maximum context length is",
        "maximum context length of",
        "context length is",
        "context length of",
        "context length (",
        "context window of",
        "context size (",
        "maximum model length is",
        "maximum model length of",
    ] {
        if let Some(at) = m.find(anchor) {
            let digits: String = m[at + anchor.len()..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .filter(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
    }
    None
}

/// Whether a 404's message is about the model name (vLLM: "The model `x` does not exist.").
pub(crate) fn is_model_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model") && (m.contains("does not exist") || m.contains("not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sampling, SessionKey};
    use qwen_engine::{Message, Prompt, SpeculativeMode};

    #[test]
    fn completion_bodies_carry_prompt_text_and_stops() {
        let request = GenRequest {
            prompt: GenPrompt::Raw(Prompt::fim("fn a() {", "}")),
            max_tokens: 16,
            sampling: Sampling::greedy(),
            stop: vec!["\n\n".into()],
            session: Some(SessionKey::document("a.rs")),
            speculation: SpeculativeMode::Off,
        };
        let (api, body) = request_body(&request, "m", &["\n\n".into(), "<|endoftext|>".into()]);
        assert_eq!(api, Api::Completions);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "prompt": "<|fim_prefix|>fn a() {<|fim_suffix|>}<|fim_middle|>",
                "max_tokens": 16,
                "temperature": 0.0,
                "stop": ["\n\n", "<|endoftext|>"],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn chat_bodies_carry_messages_and_sampling() {
        let request = GenRequest {
            prompt: GenPrompt::Chat(vec![
                Message::new(Role::System, "Be brief."),
                Message::new(Role::User, "what is <|im_end|>?"),
            ]),
            max_tokens: 8,
            sampling: Sampling::with_temperature(0.5),
            stop: vec![],
            session: None,
            speculation: SpeculativeMode::Lookup,
        };
        let (api, body) = request_body(&request, "m", &[]);
        assert_eq!(api, Api::Chat);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(
            body["messages"][1]["content"],
            json!("what is <\u{200b}|im_end|>?")
        );
        assert_eq!(body["top_p"], json!(0.95f32));
        assert!(body.get("stop").is_none());
    }

    #[test]
    fn chunks_parse_both_shapes_and_usage() {
        let c: Chunk = serde_json::from_str(
            r#"{"choices":[{"index":0,"text":"ab","finish_reason":null}],"extra":1}"#,
        )
        .expect("chunk");
        assert_eq!(c.choices[0].text(), Some("ab"));
        let c: Chunk = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"content":"cd"},"finish_reason":"stop","stop_reason":"\n"}]}"#,
        )
        .expect("chunk");
        assert_eq!(c.choices[0].text(), Some("cd"));
        assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
        let c: Chunk = serde_json::from_str(
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":8}}}"#,
        )
        .expect("chunk");
        let usage = c.usage.expect("usage");
        assert_eq!(
            (usage.prompt_tokens, usage.cached_tokens()),
            (Some(10), Some(8))
        );
        let c: Chunk = serde_json::from_str(
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":null}}"#,
        )
        .expect("chunk");
        assert_eq!(c.usage.and_then(|u| u.cached_tokens()), None);
    }

    #[test]
    fn error_messages_of_each_server() {
        // llama-cpp-python
        let llama = r#"{"error":{"message":"This model's maximum context length is 512 tokens, however you requested 906 tokens (901 in your prompt; 5 for the completion). Please reduce your prompt; or completion length.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        // vLLM (top-level message)
        let vllm = r#"{"object":"error","message":"This model's maximum context length is 32768 tokens. However, you requested 33000 tokens (32000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#;
        // SGLang
        let sglang = r#"{"object":"error","message":"The input (40000 tokens) is longer than the model's context length (32,768 tokens).","type":"BadRequestError","param":null,"code":400}"#;
        // llama.cpp's own server (llama-server)
        let llama_server = r#"{"error":{"code":400,"message":"request (11241 tokens) exceeds the available context size (10240 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":11241,"n_ctx":10240}}"#;
        for (body, window) in [
            (llama, 512),
            (vllm, 32768),
            (sglang, 32768),
            (llama_server, 10240),
        ] {
            let message = error_message(body);
            assert!(is_context_length_error(&message), "{message}");
            assert_eq!(stated_window(&message), Some(window), "{message}");
        }
        assert_eq!(error_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message("plain text"), "plain text");
        assert!(!is_context_length_error("Not Found"));
        assert!(is_model_not_found("The model `qwen` does not exist."));
        assert!(!is_model_not_found("Not Found"));
    }
}
