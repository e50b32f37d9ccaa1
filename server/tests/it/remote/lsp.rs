//! The language server and the CLI on the remote backend: the real-binary session test unchanged against a
//! real OpenAI-compatible server, a server that is down (one `window/showMessage`, status `error`, fast empty
//! answers), and `qwen-ls complete --endpoint`.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use super::server::{gguf, DeadEndpoint, Proxy};
use super::{LlamaServer, MODEL};
use crate::common::fixture_copy;
use crate::lsp::binary::{session, Process};
use crate::lsp::harness::position_of;
use crate::lsp::uri;

#[test]
fn real_binary_session_on_a_remote_server() {
    let Some(server) = LlamaServer::start("remote::lsp_session", &gguf(MODEL)) else {
        return;
    };
    // Through a counting proxy: which requests arrived does not depend on what the server logs.
    let proxy = Proxy::start(server.port, 0);
    session(
        json!({ "backend": "openai", "openai": { "endpoint": proxy.endpoint } }),
        "openai",
    );
    let lines = proxy.request_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("POST /v1/completions ")),
        "no completion reached the server: {lines:?}\n{}",
        server.log_text()
    );
}

#[test]
fn a_server_that_is_down_is_shown_once_and_never_hangs_a_request() {
    let p = Process::start();
    let dead = DeadEndpoint::new();
    let endpoint = dead.url.clone();
    p.initialize(json!({ "backend": "openai", "openai": { "endpoint": endpoint } }));
    let client = &p.client;
    let path = p.repo.path().join("src/geometry.rs");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let uri = uri(&path);
    client.open(&uri, "rust", &text);
    for _ in 0..3 {
        let started = Instant::now();
        let result = client.request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": uri }, "position": position_of(&text, text.len()), "context": { "triggerKind": 1 } }),
        );
        assert_eq!(result["items"], json!([]), "{result}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    let messages: Vec<_> = client
        .notifications("window/showMessage")
        .into_iter()
        .filter(|m| m["message"].as_str().unwrap_or("").contains("cannot reach"))
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["type"], 1, "an error: {messages:?}");
    let message = messages[0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("openai.endpoint") && message.contains(&endpoint),
        "{message}"
    );
    let status = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.status", "arguments": [] }),
    );
    assert_eq!(status["state"], "error", "{status}");
    assert_eq!(status["backend"], "openai", "{status}");
    client.shutdown_and_exit();
}

#[test]
fn the_cli_completes_through_a_remote_server() {
    let repo = fixture_copy("polyglot");
    let cache = tempfile::tempdir().expect("tmp");
    let complete = |endpoint: &str| {
        Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
            .args([
                "complete",
                "src/lib.rs:11:18",
                "--json",
                "--max-tokens",
                "8",
            ])
            .args(["--endpoint", endpoint])
            .current_dir(repo.path())
            .env("QWEN_LS_CACHE_DIR", cache.path())
            .env("QWEN_LS_API_KEY", "sk-test-never-printed")
            .output()
            .expect("run qwen-ls")
    };
    // Nothing listening: exit 3 with the message saying what to do, the key nowhere.
    let dead = DeadEndpoint::new();
    let output = complete(&dead.url);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot reach") && stderr.contains("--endpoint"),
        "{stderr}"
    );
    assert!(!stderr.contains("sk-test-never-printed"), "{stderr}");
    let Some(server) = LlamaServer::start("remote::cli", &gguf(MODEL)) else {
        return;
    };
    let output = complete(&server.endpoint());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with('{') || stdout.trim() == "null",
        "{stdout}"
    );
    assert!(!stderr.contains("sk-test-never-printed"), "{stderr}");
}
