//! The remote backend (`OpenAiGenerator`) against a real OpenAI-compatible server — llama-cpp-python's,
//! serving a fixture GGUF on loopback — and against a proxy and fake servers for the failures a real server
//! will not produce on demand: FIM completion, streaming chat, cancellation mid-stream, a server restart
//! during a request, 429 answers, a wrong model name, over-long prompts, malformed and truncated streams,
//! an unreachable server; then the language server and the CLI on the same backend.

mod lsp;
mod server;

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use qwen_engine::{LoadOptions, LoadedModel, Message, Prompt, Role};
use qwen_ls::tasks::generator::{OpenAiConfig, OpenAiGenerator, RetryPolicy, Timeouts};
use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenError, GenOutput, GenPrompt, GenRequest, Generator,
    LocalGenerator, LocalOptions, Sampling, SessionKey, SpeculativeMode,
};

use server::{fake_server, gguf, DeadEndpoint, Proxy, SSE_HEAD};
pub use server::{LlamaServer, ALIAS};

/// The fixture every server test serves (Q8_0: the block type whose arithmetic our engine shares with ggml).
pub const MODEL: &str = "qwen3-q8_0-tiny.gguf";

/// Short waits and quick retries, so failures show in seconds.
fn config(endpoint: &str) -> OpenAiConfig {
    OpenAiConfig {
        endpoint: endpoint.to_string(),
        model: String::new(),
        api_key_env: "QWEN_LS_TEST_UNSET_KEY".to_string(),
        allow_http: false,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(30),
            idle: Duration::from_secs(30),
            discovery: Duration::from_secs(10),
        },
        retry: RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        },
    }
}

fn generator(endpoint: &str) -> OpenAiGenerator {
    OpenAiGenerator::new(config(endpoint)).expect("valid endpoint")
}

fn fim(max_tokens: usize) -> GenRequest {
    GenRequest {
        prompt: GenPrompt::Raw(Prompt::fim(
            "fn fibonacci(n: u64) -> u64 {\n    if n < 2 {\n        return n;\n    }\n",
            "\n}\n",
        )),
        max_tokens,
        sampling: Sampling::greedy(),
        stop: Vec::new(),
        session: Some(SessionKey::document("src/lib.rs")),
        speculation: SpeculativeMode::Off,
    }
}

/// Runs `request`, collecting the streamed deltas.
fn run(
    generator: &dyn Generator,
    request: &GenRequest,
) -> (Result<GenOutput, GenError>, Vec<String>) {
    let mut deltas = Vec::new();
    let result = generator.generate(request, &CancelToken::new(), &mut |d| {
        deltas.push(d.to_string());
        Flow::Continue
    });
    (result, deltas)
}

#[test]
fn fim_completion_through_a_real_server_matches_the_engine() {
    let Some(server) = LlamaServer::start("remote::fim_completion", &gguf(MODEL)) else {
        return;
    };
    let remote = generator(&server.endpoint());
    let model = remote.discover().expect("discovery");
    assert_eq!(model.id, ALIAS);
    assert_eq!(remote.info().backend, "openai");
    let request = fim(16);
    let (result, deltas) = run(&remote, &request);
    let output = result.unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    assert_eq!(deltas.concat(), output.text);
    assert!(
        matches!(
            output.finish,
            FinishReason::MaxTokens | FinishReason::EndOfText
        ),
        "{:?}",
        output.finish
    );
    // The same GGUF in-process picks the same first token: the FIM markers reached the server as special
    // tokens. (Later tokens may differ: on random weights the top two logits are often within 0.01, and
    // llama.cpp sums in another order than our kernels.)
    let loaded = LoadedModel::load(&gguf(MODEL), &LoadOptions::default()).expect("load");
    let local = LocalGenerator::new(loaded, LocalOptions::default());
    let (local_output, local_deltas) = run(&local, &request);
    local_output.expect("local generation");
    assert!(!deltas.is_empty());
    assert_eq!(
        deltas.first(),
        local_deltas.first(),
        "remote {deltas:?}\nlocal {local_deltas:?}"
    );
    // The markers as plain text (what a client that does not send them as specials would get) continue
    // differently.
    let mut plain = request.clone();
    plain.prompt = GenPrompt::Raw(Prompt::text(request.prompt.to_text()));
    let (plain_output, _) = run(&local, &plain);
    assert_ne!(
        plain_output.expect("local generation").text,
        local_deltas.concat()
    );
}

#[test]
fn streaming_chat_through_a_real_server() {
    let Some(server) = LlamaServer::start("remote::streaming_chat", &gguf(MODEL)) else {
        return;
    };
    let remote = generator(&server.endpoint());
    let request = GenRequest {
        prompt: GenPrompt::Chat(vec![
            Message::new(Role::System, "You explain code briefly."),
            Message::new(
                Role::User,
                "What does `fn add(a: i32, b: i32) -> i32 { a + b }` do?",
            ),
        ]),
        max_tokens: 24,
        sampling: Sampling::greedy(),
        stop: Vec::new(),
        session: Some(SessionKey::chat()),
        speculation: SpeculativeMode::Lookup,
    };
    let (result, deltas) = run(&remote, &request);
    let output = result.unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    assert!(deltas.len() > 1, "streamed in one piece: {deltas:?}");
    assert_eq!(deltas.concat(), output.text);
    assert!(output.stats.generated_tokens > 0, "{:?}", output.stats);
}

#[test]
fn cancelling_mid_stream_returns_at_once_and_closes_the_stream() {
    let Some(server) = LlamaServer::start("remote::cancelling", &gguf(MODEL)) else {
        return;
    };
    let remote = generator(&server.endpoint());
    let cancel = CancelToken::new();
    let mut cancelled_at = None;
    let mut request = fim(3000);
    request.prompt = GenPrompt::Raw(Prompt::text("fn main() {"));
    let output = remote
        .generate(&request, &cancel, &mut |_| {
            if cancelled_at.is_none() {
                cancelled_at = Some(Instant::now());
                cancel.cancel();
            }
            Flow::Continue
        })
        .expect("a cancelled generation is not an error");
    let cancelled_at = cancelled_at.expect("some text arrived");
    assert_eq!(output.finish, FinishReason::Cancelled);
    // At once: the 3000 tokens asked for would take far longer (a 2 s bound survives a loaded CI machine).
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "returned {:?} after the cancel",
        cancelled_at.elapsed()
    );
    // The connection was closed: the server notices and stops generating (llama-cpp-python checks between
    // tokens; on a machine loaded by parallel tests that can take many seconds).
    let deadline = Instant::now() + Duration::from_secs(90);
    while !server.log_text().contains(server.disconnect_marker()) {
        assert!(
            Instant::now() < deadline,
            "the server never saw the client leave:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And serves the next request.
    let (result, _) = run(&remote, &fim(4));
    result.expect("the next request");
}

#[test]
fn a_server_restart_during_a_request_is_a_clear_error_and_the_backend_recovers() {
    let Some(mut server) = LlamaServer::start("remote::restart", &gguf(MODEL)) else {
        return;
    };
    let endpoint = server.endpoint();
    let remote = std::sync::Arc::new(generator(&endpoint));
    remote.discover().expect("discovery");
    let (first_text, got_text) = channel();
    let worker = {
        let remote = remote.clone();
        std::thread::spawn(move || {
            let mut request = fim(3000);
            request.prompt = GenPrompt::Raw(Prompt::text("fn main() {"));
            let mut sent = false;
            remote.generate(&request, &CancelToken::new(), &mut |_| {
                if !sent {
                    sent = true;
                    let _ = first_text.send(());
                }
                Flow::Continue
            })
        })
    };
    got_text
        .recv_timeout(Duration::from_secs(60))
        .expect("the answer started");
    server.kill();
    let started = Instant::now();
    let error = worker
        .join()
        .expect("worker")
        .expect_err("the stream broke");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, GenError::Interrupted { received, .. } if received > 0),
        "{error:?}"
    );
    assert!(error.to_string().contains("try again"), "{error}");
    // While it is down: refused at once (after the connect retries), never a hang.
    let started = Instant::now();
    let (result, _) = run(remote.as_ref(), &fim(4));
    let error = result.expect_err("no server");
    assert!(matches!(error, GenError::Unreachable { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Back up: the same generator works again, nothing to reconfigure.
    server.restart();
    let (result, _) = run(remote.as_ref(), &fim(4));
    result.unwrap_or_else(|e| panic!("after the restart: {e}\n{}", server.log_text()));
}

#[test]
fn busy_answers_are_retried_then_reported() {
    let Some(server) = LlamaServer::start("remote::busy", &gguf(MODEL)) else {
        return;
    };
    // Two 429s, then through: discovery retries past them; the generation goes straight through.
    let proxy = Proxy::start(server.port, 2);
    let remote = generator(&proxy.endpoint);
    let (result, _) = run(&remote, &fim(4));
    result.unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    assert_eq!(proxy.requests(), 4, "2 refused + discovery + generation");
    // Always busy: the generation gives up after its retries, saying so.
    let proxy = Proxy::start(server.port, usize::MAX);
    let mut busy = config(&proxy.endpoint);
    busy.retry.busy_retries = 2;
    let remote = OpenAiGenerator::new(busy).expect("config");
    let started = Instant::now();
    let (result, _) = run(&remote, &fim(4));
    let error = result.expect_err("always busy");
    assert!(
        matches!(
            error,
            GenError::Busy {
                status: 429,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("rate limited by the test proxy"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.requests(), 3);
}

#[test]
fn a_wrong_model_name_lists_the_served_ones() {
    let Some(server) = LlamaServer::start("remote::wrong_model", &gguf(MODEL)) else {
        return;
    };
    let mut wrong = config(&server.endpoint());
    wrong.model = "Qwen/Qwen3-Coder-480B-A35B-Instruct".to_string();
    let remote = OpenAiGenerator::new(wrong).expect("config");
    let error = remote.discover().expect_err("not served");
    assert!(matches!(error, GenError::ModelNotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(ALIAS) && message.contains("openai.model"),
        "{message}"
    );
}

#[test]
fn an_overlong_prompt_is_a_clear_error_not_a_hang() {
    let Some(server) = LlamaServer::start("remote::overlong", &gguf(MODEL)) else {
        return;
    };
    let remote = generator(&server.endpoint());
    let mut request = fim(8);
    request.prompt = GenPrompt::Raw(Prompt::text("x ".repeat(server::N_CTX + 1000)));
    let started = Instant::now();
    let (result, _) = run(&remote, &request);
    let error = result.expect_err("too long");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("context window"), "{error}");
}

/// `/v1/models` for the fake servers, then `answer` for every other request.
fn fake(answer: &str) -> String {
    fake_server(answer.to_string())
}

#[test]
fn context_length_answers_teach_the_window() {
    // vLLM's answer to an over-long prompt.
    let body = r#"{"object":"error","message":"This model's maximum context length is 32768 tokens. However, you requested 40000 tokens (39000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#;
    let endpoint = fake(&format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let remote = generator(&endpoint);
    let (result, _) = run(&remote, &fim(8));
    let error = result.expect_err("too long");
    assert!(
        matches!(
            error,
            GenError::ContextLength {
                window: Some(32768),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("completion.budget"), "{error}");
    assert_eq!(remote.info().context_window, Some(32768));
}

#[test]
fn malformed_and_truncated_streams_are_reported() {
    let cases = [
        (
            format!("{SSE_HEAD}data: {{not json\n\n"),
            "malformed-stream",
            "not a valid chunk",
        ),
        (
            format!("{SSE_HEAD}data: {{\"choices\":[{{\"index\":0,\"text\":\"fn a\"}}]}}\n\n"),
            "interrupted",
            "after 4 characters",
        ),
        (SSE_HEAD.to_string(), "backend", "without an answer"),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n<html"
                .to_string(),
            "malformed-stream",
            "OpenAI-compatible",
        ),
    ];
    for (answer, kind, says) in cases {
        let remote = generator(&fake_server(answer.clone()));
        let started = Instant::now();
        let (result, _) = run(&remote, &fim(8));
        let error = result.expect_err(&answer);
        assert_eq!(error.kind(), kind, "{answer:?}: {error}");
        assert!(error.to_string().contains(says), "{answer:?}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn an_unreachable_server_fails_fast_and_says_what_to_do() {
    let dead = DeadEndpoint::new();
    let remote = generator(&dead.url);
    let started = Instant::now();
    let error = remote.discover().expect_err("nothing listens");
    assert!(matches!(error, GenError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains("openai.endpoint"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
