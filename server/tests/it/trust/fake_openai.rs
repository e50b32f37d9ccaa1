//! An OpenAI-compatible server on loopback that records every request body and answers with fixed text:
//! `/v1/models` lists one model, `/v1/completions` streams `completion`, `/v1/chat/completions` streams `chat`.
//! The trust tests read the bodies to prove what left the process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A running fake server.
pub struct FakeOpenAi {
    /// `http://127.0.0.1:<port>/v1`.
    pub endpoint: String,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
}

impl FakeOpenAi {
    /// Starts a server answering completions with `completion` and chats with `chat`.
    pub fn start(completion: &str, chat: &str) -> FakeOpenAi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let endpoint = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = bodies.clone();
        let (completion, chat) = (completion.to_string(), chat.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10_000).map_while(Result::ok) {
                let (recorded, completion, chat) =
                    (recorded.clone(), completion.clone(), chat.clone());
                std::thread::spawn(move || serve(stream, &recorded, &completion, &chat));
            }
        });
        FakeOpenAi { endpoint, bodies }
    }

    /// Every request so far: (request line, body).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The bodies of generation requests (completions and chats).
    pub fn generation_bodies(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|(line, _)| line.starts_with("POST"))
            .map(|(_, body)| body)
            .collect()
    }
}

fn serve(stream: TcpStream, recorded: &Mutex<Vec<(String, String)>>, completion: &str, chat: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request_line = request_line.trim().to_string();
    recorded.lock().unwrap_or_else(|e| e.into_inner()).push((
        request_line.clone(),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    let mut out = stream;
    if request_line.starts_with("GET") && request_line.contains("/models") {
        let models = r#"{"object":"list","data":[{"id":"fake","object":"model"}]}"#;
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{models}",
            models.len()
        );
    } else {
        let chunk = if request_line.contains("/chat/") {
            serde_json::json!({ "choices": [{ "index": 0, "delta": { "content": chat } }] })
        } else {
            serde_json::json!({ "choices": [{ "index": 0, "text": completion }] })
        };
        let done = serde_json::json!({ "choices": [{ "index": 0, "text": "", "delta": {}, "finish_reason": "stop" }] });
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n\
             data: {chunk}\n\ndata: {done}\n\ndata: [DONE]\n\n"
        );
    }
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Both);
}
