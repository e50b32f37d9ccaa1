//! The input side of the transport, made robust: an `AsyncRead` adapter between stdin and tower-lsp.
//!
//! tower-lsp-server decodes frames with a tokio-util `FramedRead`, which ends the stream after the first
//! decode error — one malformed message (bad JSON, a JSON value that is not a JSON-RPC message, a missing
//! `Content-Length`, three headers, a `Content-Type` with another charset) would stop the server reading
//! anything ever again. This adapter re-frames the input itself: every well-formed message passes through
//! (with canonical headers), and every malformed one is replaced by a request to [`MALFORMED`] with a `null`
//! id, which the server answers with the JSON-RPC error the sender should have got (`-32700` or `-32600`,
//! `id: null`).

use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncRead, ReadBuf};
use tower_lsp_server::jsonrpc::Id;

/// The method a malformed message is replaced with (params: `{ "code", "message" }`).
pub const MALFORMED: &str = "$/qwen-ls/malformedMessage";

/// Header sections longer than this without an end are garbage, not a slow client.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// A message longer than this is refused and skipped (read and dropped as it arrives, never buffered): four
/// times the largest document the index takes is far beyond any real message, and a client that sends more
/// should be told, not be allowed to make the server hold it.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What tower-lsp needs to decode a message: JSON-RPC 2.0, a string method (if any), a valid id (if any).
/// Everything else (params, result, error) is skipped without being built.
#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(borrow)]
    jsonrpc: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Id>,
}

/// Why a body is not a message: (JSON-RPC code, description).
fn check(body: &[u8]) -> Result<(), (i64, String)> {
    match serde_json::from_slice::<Shape<'_>>(body) {
        Ok(shape) if shape.jsonrpc == "2.0" => Ok(()),
        Ok(_) => Err((-32600, "not a JSON-RPC 2.0 message".to_owned())),
        Err(e) if e.is_syntax() || e.is_eof() => Err((-32700, format!("invalid JSON: {e}"))),
        Err(e) => Err((-32600, format!("not a JSON-RPC message: {e}"))),
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fn malformed(code: i64, message: &str) -> Vec<u8> {
    tracing::warn!("malformed message from the client: {message}");
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "method": MALFORMED,
        "params": { "code": code, "message": message },
    });
    frame(body.to_string().as_bytes())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Splits the next frame off `input`; `None` when more bytes are needed. `skip` counts the bytes of an
/// oversized body still to be dropped.
fn next_frame(input: &mut Vec<u8>, skip: &mut usize) -> Option<Vec<u8>> {
    if *skip > 0 {
        let n = (*skip).min(input.len());
        input.drain(..n);
        *skip -= n;
        if *skip > 0 {
            return None;
        }
    }
    let Some(end) = find(input, b"\r\n\r\n") else {
        if input.len() > MAX_HEADER_BYTES {
            resync(input, 1);
            return Some(malformed(-32700, "header section without an end"));
        }
        return None;
    };
    let headers = String::from_utf8_lossy(&input[..end]).into_owned();
    let length = headers.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    let Some(length) = length else {
        resync(input, end + 4);
        return Some(malformed(-32700, "missing or invalid Content-Length"));
    };
    let start = end + 4;
    if length > MAX_MESSAGE_BYTES {
        input.drain(..start);
        *skip = length;
        return Some(malformed(
            -32600,
            &format!(
                "a message of {length} bytes is over qwen-ls's limit of {} MiB; it was skipped",
                MAX_MESSAGE_BYTES >> 20
            ),
        ));
    }
    if input.len() < start + length {
        return None;
    }
    let body: Vec<u8> = input.drain(..start + length).skip(start).collect();
    Some(match check(&body) {
        Ok(()) => frame(&body),
        Err((code, message)) => malformed(code, &message),
    })
}

/// Drops bytes up to the next `Content-Length` at or after `from` (or everything).
fn resync(input: &mut Vec<u8>, from: usize) {
    let from = from.min(input.len());
    let next =
        find_ignore_case(&input[from..], b"content-length").map_or(input.len(), |i| from + i);
    input.drain(..next);
}

/// The adapter (see the module documentation).
pub struct Sanitized<R> {
    inner: R,
    input: Vec<u8>,
    output: Vec<u8>,
    output_at: usize,
    /// Bytes of an oversized message still to drop.
    skip: usize,
    eof: bool,
}

impl<R> Sanitized<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Sanitized<R> {
        Sanitized {
            inner,
            input: Vec::new(),
            output: Vec::new(),
            output_at: 0,
            skip: 0,
            eof: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Sanitized<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.output_at < this.output.len() {
                let n = buf.remaining().min(this.output.len() - this.output_at);
                buf.put_slice(&this.output[this.output_at..this.output_at + n]);
                this.output_at += n;
                return Poll::Ready(Ok(()));
            }
            if let Some(frame) = next_frame(&mut this.input, &mut this.skip) {
                this.output = frame;
                this.output_at = 0;
                continue;
            }
            if this.eof {
                if !this.input.is_empty() {
                    tracing::warn!(
                        "input ended inside a message ({} bytes dropped)",
                        this.input.len()
                    );
                    this.input.clear();
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 64 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => this.eof = true,
                Poll::Ready(Ok(())) => this.input.extend_from_slice(read.filled()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn sanitize(input: &[u8]) -> String {
        let mut out = String::new();
        Sanitized::new(input)
            .read_to_string(&mut out)
            .await
            .expect("read");
        out
    }

    #[tokio::test]
    async fn good_messages_pass_bad_ones_become_error_requests() {
        let good = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        let mut input = format!("Content-Length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{good}", good.len());
        for bad in [
            "{ not json",
            "[1,2,3]",
            r#"{"jsonrpc":"1.0","method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
        ] {
            input.push_str(&format!("Content-Length: {}\r\n\r\n{bad}", bad.len()));
        }
        input.push_str("X-Nothing: 1\r\n\r\n");
        input.push_str(&format!("content-length: {}\r\n\r\n{good}", good.len()));
        let out = sanitize(input.as_bytes()).await;
        let frames: Vec<&str> = out
            .split("Content-Length: ")
            .filter(|f| !f.is_empty())
            .collect();
        assert_eq!(frames.len(), 7, "{out}");
        assert!(frames[0].ends_with(good));
        assert!(frames[1].contains("-32700") && frames[1].contains(MALFORMED));
        for f in &frames[2..5] {
            assert!(f.contains("-32600"), "{f}");
        }
        assert!(frames[5].contains("missing or invalid Content-Length"));
        assert!(frames[6].ends_with(good));
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused_and_skipped_whole() {
        let good = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        // The oversized body contains what looks like a header: skipping must not resynchronise on it.
        let body_start = format!("{{\"x\":\"Content-Length: 5\r\n\r\n{good}");
        let length = MAX_MESSAGE_BYTES + 1;
        let (mut writer, reader) = tokio::io::duplex(1 << 16);
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            writer
                .write_all(format!("Content-Length: {length}\r\n\r\n{body_start}").as_bytes())
                .await
                .expect("write");
            let filler = vec![b'a'; 1 << 20];
            let mut left = length - body_start.len();
            while left > 0 {
                let n = left.min(filler.len());
                writer.write_all(&filler[..n]).await.expect("write");
                left -= n;
            }
            writer
                .write_all(format!("Content-Length: {}\r\n\r\n{good}", good.len()).as_bytes())
                .await
                .expect("write");
        });
        let mut out = String::new();
        Sanitized::new(reader)
            .read_to_string(&mut out)
            .await
            .expect("read");
        feeder.await.expect("feeder");
        let frames: Vec<&str> = out
            .split("Content-Length: ")
            .filter(|f| !f.is_empty())
            .collect();
        assert_eq!(frames.len(), 2, "{out}");
        assert!(
            frames[0].contains("over qwen-ls's limit of 64 MiB") && frames[0].contains(MALFORMED),
            "{}",
            frames[0]
        );
        assert!(frames[1].ends_with(good), "{}", frames[1]);
    }

    #[tokio::test]
    async fn split_reads_and_truncated_input() {
        let good = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let whole = format!(
            "Content-Length: {}\r\n\r\n{good}Content-Length: 99\r\n\r\n{{",
            good.len()
        );
        // One byte at a time.
        let (mut writer, reader) = tokio::io::duplex(1);
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for b in whole.as_bytes() {
                writer.write_all(&[*b]).await.expect("write");
            }
        });
        let mut out = String::new();
        Sanitized::new(reader)
            .read_to_string(&mut out)
            .await
            .expect("read");
        feeder.await.expect("feeder");
        assert_eq!(out, format!("Content-Length: {}\r\n\r\n{good}", good.len()));
    }
}
