//! Windows: the file cut into runs of ~10–20 whole lines (preferring to cut at blank lines), each with its
//! bag of identifier terms, for lexical similarity to the text before the cursor.

use super::identifiers::{for_each_term, TermId};

/// Windows are at least this many lines (except a file's last one)…
pub const MIN_WINDOW_LINES: usize = 10;
/// …aim for this many…
pub const TARGET_WINDOW_LINES: usize = 15;
/// …and never exceed this many.
pub const MAX_WINDOW_LINES: usize = 20;

/// A run of whole lines and the set of terms in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// First line (0-based).
    pub start_line: u32,
    /// Last line (0-based, inclusive).
    pub end_line: u32,
    /// Sorted, distinct term ids.
    pub terms: Box<[TermId]>,
}

/// Byte offsets of the start of every line (the first is 0). A trailing newline does not start a new line.
pub fn line_starts(text: &str) -> Vec<u32> {
    let mut starts = vec![0u32];
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' && i + 1 < text.len() {
            starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
    }
    starts
}

/// Cuts `text` into windows. Deterministic: a pure function of the text.
pub fn windows(text: &str) -> Vec<Window> {
    let mut result = Vec::new();
    extend_windows(text, &line_starts(text), 0, &mut result, |_| false);
    result
}

/// Appends the windows of `text` from line `first` on (with `starts` = [`line_starts`] of `text`). Before
/// each window, `known(start)` may say the rest is already known (an incremental update re-synchronised
/// with the old windows): then nothing more is appended and that start line is returned.
///
/// Each window depends only on its start line and the lines after it, which is what makes re-sync exact.
pub fn extend_windows(
    text: &str,
    starts: &[u32],
    first: usize,
    result: &mut Vec<Window>,
    mut known: impl FnMut(u32) -> bool,
) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    let line = |i: usize| -> &str {
        let begin = starts[i] as usize;
        let end = starts.get(i + 1).map_or(text.len(), |&s| s as usize);
        &text[begin..end]
    };
    let n = starts.len();
    let mut terms = Vec::new();
    let mut first = first;
    while first < n {
        if known(first as u32) {
            return Some(first as u32);
        }
        let last = if n - first <= MAX_WINDOW_LINES {
            n - 1
        } else {
            cut_line(first, n, |i| line(i).trim().is_empty())
        };
        terms.clear();
        let begin = starts[first] as usize;
        let end = starts.get(last + 1).map_or(text.len(), |&s| s as usize);
        for_each_term(&text[begin..end], |t| terms.push(t));
        terms.sort_unstable();
        terms.dedup();
        result.push(Window {
            start_line: first as u32,
            end_line: last as u32,
            terms: terms.as_slice().into(),
        });
        first = last + 1;
    }
    None
}

/// The last line of the window starting at `first`: the line before a blank line closest to the target
/// length, or the target length when there is no blank line in range.
fn cut_line(first: usize, n: usize, is_blank: impl Fn(usize) -> bool) -> usize {
    let target = first + TARGET_WINDOW_LINES - 1;
    let lowest = first + MIN_WINDOW_LINES - 1;
    let highest = (first + MAX_WINDOW_LINES - 1).min(n - 1);
    (lowest..=highest)
        .filter(|&last| last + 1 < n && is_blank(last + 1))
        .min_by_key(|&last| (last.abs_diff(target), last))
        .unwrap_or(target.min(n - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_line_once_within_bounds() {
        let text: String = (0..97)
            .map(|i| {
                if i % 13 == 0 {
                    "\n".to_owned()
                } else {
                    format!("let v{i} = f(x);\n")
                }
            })
            .collect();
        let ws = windows(&text);
        assert_eq!(ws[0].start_line, 0);
        for pair in ws.windows(2) {
            assert_eq!(pair[0].end_line + 1, pair[1].start_line);
        }
        assert_eq!(ws.last().map(|w| w.end_line), Some(96));
        for w in &ws[..ws.len() - 1] {
            let len = (w.end_line - w.start_line + 1) as usize;
            assert!(
                (MIN_WINDOW_LINES..=MAX_WINDOW_LINES).contains(&len),
                "{len}"
            );
        }
    }

    #[test]
    fn line_starts_ignore_a_trailing_newline() {
        assert_eq!(line_starts("a\nb\n"), [0, 2]);
        assert_eq!(line_starts("a\nb"), [0, 2]);
        assert_eq!(line_starts(""), [0]);
    }
}
