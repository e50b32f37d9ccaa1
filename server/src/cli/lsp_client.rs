//! A minimal LSP client over a child process's stdio, for the benchmarks that drive `qwen-ls serve` as an
//! editor would (`bench lsp`, `bench typing`): framing, requests answered out of order, server requests
//! answered with `null`, `$/cancelRequest`, and a scratch cache directory for the child's suggestion log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// How long a request may go unanswered before the benchmark gives up on the server.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// A temporary directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<temp>/qwen-ls-<name>-<pid>`, created.
    pub fn new(name: &str) -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("qwen-ls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_frames(stdout: impl Read, sink: Sender<Value>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length:") {
                length = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.unwrap_or(0)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(value) = serde_json::from_slice(&body) {
            if sink.send(value).is_err() {
                return;
            }
        }
    }
}

/// How to start the server.
pub struct Launch<'a> {
    /// The qwen-ls binary (this one, or another build to compare with).
    pub binary: &'a Path,
    /// Its cache directory (`QWEN_LS_CACHE_DIR`: the suggestion log lands there).
    pub cache_dir: &'a Path,
    /// More environment variables.
    pub env: Vec<(&'static str, String)>,
    /// The workspace root.
    pub root: &'a Path,
    /// `initializationOptions`.
    pub settings: Value,
}

/// A running `qwen-ls serve` and the client side of its connection.
pub struct LspClient {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
    /// Responses that arrived while another was awaited.
    answered: HashMap<i64, Value>,
}

impl LspClient {
    /// Starts the server and initializes it (utf-8 positions, inline completion); does not wait for the
    /// model and index (see [`LspClient::wait_ready`]).
    pub fn start(launch: &Launch<'_>) -> anyhow::Result<LspClient> {
        let mut command = Command::new(launch.binary);
        command
            .arg("serve")
            .env("QWEN_LS_CACHE_DIR", launch.cache_dir)
            .env("QWEN_LS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} serve", launch.binary.display()))?;
        let (sender, messages) = channel();
        let stdout = child.stdout.take().context("the server's stdout")?;
        std::thread::spawn(move || read_frames(stdout, sender));
        let stdin = child.stdin.take().context("the server's stdin")?;
        let mut client = LspClient {
            child,
            stdin,
            messages,
            next_id: 1,
            answered: HashMap::new(),
        };
        client.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": file_uri(launch.root),
                "initializationOptions": launch.settings,
                "capabilities": {
                    "general": { "positionEncodings": ["utf-8"] },
                    "textDocument": { "inlineCompletion": {} },
                },
            }),
        )?;
        client.notify("initialized", json!({}))?;
        Ok(client)
    }

    /// Polls `qwen-ls.status` until the server is ready; returns the status.
    pub fn wait_ready(&mut self) -> anyhow::Result<Value> {
        loop {
            let status = self.request(
                "workspace/executeCommand",
                json!({ "command": "qwen-ls.status", "arguments": [] }),
            )?;
            match status["state"].as_str() {
                Some("ready") => return Ok(status),
                Some("error") => bail!("server error: {}", status["message"]),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn write(&mut self, message: &Value) -> anyhow::Result<()> {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) -> anyhow::Result<()> {
        self.write(&json!({ "jsonrpc": "2.0", "method": method, "params": params }))
    }

    /// Sends a request without waiting; returns its id.
    pub fn send(&mut self, method: &str, params: Value) -> anyhow::Result<i64> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))?;
        Ok(id)
    }

    /// `$/cancelRequest` for `id`.
    pub fn cancel(&mut self, id: i64) -> anyhow::Result<()> {
        self.notify("$/cancelRequest", json!({ "id": id }))
    }

    /// Waits for the response to `id` (the whole message: `result` or `error`), answering server requests
    /// and keeping other responses meanwhile.
    pub fn response(&mut self, id: i64) -> anyhow::Result<Value> {
        if let Some(message) = self.answered.remove(&id) {
            return Ok(message);
        }
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.messages.recv_timeout(left) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    bail!("no answer to request {id} within {ANSWER_TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => bail!("the server stopped answering"),
            };
            match (
                message.get("method"),
                message.get("id").and_then(Value::as_i64),
            ) {
                (Some(_), Some(_)) => {
                    let answer = json!({ "jsonrpc": "2.0", "id": message["id"], "result": null });
                    self.write(&answer)?;
                }
                (None, Some(got)) if got == id => return Ok(message),
                (None, Some(got)) => {
                    self.answered.insert(got, message);
                }
                _ => {}
            }
        }
    }

    /// Sends a request and waits for its result.
    pub fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.send(method, params)?;
        let message = self.response(id)?;
        if let Some(error) = message.get("error") {
            bail!("{method} failed: {error}");
        }
        Ok(message["result"].clone())
    }

    /// `shutdown`, `exit`, and waits for the process.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.request("shutdown", Value::Null)?;
        self.notify("exit", Value::Null)?;
        self.child
            .wait()
            .context("waiting for the server to exit")?;
        Ok(())
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        // After a clean shutdown the child is gone and this does nothing; after an error it must not linger.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `file://` + the absolute path.
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}
