//! The windows of the current file around the cursor, cut by exact token counts: whole lines where they fit,
//! a cut inside a line only where even one line does not.

use crate::Workspace;

pub(super) fn line_start(text: &str, offset: usize) -> usize {
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// 0-based line of byte `offset`.
pub(super) fn line_of(text: &str, offset: usize) -> u32 {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u32
}

/// The prefix window `[start, offset)` and its exact token count: the cursor line's text before the cursor,
/// then whole earlier lines while they fit `cap`.
pub(super) fn prefix_window(
    workspace: &Workspace,
    text: &str,
    offset: usize,
    cap: usize,
) -> (usize, usize) {
    let cursor_line = line_start(text, offset);
    let mut start = cut_front(workspace, text, cursor_line, offset, cap);
    if start == cursor_line {
        // Per-line counts (memoized: lines repeat from keystroke to keystroke) choose the lines.
        let mut estimate = workspace.count_tokens(&text[cursor_line..offset]);
        while start > 0 {
            let previous = line_start(text, start - 1);
            let line_tokens = workspace.count_tokens(&text[previous..start]);
            if estimate + line_tokens > cap {
                break;
            }
            estimate += line_tokens;
            start = previous;
        }
    }
    // Tokens can merge across line boundaries (a newline with the next indentation): confirm exactly.
    let mut tokens = workspace.token_counter().count(&text[start..offset]);
    while tokens > cap && start < cursor_line {
        start = text[start..]
            .find('\n')
            .map_or(cursor_line, |i| start + i + 1);
        tokens = workspace.token_counter().count(&text[start..offset]);
    }
    if tokens > cap {
        start = cut_front(workspace, text, start, offset, cap);
        tokens = workspace.token_counter().count(&text[start..offset]);
    }
    (start, tokens)
}

/// The suffix window `[offset, end)` and its exact token count: the rest of the cursor line, then whole
/// later lines while they fit `cap`.
pub(super) fn suffix_window(
    workspace: &Workspace,
    text: &str,
    offset: usize,
    cap: usize,
) -> (usize, usize) {
    let line_end = text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1);
    let mut end = cut_back(workspace, text, offset, line_end, cap);
    if end == line_end {
        let mut estimate = workspace.count_tokens(&text[offset..line_end]);
        while end < text.len() {
            let next = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
            let line_tokens = workspace.count_tokens(&text[end..next]);
            if estimate + line_tokens > cap {
                break;
            }
            estimate += line_tokens;
            end = next;
        }
    }
    let mut tokens = workspace.token_counter().count(&text[offset..end]);
    while tokens > cap && end > line_end {
        end = text[..end - 1]
            .rfind('\n')
            .map_or(line_end, |i| i + 1)
            .max(line_end);
        tokens = workspace.token_counter().count(&text[offset..end]);
    }
    if tokens > cap {
        end = cut_back(workspace, text, offset, end, cap);
        tokens = workspace.token_counter().count(&text[offset..end]);
    }
    (end, tokens)
}

/// The largest suffix `[start', end)` of `[start, end)` (cut at a char boundary) with at most `cap` tokens.
fn cut_front(workspace: &Workspace, text: &str, start: usize, end: usize, cap: usize) -> usize {
    let count = |from: usize| workspace.token_counter().count(&text[from..end]);
    if count(start) <= cap {
        return start;
    }
    // Binary search over char boundaries: fewer bytes never means more tokens by much, and the result only
    // has to fit, not be maximal.
    let (mut fits, mut too_long) = (end, start);
    while fits > too_long + 1 {
        let mut mid = too_long + (fits - too_long) / 2;
        while !text.is_char_boundary(mid) {
            mid += 1;
        }
        if mid >= fits {
            break;
        }
        if count(mid) <= cap {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    fits
}

/// The largest prefix `[start, end')` of `[start, end)` (cut at a char boundary) with at most `cap` tokens.
fn cut_back(workspace: &Workspace, text: &str, start: usize, end: usize, cap: usize) -> usize {
    let count = |to: usize| workspace.token_counter().count(&text[start..to]);
    if count(end) <= cap {
        return end;
    }
    let (mut fits, mut too_long) = (start, end);
    while too_long > fits + 1 {
        let mut mid = fits + (too_long - fits) / 2;
        while !text.is_char_boundary(mid) {
            mid -= 1;
        }
        if mid <= fits {
            break;
        }
        if count(mid) <= cap {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    fits
}
