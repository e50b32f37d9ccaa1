//! Functions and methods in source text, found with tree-sitter through the syntax layer's tag queries, and
//! the code related to one of them in the index (its callees' definitions, its callers).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use qwen_index::{FileIndex, IndexSnapshot};
use qwen_syntax::{self as syntax, language_for_path, Definition, DefinitionKind, ReferenceKind};

/// A function or method in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionAt {
    /// Its name.
    pub name: String,
    /// Function or method.
    pub kind: DefinitionKind,
    /// The enclosing class/impl/module, if any.
    pub scope: Option<String>,
    /// Bytes of the whole definition.
    pub range: Range<usize>,
    /// First and last line (0-based, inclusive).
    pub lines: (u32, u32),
}

impl FunctionAt {
    /// `"function"` or `"method"`.
    pub fn kind_word(&self) -> &'static str {
        match self.kind {
            DefinitionKind::Method => "method",
            _ => "function",
        }
    }
}

fn is_function(kind: DefinitionKind) -> bool {
    matches!(kind, DefinitionKind::Function | DefinitionKind::Method)
}

fn to_function(d: &Definition) -> FunctionAt {
    FunctionAt {
        name: d.name.to_string(),
        kind: d.kind,
        scope: d.scope.as_deref().map(str::to_string),
        range: d.start_byte as usize..d.end_byte as usize,
        lines: (d.start_line, d.end_line),
    }
}

/// Tags of `text` as the language of `path` sees them (`None`: no grammar for it).
fn tags_of(path: &Path, text: &str) -> Option<syntax::Tags> {
    let spec = language_for_path(path)?;
    let tree = syntax::parse(spec, text, None).ok()?;
    let mut tags = syntax::extract_tags(spec, &tree, text, None).ok()?;
    syntax::assign_scopes(&mut tags.definitions);
    Some(tags)
}

/// Every function and method of `text`, in source order. Empty for languages without a grammar.
pub fn functions_in(path: &Path, text: &str) -> Vec<FunctionAt> {
    tags_of(path, text)
        .map(|tags| {
            tags.definitions
                .iter()
                .filter(|d| is_function(d.kind))
                .map(to_function)
                .collect()
        })
        .unwrap_or_default()
}

/// The innermost function or method whose definition contains byte `offset` of `text`.
pub fn function_at(path: &Path, text: &str, offset: usize) -> Option<FunctionAt> {
    innermost(&tags_of(path, text)?.definitions, offset).map(to_function)
}

/// The innermost function of `definitions` (canonical order) containing `offset`.
fn innermost(definitions: &[Definition], offset: usize) -> Option<&Definition> {
    definitions
        .iter()
        .filter(|d| is_function(d.kind))
        .filter(|d| (d.start_byte as usize) <= offset && offset <= d.end_byte as usize)
        .min_by_key(|d| d.end_byte - d.start_byte)
}

/// The function named `symbol` in `text` (`name`, `Type::name` or `Type.name`; the first match in source
/// order).
pub fn function_named(path: &Path, text: &str, symbol: &str) -> Option<FunctionAt> {
    let (scope, name) = match symbol.rsplit_once("::").or_else(|| symbol.rsplit_once('.')) {
        Some((scope, name)) => (Some(scope), name),
        None => (None, symbol),
    };
    functions_in(path, text)
        .into_iter()
        .find(|f| f.name == name && scope.is_none_or(|s| f.scope.as_deref() == Some(s)))
}

/// A piece of related code for an explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Related {
    pub path: Arc<str>,
    /// 0-based inclusive lines.
    pub lines: (u32, u32),
    pub text: String,
    /// `"called by …"` / `"defines …"`.
    pub why: String,
}

/// The longest snippet of related code, in lines (the signature and the start of the body say most).
const MAX_RELATED_LINES: u32 = 30;
/// Callers shown at most.
const MAX_CALLERS: usize = 5;
/// Callees shown at most.
const MAX_CALLEES: usize = 12;

fn snippet(file: &FileIndex, d: &Definition, why: String) -> Related {
    let end = d.end_line.min(d.start_line + MAX_RELATED_LINES - 1);
    Related {
        path: file.path.clone(),
        lines: (d.start_line, end),
        text: file.lines(d.start_line, end),
        why,
    }
}

/// Definitions of what the function calls (in call order), then the functions that call it.
pub(crate) fn related_code(
    snapshot: &IndexSnapshot,
    path: &Path,
    relative: Option<&str>,
    text: &str,
    function: &FunctionAt,
) -> Vec<Related> {
    let mut out = Vec::new();
    let Some(tags) = tags_of(path, text) else {
        return out;
    };
    let mut seen_names: Vec<&str> = Vec::new();
    for reference in &tags.references {
        let at = reference.start_byte as usize;
        if !function.range.contains(&at)
            || !matches!(reference.kind, ReferenceKind::Call | ReferenceKind::Type)
            || *reference.name == *function.name
            || seen_names.contains(&&*reference.name)
        {
            continue;
        }
        seen_names.push(&reference.name);
        if let Some((file, d)) = snapshot.definitions_of(&reference.name).next() {
            out.push(snippet(file, d, format!("defines `{}`", reference.name)));
        }
        if out.len() >= MAX_CALLEES {
            break;
        }
    }
    let mut callers = 0;
    'files: for file in snapshot.files() {
        for reference in &file.references {
            if *reference.name != *function.name || reference.kind != ReferenceKind::Call {
                continue;
            }
            let offset = reference.start_byte as usize;
            let is_self = relative == Some(&*file.path) && function.range.contains(&offset);
            if is_self {
                continue;
            }
            if let Some(caller) = innermost(&file.definitions, offset) {
                out.push(snippet(file, caller, format!("calls `{}`", function.name)));
                callers += 1;
                if callers >= MAX_CALLERS {
                    break 'files;
                }
                // One snippet per calling function is enough.
                continue 'files;
            }
        }
    }
    out
}
