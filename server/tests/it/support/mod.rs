//! Test support: a tiny HTTP/1.1 server on 127.0.0.1 that plays PyPI (JSON API + wheel files) for a small fake
//! model, with switches for the failures the store must survive (dropped connections, servers that ignore
//! `Range`, wrong digests). Only loopback; it serves a bounded number of connections and stops with the test
//! process.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use qwen_ls::store::{PinnedFile, PinnedTable, PypiPart, PypiParts};
use sha2::{Digest, Sha256};

/// How a file is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Honour `Range`, send everything.
    Normal,
    /// Drop the connection after this many bytes on the first request only (then behave).
    CutFirst(usize),
    /// Always drop the connection after this many bytes, and ignore `Range` (answer 200 from byte 0).
    CutAlwaysNoRange(usize),
}

#[derive(Default)]
struct State {
    routes: HashMap<String, (String, Vec<u8>)>,
    headers: HashMap<String, Vec<(String, String)>>,
    behaviors: HashMap<String, Behavior>,
    served: HashMap<String, usize>,
    /// Every request: (path, method, Range header).
    log: Vec<(String, String, Option<String>)>,
}

/// The fake registry.
pub struct FakePypi {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakePypi {
    /// Starts the server.
    pub fn start() -> FakePypi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2000) {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakePypi { base, state }
    }

    /// Serves `body` at `path`.
    pub fn route(&self, path: &str, content_type: &str, body: Vec<u8>) {
        lock(&self.state)
            .routes
            .insert(path.to_string(), (content_type.to_string(), body));
    }

    /// Extra response headers for `path` (e.g. the Hugging Face Hub's `X-Repo-Commit`).
    pub fn headers(&self, path: &str, headers: &[(&str, &str)]) {
        lock(&self.state).headers.insert(
            path.to_string(),
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// Removes a route (it answers 404 from now on).
    pub fn unroute(&self, path: &str) {
        lock(&self.state).routes.remove(path);
    }

    /// Sets how `path` is served.
    pub fn behave(&self, path: &str, behavior: Behavior) {
        lock(&self.state)
            .behaviors
            .insert(path.to_string(), behavior);
    }

    /// Requests seen so far for `path`, with their Range headers.
    pub fn requests(&self, path: &str) -> Vec<Option<String>> {
        lock(&self.state)
            .log
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, r)| r.clone())
            .collect()
    }

    /// Methods of the requests seen so far for `path`.
    pub fn methods(&self, path: &str) -> Vec<String> {
        lock(&self.state)
            .log
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, m, _)| m.clone())
            .collect()
    }

    /// All requested paths.
    pub fn all_requests(&self) -> Vec<String> {
        lock(&self.state)
            .log
            .iter()
            .map(|(p, _, _)| p.clone())
            .collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let (route, behavior, nth, extra) = {
        let mut s = lock(state);
        s.log.push((path.clone(), method.clone(), range.clone()));
        let nth = {
            let n = s.served.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        (
            s.routes.get(&path).cloned(),
            s.behaviors.get(&path).copied().unwrap_or(Behavior::Normal),
            nth,
            s.headers.get(&path).cloned().unwrap_or_default(),
        )
    };
    let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let mut out = stream;
    let Some((content_type, body)) = route else {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    if method == "HEAD" {
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
            body.len()
        );
        let _ = out.write_all(head.as_bytes());
        return;
    }
    let honour_range = !matches!(behavior, Behavior::CutAlwaysNoRange(_));
    // `bytes=START-` or `bytes=START-END` (END inclusive).
    let (start, end) = match (&range, honour_range) {
        (Some(r), true) => {
            let spec = r.strip_prefix("bytes=").unwrap_or("0-");
            let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
            let start = a.parse::<usize>().unwrap_or(0);
            let end = b
                .parse::<usize>()
                .map_or(body.len(), |e| (e + 1).min(body.len()));
            (start, end)
        }
        _ => (0, body.len()),
    };
    if start > body.len() || start > end {
        let _ = out.write_all(
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let rest = &body[start..end];
    let head = if range.is_some() && honour_range {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\n{extra}Connection: close\r\n\r\n",
            rest.len(),
            end.saturating_sub(1),
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\n{extra}Connection: close\r\n\r\n",
            rest.len()
        )
    };
    let cut = match behavior {
        Behavior::CutFirst(n) if nth == 1 => Some(n),
        Behavior::CutAlwaysNoRange(n) => Some(n),
        _ => None,
    };
    let _ = out.write_all(head.as_bytes());
    let sent = cut.map_or(rest.len(), |n| n.min(rest.len()));
    let _ = out.write_all(&rest[..sent]);
    let _ = out.flush();
    // Dropping the stream closes the connection: a cut leaves the body short of Content-Length.
}

/// Lowercase hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A zip (wheel) with one data member and a METADATA file.
pub fn wheel(member: &str, data: &[u8]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    w.start_file(member, opts).expect("zip member");
    w.write_all(data).expect("zip write");
    w.start_file("fake-1.0.0.dist-info/METADATA", opts)
        .expect("zip member");
    w.write_all(b"Metadata-Version: 2.1\nName: fake\nVersion: 1.0.0\n")
        .expect("zip write");
    w.finish().expect("zip finish").into_inner()
}

/// A small fake model published as `parts` wheels on a [`FakePypi`].
pub struct FakeModel {
    /// The whole file.
    pub bytes: Vec<u8>,
    /// Its pinned entry.
    pub pinned: PinnedFile,
    /// The published wheels.
    pub wheels: Vec<Wheel>,
}

/// One published wheel.
pub struct Wheel {
    /// URL path of the file (`/files/...whl`).
    pub file: String,
    /// URL path of its release JSON (`/pypi/<project>/<version>/json`).
    pub json: String,
    /// PyPI project.
    pub project: String,
    /// File name.
    pub filename: String,
    /// The wheel's bytes.
    pub bytes: Vec<u8>,
}

/// Deterministic pseudo-random bytes starting with the GGUF magic.
pub fn model_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v = b"GGUF".to_vec();
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 24) as u8);
    }
    v
}

impl FakeModel {
    /// Publishes `bytes` split into `parts` wheels named `<prefix>-part<N>` version 1.0.0.
    pub fn publish(server: &FakePypi, prefix: &str, bytes: Vec<u8>, parts: usize) -> FakeModel {
        let chunk = bytes.len().div_ceil(parts);
        let mut wheels = Vec::new();
        let mut pypi_parts = Vec::new();
        for (i, data) in bytes.chunks(chunk).enumerate() {
            let n = i + 1;
            let project = format!("{prefix}-part{n}");
            let module = project.replace('-', "_");
            let member = format!("{module}/data/part{n:02}.bin");
            let whl = wheel(&member, data);
            let filename = format!("{module}-1.0.0-py3-none-any.whl");
            let file_path = format!("/files/{filename}");
            let json_path = format!("/pypi/{project}/1.0.0/json");
            let json = serde_json::json!({
                "info": {"name": project, "version": "1.0.0"},
                "urls": [
                    {"filename": format!("{module}-1.0.0.tar.gz"), "packagetype": "sdist",
                     "url": format!("{}/files/x.tar.gz", server.base), "size": 1,
                     "digests": {"sha256": "0".repeat(64)}},
                    {"filename": filename.clone(), "packagetype": "bdist_wheel",
                     "url": format!("{}{file_path}", server.base), "size": whl.len(),
                     "digests": {"sha256": sha256(&whl), "md5": "x"}}
                ]
            });
            server.route(
                &json_path,
                "application/json",
                json.to_string().into_bytes(),
            );
            server.route(&file_path, "application/octet-stream", whl.clone());
            wheels.push(Wheel {
                file: file_path,
                json: json_path,
                project: project.clone(),
                filename: format!("{module}-1.0.0-py3-none-any.whl"),
                bytes: whl,
            });
            pypi_parts.push(PypiPart {
                project,
                version: "1.0.0".into(),
                member,
            });
        }
        let pinned = PinnedFile {
            repo: format!("test-org/{prefix}-GGUF"),
            file: format!("{prefix}-q4_k_m.gguf"),
            sha256: sha256(&bytes),
            size: bytes.len() as u64,
            title: format!("{prefix} (test model)"),
            pypi: Some(PypiParts {
                parts: pypi_parts,
                revision: format!("pypi-{prefix}-1.0.0"),
            }),
        };
        FakeModel {
            bytes,
            pinned,
            wheels,
        }
    }

    /// A pinned table whose default is this model.
    pub fn table(&self) -> PinnedTable {
        PinnedTable::new(vec![self.pinned.clone()], 0).expect("one entry")
    }
}
