//! Tag extraction: runs a language's tag query over a tree and returns definitions, references and imports
//! in a canonical order (so that a partial re-tag merged with kept tags equals a full tag run).

use std::ops::Range;

use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, QueryCursor, Tree};

use super::language::{CaptureRole, QueryCompileError};
use super::LanguageSpec;

/// The longest signature line kept; longer lines are cut at a character boundary.
const MAX_SIGNATURE_BYTES: usize = 200;
/// Longer names are almost always generated noise and would bloat the symbol table.
const MAX_NAME_BYTES: usize = 200;

/// What a definition defines (from `@definition.<kind>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefinitionKind {
    /// A free function.
    Function,
    /// A function inside a class, impl, trait or interface.
    Method,
    /// A class.
    Class,
    /// A struct.
    Struct,
    /// An enum.
    Enum,
    /// A union.
    Union,
    /// An enum variant.
    Variant,
    /// An interface or trait.
    Interface,
    /// A type alias or other named type.
    Type,
    /// An `impl` block (named after its self type).
    Impl,
    /// A module or namespace.
    Module,
    /// A macro.
    Macro,
    /// A constant or top-level assignment.
    Constant,
    /// A top-level variable.
    Variable,
    /// A kind this build does not know (a query newer than the code).
    Other,
}

/// How a reference uses a name (from `@reference.<kind>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReferenceKind {
    /// A call of a function, method or macro.
    Call,
    /// A use of a type name.
    Type,
    /// Construction of a class or struct.
    Class,
    /// Implementing or extending a trait, interface or class.
    Implementation,
    /// A name brought in by an import/use statement.
    Import,
    /// A kind this build does not know.
    Other,
}

macro_rules! tag_names {
    ($ty:ident { $($tag:literal => $variant:ident),* $(,)? }) => {
        impl $ty {
            /// Parses the suffix of a capture name (`definition.<tag>` / `reference.<tag>`).
            pub fn from_tag(tag: &str) -> Self {
                match tag { $($tag => Self::$variant,)* _ => Self::Other }
            }
            /// The tag name, as written in queries, CLI output and the cache.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $tag,)* Self::Other => "other" }
            }
        }
    };
}

tag_names!(DefinitionKind {
    "function" => Function, "method" => Method, "class" => Class, "struct" => Struct, "enum" => Enum,
    "union" => Union, "variant" => Variant, "interface" => Interface, "type" => Type, "impl" => Impl,
    "module" => Module, "macro" => Macro, "constant" => Constant, "variable" => Variable,
});

tag_names!(ReferenceKind {
    "call" => Call, "type" => Type, "class" => Class, "implementation" => Implementation, "import" => Import,
});

/// A definition: its name, kind, extent and where it sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// The defined identifier.
    pub name: Box<str>,
    /// What it defines.
    pub kind: DefinitionKind,
    /// Byte offset of the defining node.
    pub start_byte: u32,
    /// Byte offset just past the defining node.
    pub end_byte: u32,
    /// Byte offset of the name inside the node.
    pub name_byte: u32,
    /// First line of the node (0-based).
    pub start_line: u32,
    /// Last line of the node (0-based, inclusive).
    pub end_line: u32,
    /// Name of the innermost enclosing definition (class, impl, module…), if any.
    pub scope: Option<Box<str>>,
    /// The source line where the definition starts, trimmed.
    pub signature: Box<str>,
}

/// A reference to a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The referenced identifier.
    pub name: Box<str>,
    /// How it is used.
    pub kind: ReferenceKind,
    /// Byte offset of the identifier.
    pub start_byte: u32,
    /// Byte offset just past the identifier.
    pub end_byte: u32,
    /// Line of the identifier (0-based).
    pub line: u32,
}

/// A module path named by an import statement (`use a::b`, `from x import y`, `import "fmt"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The path as written, without quotes.
    pub path: Box<str>,
    /// Byte offset of the path.
    pub start_byte: u32,
    /// Byte offset just past the path.
    pub end_byte: u32,
    /// Line of the path (0-based).
    pub line: u32,
}

/// Everything the tag query found in (a range of) one file, in canonical order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// Sorted by start, longest first, then name position and kind. Scopes are not yet assigned.
    pub definitions: Vec<Definition>,
    /// Sorted by position, then kind.
    pub references: Vec<Reference>,
    /// Sorted by position.
    pub imports: Vec<Import>,
}

/// Runs the tag query of `spec` over `tree` (parsed from `text`). With `range`, only tags lying entirely
/// inside that byte range are returned (used to re-tag just the edited items of an open document).
/// Scopes are left empty: call [`assign_scopes`] on the final definition list.
pub fn extract_tags(
    spec: &LanguageSpec,
    tree: &Tree,
    text: &str,
    range: Option<Range<usize>>,
) -> Result<Tags, QueryCompileError> {
    let compiled = spec.tags_query().map_err(Clone::clone)?;
    let mut cursor = QueryCursor::new();
    if let Some(range) = &range {
        cursor.set_byte_range(range.clone());
    }
    let inside = |node: &Node| {
        range
            .as_ref()
            .is_none_or(|r| r.start <= node.start_byte() && node.end_byte() <= r.end)
    };
    let bytes = text.as_bytes();
    let mut raw_defs: Vec<(Definition, usize)> = Vec::new();
    let mut raw_refs: Vec<(Reference, usize)> = Vec::new();
    let mut imports: Vec<Import> = Vec::new();
    let mut matches = cursor.matches(&compiled.query, tree.root_node(), bytes);
    while let Some(found) = matches.next() {
        let mut name = None;
        let mut definition = None;
        let mut reference = None;
        for capture in found.captures() {
            match compiled.capture_roles[capture.index as usize] {
                CaptureRole::Name => name = Some(capture.node),
                CaptureRole::Definition(kind) => definition = Some((capture.node, kind)),
                CaptureRole::Reference(kind) => reference = Some(kind),
                CaptureRole::Import if inside(&capture.node) => {
                    imports.push(import_of(&capture.node, text));
                }
                CaptureRole::Import | CaptureRole::Ignored => {}
            }
        }
        let Some(name) = name else { continue };
        let Some(name_text) = name_text(&name, text) else {
            continue;
        };
        if let Some((node, kind)) = definition {
            if inside(&node) {
                let definition = definition_of(&node, &name, name_text, kind, text);
                raw_defs.push((definition, found.pattern_index));
            }
        } else if let Some(kind) = reference {
            if inside(&name) {
                raw_refs.push((reference_of(&name, name_text, kind), found.pattern_index));
            }
        }
    }
    Ok(canonicalize(raw_defs, raw_refs, imports))
}

/// Fills [`Definition::scope`] with the innermost strictly enclosing definition's name. `definitions` must be
/// in canonical order (as [`extract_tags`] returns them).
pub fn assign_scopes(definitions: &mut [Definition]) {
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..definitions.len() {
        let (start, end) = (definitions[i].start_byte, definitions[i].end_byte);
        while let Some(&top) = stack.last() {
            let outer = &definitions[top];
            let encloses = outer.start_byte <= start
                && end <= outer.end_byte
                && (outer.start_byte, outer.end_byte) != (start, end);
            if encloses {
                break;
            }
            stack.pop();
        }
        definitions[i].scope = stack.last().map(|&top| definitions[top].name.clone());
        stack.push(i);
    }
}

/// Sorts into canonical order, keeps the first pattern's tag where several patterns captured the same node,
/// and drops "references" that are really the name of a definition (e.g. `(type_identifier) @reference.type`
/// also matches `struct Foo`'s name).
fn canonicalize(
    mut raw_defs: Vec<(Definition, usize)>,
    mut raw_refs: Vec<(Reference, usize)>,
    mut imports: Vec<Import>,
) -> Tags {
    raw_defs.sort_by_key(|(d, pattern)| {
        (
            d.start_byte,
            std::cmp::Reverse(d.end_byte),
            d.name_byte,
            *pattern,
        )
    });
    raw_defs.dedup_by_key(|(d, _)| (d.start_byte, d.end_byte, d.name_byte));
    let mut definitions: Vec<Definition> = raw_defs.into_iter().map(|(d, _)| d).collect();
    definitions.sort_by_key(|d| {
        (
            d.start_byte,
            std::cmp::Reverse(d.end_byte),
            d.name_byte,
            d.kind,
        )
    });

    let mut name_starts: Vec<u32> = definitions.iter().map(|d| d.name_byte).collect();
    name_starts.sort_unstable();
    raw_refs.sort_by_key(|(r, pattern)| (r.start_byte, r.end_byte, *pattern));
    raw_refs.dedup_by_key(|(r, _)| (r.start_byte, r.end_byte));
    let mut references: Vec<Reference> = raw_refs
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| name_starts.binary_search(&r.start_byte).is_err())
        .collect();
    references.sort_by_key(|r| (r.start_byte, r.kind));

    imports.sort_by(|a, b| (a.start_byte, &a.path).cmp(&(b.start_byte, &b.path)));
    imports.dedup_by(|a, b| a.start_byte == b.start_byte && a.path == b.path);
    Tags {
        definitions,
        references,
        imports,
    }
}

fn name_text<'t>(node: &Node, text: &'t str) -> Option<&'t str> {
    let name = text.get(node.start_byte()..node.end_byte())?.trim();
    (!name.is_empty() && name.len() <= MAX_NAME_BYTES).then_some(name)
}

fn definition_of(
    node: &Node,
    name: &Node,
    name_text: &str,
    kind: DefinitionKind,
    text: &str,
) -> Definition {
    // tree-sitter's end point is exclusive: a node ending right after a newline ends on the next row, col 0.
    let end = node.end_position();
    let end_line = if end.column == 0 && end.row > node.start_position().row {
        end.row - 1
    } else {
        end.row
    };
    Definition {
        name: name_text.into(),
        kind,
        start_byte: to_u32(node.start_byte()),
        end_byte: to_u32(node.end_byte()),
        name_byte: to_u32(name.start_byte()),
        start_line: to_u32(node.start_position().row),
        end_line: to_u32(end_line),
        scope: None,
        signature: signature_line(text, node.start_byte()).into(),
    }
}

fn reference_of(name: &Node, name_text: &str, kind: ReferenceKind) -> Reference {
    Reference {
        name: name_text.into(),
        kind,
        start_byte: to_u32(name.start_byte()),
        end_byte: to_u32(name.end_byte()),
        line: to_u32(name.start_position().row),
    }
}

fn import_of(node: &Node, text: &str) -> Import {
    let raw = text.get(node.start_byte()..node.end_byte()).unwrap_or("");
    let path = raw
        .trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`');
    Import {
        path: truncate(path, MAX_NAME_BYTES).into(),
        start_byte: to_u32(node.start_byte()),
        end_byte: to_u32(node.end_byte()),
        line: to_u32(node.start_position().row),
    }
}

/// The whole source line containing `byte`, trimmed and cut to [`MAX_SIGNATURE_BYTES`].
fn signature_line(text: &str, byte: usize) -> &str {
    let start = text[..byte].rfind('\n').map_or(0, |i| i + 1);
    let end = text[byte..].find('\n').map_or(text.len(), |i| byte + i);
    truncate(text[start..end].trim(), MAX_SIGNATURE_BYTES)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Offsets are stored as u32: files over 4 GiB are never indexed (the size limit is far lower).
fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
