//! Byte-offset text helpers shared by the completion modules: char-boundary clamping, line splitting and
//! indentation width. Everything here takes untrusted offsets and never panics.

/// Columns a tab advances indentation by when comparing indentation widths. Mixed tabs and spaces within one
/// file are rare; within one file the comparison stays consistent either way.
pub(crate) const TAB_WIDTH: usize = 4;

/// The largest char boundary `<= offset` (and `<= text.len()`).
pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The leading spaces and tabs of `line`.
pub(crate) fn leading_whitespace(line: &str) -> &str {
    let end = line.len() - line.trim_start_matches([' ', '\t']).len();
    &line[..end]
}

/// Indentation width of `ws` (spaces and tabs), tabs counting [`TAB_WIDTH`].
pub(crate) fn indent_width(ws: &str) -> usize {
    ws.chars()
        .map(|c| if c == '\t' { TAB_WIDTH } else { 1 })
        .sum()
}

/// Whether a line (possibly ending in `\r`) has nothing but whitespace.
pub(crate) fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// `line` without a trailing `\r` (CRLF documents split on `\n`).
pub(crate) fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
}

/// Byte offset where the line containing `offset` starts. (Flooring to a char boundary changes nothing: a
/// `\n` is never inside a character; it lets the search use `str`'s fast byte search.)
pub(crate) fn line_start(text: &str, offset: usize) -> usize {
    let offset = floor_char_boundary(text, offset);
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset of the `\n` ending the line containing `offset`, or `text.len()`.
pub(crate) fn line_end(text: &str, offset: usize) -> usize {
    let offset = floor_char_boundary(text, offset);
    text[offset..].find('\n').map_or(text.len(), |i| offset + i)
}

/// Whether a trimmed line of code ends with something that opens a block or a multi-line construct.
pub(crate) fn ends_with_opener(trimmed: &str) -> bool {
    trimmed.ends_with(['{', '(', '[', ':']) || trimmed.ends_with("=>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_and_lines() {
        let text = "aé\nb";
        assert_eq!(floor_char_boundary(text, 2), 1);
        assert_eq!(floor_char_boundary(text, 99), text.len());
        assert_eq!(line_start(text, 5), 4);
        assert_eq!(line_end(text, 0), 3);
        assert_eq!(line_end(text, 4), 5);
        assert_eq!(indent_width("\t  "), TAB_WIDTH + 2);
        assert_eq!(leading_whitespace("  \tx "), "  \t");
        assert!(ends_with_opener("fn f() {"));
        assert!(ends_with_opener("x =>"));
        assert!(!ends_with_opener("x;"));
    }
}
