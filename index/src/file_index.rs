//! What the index knows about one file, and the pure function that computes it from the file's text.

use std::sync::Arc;

use tree_sitter::Tree;
use xxhash_rust::xxh3::xxh3_64;

use super::windows::{windows, Window};
use qwen_syntax::{self as syntax, Definition, Import, LanguageSpec, Reference, Tags};

/// Every indexed file by workspace-relative path.
pub type FileMap = std::collections::BTreeMap<Arc<str>, Arc<FileIndex>>;
/// Every defined name → the sorted, distinct paths of the files that define it.
pub type SymbolMap = std::collections::HashMap<Box<str>, Vec<Arc<str>>>;

/// Symbols, windows and text of one indexed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileIndex {
    /// Path relative to the workspace root, `/`-separated.
    pub path: Arc<str>,
    /// `None` for files indexed as plain text (no grammar).
    pub language: Option<&'static LanguageSpec>,
    /// The text (invalid UTF-8 replaced by U+FFFD; see [`FileIndex::lossy`]).
    pub text: Arc<str>,
    /// xxh3-64 of `text`.
    pub hash: u64,
    /// Whether the bytes on disk were not valid UTF-8 and were converted lossily.
    pub lossy: bool,
    /// Number of lines.
    pub line_count: u32,
    /// Definitions in canonical order, scopes assigned.
    pub definitions: Vec<Definition>,
    /// References in canonical order.
    pub references: Vec<Reference>,
    /// Import paths in order.
    pub imports: Vec<Import>,
    /// Lexical windows covering every line.
    pub windows: Vec<Window>,
    /// Hash of the definition names and reference names: when it is unchanged by an edit, the file graph is too.
    pub symbol_summary: u64,
}

/// The derived parts of a [`FileIndex`] (everything but path, text and hash) — what the cache stores.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FileSymbols {
    /// Definitions, canonical order, scopes assigned.
    pub definitions: Vec<Definition>,
    /// References, canonical order.
    pub references: Vec<Reference>,
    /// Imports.
    pub imports: Vec<Import>,
    /// Windows.
    pub windows: Vec<Window>,
}

impl FileIndex {
    /// Builds the entry from text and already computed symbols (parsed now, or loaded from the cache).
    pub fn assemble(
        path: Arc<str>,
        language: Option<&'static LanguageSpec>,
        text: Arc<str>,
        lossy: bool,
        symbols: FileSymbols,
    ) -> Self {
        let line_count = count_lines(&text);
        let symbol_summary = symbol_summary(&symbols.definitions, &symbols.references);
        Self {
            path,
            language,
            hash: content_hash(&text),
            text,
            lossy,
            line_count,
            definitions: symbols.definitions,
            references: symbols.references,
            imports: symbols.imports,
            windows: symbols.windows,
            symbol_summary,
        }
    }

    /// The derived parts, cloned (for the cache).
    pub fn symbols(&self) -> FileSymbols {
        FileSymbols {
            definitions: self.definitions.clone(),
            references: self.references.clone(),
            imports: self.imports.clone(),
            windows: self.windows.clone(),
        }
    }

    /// The text of lines `start..=end` (0-based), each with its newline; the last line gets one if missing.
    pub fn lines(&self, start: u32, end: u32) -> String {
        let mut out = String::new();
        for (i, line) in self.text.split_inclusive('\n').enumerate() {
            let i = i as u32;
            if i > end {
                break;
            }
            if i >= start {
                out.push_str(line);
            }
        }
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out
    }
}

/// The content hash used everywhere (cache keys, token-count cache, change detection).
pub fn content_hash(text: &str) -> u64 {
    xxh3_64(text.as_bytes())
}

/// Parses and tags `text` from scratch. A file with syntax errors keeps every symbol tree-sitter recovers; a
/// grammar that fails to load leaves the file as text-only (with the reason returned for logging).
pub fn analyze(
    language: Option<&'static LanguageSpec>,
    text: &str,
) -> (FileSymbols, Option<Tree>, Option<String>) {
    let windows = windows(text);
    let Some(spec) = language else {
        return (text_only(windows), None, None);
    };
    let tree = match syntax::parse(spec, text, None) {
        Ok(tree) => tree,
        Err(e) => return (text_only(windows), None, Some(e.to_string())),
    };
    match syntax::extract_tags(spec, &tree, text, None) {
        Ok(tags) => (symbols_from(tags, windows), Some(tree), None),
        Err(e) => (text_only(windows), Some(tree), Some(e.to_string())),
    }
}

/// Finishes a tag run: assigns scopes and attaches windows.
pub fn symbols_from(mut tags: Tags, windows: Vec<Window>) -> FileSymbols {
    syntax::assign_scopes(&mut tags.definitions);
    FileSymbols {
        definitions: tags.definitions,
        references: tags.references,
        imports: tags.imports,
        windows,
    }
}

fn text_only(windows: Vec<Window>) -> FileSymbols {
    FileSymbols {
        windows,
        ..FileSymbols::default()
    }
}

fn count_lines(text: &str) -> u32 {
    let newlines = text.bytes().filter(|&b| b == b'\n').count();
    let trailing = !text.is_empty() && !text.ends_with('\n');
    (newlines + usize::from(trailing)) as u32
}

/// An order-independent multiset hash (a wrapping sum of per-name hashes): no sorting, so it is cheap on
/// every keystroke, and equal for equal name multisets however the tags are ordered.
fn symbol_summary(definitions: &[Definition], references: &[Reference]) -> u64 {
    let definitions = definitions
        .iter()
        .fold(0u64, |sum, d| sum.wrapping_add(xxh3_64(d.name.as_bytes())));
    let references = references
        .iter()
        .fold(0u64, |sum, r| sum.wrapping_add(xxh3_64(r.name.as_bytes())));
    definitions ^ references.rotate_left(17)
}
