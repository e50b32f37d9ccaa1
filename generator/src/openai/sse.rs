//! Server-sent events, as OpenAI-compatible servers stream them: `data: <json>` lines, events separated by a
//! blank line, `: comment` keep-alives, `\n` or `\r\n` line ends, `data: [DONE]` at the end. Only `data` is
//! used; other fields (`event`, `id`, `retry`) are ignored. Lines are bounded so a broken server cannot make
//! us buffer without limit.

use std::io::{self, BufRead};

/// The longest line accepted (a chunk with a long text delta is a few KiB).
const MAX_LINE: usize = 4 << 20;

/// One event from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseEvent {
    /// The `data` of an event (multi-line data joined with `\n`).
    Data(String),
    /// `data: [DONE]`.
    Done,
}

/// Why the stream could not be read.
#[derive(Debug)]
pub(crate) enum SseError {
    /// The transport failed (timeout, reset, shutdown).
    Io(io::Error),
    /// The bytes are not a UTF-8 event stream.
    Malformed(String),
}

/// Reads events from a buffered byte stream.
pub(crate) struct SseReader<R> {
    reader: R,
    line: Vec<u8>,
}

impl<R: BufRead> SseReader<R> {
    /// A reader over `reader`.
    pub(crate) fn new(reader: R) -> Self {
        SseReader {
            reader,
            line: Vec::new(),
        }
    }

    /// The next event; `Ok(None)` at the end of the stream.
    pub(crate) fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        let mut data: Option<String> = None;
        loop {
            if !self.read_line()? {
                // End of stream: a last event without its blank line still counts.
                return Ok(data.map(to_event));
            }
            let line = std::str::from_utf8(&self.line).map_err(|_| {
                SseError::Malformed(format!(
                    "a line of the event stream is not UTF-8: {}",
                    excerpt_bytes(&self.line)
                ))
            })?;
            if line.is_empty() {
                if let Some(data) = data.take() {
                    return Ok(Some(to_event(data)));
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // comment / keep-alive
            }
            let (field, value) = match line.find(':') {
                Some(at) => (
                    &line[..at],
                    line[at + 1..].strip_prefix(' ').unwrap_or(&line[at + 1..]),
                ),
                None => (line, ""),
            };
            if field == "data" {
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                }
            }
        }
    }

    /// Reads one line into `self.line` without its line end; false at the end of the stream.
    fn read_line(&mut self) -> Result<bool, SseError> {
        self.line.clear();
        loop {
            let available = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SseError::Io(e)),
            };
            if available.is_empty() {
                return Ok(!self.line.is_empty());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.line.extend_from_slice(&available[..at]);
                    self.reader.consume(at + 1);
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    return Ok(true);
                }
                None => {
                    let n = available.len();
                    self.line.extend_from_slice(available);
                    self.reader.consume(n);
                }
            }
            if self.line.len() > MAX_LINE {
                return Err(SseError::Malformed(format!(
                    "a line of the event stream is longer than {MAX_LINE} bytes"
                )));
            }
        }
    }
}

fn to_event(data: String) -> SseEvent {
    if data.trim() == "[DONE]" {
        SseEvent::Done
    } else {
        SseEvent::Data(data)
    }
}

/// At most 200 characters of `text`, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{:?}…", &text[..at]),
        None => format!("{text:?}"),
    }
}

fn excerpt_bytes(bytes: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(&bytes[..bytes.len().min(400)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &str) -> Vec<SseEvent> {
        let mut reader = SseReader::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().expect("well-formed") {
            out.push(e);
        }
        out
    }

    #[test]
    fn data_lines_comments_and_done() {
        let input = ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:{\"b\":2}\n\ndata: [DONE]\n\n";
        assert_eq!(
            events(input),
            vec![
                SseEvent::Data("{\"a\":1}".into()),
                SseEvent::Data("{\"b\":2}".into()),
                SseEvent::Done
            ]
        );
    }

    #[test]
    fn multi_line_data_and_a_missing_final_blank_line() {
        assert_eq!(
            events("data: one\ndata: two\n\ndata: last"),
            vec![
                SseEvent::Data("one\ntwo".into()),
                SseEvent::Data("last".into())
            ]
        );
        assert_eq!(events(""), vec![]);
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut reader = SseReader::new(&b"data: \xff\xfe\n\n"[..]);
        assert!(matches!(reader.next_event(), Err(SseError::Malformed(_))));
    }

    #[test]
    fn excerpts_are_bounded() {
        let long = "x".repeat(1000);
        assert!(excerpt(&long).chars().count() < 210);
        assert_eq!(excerpt(" hi "), "\"hi\"");
    }
}
