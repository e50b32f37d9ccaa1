//! The real `qwen-ls` binary over stdio, on the fixture model (random weights: answers are gibberish but
//! real) and a temporary copy of a fixture repository: the whole session's shapes, robustness against bad
//! input, a keystroke burst, and KV-cache reuse while typing with warm-ups while idle.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qwen_ls::tasks::measure::{summarize, Outcome, LOG_FILE_NAME};
use serde_json::{json, Value};

use super::harness::{Client, TIMEOUT};
use super::uri;
use crate::common::fixture_copy;

/// The fixture model.
pub fn fixture_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/qwen3-moe-tiny")
}

/// A running server process.
pub struct Process {
    pub client: Client,
    pub child: Child,
    pub repo: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `qwen-ls serve` in a copy of the polyglot fixture, with its own cache directory.
    pub fn start() -> Process {
        let repo = fixture_copy("polyglot");
        let cache = tempfile::tempdir().expect("tmp");
        let mut child = Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
            .arg("serve")
            .current_dir(repo.path())
            .env("QWEN_LS_CACHE_DIR", cache.path())
            .env("QWEN_LS_LOG", "info")
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qwen-ls");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("lock").push(line);
            }
        });
        Process {
            client: Client::over(stdout, stdin),
            child,
            repo,
            cache,
            stderr: lines,
        }
    }

    /// `initialize` with the fixture model and small limits, then waits until ready.
    pub fn initialize(&self, extra: Value) -> Value {
        let mut options = json!({
            "model": fixture_model(),
            "completion": { "maxTokens": 12, "debounceMs": 0 },
            "hover": { "maxTokens": 16 },
            "codeActions": { "maxTokens": 48 },
        });
        if let (Some(base), Some(extra)) = (options.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        let init = self
            .client
            .initialize(self.repo.path(), options, &["utf-8", "utf-16"]);
        self.client.wait_ready();
        init
    }

    /// Server log lines so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    /// Resident memory of the server, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The suggestion log's summary.
    pub fn summary(&self) -> qwen_ls::tasks::measure::Summary {
        let path = self.cache.path().join(LOG_FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        summarize(std::io::Cursor::new(text))
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not exit\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn items(result: &Value) -> Vec<Value> {
    result["items"].as_array().cloned().unwrap_or_default()
}

/// A copy of the fixture model (weights linked) whose config claims `window` positions: the fixture's 256 cannot
/// hold an edit prompt, so code actions would stop at the budget check without ever running the model.
pub fn stretched_fixture_model(dir: &Path, window: usize) -> PathBuf {
    let out = dir.join("model");
    std::fs::create_dir_all(&out).expect("mkdir");
    for entry in std::fs::read_dir(fixture_model()).expect("fixture model") {
        let entry = entry.expect("entry");
        let target = out.join(entry.file_name());
        if entry.file_name() == "config.json" {
            let mut config: Value =
                serde_json::from_str(&std::fs::read_to_string(entry.path()).expect("config"))
                    .expect("config json");
            config["max_position_embeddings"] = json!(window);
            std::fs::write(&target, config.to_string()).expect("write config");
        } else {
            std::os::unix::fs::symlink(entry.path().canonicalize().expect("path"), &target)
                .expect("link");
        }
    }
    out
}

/// The exact completion prompt the server builds at byte `offset` of `text` (its own copy of the document).
fn server_prompt(client: &Client, uri: &str, text: &str, offset: usize) -> String {
    let dumped = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.debug.dumpPrompt", "arguments": [{ "uri": uri, "position": client.position(text, offset) }] }),
    );
    let prompt = dumped["prompt"].as_str().unwrap_or("").to_owned();
    assert!(prompt.contains("<|fim_middle|>"), "{dumped}");
    prompt
}

/// initialize → didOpen → didChange → inlineCompletion → hover → codeAction → resolve → executeCommand →
/// applyEdit round trip → shutdown, on the real binary and the fixture model.
///
/// The fixture model has random weights: what it writes is gibberish, and it never writes a valid edit. So this
/// test checks shapes, and that whatever the server hands the client round-trips: an accepted completion,
/// applied by the client as an edit of the item's range, gives exactly the expected text on both sides (the
/// server's own prompt for the next position contains it); a refactor runs the model and answers
/// `{ applied, message }` with the reason also shown to the user. The edit landing through
/// `workspace/applyEdit` with an exact expected text is `scripted::scripted_session_round_trip` (same server
/// code, a scripted model).
#[test]
fn real_binary_session_on_the_fixture_model() {
    session(json!({}), "local");
}

/// The session test's body, on the backend `options` configure (merged into the initialization options);
/// `backend` is what `qwen-ls.status` must report. The remote tests run it against an OpenAI-compatible
/// server.
pub fn session(options: Value, backend: &str) {
    let mut p = Process::start();
    let log_file = p.cache.path().join("logs").join("server.log");
    let mut options = options;
    options["logFile"] = json!(log_file);
    if backend == "local" {
        options["model"] = json!(stretched_fixture_model(p.cache.path(), 4096));
    }
    let init = p.initialize(options);
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(init["serverInfo"]["name"], "qwen-ls");
    assert!(
        init["capabilities"]["inlineCompletionProvider"].is_object()
            || init["capabilities"]["inlineCompletionProvider"] == true,
        "{init}"
    );
    let client = &p.client;
    let path = p.repo.path().join("src/geometry.rs");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let uri = uri(&path);
    client.open(&uri, "rust", &text);

    // Type, ask for an inline completion, until the random model suggests something (it may answer nothing,
    // or only whitespace, at one spot). Every answer has the protocol's shape.
    let typed = [
        "\npub fn perimeter(w: f64, h: f64) -> f64 {\n    ",
        "let half = w + h;\n    ",
        "// twice the half\n    2.0 * ",
    ];
    let mut accepted = None;
    for piece in typed {
        let end = client.doc(&uri).text.len();
        client.edit(&uri, end, end, piece);
        let text = client.doc(&uri).text;
        let result = client.request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": uri }, "position": client.position(&text, text.len()), "context": { "triggerKind": 1 } }),
        );
        assert!(result["items"].is_array(), "{result}");
        for item in items(&result) {
            assert!(item["insertText"].is_string(), "{item}");
            assert!(item["range"]["start"]["line"].is_u64(), "{item}");
            assert!(item["range"]["end"]["character"].is_u64(), "{item}");
            assert_eq!(item["command"]["command"], "qwen-ls.completionAccepted");
            assert!(item["command"]["arguments"][0]["id"].is_string(), "{item}");
            if accepted.is_none()
                && item["insertText"]
                    .as_str()
                    .is_some_and(|t| !t.trim().is_empty())
            {
                accepted = Some(item);
            }
        }
        if accepted.is_some() {
            break;
        }
    }
    let item = accepted.expect("the model suggested nothing at any spot");
    // Accept it as an editor does: replace the item's range with its text (a didChange), run its command.
    let before = client.doc(&uri).text;
    let at = |p: &Value| client.offset(&before, p);
    let (start, end) = (at(&item["range"]["start"]), at(&item["range"]["end"]));
    let insert = item["insertText"].as_str().unwrap_or_default();
    client.edit(&uri, start, end, insert);
    let expected = format!("{}{insert}{}", &before[..start], &before[end..]);
    let after = client.doc(&uri).text;
    assert_eq!(after, expected);
    let accepted = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.completionAccepted", "arguments": item["command"]["arguments"] }),
    );
    assert_eq!(accepted, Value::Null);
    // The server holds the same text: its prompt for the position after the insertion ends with the
    // inserted text and the start of its line.
    let cursor = start + insert.len();
    let line_start = after[..start].rfind('\n').map_or(0, |i| i + 1);
    let prompt = server_prompt(client, &uri, &after, cursor);
    let prefix = &prompt[..prompt.find("<|fim_suffix|>").unwrap_or(prompt.len())];
    assert!(
        prefix.ends_with(&after[line_start..cursor]),
        "the server's text differs from the client's after the accepted completion {item}:\n\
         client: {:?}\nserver prompt: {prompt}",
        &after[line_start..cursor],
    );
    let text = after;

    // Hover on the new function's declaration line: markdown or null, never an error.
    let decl = text.find("pub fn perimeter").expect("decl");
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": client.position(&text, decl + 8) }),
    );
    assert!(
        hover.is_null() || hover["contents"]["kind"] == "markdown",
        "{hover}"
    );

    // Code actions and the resolve of "Add documentation".
    let range =
        json!({ "start": client.position(&text, decl), "end": client.position(&text, decl) });
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [] } }),
    );
    let actions = actions.as_array().cloned().unwrap_or_default();
    assert_eq!(actions.len(), 3, "{actions:?}");
    let titles: Vec<&str> = actions.iter().filter_map(|a| a["title"].as_str()).collect();
    assert_eq!(
        titles,
        [
            "qwen-ls: Add documentation",
            "qwen-ls: Refactor with instruction…",
            "qwen-ls: Apply instruction across workspace…"
        ]
    );
    assert_eq!(actions[1]["command"]["command"], "qwen-ls.refactor");
    assert!(actions[1]["command"]["arguments"][0]["instruction"].is_null());
    // Resolve "Add documentation": the model runs; its edit is applied by the client, or the server shows why
    // there is none.
    let shown_before = client.notifications("window/showMessage").len();
    let resolved = client.request("codeAction/resolve", actions[0].clone());
    assert_eq!(resolved["title"], "qwen-ls: Add documentation");
    if let Some(edit) = resolved.get("edit") {
        let before = client.doc(&uri).text;
        assert_eq!(client.apply_workspace_edit(edit)["applied"], true);
        assert_ne!(client.doc(&uri).text, before);
    } else {
        // The notification travels apart from the response: it may arrive just after it.
        client.wait_until(
            "no edit, and the reason shown",
            Duration::from_secs(20),
            |c| c.notifications("window/showMessage").len() > shown_before,
        );
        let shown = client.notifications("window/showMessage");
        let message = shown[shown.len() - 1]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !message.contains("budget"),
            "the model did not run: {message}"
        );
    }

    // The refactor command: the model runs (the window fits the prompt) and the answer has the protocol's
    // shape; an applied edit reached the client's document through workspace/applyEdit, a refused one comes
    // with the server's reason (for the client to show).
    let before = client.doc(&uri).text;
    let result = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.refactor", "arguments": [{ "uri": uri, "range": range, "instruction": "return 2 * (w + h)" }] }),
    );
    assert!(result["applied"].is_boolean(), "{result}");
    if result["applied"] == true {
        assert_ne!(client.doc(&uri).text, before);
        assert!(!client.server_requests("workspace/applyEdit").is_empty());
    } else {
        let message = result["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{result}");
        assert!(
            !message.contains("budget"),
            "the model did not run: {message}"
        );
        assert_eq!(client.doc(&uri).text, before);
    }
    let status = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.status", "arguments": [] }),
    );
    for key in [
        "state",
        "message",
        "model",
        "backend",
        "indexedFiles",
        "version",
    ] {
        assert!(status.get(key).is_some(), "{key} in {status}");
    }
    assert_eq!(status["backend"], backend);
    client.shutdown_and_exit();
    assert_eq!(p.wait_exit(), Some(0), "{}", p.stderr());
    assert!(!p.stderr().contains("panicked"), "{}", p.stderr());
    let logged = std::fs::read_to_string(&log_file).expect("logFile written");
    assert!(logged.contains("shutdown"), "{logged}");
    let summary = p.summary();
    assert!(
        summary.count(Outcome::Shown) >= 1,
        "the shown completion is in the suggestion log"
    );
    assert!(summary.accepted >= 1, "its acceptance too");
}

/// Malformed JSON, unknown methods, unopened, deleted and huge documents, exit without shutdown.
#[test]
fn real_binary_survives_bad_input() {
    let mut p = Process::start();
    p.initialize(json!({}));
    let client = &p.client;
    // Not JSON, then JSON that is not a message: answered with errors, the server stays up.
    let garbage = b"{ this is not json";
    client.raw(format!("Content-Length: {}\r\n\r\n", garbage.len()).as_bytes());
    client.raw(garbage);
    let not_a_message = b"[1, 2, 3]";
    client.raw(format!("Content-Length: {}\r\n\r\n", not_a_message.len()).as_bytes());
    client.raw(not_a_message);
    client.wait_until("error responses to the bad messages", TIMEOUT, |c| {
        c.null_id_responses().len() >= 2
    });
    let codes: Vec<Value> = client
        .null_id_responses()
        .iter()
        .map(|r| r["error"]["code"].clone())
        .collect();
    assert!(codes.contains(&json!(-32700)), "{codes:?}");
    assert_eq!(
        client.call("workspace/nope", Value::Null)["error"]["code"],
        -32601
    );
    assert_eq!(
        client.call("$/qwen-ls/unknown", json!({}))["error"]["code"],
        -32601
    );
    // A document that was never opened.
    let ghost = uri(&p.repo.path().join("src/ghost.rs"));
    let result = client.request(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": ghost }, "position": { "line": 3, "character": 1 }, "context": { "triggerKind": 1 } }),
    );
    assert_eq!(result["items"], json!([]));
    // Edits for an unopened document and a stale version are ignored, not fatal.
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": ghost, "version": 9 }, "contentChanges": [{ "text": "x" }] }),
    );
    // A document deleted on disk while open: served from the editor's text; closing it is fine.
    let lib = p.repo.path().join("src/lib.rs");
    let lib_uri = uri(&lib);
    let text = std::fs::read_to_string(&lib).expect("lib");
    client.open(&lib_uri, "rust", &text);
    std::fs::remove_file(&lib).expect("delete");
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": lib_uri, "type": 3 }] }),
    );
    let result = client.request(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": lib_uri }, "position": client.position(&text, text.len()), "context": { "triggerKind": 1 } }),
    );
    assert!(result["items"].is_array(), "{result}");
    client.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": lib_uri } }),
    );
    // A huge document (4 MiB, one long line in the middle): opened, edited and completed in time.
    let huge_path = p.repo.path().join("src/huge.rs");
    let mut huge = String::with_capacity(4 << 20);
    while huge.len() < 4 << 20 {
        huge.push_str("fn f() { let x = \"é😀\"; }\n");
    }
    huge.push_str(&"x".repeat(100_000));
    huge.push('\n');
    let huge_uri = uri(&huge_path);
    client.open(&huge_uri, "rust", &huge);
    let mid = huge.len() / 2;
    let mid = (mid..).find(|i| huge.is_char_boundary(*i)).unwrap_or(mid);
    client.edit(&huge_uri, mid, mid, "// edit\n");
    let huge = client.doc(&huge_uri).text;
    let started = Instant::now();
    let result = client.request(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": huge_uri }, "position": client.position(&huge, mid + 8), "context": { "triggerKind": 1 } }),
    );
    assert!(result["items"].is_array(), "{result}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "huge document took {:?}",
        started.elapsed()
    );
    assert_eq!(client.wait_ready()["state"], "ready");
    // Exit without shutdown: exit code 1, as the specification asks.
    client.notify("exit", Value::Null);
    assert_eq!(p.wait_exit(), Some(1), "{}", p.stderr());
    assert!(!p.stderr().contains("panicked"), "{}", p.stderr());
}

/// 50 `didChange` + `inlineCompletion` pairs in one burst: every request is answered, only the last one is
/// generated in full (the rest are cancelled, as the suggestion log shows), and memory stays flat.
#[test]
fn keystroke_burst_cancels_all_but_the_last() {
    let p = Process::start();
    // Long generations: a superseded one must really be cut short.
    p.initialize(json!({ "completion": { "maxTokens": 128, "debounceMs": 75 } }));
    let client = &p.client;
    let path = p.repo.path().join("src/geometry.rs");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let uri = uri(&path);
    client.open(&uri, "rust", &text);
    let typed = "\npub fn area_of_all(shapes: &[f64]) -> f64 { shapes.iter().map(|s| s * 2.0).sum::<f64>() + 1.0 }";
    let request = |client: &Client| {
        let doc = client.doc(&uri);
        client.send_request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": uri }, "position": client.position(&doc.text, doc.text.len()), "context": { "triggerKind": 2 } }),
        )
    };
    // Warm up (first allocations, caches), then measure.
    for ch in typed.chars().take(5) {
        let end = client.doc(&uri).text.len();
        client.edit(&uri, end, end, &ch.to_string());
        let id = request(client);
        client.wait_response(id, TIMEOUT);
    }
    let baseline = p.summary();
    let rss_before = p.rss_kib();
    // One write: pacing the pairs from this thread would let a stalled test thread (a loaded machine) leave
    // a gap longer than a generation, and the adaptive debounce rightly generates then.
    let ids: Vec<i64> = client.burst(|| {
        typed
            .chars()
            .skip(5)
            .take(50)
            .map(|ch| {
                let end = client.doc(&uri).text.len();
                client.edit(&uri, end, end, &ch.to_string());
                request(client)
            })
            .collect()
    });
    assert_eq!(ids.len(), 50);
    let mut answered = 0;
    for id in &ids {
        let response = client.wait_response(*id, TIMEOUT);
        assert!(response["result"]["items"].is_array(), "{response}");
        answered += 1;
    }
    assert_eq!(answered, 50);
    let rss_after = p.rss_kib();
    let summary = p.summary();
    let count = |o| summary.count(o) - baseline.count(o);
    let generated = count(Outcome::Shown) + count(Outcome::Empty);
    let cancelled = count(Outcome::Cancelled) + count(Outcome::Stale);
    eprintln!(
        "burst: generated {generated}, cancelled {cancelled}, failed {}, rss {rss_before} -> {rss_after} KiB",
        count(Outcome::Failed)
    );
    assert_eq!(generated + cancelled + count(Outcome::Failed), 50);
    assert_eq!(generated, 1, "only the last request is generated in full");
    assert_eq!(cancelled, 49);
    assert!(
        rss_after <= rss_before + 16 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB"
    );
}

/// The suggestion log's events of one kind, in order.
fn log_events(p: &Process, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(p.cache.path().join(LOG_FILE_NAME))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

#[test]
fn typing_reuses_the_kv_cache_and_idle_time_warms_it() {
    let p = Process::start();
    // A budget well inside the fixture model's 256 positions: it counts its own tokenizer's tokens.
    p.initialize(json!({ "completion": { "maxTokens": 8, "debounceMs": 0, "budget": 150 } }));
    let client = &p.client;
    let path = p.repo.path().join("src/geometry.rs");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let uri = uri(&path);
    client.open(&uri, "rust", &text);
    // An opened document is warmed (where its cursor most likely is: the top) once the engine is idle.
    let deadline = Instant::now() + TIMEOUT;
    while !log_events(&p, "warmup")
        .iter()
        .any(|w| w["trigger"] == "open" && w["finish"] == "done")
    {
        assert!(
            Instant::now() < deadline,
            "no warm-up after didOpen: {:?}\n{}",
            log_events(&p, "warmup"),
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let warm = &log_events(&p, "warmup")[0];
    assert!(warm["prefilled_tokens"].as_u64() > Some(0), "{warm}");
    // A request in a function body, then one keystroke there: the second request prefills only what changed
    // at the cursor and the short suffix, not the prompt.
    let at = text.find("circle_area(self.radius)").expect("call") + "circle_area(".len();
    let ask = |offset: usize| {
        let doc = client.doc(&uri);
        let id = client.send_request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": uri }, "position": client.position(&doc.text, offset), "context": { "triggerKind": 1 } }),
        );
        client.wait_response(id, TIMEOUT)
    };
    let first = ask(at);
    // A character the suggestion did not predict (typing through it is answered without generating).
    let suggested = first["result"]["items"][0]["insertText"]
        .as_str()
        .unwrap_or("");
    let typed = if suggested.starts_with('s') { "q" } else { "s" };
    client.edit(&uri, at, at, typed);
    ask(at + 1);
    let generations: Vec<Value> = log_events(&p, "suggestion")
        .into_iter()
        .filter(|e| e.get("prefilled_tokens").is_some())
        .collect();
    assert_eq!(generations.len(), 2, "{generations:?}");
    let (first, second) = (&generations[0], &generations[1]);
    let count = |e: &Value, key: &str| e[key].as_u64().expect("a token count");
    assert_eq!(
        count(second, "reused_tokens") + count(second, "prefilled_tokens"),
        count(second, "prompt_tokens")
    );
    assert!(
        count(second, "prefilled_tokens") * 3 < count(second, "prompt_tokens"),
        "a keystroke re-ran most of the prompt: {second}"
    );
    // (The budget is counted with the built-in Qwen tokenizer; the fixture model's own tokenizer differs.)
    assert!(
        count(first, "prefilled_tokens") > count(second, "prefilled_tokens"),
        "{first}"
    );
    assert_eq!(second["layout"], "full");
    // `qwen-ls stats` reads them back.
    let summary = p.summary();
    assert_eq!(summary.prefilled_tokens.len(), 2);
    assert!(summary.warm_ups.contains_key("done"));
}
