//! Describing a text edit to tree-sitter (`InputEdit`: bytes and row/column points), so that a reparse
//! reuses the unchanged subtrees: the one place the index's incremental re-tagging and the completion items
//! check compute it.

pub use tree_sitter::InputEdit;
use tree_sitter::Point;

/// The edit that replaces `text[start..old_end]` with `new_text`.
pub fn input_edit(text: &str, start: usize, old_end: usize, new_text: &str) -> InputEdit {
    let start_position = point_at(text, start);
    let old_end_position = point_at(text, old_end);
    let new_end_position = point_after(start_position, new_text);
    InputEdit {
        start_byte: start,
        old_end_byte: old_end,
        new_end_byte: start + new_text.len(),
        start_position,
        old_end_position,
        new_end_position,
    }
}

/// The point reached after `text`, starting at `start`.
pub fn point_after(start: Point, text: &str) -> Point {
    match text.rfind('\n') {
        Some(last) => Point::new(
            start.row + text.matches('\n').count(),
            text.len() - last - 1,
        ),
        None => Point::new(start.row, start.column + text.len()),
    }
}

/// Row and byte column of a byte offset.
pub fn point_at(text: &str, byte: usize) -> Point {
    let before = &text.as_bytes()[..byte];
    let row = before.iter().filter(|&&b| b == b'\n').count();
    let column = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(byte, |i| byte - i - 1);
    Point::new(row, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_count_rows_and_byte_columns() {
        let text = "ab\ncdé\nf";
        assert_eq!(point_at(text, 0), Point::new(0, 0));
        assert_eq!(point_at(text, 5), Point::new(1, 2));
        assert_eq!(point_after(Point::new(1, 2), "x\nyz"), Point::new(2, 2));
        let edit = input_edit(text, 3, 7, "Q\nR");
        assert_eq!(
            (edit.start_byte, edit.old_end_byte, edit.new_end_byte),
            (3, 7, 6)
        );
        assert_eq!(edit.old_end_position, Point::new(1, 4));
        assert_eq!(edit.new_end_position, Point::new(2, 1));
    }
}
