//! The language server in process, on a scripted model (a test double of `tasks::Generator` defined here):
//! every answer is known, so the tests can check the exact edits, the applyEdit round trip, the version
//! checks, and that a panic inside a task leaves the server serving.
//!
//! Orderings are forced, never waited out: a scripted answer can be held at a [`Gate`] until the test has
//! seen the server take in an edit ([`barrier`]), and the index writer can be held ([`Hold`]) to play a slow
//! writer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use qwen_ls::index::Change;
use qwen_ls::lsp::IndexHook;
use qwen_ls::tasks::measure::{summarize, Outcome};
use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenError, GenOutput, GenPrompt, GenRequest, GenStats,
    Generator, GeneratorInfo, EXPLAIN_SYSTEM,
};
use serde_json::{json, Value};

use super::harness::{position_of, TIMEOUT};
use super::{uri, InProcess};

/// One scripted answer.
#[derive(Clone, Default)]
struct Script {
    text: String,
    /// Panic instead of answering.
    panic: bool,
    /// Answer only once this gate is open (or the generation is cancelled).
    gate: Option<Arc<Gate>>,
}

/// A one-way gate between the test and the scripted model.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    fn open(&self) {
        *self.open.lock().expect("lock") = true;
        self.opened.notify_all();
    }

    /// Waits until the gate is open (at most [`TIMEOUT`]: a test that forgets to open it fails, not hangs).
    fn wait(&self) {
        let open = self.open.lock().expect("lock");
        let _open = self
            .opened
            .wait_timeout_while(open, TIMEOUT, |open| !*open)
            .expect("lock");
    }
}

/// A slow index writer, injected through `ServeOptions::index_hook`: while armed, the writer stops before
/// applying an edit of `src/lib.rs` until the test releases it, or for [`HOLD_AT_MOST`]. The bound makes it
/// a delay, not a deadlock, for a server that (correctly) waits for its index before answering; the outcome
/// does not depend on its length.
#[derive(Default)]
struct Hold {
    state: Mutex<HoldState>,
    released: Condvar,
}

#[derive(Default)]
struct HoldState {
    armed: bool,
    holding: bool,
}

const HOLD_AT_MOST: Duration = Duration::from_secs(2);

impl Hold {
    fn arm(&self) {
        self.state.lock().expect("lock").armed = true;
    }

    fn release(&self) {
        self.state.lock().expect("lock").armed = false;
        self.released.notify_all();
    }

    /// Whether the writer is held right now (an edit of `src/lib.rs` is queued but not applied).
    fn holding(&self) -> bool {
        self.state.lock().expect("lock").holding
    }

    fn before_change(&self, change: &Change) {
        if !matches!(change, Change::Edit { path, .. } if path == "src/lib.rs") {
            return;
        }
        let mut state = self.state.lock().expect("lock");
        if !state.armed {
            return;
        }
        state.holding = true;
        let (mut state, _) = self
            .released
            .wait_timeout_while(state, HOLD_AT_MOST, |s| s.armed)
            .expect("lock");
        state.holding = false;
    }
}

fn say(text: &str) -> Script {
    Script {
        text: text.to_owned(),
        ..Script::default()
    }
}

/// The test double: answers from three queues (FIM completions, explanations, edits).
#[derive(Default)]
struct Scripted {
    fim: Mutex<VecDeque<Script>>,
    explain: Mutex<VecDeque<Script>>,
    edit: Mutex<VecDeque<Script>>,
    started: AtomicUsize,
    cancelled: AtomicUsize,
    /// The index writer's hold (see [`Hold`]).
    hold: Arc<Hold>,
    /// Generations that started while the index writer was held behind an edit.
    started_behind_index: AtomicUsize,
}

impl Scripted {
    fn push(queue: &Mutex<VecDeque<Script>>, script: Script) {
        queue.lock().expect("lock").push_back(script);
    }
}

impl Generator for Scripted {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            backend: "local",
            model: "scripted".to_owned(),
            context_window: Some(32_768),
        }
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        let queue = match &request.prompt {
            GenPrompt::Raw(_) => &self.fim,
            GenPrompt::Chat(messages)
                if messages.iter().any(|m| m.content.contains(EXPLAIN_SYSTEM)) =>
            {
                &self.explain
            }
            GenPrompt::Chat(_) => &self.edit,
        };
        let script = queue.lock().expect("lock").pop_front().unwrap_or_default();
        self.started.fetch_add(1, Ordering::SeqCst);
        if self.hold.holding() {
            self.started_behind_index.fetch_add(1, Ordering::SeqCst);
        }
        assert!(!script.panic, "scripted panic inside the model");
        if let Some(gate) = &script.gate {
            gate.wait();
        }
        let started = Instant::now();
        let chars: Vec<char> = script.text.chars().collect();
        let mut text = String::new();
        let mut finish = FinishReason::EndOfText;
        for chunk in chars.chunks(3) {
            if cancel.is_cancelled() {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                finish = FinishReason::Cancelled;
                break;
            }
            let chunk: String = chunk.iter().collect();
            text.push_str(&chunk);
            if on_text(&chunk) == Flow::Stop {
                finish = FinishReason::Stopped;
                break;
            }
        }
        Ok(GenOutput {
            stats: GenStats {
                generated_tokens: text.len() / 3,
                decode_secs: started.elapsed().as_secs_f64(),
                ..GenStats::default()
            },
            text,
            finish,
        })
    }
}

const LIB: &str = "// Sums: 😀 é\npub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\npub fn total(values: &[i32]) -> i32 {\n    \n}\n";

fn edit_block(search: &str, replace: &str) -> String {
    format!("src/lib.rs\n```rust\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")
}

/// Returns once the server has taken in every message sent before: the front door refuses internal method
/// names at once, in arrival order, after applying the document notifications that came first.
fn barrier(client: &super::Client) {
    let answer = client.call("qwen-ls/internal/barrier", json!({}));
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
}

fn command(client: &super::Client, command: &str, args: Value) -> Value {
    client.request(
        "workspace/executeCommand",
        json!({ "command": command, "arguments": [args] }),
    )
}

struct Session {
    server: InProcess,
    model: Arc<Scripted>,
    uri: String,
    root: std::path::PathBuf,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
}

fn start() -> Session {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(root.join("src/lib.rs"), LIB).expect("write");
    let log = dir.path().join("suggestions.jsonl");
    let model = Arc::new(Scripted::default());
    let hold = model.hold.clone();
    let hook: IndexHook = Arc::new(move |change: &Change| hold.before_change(change));
    let server = InProcess::start(model.clone(), Some(log.clone()), Some(hook));
    let client = &server.client;
    let init = client.initialize(
        &root,
        json!({ "completion": { "debounceMs": 0 }, "unknownKey": 1 }),
        &["utf-16"],
    );
    let caps = &init["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["inlineCompletionProvider"], true);
    assert!(
        caps.get("completionProvider").is_none(),
        "no fallback for a client with inline completion"
    );
    let commands = caps["executeCommandProvider"]["commands"]
        .as_array()
        .expect("commands");
    for c in [
        "qwen-ls.refactor",
        "qwen-ls.applyInstruction",
        "qwen-ls.explain",
        "qwen-ls.completionAccepted",
        "qwen-ls.status",
        "qwen-ls.debug.dumpPrompt",
    ] {
        assert!(
            commands.contains(&json!(c)),
            "{c} in executeCommandProvider"
        );
    }
    assert_eq!(caps["codeActionProvider"]["resolveProvider"], true);
    assert_eq!(caps["textDocumentSync"]["change"], 2);
    let status = client.wait_ready();
    assert_eq!(status["model"], "scripted");
    assert!(
        status["indexedFiles"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );
    let uri = uri(&root.join("src/lib.rs"));
    client.open(&uri, "rust", LIB);
    Session {
        server,
        model,
        uri,
        root,
        _dir: dir,
        log,
    }
}

fn inline(client: &super::Client, uri: &str, position: Value, trigger: u8) -> Value {
    client.request(
        "textDocument/inlineCompletion",
        json!({
            "textDocument": { "uri": uri },
            "position": position,
            "context": { "triggerKind": trigger },
        }),
    )
}

/// initialize → didOpen → didChange → inlineCompletion → accept → hover → codeAction → resolve → refactor
/// command with its applyEdit round trip → shutdown, with exact answers.
#[test]
fn scripted_session_round_trip() {
    let s = start();
    let client = &s.server.client;
    // An edit before the cursor, in UTF-16 columns after an emoji: the server must apply it exactly.
    let text = client.doc(&s.uri).text;
    let at = text.find("Sums").expect("comment");
    client.edit(&s.uri, at, at + 4, "Adds");

    // Inline completion at the start of total's empty body line (immediate: start of a line).
    let text = client.doc(&s.uri).text;
    let cursor = text.find("    \n}").expect("body") + 4;
    Scripted::push(
        &s.model.fim,
        say("values.iter().sum()\n}\n\npub fn other() {}\n"),
    );
    let result = inline(client, &s.uri, position_of(&text, cursor), 2);
    let items = result["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{result}");
    let item = &items[0];
    assert_eq!(item["insertText"], "values.iter().sum()");
    assert_eq!(item["range"]["start"], position_of(&text, cursor));
    assert_eq!(item["command"]["command"], "qwen-ls.completionAccepted");
    let id = item["command"]["arguments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        command(client, "qwen-ls.completionAccepted", json!({ "id": id })),
        Value::Null
    );

    // The exact prompt of that position, on demand.
    let dumped = command(
        client,
        "qwen-ls.debug.dumpPrompt",
        json!({ "uri": s.uri, "position": position_of(&text, cursor) }),
    );
    let prompt = dumped["prompt"].as_str().expect("prompt");
    assert!(
        prompt.contains("<|fim_prefix|>") && prompt.contains("Adds: 😀"),
        "{prompt}"
    );

    // Hover: on the declaration line of `add` an explanation; on the comment nothing (at once).
    Scripted::push(&s.model.explain, say("Adds **a** and **b**."));
    let add_line = text.find("pub fn add").expect("add");
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": s.uri }, "position": position_of(&text, add_line + 8) }),
    );
    assert_eq!(hover["contents"]["kind"], "markdown");
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap_or("")
            .contains("Adds **a**"),
        "{hover}"
    );
    let none = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": s.uri }, "position": { "line": 0, "character": 3 } }),
    );
    assert_eq!(none, Value::Null);

    // Code actions: listed at once, four with a diagnostic in the context.
    let body = text.find("    a - b").expect("body");
    let range = json!({ "start": position_of(&text, body), "end": position_of(&text, body + 9) });
    let diagnostic =
        json!({ "range": range, "message": "wrong operator", "severity": 1, "source": "test" });
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": s.uri }, "range": range, "context": { "diagnostics": [diagnostic] } }),
    );
    let titles: Vec<&str> = actions
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "qwen-ls: Add documentation",
            "qwen-ls: Fix diagnostics in range",
            "qwen-ls: Refactor with instruction…",
            "qwen-ls: Apply instruction across workspace…",
        ]
    );
    let refactor_action = &actions[2];
    assert_eq!(refactor_action["command"]["command"], "qwen-ls.refactor");
    assert_eq!(
        refactor_action["command"]["arguments"][0]["uri"],
        s.uri.as_str()
    );
    assert!(refactor_action["command"]["arguments"][0]
        .get("instruction")
        .is_none());
    assert_eq!(actions[3]["command"]["arguments"], json!([{}]));

    // Resolve "Fix diagnostics": the edit is versioned and produces the expected text.
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a - b\n", "    a + b\n")),
    );
    let resolved = client.request("codeAction/resolve", actions[1].clone());
    let change = &resolved["edit"]["documentChanges"][0];
    assert_eq!(
        change["textDocument"]["version"],
        client.doc(&s.uri).version
    );
    assert_eq!(
        client.apply_workspace_edit(&resolved["edit"])["applied"],
        true
    );
    assert!(client.doc(&s.uri).text.contains("    a + b\n"));
    assert_eq!(
        change["edits"].as_array().map(Vec::len),
        Some(1),
        "one minimal edit: {change}"
    );

    // The refactor command: the server sends workspace/applyEdit, the client applies it.
    let text = client.doc(&s.uri).text;
    let add = text.find("pub fn add").expect("add");
    let position = position_of(&text, add);
    Scripted::push(
        &s.model.edit,
        say(&edit_block(
            "pub fn add(a: i32, b: i32) -> i32 {\n",
            "/// Adds `a` and `b`.\npub fn add(a: i32, b: i32) -> i32 {\n",
        )),
    );
    let result = command(
        client,
        "qwen-ls.refactor",
        json!({ "uri": s.uri, "range": { "start": position, "end": position }, "instruction": "document it" }),
    );
    assert_eq!(result, json!({ "applied": true }));
    let applied = client.server_requests("workspace/applyEdit");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["label"], "qwen-ls: refactor");
    let expected = text.replace(
        "pub fn add(a: i32",
        "/// Adds `a` and `b`.\npub fn add(a: i32",
    );
    assert_eq!(client.doc(&s.uri).text, expected);

    // Progress and status reached the client.
    let created = client.server_requests("window/workDoneProgress/create");
    assert!(
        created.len() >= 2,
        "progress tokens for the model and the index"
    );
    let progress = client.notifications("$/progress");
    let titles: Vec<&str> = progress
        .iter()
        .filter_map(|p| p["value"]["title"].as_str())
        .collect();
    assert!(
        titles.contains(&"qwen-ls: loading model") && titles.contains(&"qwen-ls: indexing"),
        "{titles:?}"
    );
    let states: Vec<Value> = client
        .notifications("qwen-ls/status")
        .iter()
        .map(|n| n["state"].clone())
        .collect();
    assert_eq!(states.last(), Some(&json!("ready")), "{states:?}");

    client.shutdown_and_exit();
    assert!(s.server.join(), "clean exit after shutdown + exit");
    let summary = summarize(std::io::BufReader::new(
        std::fs::File::open(&s.log).expect("log"),
    ));
    assert_eq!(summary.count(Outcome::Shown), 1);
    assert_eq!(summary.accepted, 1);
}

/// An edit computed for a text that changed meanwhile is never applied; an edit the client refuses is
/// reported as not applied.
#[test]
fn edits_for_a_changed_document_are_dropped() {
    let s = start();
    let client = &s.server.client;
    let text = client.doc(&s.uri).text;
    let body = text.find("    a - b").expect("body");
    let range = json!({ "start": position_of(&text, body), "end": position_of(&text, body + 9) });
    // A slow answer; the user types while it is generated (the answer waits until the server has the edit).
    let gate = Gate::new();
    Scripted::push(
        &s.model.edit,
        Script {
            gate: Some(gate.clone()),
            ..say(&edit_block("    a - b\n", "    a + b\n"))
        },
    );
    let id = client.send_request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.refactor", "arguments": [{ "uri": s.uri, "range": range, "instruction": "fix" }] }),
    );
    client.wait_until("the generation to start", TIMEOUT, |_| {
        s.model.started.load(Ordering::SeqCst) > 0
    });
    let end = text.len();
    client.edit(&s.uri, end, end, "// typed meanwhile\n");
    barrier(client);
    gate.open();
    let result = client.wait_response(id, TIMEOUT)["result"].clone();
    assert_eq!(result["applied"], false, "{result}");
    let message = result["message"].as_str().unwrap_or("");
    assert!(
        message.contains("changed") || message.contains("edited"),
        "{result}"
    );
    assert!(client.server_requests("workspace/applyEdit").is_empty());
    assert!(client.doc(&s.uri).text.contains("    a - b\n"));

    // A code action listed for an older version resolves to no edit.
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": s.uri }, "range": range, "context": { "diagnostics": [] } }),
    );
    let add_docs = actions[0].clone();
    client.edit(&s.uri, 0, 0, "\n");
    let resolved = client.request("codeAction/resolve", add_docs);
    assert!(resolved.get("edit").is_none(), "{resolved}");

    // The client refuses the edit: reported, nothing changes.
    client.refuse_edits(true);
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a - b\n", "    a + b\n")),
    );
    let text = client.doc(&s.uri).text;
    let body = text.find("    a - b").expect("body");
    let range = json!({ "start": position_of(&text, body), "end": position_of(&text, body + 9) });
    let result = command(
        client,
        "qwen-ls.refactor",
        json!({ "uri": s.uri, "range": range, "instruction": "fix" }),
    );
    assert_eq!(result["applied"], false, "{result}");
    assert_eq!(result["message"], "refused by the test");

    // An answer that is not an edit: reported, nothing sent.
    client.refuse_edits(false);
    Scripted::push(&s.model.edit, say("I would rather not."));
    let result = command(
        client,
        "qwen-ls.refactor",
        json!({ "uri": s.uri, "range": range, "instruction": "fix" }),
    );
    assert_eq!(result["applied"], false);
    assert!(
        result["message"]
            .as_str()
            .unwrap_or("")
            .contains("could not be turned into an edit"),
        "{result}"
    );
    // No instruction: refused before any model work.
    let result = command(
        client,
        "qwen-ls.refactor",
        json!({ "uri": s.uri, "range": range }),
    );
    assert_eq!(
        result,
        json!({ "applied": false, "message": "no instruction was given" })
    );
    client.shutdown_and_exit();
    assert!(s.server.join());
}

/// Every request sees the index with every edit that arrived before it: a refactor sent right after an edit,
/// while the index writer is slow to apply that edit, is computed against the edited text and applies —
/// rather than being dropped as "changed since the model saw it" because the index still held the old text.
#[test]
fn a_request_waits_for_the_index_to_take_earlier_edits() {
    let s = start();
    let client = &s.server.client;
    s.model.hold.arm();
    client.edit(&s.uri, 0, 0, "// edited\n");
    let text = client.doc(&s.uri).text;
    let body = text.find("    a - b").expect("body");
    let range = json!({ "start": position_of(&text, body), "end": position_of(&text, body + 9) });
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a - b\n", "    a + b\n")),
    );
    let result = command(
        client,
        "qwen-ls.refactor",
        json!({ "uri": s.uri, "range": range, "instruction": "fix" }),
    );
    s.model.hold.release();
    assert_eq!(
        s.model.started_behind_index.load(Ordering::SeqCst),
        0,
        "the model ran while the index lacked an earlier edit"
    );
    assert_eq!(result, json!({ "applied": true }), "{result}");
    let text = client.doc(&s.uri).text;
    assert!(
        text.starts_with("// edited\n") && text.contains("    a + b\n"),
        "{text}"
    );
    client.shutdown_and_exit();
    assert!(s.server.join());
}

/// A panic inside a task answers that one request with an error; the server keeps serving. Unknown
/// methods, unopened documents and stale requests get proper answers.
#[test]
fn panics_and_bad_requests_leave_the_server_serving() {
    let s = start();
    let client = &s.server.client;
    let text = client.doc(&s.uri).text;
    let cursor = text.find("    \n}").expect("body") + 4;
    Scripted::push(
        &s.model.fim,
        Script {
            panic: true,
            ..Script::default()
        },
    );
    let response = client.call(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": s.uri }, "position": position_of(&text, cursor), "context": { "triggerKind": 1 } }),
    );
    assert_eq!(response["error"]["code"], -32603, "{response}");
    assert!(response["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("scripted panic"));
    assert_eq!(client.wait_ready()["state"], "ready");
    // The next completion works.
    Scripted::push(&s.model.fim, say("values.iter().sum()\n}\n"));
    let result = inline(client, &s.uri, position_of(&text, cursor), 1);
    assert_eq!(result["items"][0]["insertText"], "values.iter().sum()");

    // Unknown method: MethodNotFound. Internal names are not reachable from outside.
    assert_eq!(
        client.call("qwen/unknown", json!({}))["error"]["code"],
        -32601
    );
    assert_eq!(
        client.call("qwen-ls/internal/hover", json!({}))["error"]["code"],
        -32601
    );
    // Unopened document: empty answers, at once.
    let other = s.uri.replace("lib.rs", "nope.rs");
    let result = inline(client, &other, json!({ "line": 0, "character": 0 }), 1);
    assert_eq!(result["items"], json!([]));
    let hover = client.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": other }, "position": { "line": 0, "character": 0 } }),
    );
    assert_eq!(hover, Value::Null);
    // Bad params: InvalidParams, not a crash.
    assert_eq!(
        client.call("textDocument/inlineCompletion", json!({ "nope": 1 }))["error"]["code"],
        -32602
    );
    assert_eq!(
        client.call(
            "workspace/executeCommand",
            json!({ "command": "qwen-ls.nope" })
        )["error"]["code"],
        -32602
    );
    // A request immediately followed by an edit of its document: never an answer for the old text. The
    // answer is held until the server has the edit (whether the edit lands before the handler starts, during
    // the generation or after it, the answer must be empty); an answer the server computes before it reads
    // the edit is the client's to discard and is not what this checks. (Not at `cursor`: the forward cache
    // would answer there at once from the suggestion shown above, without a generation to hold.)
    let cursor = text.find("    a - b").expect("body") + 9;
    let gate = Gate::new();
    Scripted::push(
        &s.model.fim,
        Script {
            gate: Some(gate.clone()),
            ..say("values.iter().sum()\n}\n")
        },
    );
    let id = client.send_request(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": s.uri }, "position": position_of(&text, cursor), "context": { "triggerKind": 1 } }),
    );
    client.edit(&s.uri, cursor, cursor, "v");
    barrier(client);
    gate.open();
    let result = client.wait_response(id, TIMEOUT)["result"].clone();
    assert_eq!(result["items"], json!([]), "stale answer shown: {result}");
    client.shutdown_and_exit();
    assert!(s.server.join());
}

/// `workspace/didChangeConfiguration` carries the whole configuration: disabling completions, dumping
/// prompts, and a model change that reloads the model (status goes back through loading to ready).
#[test]
fn configuration_changes_apply_whole() {
    let s = start();
    let client = &s.server.client;
    let text = client.doc(&s.uri).text;
    let cursor = text.find("    \n}").expect("body") + 4;
    let configure = |settings: Value| {
        client.notify(
            "workspace/didChangeConfiguration",
            json!({ "settings": { "qwen-ls": settings } }),
        );
    };
    configure(json!({ "completion": { "enabled": false } }));
    let before = s.model.started.load(Ordering::SeqCst);
    let result = inline(client, &s.uri, position_of(&text, cursor), 1);
    assert_eq!(result["items"], json!([]));
    assert_eq!(
        s.model.started.load(Ordering::SeqCst),
        before,
        "no generation while disabled"
    );

    // `completion.enabled` is absent from the next message: back to its default (on). Prompts are dumped
    // next to the log file.
    let dir = tempfile::tempdir().expect("tmp");
    configure(json!({ "debug": { "dumpPrompt": true }, "logFile": dir.path().join("q.log") }));
    Scripted::push(&s.model.fim, say("values.iter().sum()\n}\n"));
    let result = inline(client, &s.uri, position_of(&text, cursor), 1);
    let id = result["items"][0]["command"]["arguments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let dumped = dir
        .path()
        .join("qwen-ls-prompts")
        .join(format!("completion-{id}.txt"));
    let prompt = std::fs::read_to_string(&dumped).expect("prompt dumped");
    assert!(prompt.contains("<|fim_prefix|>"), "{prompt}");

    // A new model: reloaded in the background, ready again.
    let ready_count = |c: &super::Client| {
        c.notifications("qwen-ls/status")
            .iter()
            .filter(|n| n["state"] == "ready")
            .count()
    };
    let readies = ready_count(client);
    configure(json!({ "model": "another" }));
    client.wait_until("the reload to finish", TIMEOUT, |c| {
        ready_count(c) > readies
    });
    let states: Vec<Value> = client
        .notifications("qwen-ls/status")
        .iter()
        .map(|n| n["state"].clone())
        .collect();
    assert!(states.contains(&json!("loading-model")), "{states:?}");
    assert_eq!(client.wait_ready()["state"], "ready");
    client.shutdown_and_exit();
    assert!(s.server.join());
}

/// "Fix diagnostics in range" with `codeActions.checkCommand`: the check loop runs in a scratch copy (the
/// editor's unsaved text included), the first answer fails the check, the second passes, and only then does the
/// action carry an edit; its rounds were reported as a cancellable `$/progress`. A second fix whose check hangs
/// is stopped by `window/workDoneProgress/cancel`, and a third by `codeActions.fixTimeLimit`.
#[test]
fn fix_diagnostics_checks_itself_and_can_be_cancelled() {
    let s = start();
    let client = &s.server.client;
    let on_disk = std::fs::read_to_string(s.root.join("src/lib.rs")).expect("read");
    client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "qwen-ls": {
            "completion": { "debounceMs": 0 },
            "codeActions": { "checkCommand": "grep -q 'a + b' src/lib.rs", "checkTimeout": 20 },
        } } }),
    );
    let text = client.doc(&s.uri).text;
    let body = text.find("    a - b").expect("body");
    let range = json!({ "start": position_of(&text, body), "end": position_of(&text, body + 9) });
    let diagnostic = json!({ "range": range, "message": "wrong operator", "severity": 1 });
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": s.uri }, "range": range, "context": { "diagnostics": [diagnostic] } }),
    );
    let fix = actions
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["title"] == "qwen-ls: Fix diagnostics in range")
        .expect("fix action")
        .clone();
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a - b\n", "    a * b\n")),
    );
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a * b\n", "    a + b\n")),
    );
    let resolved = client.request("codeAction/resolve", fix.clone());
    assert_eq!(
        client.apply_workspace_edit(&resolved["edit"])["applied"],
        true,
        "{resolved}"
    );
    assert!(client.doc(&s.uri).text.contains("    a + b\n"));
    assert!(!client.doc(&s.uri).text.contains("a * b"));
    let messages: Vec<String> = client
        .notifications("$/progress")
        .iter()
        .filter_map(|p| p["value"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("round 2/3: running `grep")),
        "{messages:?}"
    );
    let begin = client
        .notifications("$/progress")
        .into_iter()
        .find(|p| p["value"]["title"] == "qwen-ls: Fix diagnostics in range")
        .expect("a progress stream for the fix");
    assert_eq!(begin["value"]["cancellable"], true);
    // The loop never wrote the user's tree: the edit went through the editor.
    assert_eq!(
        std::fs::read_to_string(s.root.join("src/lib.rs")).expect("read"),
        on_disk
    );

    // A check that hangs, cancelled from the progress.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "qwen-ls": { "codeActions": { "checkCommand": "sleep 60" } } } }),
    );
    let text = client.doc(&s.uri).text;
    let body = text.find("    a + b").expect("body");
    let range = json!({ "start": position_of(&text, body), "end": position_of(&text, body + 9) });
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": s.uri }, "range": range, "context": { "diagnostics": [diagnostic] } }),
    );
    let fix = actions[1].clone();
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a + b\n", "    b + a\n")),
    );
    let streams = client
        .server_requests("window/workDoneProgress/create")
        .len();
    let started = Instant::now();
    let id = client.send_request("codeAction/resolve", fix);
    client.wait_until("the second fix's progress", TIMEOUT, |c| {
        c.server_requests("window/workDoneProgress/create").len() > streams
    });
    let token = client.server_requests("window/workDoneProgress/create")[streams]["token"].clone();
    client.wait_until("the check to start", TIMEOUT, |c| {
        c.notifications("$/progress").iter().any(|p| {
            p["token"] == token && p["value"]["message"] == "round 1/3: running `sleep 60`"
        })
    });
    client.notify("window/workDoneProgress/cancel", json!({ "token": token }));
    let resolved = client.wait_response(id, TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(resolved["result"]["edit"].is_null(), "{resolved}");
    // The message is a notification: tower-lsp writes it and the response through separate queues, so it
    // may arrive just after the response.
    client.wait_until("a message that says the fix was cancelled", TIMEOUT, |c| {
        c.notifications("window/showMessage").iter().any(|m| {
            m["message"]
                .as_str()
                .is_some_and(|t| t.contains("cancelled"))
        })
    });

    // The same hanging check under `codeActions.fixTimeLimit`: stopped at the limit, nothing applied.
    client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "qwen-ls": { "codeActions": { "checkCommand": "sleep 60", "fixTimeLimit": 2 } } } }),
    );
    Scripted::push(
        &s.model.edit,
        say(&edit_block("    a + b\n", "    b + a\n")),
    );
    let started = Instant::now();
    let resolved = client.request("codeAction/resolve", actions[1].clone());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(resolved["edit"].is_null(), "{resolved}");
    client.wait_until("the time-limit message", TIMEOUT, |c| {
        c.notifications("window/showMessage").iter().any(|m| {
            m["message"].as_str().is_some_and(|t| {
                t.contains("the time limit was reached") && t.contains("nothing was applied")
            })
        })
    });
    client.shutdown_and_exit();
    assert!(s.server.join());
}

/// An invoked completion (`triggerKind` 1) answers up to three distinct suggestions (a duplicate dropped,
/// generation order kept when the backend gives no log-probabilities); an automatic one stays single.
#[test]
fn an_invoked_completion_offers_distinct_alternatives() {
    let s = start();
    let client = &s.server.client;
    let text = client.doc(&s.uri).text;
    let cursor = text.find("    \n}").expect("body") + 4;
    for answer in [
        "values.len() as i32\n}\n",
        "values.len() as i32\n}\n",
        "values.iter().sum()\n}\n",
        "0\n}\n",
    ] {
        Scripted::push(&s.model.fim, say(answer));
    }
    let result = inline(client, &s.uri, position_of(&text, cursor), 1);
    let texts: Vec<&str> = result["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["insertText"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["values.len() as i32", "values.iter().sum()", "0"],
        "{result}"
    );
    assert_eq!(
        s.model.started.load(Ordering::SeqCst),
        4,
        "one greedy + three sampled"
    );
    let ids: Vec<&str> = result["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["command"]["arguments"][0]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2],
        "each suggestion has its own id"
    );
    // Accepting a word of the second alternative, then all of it: counted for this request.
    let partial = json!({ "id": ids[1], "unit": "word", "chars": 7 });
    assert_eq!(
        command(client, "qwen-ls.completionPartiallyAccepted", partial),
        Value::Null
    );
    assert_eq!(
        command(
            client,
            "qwen-ls.completionAccepted",
            json!({ "id": ids[1] })
        ),
        Value::Null
    );
    let bad = client.call(
        "workspace/executeCommand",
        json!({
            "command": "qwen-ls.completionPartiallyAccepted",
            "arguments": [{ "id": ids[1], "unit": "page" }],
        }),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    // Automatic: one suggestion, no new generation (the shown one comes from the forward cache).
    let automatic = inline(client, &s.uri, position_of(&text, cursor), 2);
    assert_eq!(
        automatic["items"].as_array().map(Vec::len),
        Some(1),
        "{automatic}"
    );
    assert_eq!(automatic["items"][0]["insertText"], "values.len() as i32");
    assert_eq!(s.model.started.load(Ordering::SeqCst), 4);
    client.shutdown_and_exit();
    assert!(s.server.join(), "clean exit");
    let summary = summarize(std::io::BufReader::new(
        std::fs::File::open(&s.log).expect("log"),
    ));
    assert_eq!(summary.accepted, 1, "{summary:?}");
    assert_eq!(
        (summary.partially_accepted, summary.partial_words),
        (1, 1),
        "{summary:?}"
    );
}
