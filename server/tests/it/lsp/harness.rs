//! A small LSP client for the tests: Content-Length framing over any byte streams (the real binary's
//! stdin/stdout, or a socket pair to an in-process server), request/response matching, and the answers an
//! editor gives to server requests (`window/workDoneProgress/create`, `workspace/applyEdit` — applied to the
//! client's own copy of each open document, then reported back with `didChange` as an editor would).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a test waits for any single answer.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// A document as the client sees it.
#[derive(Debug, Clone)]
pub struct Doc {
    pub version: i32,
    pub text: String,
}

#[derive(Default)]
struct Inner {
    responses: HashMap<i64, Value>,
    /// Responses with a null id (answers to unparsable messages).
    null_id: Vec<Value>,
    notifications: Vec<(String, Value)>,
    /// Server requests received: (method, params).
    server_requests: Vec<(String, Value)>,
    docs: HashMap<String, Doc>,
    /// Refuse `workspace/applyEdit` (to test the server's handling of a refusal).
    refuse_edits: bool,
    closed: bool,
    /// The negotiated `positionEncoding` is UTF-8 (columns are bytes), else UTF-16.
    utf8: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Condvar,
    writer: Mutex<Box<dyn Write + Send>>,
    /// While a burst is being written ([`Client::burst`]): the messages, sent together when it ends.
    corked: Mutex<Option<Vec<u8>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, message: &Value) {
        let body = message.to_string();
        if let Some(buffer) = self
            .corked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let _ = write!(buffer, "Content-Length: {}\r\n\r\n{body}", body.len());
            return;
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write!(writer, "Content-Length: {}\r\n\r\n{body}", body.len());
        let _ = writer.flush();
    }
}

/// The client.
pub struct Client {
    shared: Arc<Shared>,
    next_id: AtomicI64,
}

/// Byte offset of an LSP position (UTF-16 columns) in `text`.
pub fn offset_of(text: &str, line: u64, character: u64) -> usize {
    offset_in(text, line, character, false)
}

/// Byte offset of an LSP position in `text`, columns in UTF-8 bytes (`utf8`) or UTF-16 units.
pub fn offset_in(text: &str, line: u64, character: u64, utf8: bool) -> usize {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut units = 0u64;
    for (i, c) in text[start..end].char_indices() {
        if units >= character {
            return start + i;
        }
        units += if utf8 { c.len_utf8() } else { c.len_utf16() } as u64;
    }
    end
}

/// The LSP position (UTF-16 columns) of byte `offset`.
pub fn position_of(text: &str, offset: usize) -> Value {
    position_in(text, offset, false)
}

/// The LSP position of byte `offset`, columns in UTF-8 bytes (`utf8`) or UTF-16 units.
pub fn position_in(text: &str, offset: usize, utf8: bool) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let character: usize = if utf8 {
        offset - line_start
    } else {
        text[line_start..offset].chars().map(char::len_utf16).sum()
    };
    json!({ "line": line, "character": character })
}

fn apply_text_edits(text: &str, edits: &[Value], utf8: bool) -> String {
    let mut spans: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            let r = &e["range"];
            let at = |p: &Value| {
                offset_in(
                    text,
                    p["line"].as_u64().unwrap_or(0),
                    p["character"].as_u64().unwrap_or(0),
                    utf8,
                )
            };
            (
                at(&r["start"]),
                at(&r["end"]),
                e["newText"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    spans.sort_by_key(|s| (s.0, s.1));
    let mut out = String::new();
    let mut at = 0;
    for (start, end, new) in spans {
        out.push_str(&text[at..start]);
        out.push_str(&new);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

impl Client {
    /// A client over `reader` (server → client) and `writer` (client → server).
    pub fn over(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static) -> Client {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
            writer: Mutex::new(Box::new(writer)),
            corked: Mutex::new(None),
        });
        let reading = shared.clone();
        std::thread::spawn(move || read_loop(BufReader::new(reader), &reading));
        Client {
            shared,
            next_id: AtomicI64::new(1),
        }
    }

    /// Sends a request; returns its id.
    pub fn send_request(&self, method: &str, params: Value) -> i64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared
            .write(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Waits for the response to `id` (the whole response object).
    pub fn wait_response(&self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut inner = self.shared.lock();
        loop {
            if let Some(response) = inner.responses.remove(&id) {
                return response;
            }
            assert!(
                !inner.closed,
                "the server closed the connection before answering {id}"
            );
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no response to request {id} in {timeout:?}"
            );
            inner = self
                .shared
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sends a request and returns its response object.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.wait_response(id, TIMEOUT)
    }

    /// Sends a request and returns its result, failing the test on an error response.
    pub fn request(&self, method: &str, params: Value) -> Value {
        let response = self.call(method, params);
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Value) {
        self.shared
            .write(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends every message `messages` writes in one write: the server finds them all waiting at once, as
    /// from an editor faster than any debounce, whatever the scheduling of this thread.
    pub fn burst<T>(&self, messages: impl FnOnce() -> T) -> T {
        *self.shared.corked.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
        let result = messages();
        let bytes = self
            .shared
            .corked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        self.raw(&bytes);
        result
    }

    /// Writes raw bytes (for malformed-message tests).
    pub fn raw(&self, bytes: &[u8]) {
        let mut writer = self.shared.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writer.write_all(bytes);
        let _ = writer.flush();
    }

    /// `initialize` + `initialized`; returns the initialize result.
    pub fn initialize(&self, root: &std::path::Path, options: Value, encodings: &[&str]) -> Value {
        self.initialize_watching(root, options, encodings, false)
    }

    /// [`Client::initialize`], announcing `workspace.didChangeWatchedFiles.dynamicRegistration` when `watch`.
    pub fn initialize_watching(
        &self,
        root: &std::path::Path,
        options: Value,
        encodings: &[&str],
        watch: bool,
    ) -> Value {
        self.initialize_folders(&[root], options, encodings, watch)
    }

    /// [`Client::initialize_watching`] with several workspace folders (the first is `rootUri`).
    pub fn initialize_folders(
        &self,
        folders: &[&std::path::Path],
        options: Value,
        encodings: &[&str],
        watch: bool,
    ) -> Value {
        let uris: Vec<String> = folders
            .iter()
            .map(|f| format!("file://{}", f.display()))
            .collect();
        let workspace_folders: Vec<Value> = uris
            .iter()
            .enumerate()
            .map(|(i, uri)| json!({ "uri": uri, "name": format!("ws{i}") }))
            .collect();
        let result = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uris.first(),
                "workspaceFolders": workspace_folders,
                "initializationOptions": options,
                "capabilities": {
                    "general": { "positionEncodings": encodings },
                    "window": { "workDoneProgress": true },
                    "workspace": {
                        "applyEdit": true,
                        "workspaceEdit": { "documentChanges": true },
                        "didChangeWatchedFiles": { "dynamicRegistration": watch },
                    },
                    "textDocument": {
                        "inlineCompletion": {},
                        "hover": { "contentFormat": ["markdown"] },
                        "codeAction": { "resolveSupport": { "properties": ["edit"] }, "dataSupport": true },
                    },
                },
            }),
        );
        self.shared.lock().utf8 = result["capabilities"]["positionEncoding"] == "utf-8";
        self.notify("initialized", json!({}));
        result
    }

    /// The LSP position of byte `offset` of `text` in the negotiated encoding.
    pub fn position(&self, text: &str, offset: usize) -> Value {
        position_in(text, offset, self.shared.lock().utf8)
    }

    /// The byte offset of an LSP position (`{ "line", "character" }`) in the negotiated encoding.
    pub fn offset(&self, text: &str, position: &Value) -> usize {
        offset_in(
            text,
            position["line"].as_u64().unwrap_or(0),
            position["character"].as_u64().unwrap_or(0),
            self.shared.lock().utf8,
        )
    }

    /// Polls `qwen-ls.status` until `ready` (panics on `error` or timeout).
    pub fn wait_ready(&self) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let status = self.request(
                "workspace/executeCommand",
                json!({ "command": "qwen-ls.status", "arguments": [] }),
            );
            match status["state"].as_str() {
                Some("ready") => return status,
                Some("error") => panic!("server error: {status}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "not ready: {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `didOpen` at version 1.
    pub fn open(&self, uri: &str, language: &str, text: &str) {
        self.shared.lock().docs.insert(
            uri.to_owned(),
            Doc {
                version: 1,
                text: text.to_owned(),
            },
        );
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": language, "version": 1, "text": text } }),
        );
    }

    /// Replaces bytes `start..end` of the document with `new_text` (an incremental `didChange`); returns the
    /// new version.
    pub fn edit(&self, uri: &str, start: usize, end: usize, new_text: &str) -> i32 {
        let (version, range) = {
            let mut inner = self.shared.lock();
            let utf8 = inner.utf8;
            let doc = inner
                .docs
                .get_mut(uri)
                .expect("document open in the client");
            let range = json!({ "start": position_in(&doc.text, start, utf8), "end": position_in(&doc.text, end, utf8) });
            doc.text.replace_range(start..end, new_text);
            doc.version += 1;
            (doc.version, range)
        };
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": version },
                "contentChanges": [{ "range": range, "text": new_text }],
            }),
        );
        version
    }

    /// The client's copy of a document.
    pub fn doc(&self, uri: &str) -> Doc {
        self.shared
            .lock()
            .docs
            .get(uri)
            .cloned()
            .expect("document open in the client")
    }

    /// Notifications received so far with this method.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        self.shared
            .lock()
            .notifications
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Server requests received so far with this method.
    pub fn server_requests(&self, method: &str) -> Vec<Value> {
        self.shared
            .lock()
            .server_requests
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// Responses that carried a null id (answers to messages that could not be parsed).
    pub fn null_id_responses(&self) -> Vec<Value> {
        self.shared.lock().null_id.clone()
    }

    /// Makes the client refuse (or accept again) `workspace/applyEdit`.
    pub fn refuse_edits(&self, refuse: bool) {
        self.shared.lock().refuse_edits = refuse;
    }

    /// Waits until `check` holds (polled on every incoming message and every 50 ms).
    pub fn wait_until(&self, what: &str, timeout: Duration, check: impl Fn(&Client) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let inner = self.shared.lock();
            let _ = self
                .shared
                .changed
                .wait_timeout(inner, Duration::from_millis(50));
        }
    }

    /// Whether the server closed its output.
    pub fn closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Applies a `WorkspaceEdit` as an editor applying a resolved code action would (version-checked); the
    /// `{ "applied", "failureReason"? }` answer.
    pub fn apply_workspace_edit(&self, edit: &Value) -> Value {
        apply_edit(&self.shared, edit)
    }

    /// `shutdown` then `exit`.
    pub fn shutdown_and_exit(&self) {
        let result = self.call("shutdown", Value::Null);
        assert!(result.get("error").is_none(), "shutdown failed: {result}");
        self.notify("exit", Value::Null);
    }
}

fn read_frame(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn read_loop(mut reader: impl BufRead, shared: &Shared) {
    while let Some(message) = read_frame(&mut reader) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match (method, message.get("id").cloned()) {
            (Some(method), Some(id)) => {
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                let result = answer(shared, &method, &params);
                shared.lock().server_requests.push((method, params));
                shared.write(&json!({ "jsonrpc": "2.0", "id": id, "result": result }));
            }
            (Some(method), None) => {
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                shared.lock().notifications.push((method, params));
            }
            (None, Some(Value::Number(id))) => {
                let id = id.as_i64().unwrap_or(-1);
                shared.lock().responses.insert(id, message);
            }
            (None, _) => shared.lock().null_id.push(message),
        }
        shared.changed.notify_all();
    }
    shared.lock().closed = true;
    shared.changed.notify_all();
}

/// What an editor answers to a server request.
fn answer(shared: &Shared, method: &str, params: &Value) -> Value {
    match method {
        "workspace/applyEdit" => apply_edit(shared, &params["edit"]),
        "workspace/configuration" => json!(params["items"]
            .as_array()
            .map(|items| items.iter().map(|_| Value::Null).collect::<Vec<_>>())
            .unwrap_or_default()),
        _ => Value::Null,
    }
}

/// Applies versioned `documentChanges` to the client's documents (all or nothing, like VS Code), then
/// reports each changed document with a full-text `didChange`.
fn apply_edit(shared: &Shared, edit: &Value) -> Value {
    let mut inner = shared.lock();
    if inner.refuse_edits {
        return json!({ "applied": false, "failureReason": "refused by the test" });
    }
    let changes = edit["documentChanges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut updated = Vec::new();
    for change in &changes {
        if change.get("kind").is_some() {
            continue; // create/rename/delete: nothing to check in memory
        }
        let uri = change["textDocument"]["uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(doc) = inner.docs.get(&uri) else {
            return json!({ "applied": false, "failureReason": format!("{uri} is not open") });
        };
        if let Some(version) = change["textDocument"]["version"].as_i64() {
            if version != i64::from(doc.version) {
                return json!({ "applied": false, "failureReason": format!("version {version} != {}", doc.version) });
            }
        }
        let edits = change["edits"].as_array().cloned().unwrap_or_default();
        updated.push((uri, apply_text_edits(&doc.text, &edits, inner.utf8)));
    }
    let mut notes = Vec::new();
    for (uri, text) in updated {
        if let Some(doc) = inner.docs.get_mut(&uri) {
            doc.text = text.clone();
            doc.version += 1;
            notes.push(json!({
                "jsonrpc": "2.0",
                "method": "textDocument/didChange",
                "params": { "textDocument": { "uri": uri, "version": doc.version }, "contentChanges": [{ "text": text }] },
            }));
        }
    }
    drop(inner);
    // Sent before the response, as editors apply first and answer after.
    for note in notes {
        shared.write(&note);
    }
    json!({ "applied": true })
}
