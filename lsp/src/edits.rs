//! Minimal text edits between two versions of a file (line diff with `similar`, then each changed block
//! trimmed to the bytes that differ), and their LSP form: a `TextDocumentEdit` pinned to the document
//! version the new text was computed from, so that a client refuses it if the document moved on.

use std::ops::Range;
use std::time::{Duration, Instant};

use ropey::Rope;
use similar::{Algorithm, DiffOp};
use tower_lsp_server::ls_types::{
    OneOf, OptionalVersionedTextDocumentIdentifier, TextDocumentEdit, TextEdit, Uri,
};

use super::position::{lsp_range, Encoding};

/// After this long the diff settles for a coarser (still correct) answer.
const DIFF_DEADLINE: Duration = Duration::from_secs(2);

/// One replacement: `range` of the old text becomes `text`. Ranges are sorted and do not overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteEdit {
    /// Bytes of the old text.
    pub range: Range<usize>,
    /// The replacement.
    pub text: String,
}

/// Lines with their terminators (`\n` only: a lone `\r` stays inside its line, which is still exact).
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The edits that turn `old` into `new`: applied together (each range in `old`'s coordinates) they
/// reproduce `new` exactly.
pub fn minimal_edits(old: &str, new: &str) -> Vec<ByteEdit> {
    if old == new {
        return Vec::new();
    }
    let (old_lines, new_lines) = (lines(old), lines(new));
    let offsets = |ls: &[&str]| -> Vec<usize> {
        let mut acc = Vec::with_capacity(ls.len() + 1);
        let mut at = 0;
        acc.push(0);
        for l in ls {
            at += l.len();
            acc.push(at);
        }
        acc
    };
    let (old_at, new_at) = (offsets(&old_lines), offsets(&new_lines));
    let ops = similar::capture_diff_slices_deadline(
        Algorithm::Myers,
        &old_lines,
        &new_lines,
        Some(Instant::now() + DIFF_DEADLINE),
    );
    let mut edits = Vec::new();
    let mut pending: Option<(Range<usize>, Range<usize>)> = None;
    let mut flush = |pending: &mut Option<(Range<usize>, Range<usize>)>| {
        if let Some((o, n)) = pending.take() {
            let old_part = &old[old_at[o.start]..old_at[o.end]];
            let new_part = &new[new_at[n.start]..new_at[n.end]];
            let (prefix, suffix) = common_affixes(old_part, new_part);
            edits.push(ByteEdit {
                range: old_at[o.start] + prefix..old_at[o.end] - suffix,
                text: new_part[prefix..new_part.len() - suffix].to_owned(),
            });
        }
    };
    for op in ops {
        let (o, n) = match op {
            DiffOp::Equal { .. } => {
                flush(&mut pending);
                continue;
            }
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => (old_index..old_index + old_len, new_index..new_index),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index..old_index, new_index..new_index + new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (
                old_index..old_index + old_len,
                new_index..new_index + new_len,
            ),
        };
        pending = Some(match pending.take() {
            Some((po, pn)) => (po.start..o.end, pn.start..n.end),
            None => (o, n),
        });
    }
    flush(&mut pending);
    edits
}

/// Lengths of the common prefix and suffix of `a` and `b` (on character boundaries, not overlapping).
fn common_affixes(a: &str, b: &str) -> (usize, usize) {
    let mut prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(prefix) || !b.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let max_suffix = (a.len() - prefix).min(b.len() - prefix);
    let mut suffix = a
        .bytes()
        .rev()
        .zip(b.bytes().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    while !a.is_char_boundary(a.len() - suffix) || !b.is_char_boundary(b.len() - suffix) {
        suffix -= 1;
    }
    (prefix, suffix)
}

/// Applies edits produced by [`minimal_edits`] (for tests and checks).
pub fn apply(old: &str, edits: &[ByteEdit]) -> String {
    let mut out = String::with_capacity(old.len());
    let mut at = 0;
    for edit in edits {
        out.push_str(&old[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&old[at..]);
    out
}

/// The LSP edit turning `old` (the document at `version`; `None` for a file that is not open) into `new`.
pub fn text_document_edit(
    uri: Uri,
    version: Option<i32>,
    old: &str,
    new: &str,
    encoding: Encoding,
) -> TextDocumentEdit {
    let rope = Rope::from_str(old);
    let edits = minimal_edits(old, new)
        .into_iter()
        .map(|e| OneOf::Left(TextEdit::new(lsp_range(&rope, e.range, encoding), e.text)))
        .collect();
    TextDocumentEdit {
        text_document: OptionalVersionedTextDocumentIdentifier { uri, version },
        edits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_are_minimal_and_exact() {
        let old = "fn a() {\n    let x = 1;\n    x\n}\n\nfn b() {}\n";
        let new = "fn a() {\n    let x = 2;\n    x\n}\n\nfn b() { todo!() }\nfn c() {}\n";
        let edits = minimal_edits(old, new);
        assert_eq!(
            edits[0],
            ByteEdit {
                range: 21..22,
                text: "2".into()
            }
        );
        assert_eq!(edits.len(), 2, "{edits:?}");
        assert_eq!(edits[1].range, 41..41);
        assert_eq!(apply(old, &edits), new);
    }

    #[test]
    fn round_trips_on_awkward_texts() {
        let texts = [
            "",
            "x",
            "a\nb\nc",
            "a\r\nb\r\n",
            "é😀\nß\n",
            "é😀\nss\n",
            "\n\n\n",
            "no newline at end",
            "line\rwith lone cr\n",
        ];
        for old in texts {
            for new in texts {
                let edits = minimal_edits(old, new);
                assert_eq!(apply(old, &edits), new, "{old:?} -> {new:?}");
                for e in &edits {
                    assert!(
                        old.is_char_boundary(e.range.start) && old.is_char_boundary(e.range.end)
                    );
                }
            }
        }
    }

    #[test]
    fn lsp_edits_use_the_negotiated_encoding() {
        let uri: Uri = "file:///w/a.rs".parse().expect("uri");
        let edit = text_document_edit(
            uri,
            Some(7),
            "let s = \"😀\";\n",
            "let s = \"😀!\";\n",
            Encoding::Utf16,
        );
        assert_eq!(edit.text_document.version, Some(7));
        let OneOf::Left(first) = &edit.edits[0] else {
            panic!("plain edit")
        };
        assert_eq!(first.range.start.character, 11);
        assert_eq!(first.new_text, "!");
    }
}
