//! What a caller asks the packer for, and the knobs that shape the answer.

use std::sync::Arc;

/// A context request: where the user is and how much room there is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextRequest {
    /// The current file, workspace-relative.
    pub path: Arc<str>,
    /// Cursor line (0-based).
    pub cursor_line: u32,
    /// Cursor column (0-based, bytes).
    pub cursor_column: u32,
    /// Selected lines (0-based, inclusive), if any: their identifiers and text drive retrieval.
    pub selection: Option<(u32, u32)>,
    /// An instruction ("explain", "refactor to…"): replaces the text before the cursor as lexical query.
    pub instruction: Option<String>,
    /// Token budget for the packed context (everything [`crate::PackedContext::render`] returns).
    pub budget: usize,
}

/// Tunables. `Default` gives the documented behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct PackConfig {
    /// Lines before the cursor that the caller sends itself as FIM prefix (never packed again).
    pub cursor_window_before: u32,
    /// Lines after the cursor that the caller sends itself as FIM suffix.
    pub cursor_window_after: u32,
    /// Lines around the cursor whose identifiers are resolved to definitions.
    pub identifier_lines_before: u32,
    /// …and after.
    pub identifier_lines_after: u32,
    /// Lines before the cursor used as the lexical query.
    pub query_lines: u32,
    /// Definition snippets longer than this keep only their first lines.
    pub max_snippet_lines: u32,
    /// Similar windows considered.
    pub max_similar_windows: usize,
    /// Reciprocal-rank-fusion constant.
    pub rrf_k: f64,
    /// Share of the budget for cursor-dependent items (definitions, similar windows, the current file)…
    pub foreground_share: f64,
    /// …but at most this many tokens; the rest is the cursor-independent repository map and whole files.
    pub max_foreground_tokens: usize,
    /// Definition snippets are added in pieces of this many lines (the head of a definition first).
    pub snippet_piece_lines: u32,
    /// The current file outside the cursor window is added in pieces of this many lines.
    pub current_piece_lines: u32,
}

impl Default for PackConfig {
    fn default() -> Self {
        Self {
            cursor_window_before: 60,
            cursor_window_after: 20,
            identifier_lines_before: 30,
            identifier_lines_after: 5,
            query_lines: 20,
            max_snippet_lines: 80,
            max_similar_windows: 256,
            rrf_k: 60.0,
            foreground_share: 0.25,
            max_foreground_tokens: 2048,
            snippet_piece_lines: 8,
            current_piece_lines: 10,
        }
    }
}

impl PackConfig {
    /// The lines (0-based, inclusive) the caller includes itself around the cursor.
    pub fn cursor_window(&self, request: &ContextRequest) -> (u32, u32) {
        let start = request
            .cursor_line
            .saturating_sub(self.cursor_window_before);
        let end = request.cursor_line.saturating_add(self.cursor_window_after);
        (start, end)
    }
}
