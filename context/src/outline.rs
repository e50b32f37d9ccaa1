//! The repository-map view of a file: a definition shown as its signature — its first line through the line
//! of its name — under the signatures of the definitions enclosing it (`impl`, class, module), bodies elided.
//! Like Aider's map, but ranked and packed with everything else; a signature covers its definition.

use super::chunk::line_starts;
use qwen_index::FileIndex;
use qwen_syntax::{Definition, DefinitionKind};

/// Lines of the signature of each definition of a file, with its enclosing definitions' first lines.
pub struct FileOutline {
    /// Per definition (parallel to `FileIndex::definitions`): the lines to show, ascending.
    pub lines: Vec<Vec<u32>>,
    /// Per definition: the innermost enclosing definition's index.
    pub parents: Vec<Option<usize>>,
}

/// A definition's signature spans at most this many lines (a long parameter list is cut).
const MAX_SIGNATURE_LINES: u32 = 3;

impl FileOutline {
    /// Computes the outline of `file`.
    pub fn of(file: &FileIndex) -> Self {
        let definitions = &file.definitions;
        let starts = line_starts(&file.text);
        let line_of = |byte: u32| -> u32 {
            match starts.binary_search(&(byte as usize)) {
                Ok(i) => i as u32,
                Err(i) => i.saturating_sub(1) as u32,
            }
        };
        // Enclosing definitions by containment (definitions are sorted by start, longest first).
        let mut stack: Vec<usize> = Vec::new();
        let mut lines = Vec::with_capacity(definitions.len());
        let mut parents = Vec::with_capacity(definitions.len());
        for (i, definition) in definitions.iter().enumerate() {
            while let Some(&top) = stack.last() {
                if encloses(&definitions[top], definition) {
                    break;
                }
                stack.pop();
            }
            let name_line = line_of(definition.name_byte).clamp(
                definition.start_line,
                definition.start_line + MAX_SIGNATURE_LINES - 1,
            );
            let mut shown: Vec<u32> = stack
                .iter()
                .map(|&outer| definitions[outer].start_line)
                .collect();
            shown.extend(definition.start_line..=name_line);
            shown.sort_unstable();
            shown.dedup();
            lines.push(shown);
            parents.push(stack.last().copied());
            stack.push(i);
        }
        Self { lines, parents }
    }
}

fn encloses(outer: &Definition, inner: &Definition) -> bool {
    outer.start_byte <= inner.start_byte
        && inner.end_byte <= outer.end_byte
        && (outer.start_byte, outer.end_byte) != (inner.start_byte, inner.end_byte)
}

/// How much a definition's signature is worth in a map, by kind (what a user names and calls rank first;
/// an `impl` header is shown anyway above its methods).
pub fn kind_weight(kind: DefinitionKind) -> f64 {
    match kind {
        DefinitionKind::Function
        | DefinitionKind::Method
        | DefinitionKind::Class
        | DefinitionKind::Struct
        | DefinitionKind::Enum
        | DefinitionKind::Union
        | DefinitionKind::Interface
        | DefinitionKind::Type
        | DefinitionKind::Macro
        | DefinitionKind::Constant => 1.0,
        DefinitionKind::Variable | DefinitionKind::Variant => 0.5,
        DefinitionKind::Impl | DefinitionKind::Module | DefinitionKind::Other => 0.3,
    }
}

/// Whether code in another file can name this definition: Rust items without `pub` (outside trait impls
/// and traits) and Go names starting in lower case (outside their own package) cannot.
pub fn visible_from_elsewhere(
    file: &FileIndex,
    index: usize,
    outline: &FileOutline,
    same_directory: bool,
) -> bool {
    let definition = &file.definitions[index];
    match file.language.map(|l| l.name) {
        Some("rust") => {
            let in_trait = outline.parents[index].is_some_and(|p| {
                let parent = &file.definitions[p];
                parent.kind == DefinitionKind::Interface
                    || (parent.kind == DefinitionKind::Impl && parent.signature.contains(" for "))
            });
            in_trait
                || definition.signature.starts_with("pub")
                || matches!(
                    definition.kind,
                    DefinitionKind::Variant | DefinitionKind::Impl | DefinitionKind::Macro
                )
        }
        Some("go") => {
            same_directory
                || definition
                    .name
                    .starts_with(|c: char| c.is_ascii_uppercase())
        }
        _ => true,
    }
}
