//! Model output that is never code: special-token markers that leaked as text (`<|endoftext|>`,
//! `<|fim_pad|>`, `<|file_sep|>`, `<|im_end|>`, …) and `<think>…</think>` reasoning blocks.
//!
//! The engine stops on special token ids, but a model can still spell a marker out of ordinary tokens, and a
//! remote OpenAI-compatible server may return them as text; both are cut here.

use std::borrow::Cow;

const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

/// Longest marker name looked for; real ones are at most ~12 bytes.
const MAX_MARKER_NAME: usize = 40;

/// Byte offset of the first special-token marker: `<|name|>` with `name` made of ASCII lowercase letters,
/// digits and `_`. A generic pattern rather than a list, so markers of other model families are cut too.
pub fn find_special_marker(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find("<|")) {
        let start = from + found;
        let name_start = start + 2;
        let name_len = bytes[name_start..]
            .iter()
            .take(MAX_MARKER_NAME + 1)
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        let close = name_start + name_len;
        if (1..=MAX_MARKER_NAME).contains(&name_len)
            && bytes.get(close..close + 2) == Some(b"|>".as_slice())
        {
            return Some(start);
        }
        from = name_start;
    }
    None
}

/// `text` cut at the first special-token marker.
pub fn cut_at_special_marker(text: &str) -> &str {
    match find_special_marker(text) {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Skips line breaks right after a `</think>`: models put a blank line between reasoning and answer.
fn skip_newlines(text: &str, from: usize) -> usize {
    from + text[from..].len() - text[from..].trim_start_matches(['\r', '\n']).len()
}

/// Removes reasoning: a leading `<think>…</think>` block (with the whitespace before it and the line breaks
/// after it), a `…</think>` whose opening tag was in the prompt, any later `<think>…</think>` block, and an
/// unterminated `<think>` with everything after it.
pub fn strip_think(text: &str) -> Cow<'_, str> {
    if !text.contains(THINK_OPEN) && !text.contains(THINK_CLOSE) {
        return Cow::Borrowed(text);
    }
    let mut rest = text;
    // A closing tag before any opening tag: the prompt opened the block, everything before it is reasoning.
    if let Some(close) = rest.find(THINK_CLOSE) {
        if rest.find(THINK_OPEN).is_none_or(|open| open > close) {
            rest = &rest[skip_newlines(rest, close + THINK_CLOSE.len())..];
        }
    }
    let mut out = String::with_capacity(rest.len());
    let mut leading = true;
    loop {
        let Some(open) = rest.find(THINK_OPEN) else {
            out.push_str(rest);
            break;
        };
        let before = &rest[..open];
        // Whitespace before a leading block belongs to the block, not to the answer.
        if !(leading && before.trim().is_empty()) {
            out.push_str(before);
        }
        leading = false;
        match rest[open..].find(THINK_CLOSE) {
            Some(close) => {
                let after = open + close + THINK_CLOSE.len();
                let after = if out.is_empty() {
                    skip_newlines(rest, after)
                } else {
                    after
                };
                rest = &rest[after..];
            }
            None => break,
        }
    }
    Cow::Owned(out)
}

/// Where the answer starts in a stream that may open with a `<think>` block, or `None` while that is not yet
/// known (the text so far is whitespace, a prefix of `<think>`, or reasoning). With `finished`, always
/// decides. Agrees with [`strip_think`] on a leading block.
pub(crate) fn visible_start(raw: &str, finished: bool) -> Option<usize> {
    let trimmed = raw.trim_start();
    if trimmed.is_empty() || (THINK_OPEN.starts_with(trimmed) && trimmed.len() < THINK_OPEN.len()) {
        return finished.then_some(0);
    }
    if !trimmed.starts_with(THINK_OPEN) {
        return Some(0);
    }
    match raw.find(THINK_CLOSE) {
        Some(close) => {
            let after = skip_newlines(raw, close + THINK_CLOSE.len());
            // More line breaks may still arrive; wait for the first byte of the answer.
            (after < raw.len() || finished).then_some(after)
        }
        None => finished.then_some(raw.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found() {
        assert_eq!(find_special_marker("x<|endoftext|>y"), Some(1));
        assert_eq!(find_special_marker("a <| b |> <|fim_pad|>"), Some(10));
        assert_eq!(find_special_marker("a || b <|x"), None);
        assert_eq!(cut_at_special_marker("ok();<|file_sep|>src/x.rs"), "ok();");
        assert_eq!(cut_at_special_marker("é<|im_end|>"), "é");
    }

    #[test]
    fn think_blocks_are_stripped() {
        assert_eq!(strip_think("<think>hmm</think>\n\nx = 1"), "x = 1");
        assert_eq!(strip_think("  <think>hmm"), "");
        assert_eq!(strip_think("reasoning</think>\ncode()"), "code()");
        assert_eq!(strip_think("a<think>b</think>c<think>d"), "ac");
        assert_eq!(strip_think("plain"), "plain");
    }

    #[test]
    fn stream_start_agrees_with_strip() {
        for raw in [
            "<think>a</think>\n\ncode",
            "  <think>a</think>x",
            "code",
            "\n  code",
        ] {
            let start = visible_start(raw, true).expect("decided when finished");
            assert_eq!(
                &raw[start..],
                strip_think(raw).trim_start_matches(' '),
                "{raw:?}"
            );
        }
        assert_eq!(visible_start("<thi", false), None);
        assert_eq!(visible_start("<think>a</think>\n", false), None);
        assert_eq!(visible_start("  ", false), None);
    }
}
