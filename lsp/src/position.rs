//! Position encodings: LSP positions (a line and a column in UTF-8 bytes or UTF-16 code units) ↔ byte offsets.
//!
//! Everything below `lsp/` speaks byte offsets (tree-sitter columns are bytes); this is the one place that
//! converts. Lines end at `\n`, `\r\n` or `\r` — exactly the LSP's set (ropey is built without
//! `unicode_lines`, which would also break lines at U+2028 and friends and shift every line after them).
//!
//! Out-of-range input is clamped the way the specification asks: a column past the end of its line means the
//! end of that line (before its line break), a line past the end means the end of the text, and a column inside
//! a character (a UTF-16 surrogate pair, a UTF-8 continuation byte) snaps to the start of that character.

use std::ops::Range as ByteRange;

use ropey::{Rope, RopeSlice};
use tower_lsp_server::ls_types::{Position, PositionEncodingKind, Range};

/// The column unit agreed with the client at `initialize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Columns are UTF-8 bytes (offered by Neovim and others; no conversion work for us).
    Utf8,
    /// Columns are UTF-16 code units (the LSP default; VS Code).
    #[default]
    Utf16,
}

impl Encoding {
    /// Picks the encoding from the client's `general.positionEncodings`: UTF-8 when offered, else UTF-16
    /// (which every client must support, offered or not).
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Encoding {
        match offered {
            Some(kinds) if kinds.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
            _ => Encoding::Utf16,
        }
    }

    /// The value announced in `ServerCapabilities::position_encoding`.
    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }
    }
}

/// Byte length of `line` without its line break.
fn content_len(line: RopeSlice<'_>) -> usize {
    let mut len = line.len_bytes();
    if len > 0 && line.byte(len - 1) == b'\n' {
        len -= 1;
    }
    if len > 0 && line.byte(len - 1) == b'\r' {
        len -= 1;
    }
    len
}

/// The byte offset of `pos` in `rope` (clamped, see the module documentation).
pub fn offset(rope: &Rope, pos: Position, encoding: Encoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_bytes();
    }
    let start = rope.line_to_byte(line);
    let end = start + content_len(rope.line(line));
    let column = pos.character as usize;
    match encoding {
        Encoding::Utf8 => {
            let byte = start.saturating_add(column).min(end);
            rope.char_to_byte(rope.byte_to_char(byte))
        }
        Encoding::Utf16 => {
            let base = rope.char_to_utf16_cu(rope.byte_to_char(start));
            let limit = rope.char_to_utf16_cu(rope.byte_to_char(end));
            let unit = base.saturating_add(column).min(limit);
            rope.char_to_byte(rope.utf16_cu_to_char(unit))
        }
    }
}

/// The LSP position of byte `offset` in `rope` (clamped to the text, snapped to a character start).
pub fn position(rope: &Rope, offset: usize, encoding: Encoding) -> Position {
    let char_index = rope.byte_to_char(offset.min(rope.len_bytes()));
    let byte = rope.char_to_byte(char_index);
    let line = rope.byte_to_line(byte);
    let column = match encoding {
        Encoding::Utf8 => byte - rope.line_to_byte(line),
        Encoding::Utf16 => {
            rope.char_to_utf16_cu(char_index) - rope.char_to_utf16_cu(rope.line_to_char(line))
        }
    };
    Position::new(to_u32(line), to_u32(column))
}

/// The byte range of an LSP range (ends swapped if the client sent them reversed).
pub fn byte_range(rope: &Rope, range: Range, encoding: Encoding) -> ByteRange<usize> {
    let a = offset(rope, range.start, encoding);
    let b = offset(rope, range.end, encoding);
    a.min(b)..a.max(b)
}

/// The LSP range of a byte range.
pub fn lsp_range(rope: &Rope, range: ByteRange<usize>, encoding: Encoding) -> Range {
    Range::new(
        position(rope, range.start, encoding),
        position(rope, range.end, encoding),
    )
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position::new(line, character)
    }

    #[test]
    fn negotiation_prefers_utf8() {
        let both = [PositionEncodingKind::UTF16, PositionEncodingKind::UTF8];
        assert_eq!(Encoding::negotiate(Some(&both)), Encoding::Utf8);
        let only16 = [PositionEncodingKind::UTF16];
        assert_eq!(Encoding::negotiate(Some(&only16)), Encoding::Utf16);
        let only32 = [PositionEncodingKind::UTF32];
        assert_eq!(Encoding::negotiate(Some(&only32)), Encoding::Utf16);
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
    }

    #[test]
    fn multibyte_columns() {
        // é: 2 bytes, 1 UTF-16 unit. 😀: 4 bytes, 2 UTF-16 units. 日: 3 bytes, 1 unit.
        let rope = Rope::from_str("aé😀日b\nx");
        let text = rope.to_string();
        let b_byte = text.find('b').expect("b");
        assert_eq!(offset(&rope, pos(0, 5), Encoding::Utf16), b_byte);
        assert_eq!(offset(&rope, pos(0, b_byte as u32), Encoding::Utf8), b_byte);
        assert_eq!(position(&rope, b_byte, Encoding::Utf16), pos(0, 5));
        assert_eq!(position(&rope, b_byte, Encoding::Utf8), pos(0, 10));
        // Inside the surrogate pair: snap to the emoji's start.
        assert_eq!(offset(&rope, pos(0, 3), Encoding::Utf16), 3);
        // Inside é's UTF-8 bytes: snap to its start.
        assert_eq!(offset(&rope, pos(0, 2), Encoding::Utf8), 1);
        assert_eq!(position(&rope, 2, Encoding::Utf8), pos(0, 1));
        assert_eq!(offset(&rope, pos(1, 0), Encoding::Utf16), b_byte + 2);
    }

    #[test]
    fn clamping_and_line_breaks() {
        let rope = Rope::from_str("ab\r\ncd\re\n");
        // Past the end of a line: the end of its content, before \r\n.
        assert_eq!(offset(&rope, pos(0, 99), Encoding::Utf16), 2);
        assert_eq!(offset(&rope, pos(0, 99), Encoding::Utf8), 2);
        // A lone \r ends a line too.
        assert_eq!(offset(&rope, pos(1, 0), Encoding::Utf16), 4);
        assert_eq!(offset(&rope, pos(2, 0), Encoding::Utf16), 7);
        assert_eq!(offset(&rope, pos(2, 1), Encoding::Utf16), 8);
        // The empty last line, and lines past the end.
        assert_eq!(offset(&rope, pos(3, 0), Encoding::Utf16), 9);
        assert_eq!(offset(&rope, pos(70, 3), Encoding::Utf16), 9);
        assert_eq!(position(&rope, 9, Encoding::Utf16), pos(3, 0));
        assert_eq!(position(&rope, 1000, Encoding::Utf8), pos(3, 0));
        // U+2028 is not an LSP line break.
        let rope = Rope::from_str("a\u{2028}b\nc");
        assert_eq!(offset(&rope, pos(1, 0), Encoding::Utf16), 6);
        assert_eq!(position(&rope, 6, Encoding::Utf16), pos(1, 0));
    }

    #[test]
    fn round_trips_at_every_character() {
        let text = "fn é() {\r\n    let s = \"日本😀\";\n\tx\r}\n\n";
        let rope = Rope::from_str(text);
        for encoding in [Encoding::Utf8, Encoding::Utf16] {
            for (byte, _) in text.char_indices().chain([(text.len(), ' ')]) {
                if text[..byte].ends_with('\r') && text[byte..].starts_with('\n') {
                    continue; // Inside a CRLF: no LSP position names it.
                }
                let p = position(&rope, byte, encoding);
                assert_eq!(offset(&rope, p, encoding), byte, "{encoding:?} {byte}");
            }
        }
        let r = Range::new(pos(1, 4), pos(0, 1));
        assert_eq!(byte_range(&rope, r, Encoding::Utf8), 1..15);
        assert_eq!(
            lsp_range(&rope, 1..15, Encoding::Utf8),
            Range::new(pos(0, 1), pos(1, 4))
        );
    }
}
