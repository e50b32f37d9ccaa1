//! Open documents: text plus syntax tree, updated in place by edits (`Tree::edit` + incremental reparse),
//! re-tagging only the top-level items that the edit touched and shifting every other tag.

use std::ops::Range;
use std::sync::Arc;

use tree_sitter::{InputEdit, Node, Tree};

use super::file_index::{symbols_from, FileIndex, FileSymbols};
use super::windows::{extend_windows, line_starts, windows, Window, MAX_WINDOW_LINES};
use super::ChangeError;
use qwen_syntax::{self as syntax, Definition, Import, LanguageSpec, Reference, Tags};

/// One replacement in a document: `range` (bytes of the text before this edit) becomes `new_text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextEdit {
    /// Byte range replaced.
    pub range: Range<usize>,
    /// Replacement text.
    pub new_text: String,
}

/// An open document: the editor's text overrides the disk until it is closed.
pub struct Document {
    /// The editor's version of the text; edits must carry a larger one.
    pub version: i32,
    language: Option<&'static LanguageSpec>,
    text: String,
    tree: Option<Tree>,
}

impl Document {
    /// Opens a document and returns it with its full index entry.
    pub fn open(
        path: Arc<str>,
        language: Option<&'static LanguageSpec>,
        text: String,
        version: i32,
    ) -> (Self, FileIndex) {
        let (symbols, tree, error) = super::file_index::analyze(language, &text);
        if let Some(error) = error {
            tracing::warn!("{path}: indexed as text only: {error}");
        }
        let entry = FileIndex::assemble(path, language, text.as_str().into(), false, symbols);
        let document = Self {
            version,
            language,
            text,
            tree,
        };
        (document, entry)
    }

    /// The current text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A copy of text and tree, to roll back a multi-edit change that fails halfway.
    pub(super) fn clone_state(&self) -> (String, Option<Tree>) {
        (self.text.clone(), self.tree.clone())
    }

    /// Restores a copy taken by [`Document::clone_state`].
    pub(super) fn restore_state(&mut self, (text, tree): (String, Option<Tree>)) {
        self.text = text;
        self.tree = tree;
    }

    /// Applies one edit and returns the updated index entry (derived from `current`, the entry before it).
    pub fn apply_edit(
        &mut self,
        edit: &TextEdit,
        current: &FileIndex,
    ) -> Result<FileIndex, ChangeError> {
        let Range { start, end } = edit.range.clone();
        if start > end
            || end > self.text.len()
            || !self.text.is_char_boundary(start)
            || !self.text.is_char_boundary(end)
        {
            return Err(ChangeError::InvalidEdit {
                path: current.path.to_string(),
                range: edit.range.clone(),
                len: self.text.len(),
            });
        }
        let input = syntax::input_edit(&self.text, start, end, &edit.new_text);
        self.text.replace_range(start..end, &edit.new_text);
        let symbols = match (self.language, self.tree.take()) {
            (Some(spec), Some(mut tree)) => {
                let was_broken = tree.root_node().has_error();
                tree.edit(&input);
                match self.reparse(spec, &tree, was_broken) {
                    Ok(new_tree) => {
                        let symbols = retag(spec, &tree, &new_tree, &self.text, &input, current);
                        self.tree = Some(new_tree);
                        symbols
                    }
                    Err(e) => {
                        tracing::warn!("{}: reparse failed, text only: {e}", current.path);
                        text_symbols(&self.text)
                    }
                }
            }
            _ => text_symbols(&self.text),
        };
        Ok(FileIndex::assemble(
            current.path.clone(),
            self.language,
            self.text.as_str().into(),
            false,
            symbols,
        ))
    }
}

impl Document {
    /// The new tree, exactly as a fresh parse would build it. tree-sitter's error recovery depends on parse
    /// history: an incrementally reparsed tree with errors can differ from a fresh parse of the same text
    /// (the randomized tests found such cases), and the index must equal a full re-index. So a text with
    /// syntax errors is parsed from scratch — directly when the previous text was already broken (the
    /// incremental attempt would almost surely be thrown away), else after an incremental parse shows errors.
    /// Tags are still re-extracted only where the new tree differs structurally from the old one.
    fn reparse(
        &self,
        spec: &'static LanguageSpec,
        edited: &Tree,
        was_broken: bool,
    ) -> Result<Tree, syntax::ParseError> {
        if !was_broken {
            let incremental = syntax::parse(spec, &self.text, Some(edited))?;
            if !incremental.root_node().has_error() {
                return Ok(incremental);
            }
        }
        syntax::parse(spec, &self.text, None)
    }
}

fn text_symbols(text: &str) -> FileSymbols {
    FileSymbols {
        windows: windows(text),
        ..FileSymbols::default()
    }
}

/// Re-tags the top-level items the edit changed; keeps earlier tags and shifts later ones.
fn retag(
    spec: &'static LanguageSpec,
    old_tree: &Tree,
    new_tree: &Tree,
    text: &str,
    edit: &InputEdit,
    current: &FileIndex,
) -> FileSymbols {
    let dirty = dirty_range(old_tree, new_tree, text, edit);
    let byte_delta = edit.new_end_byte as i64 - edit.old_end_byte as i64;
    // In old coordinates the dirty range ends `byte_delta` earlier (it always contains the edit).
    let old_dirty_end = (dirty.end as i64 - byte_delta) as u32;
    let dirty_start = dirty.start as u32;
    // A kept definition must lie wholly on one side; if one straddles a boundary (error recovery moved item
    // borders), re-tag the whole file rather than risk a stale tag.
    // Definitions enclosing the whole range (the impl or class whose body is re-tagged) are kept with their
    // end shifted, provided their name lies before the range.
    let encloses = |d: &Definition| d.start_byte < dirty_start && d.end_byte > old_dirty_end;
    let straddles = current.definitions.iter().any(|d| {
        let partial = (d.start_byte < dirty_start && d.end_byte > dirty_start)
            || (d.start_byte < old_dirty_end && d.end_byte > old_dirty_end);
        (partial && !encloses(d)) || (encloses(d) && d.name_byte >= dirty_start)
    }) || current.imports.iter().any(|i| {
        (i.start_byte < dirty_start && i.end_byte > dirty_start)
            || (i.start_byte < old_dirty_end && i.end_byte > old_dirty_end)
    });
    let dirty = if straddles { 0..text.len() } else { dirty };
    let (dirty_start, old_dirty_end) = if straddles {
        (0, u32::MAX)
    } else {
        (dirty_start, old_dirty_end)
    };
    // Re-bound: after a fallback to the whole file nothing encloses the range.
    let encloses = |d: &Definition| d.start_byte < dirty_start && d.end_byte > old_dirty_end;
    let fresh = match syntax::extract_tags(spec, new_tree, text, Some(dirty.clone())) {
        Ok(tags) => tags,
        Err(e) => {
            tracing::warn!("{}: tagging failed, text only: {e}", current.path);
            return text_symbols(text);
        }
    };
    let line_delta = edit.new_end_position.row as i64 - edit.old_end_position.row as i64;
    let shift = |byte: u32| (byte as i64 + byte_delta) as u32;
    let shift_line = |line: u32| (line as i64 + line_delta) as u32;

    let mut tags = Tags::default();
    let before = |end: u32| end <= dirty_start;
    tags.definitions.extend(
        current
            .definitions
            .iter()
            .filter(|d| before(d.end_byte) || encloses(d))
            .map(|d| {
                if encloses(d) {
                    Definition {
                        end_byte: shift(d.end_byte),
                        end_line: shift_line(d.end_line),
                        ..d.clone()
                    }
                } else {
                    d.clone()
                }
            }),
    );
    tags.definitions.extend(fresh.definitions);
    tags.definitions.extend(
        current
            .definitions
            .iter()
            .filter(|d| d.start_byte >= old_dirty_end)
            .map(|d| Definition {
                start_byte: shift(d.start_byte),
                end_byte: shift(d.end_byte),
                name_byte: shift(d.name_byte),
                start_line: shift_line(d.start_line),
                end_line: shift_line(d.end_line),
                ..d.clone()
            }),
    );
    tags.references.extend(
        current
            .references
            .iter()
            .filter(|r| before(r.end_byte))
            .cloned(),
    );
    tags.references.extend(fresh.references);
    tags.references.extend(
        current
            .references
            .iter()
            .filter(|r| r.start_byte >= old_dirty_end)
            .map(|r| Reference {
                start_byte: shift(r.start_byte),
                end_byte: shift(r.end_byte),
                line: shift_line(r.line),
                ..r.clone()
            }),
    );
    tags.imports.extend(
        current
            .imports
            .iter()
            .filter(|i| before(i.end_byte))
            .cloned(),
    );
    tags.imports.extend(fresh.imports);
    tags.imports.extend(
        current
            .imports
            .iter()
            .filter(|i| i.start_byte >= old_dirty_end)
            .map(|i| Import {
                start_byte: shift(i.start_byte),
                end_byte: shift(i.end_byte),
                line: shift_line(i.line),
                ..i.clone()
            }),
    );
    symbols_from(tags, update_windows(&current.windows, text, edit))
}

/// Recomputes only the windows an edit can affect: from the first window whose cut could see the edited
/// line, until a new window starts past the edit exactly where a (shifted) old one started; the remaining old
/// windows are then shifted, not recomputed. Equal to `windows(text)` by construction (see
/// [`extend_windows`]) and by the incremental tests.
fn update_windows(old: &[Window], text: &str, edit: &InputEdit) -> Vec<Window> {
    let edit_line = edit.start_position.row as u64;
    let new_end_line = edit.new_end_position.row as u32;
    let line_delta = edit.new_end_position.row as i64 - edit.old_end_position.row as i64;
    let keep = old
        .iter()
        .take_while(|w| u64::from(w.start_line) + MAX_WINDOW_LINES as u64 + 1 < edit_line)
        .count();
    let first = keep
        .checked_sub(1)
        .map_or(0, |last| old[last].end_line as usize + 1);
    let mut result: Vec<Window> = old[..keep].to_vec();
    let old_start = |start: u32| -> Option<usize> {
        let shifted = u32::try_from(i64::from(start) - line_delta).ok()?;
        old.binary_search_by_key(&shifted, |w| w.start_line).ok()
    };
    let resynced = extend_windows(text, &line_starts(text), first, &mut result, |start| {
        start > new_end_line && old_start(start).is_some()
    });
    if let Some(index) = resynced.and_then(old_start) {
        result.extend(old[index..].iter().map(|w| Window {
            start_line: (i64::from(w.start_line) + line_delta) as u32,
            end_line: (i64::from(w.end_line) + line_delta) as u32,
            terms: w.terms.clone(),
        }));
    }
    result
}

/// Bodies whose content no enclosing tag depends on: an edit inside one large body re-tags only the body's
/// touched items (methods of a long `impl`, statements of a long function) instead of the whole top-level item.
const BODY_KINDS: &[&str] = &[
    "declaration_list",
    "block",
    "class_body",
    "interface_body",
    "enum_variant_list",
    "statement_block",
];
/// Items and bodies smaller than this are re-tagged whole: narrowing pays off only for large ones.
const DESCEND_MIN_BYTES: usize = 4096;

/// The byte range (new coordinates) to re-tag: every item that intersects the edit or a range tree-sitter
/// reports as structurally changed, widened to whole lines (signature lines are whole source lines, so an
/// item sharing a line with the edit must be re-tagged too) and again to whole items. Items are the top-level
/// nodes, or the children of the innermost large body that contains every change.
fn dirty_range(old_tree: &Tree, new_tree: &Tree, text: &str, edit: &InputEdit) -> Range<usize> {
    let mut union = edit.start_byte..edit.new_end_byte;
    for changed in old_tree.changed_ranges(new_tree) {
        union.start = union.start.min(changed.start_byte);
        union.end = union.end.max(changed.end_byte);
    }
    let root = new_tree.root_node();
    let body = innermost_body(old_tree, root, &union);
    if body.id() != root.id() {
        let dirty = widen_to_items(text, body, union.clone());
        if body.start_byte() < dirty.start && dirty.end < body.end_byte() {
            return dirty;
        }
    }
    widen_to_items(text, root, union)
}

/// Descends from the root through (large item → its large body) steps while exactly one child touches the
/// changes and the old tree has the same node there (same kind, same range after `Tree::edit`).
fn innermost_body<'t>(old_tree: &Tree, root: Node<'t>, union: &Range<usize>) -> Node<'t> {
    let mut parent = root;
    loop {
        let Some(item) = single_touching_child(parent, union) else {
            return parent;
        };
        let Some(body) = single_touching_child(item, union) else {
            return parent;
        };
        let large = item.byte_range().len() >= DESCEND_MIN_BYTES
            && body.byte_range().len() >= DESCEND_MIN_BYTES;
        if !large
            || !BODY_KINDS.contains(&body.kind())
            || !same_in_old(old_tree, item)
            || !same_in_old(old_tree, body)
        {
            return parent;
        }
        parent = body;
    }
}

fn single_touching_child<'t>(parent: Node<'t>, union: &Range<usize>) -> Option<Node<'t>> {
    let mut cursor = parent.walk();
    let mut touching = parent
        .children(&mut cursor)
        .filter(|c| c.start_byte() <= union.end && union.start <= c.end_byte());
    let first = touching.next()?;
    touching.next().is_none().then_some(first)
}

fn same_in_old(old_tree: &Tree, node: Node) -> bool {
    old_tree
        .root_node()
        .descendant_for_byte_range(node.start_byte(), node.end_byte())
        .is_some_and(|old| old.kind_id() == node.kind_id() && old.byte_range() == node.byte_range())
}

/// Widens `dirty` to whole lines and to whole children of `parent`, until stable.
fn widen_to_items(text: &str, parent: Node, mut dirty: Range<usize>) -> Range<usize> {
    let mut cursor = parent.walk();
    let items: Vec<Range<usize>> = parent
        .children(&mut cursor)
        .map(|child| child.byte_range())
        .collect();
    loop {
        let mut widened = line_bounds(text, dirty.clone());
        for item in &items {
            let touches = item.start <= widened.end && widened.start <= item.end;
            if touches {
                widened.start = widened.start.min(item.start);
                widened.end = widened.end.max(item.end);
            }
        }
        if widened == dirty {
            return dirty;
        }
        dirty = widened;
    }
}

/// Widens a byte range to the start of its first line and the end of its last line (newline included).
fn line_bounds(text: &str, range: Range<usize>) -> Range<usize> {
    let start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    // A non-empty range that already ends just after a newline ends at a line boundary: widening it again
    // would take in the next line, then the item there, and so on to the end of the file.
    let ends_a_line = range.end > range.start && text.as_bytes()[range.end - 1] == b'\n';
    let end = if ends_a_line {
        range.end
    } else {
        text[range.end..]
            .find('\n')
            .map_or(text.len(), |i| range.end + i + 1)
    };
    start..end
}
