//! The packer's output: a structured list of items, and its rendering in Qwen's repository format
//! (`<|repo_name|>name\n` then `<|file_sep|>path\ncontent` per item).

use std::sync::Arc;

/// Why an item was packed (the signal that contributed most to its score).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Defines an identifier used near the cursor.
    Definition,
    /// Central in the file graph around the current file, or close to it in the directory tree.
    Graph,
    /// Lexically similar to the text before the cursor (or the instruction).
    Similar,
    /// Recently edited.
    Recent,
    /// Part of the current file outside the cursor window.
    Current,
    /// A file the current file imports.
    Import,
}

impl Reason {
    /// The stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Definition => "definition",
            Self::Graph => "graph",
            Self::Similar => "similar",
            Self::Recent => "recent",
            Self::Current => "current",
            Self::Import => "import",
        }
    }
}

/// One packed chunk of one file: a run of whole lines, or a map of the file — chosen lines in order, each
/// run of hidden lines replaced by a `⋮` line.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedItem {
    /// Workspace-relative path.
    pub path: Arc<str>,
    /// First line (0-based).
    pub start_line: u32,
    /// Last line (0-based, inclusive).
    pub end_line: u32,
    /// Whether this is the whole file (or, for the current file, all of it outside the cursor window).
    pub whole_file: bool,
    /// Exact tokens of this item as rendered (`<|file_sep|>path\ncontent`).
    pub tokens: usize,
    /// Fused relevance score.
    pub score: f64,
    /// Why it was packed.
    pub reason: Reason,
    /// Chosen by cursor-independent signals only (the background tier, emitted first): it stays in the
    /// prompt, at the same place, while the cursor moves within the current file.
    pub background: bool,
    /// The content as rendered after `<|file_sep|>path\n`: the lines shown (each ending with a newline),
    /// with a `⋮` line for each run of hidden lines in a map.
    pub text: String,
    /// The runs of lines shown (0-based, inclusive), ascending: one run for a snippet or a whole file.
    pub shown: Vec<(u32, u32)>,
}

impl PackedItem {
    /// Whether the item shows line `line` (0-based) of its file.
    pub fn shows_line(&self, line: u32) -> bool {
        self.shown
            .iter()
            .any(|&(start, end)| start <= line && line <= end)
    }

    /// Every line (0-based) of its file the item shows, in order.
    pub fn shown_lines(&self) -> impl Iterator<Item = u32> + '_ {
        self.shown.iter().flat_map(|&(start, end)| start..=end)
    }
}

/// What the packer chose, in prompt order: least relevant first, the current file's items last.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedContext {
    /// The repository name written after `<|repo_name|>`.
    pub repo_name: String,
    /// The budget asked for.
    pub budget: usize,
    /// Exact tokens of [`PackedContext::render`]; never more than `budget`.
    pub used_tokens: usize,
    /// Tokens of the `<|repo_name|>` header (0 when even that did not fit).
    pub header_tokens: usize,
    /// The items.
    pub items: Vec<PackedItem>,
    /// The lines around the cursor (0-based, inclusive) that the caller sends itself and that were
    /// therefore never packed.
    pub cursor_window: (u32, u32),
}

impl PackedContext {
    /// The prompt text of the packed context. Empty when not even the header fits.
    pub fn render(&self) -> String {
        if self.header_tokens == 0 {
            return String::new();
        }
        let mut out = header_text(&self.repo_name);
        for item in &self.items {
            out.push_str(&item_text(&item.path, &item.text));
        }
        out
    }
}

/// `<|repo_name|>name\n`, as text (`qwen_format` writes it).
pub fn header_text(repo_name: &str) -> String {
    let mut text = String::new();
    qwen_format::repo_header(&mut text, repo_name);
    text
}

/// `<|file_sep|>path\ncontent`, as text (`qwen_format` writes it).
pub fn item_text(path: &str, content: &str) -> String {
    let mut text = String::new();
    qwen_format::repo_file(&mut text, path, content);
    text
}
