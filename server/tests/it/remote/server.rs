//! What the remote-backend tests talk to: a real OpenAI-compatible server (llama-cpp-python's, serving a
//! fixture GGUF on loopback), a proxy in front of it that can answer `429` first, and a fake server that
//! sends whatever bytes a test wants (malformed or truncated streams).
//!
//! The python comes from `QWEN_LS_LLAMA_PYTHON`: a venv with `llama-cpp-python[server]` (`python -m
//! llama_cpp.server`), or, with `QWEN_LS_LLAMA_SERVER=xllamacpp`, one with the prebuilt `xllamacpp` wheel, whose
//! llama.cpp server `xllamacpp_server.py` (beside this file) starts with the same arguments; `.ci/run` installs
//! one. Without it the tests that need the server print a loud SKIPPED line and pass — unless
//! `QWEN_LS_REQUIRE_REMOTE=1`, which CI sets, turns the skip into a failure.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The model name the server is started with (`--model_alias`).
pub const ALIAS: &str = "qwen-fixture";

/// The context window the server is started with: larger than the fixtures' 256 trained positions, so the
/// tasks' default budgets (up to `codeActions.budget` 8192 + `maxTokens`) fit (the weights are random anyway).
pub const N_CTX: usize = 10240;

/// A fixture GGUF (`fixtures/models/gguf/<name>`).
pub fn gguf(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/models/gguf")
        .join(name)
}

/// The python with llama-cpp-python, or `None` after a loud message (a panic under
/// `QWEN_LS_REQUIRE_REMOTE=1`).
pub fn llama_python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("QWEN_LS_LLAMA_PYTHON").filter(|p| !p.is_empty()) {
        Some(python) => Some(PathBuf::from(python)),
        None if std::env::var("QWEN_LS_REQUIRE_REMOTE").is_ok_and(|v| v == "1") => panic!(
            "{test}: QWEN_LS_REQUIRE_REMOTE=1 but QWEN_LS_LLAMA_PYTHON is not set (a python with \
             llama-cpp-python[server]; see .ci/run)"
        ),
        None => {
            eprintln!(
                "\n*** SKIPPED {test}: set QWEN_LS_LLAMA_PYTHON to a python with llama-cpp-python[server] \
                 (see .ci/run) to run it against a real OpenAI-compatible server ***\n"
            );
            None
        }
    }
}

/// A free loopback port (bound, then released for the server to take), never one this process handed out
/// before: Linux readily gives a just-released port to the next `bind(0)`, so two servers started by parallel
/// tests would otherwise race for one port.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    // Ports seen twice stay bound until a new one turns up, so `bind(0)` cannot offer them again meanwhile.
    let mut seen_before = Vec::new();
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("the bound port").port();
        if handed_out.insert(port) {
            return port;
        }
        seen_before.push(listener);
    }
}

/// An endpoint where nothing listens, for as long as it lives: its port stays bound (so no server another test
/// starts can take it, which a released `free_port` allows) but never listens, so connecting is refused.
pub struct DeadEndpoint {
    _socket: socket2::Socket,
    /// `http://127.0.0.1:<port>/v1`.
    pub url: String,
}

impl DeadEndpoint {
    pub fn new() -> DeadEndpoint {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
        let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any_port.into()).expect("bind a loopback port");
        let port = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .expect("the bound port");
        DeadEndpoint {
            _socket: socket,
            url: format!("http://127.0.0.1:{port}/v1"),
        }
    }
}

/// A llama.cpp OpenAI-compatible server (see the module documentation) on loopback; killed on drop.
pub struct LlamaServer {
    python: PathBuf,
    model: PathBuf,
    /// The port it listens on (kept across restarts).
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    /// Starts the server for `model` and waits until `/v1/models` answers; `None` when skipped.
    pub fn start(test: &str, model: &Path) -> Option<LlamaServer> {
        let python = llama_python(test)?;
        let dir = tempfile::tempdir().expect("tmp");
        let mut server = LlamaServer {
            python,
            model: model.to_path_buf(),
            port: free_port(),
            child: None,
            log: dir.path().join("server.log"),
            _dir: dir,
        };
        server.restart();
        Some(server)
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Kills the server process (a crash, as far as clients can tell).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it serves.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(&self.log).expect("server log");
        let mut command = Command::new(&self.python);
        match std::env::var("QWEN_LS_LLAMA_SERVER").as_deref() {
            Ok("xllamacpp") => command.arg(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/remote/xllamacpp_server.py"),
            ),
            Ok("") | Ok("llama-cpp-python") | Err(_) => command.args(["-m", "llama_cpp.server"]),
            Ok(other) => {
                panic!("QWEN_LS_LLAMA_SERVER={other}: expected `xllamacpp` or `llama-cpp-python`")
            }
        };
        let child = command
            .args(["--host", "127.0.0.1"])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--model")
            .arg(&self.model)
            .args(["--model_alias", ALIAS, "--n_threads", "1", "--n_ctx"])
            .arg(N_CTX.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the llama.cpp server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the llama.cpp server exited ({status}):\n{}",
                    self.log_text()
                );
            }
            if http_get(self.port, "/v1/models").is_some_and(|b| b.contains(ALIAS)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the llama.cpp server did not come up:\n{}", self.log_text());
    }

    /// What the server logs when a client closes a stream mid-generation.
    pub fn disconnect_marker(&self) -> &'static str {
        match std::env::var("QWEN_LS_LLAMA_SERVER").as_deref() {
            // llama-server: the HTTP layer cancels the task of a connection that went away.
            Ok("xllamacpp") => "cancel task",
            // llama-cpp-python (uvicorn + sse-starlette).
            _ => "Disconnected from client",
        }
    }

    /// The server's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A one-shot HTTP/1.0 GET on loopback; the body of a 200 answer.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Reads one HTTP request (head and `Content-Length` body) from `reader`; the head's lines.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// A proxy on loopback: the first `busy` requests are answered `429 Too Many Requests` (`Retry-After: 0`),
/// the rest are forwarded to `upstream` (one connection each way).
pub struct Proxy {
    /// `http://127.0.0.1:<port>/v1`.
    pub endpoint: String,
    requests: Arc<AtomicUsize>,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts the proxy.
    pub fn start(upstream: u16, busy: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().take(1000).map_while(Result::ok) {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().expect("clone"));
                    let Some((head, body)) = read_request(&mut reader) else {
                        return;
                    };
                    if let (Some(line), Ok(mut seen)) = (head.first(), seen.lock()) {
                        seen.push(line.clone());
                    }
                    let mut client = client;
                    if n < busy {
                        let message = r#"{"error":{"message":"rate limited by the test proxy"}}"#;
                        let _ = write!(
                            client,
                            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{message}",
                            message.len()
                        );
                        return;
                    }
                    forward(client, &head, &body, upstream);
                });
            }
        });
        Proxy {
            endpoint,
            requests,
            lines,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The request lines received so far (`POST /v1/completions HTTP/1.1`).
    pub fn request_lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// Sends one request upstream (as `Connection: close`) and copies the answer back until either side closes.
fn forward(client: TcpStream, head: &[String], body: &[u8], upstream: u16) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let mut request = String::new();
    for line in head {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name != "connection" {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    request.push_str("Connection: close\r\n\r\n");
    if server.write_all(request.as_bytes()).is_err() || server.write_all(body).is_err() {
        return;
    }
    let mut from_server = server.try_clone().expect("clone");
    let mut to_client = client.try_clone().expect("clone");
    let _ = std::io::copy(&mut from_server, &mut to_client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// A server that lists one model (`fake`) at `GET /v1/models` and answers every other request with `answer`
/// (raw HTTP bytes), closing the connection after it.
pub fn fake_server(answer: String) -> String {
    let answer: Arc<str> = Arc::from(answer);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}/v1", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for client in listener.incoming().take(100).map_while(Result::ok) {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let Some((head, _)) = read_request(&mut reader) else {
                    return;
                };
                let mut client = client;
                if head
                    .first()
                    .is_some_and(|l| l.starts_with("GET") && l.contains("/models"))
                {
                    let models = r#"{"object":"list","data":[{"id":"fake","object":"model"}]}"#;
                    let _ = write!(
                        client,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{models}",
                        models.len()
                    );
                } else {
                    let _ = client.write_all(answer.as_bytes());
                }
                let _ = client.shutdown(Shutdown::Both);
            });
        }
    });
    endpoint
}

/// The head of an event-stream answer (no `Content-Length`: the body ends when the connection does).
pub const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
