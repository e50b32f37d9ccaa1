//! The independent gold standard: universal-ctags' definitions, and the sites built from them — an
//! identifier whose only definition (by name, in the whole repository) is in another file, at its first use in
//! a file that is not an import statement. The site's file is cut right before the identifier (everything after
//! it is dropped), so the name appears nowhere in what the packer sees but in import statements.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::index::IndexSnapshot;

/// ctags kinds that define something a user calls or names (locals, fields, parameters and modules are left
/// out; constants only at the top level).
const DEFINITION_KINDS: &[&str] = &[
    "function",
    "method",
    "func",
    "class",
    "struct",
    "interface",
    "trait",
    "enum",
    "union",
    "typedef",
    "type",
    "alias",
    "macro",
    "methodSpec",
];
const TOP_LEVEL_KINDS: &[&str] = &["constant", "const"];
/// Shorter names are too generic to make a meaningful site.
const MIN_NAME_BYTES: usize = 4;
/// At most this many sites from one file, so one large file does not dominate a repository's score.
const SITES_PER_FILE: usize = 2;
/// Keywords, builtins and standard-library names: a repository defining one of these once (ctags sees only the
/// repository) does not make its uses uses of that definition (`x.unwrap()`, `undefined`, `len(x)`).
const STANDARD_NAMES: &[&str] = &[
    // JavaScript / TypeScript
    "undefined",
    "null",
    "true",
    "false",
    "this",
    "self",
    "super",
    "from",
    "process",
    "console",
    "window",
    "document",
    "global",
    "globalThis",
    "require",
    "module",
    "exports",
    "Object",
    "Array",
    "String",
    "Number",
    "Boolean",
    "Symbol",
    "Promise",
    "Error",
    "TypeError",
    "RangeError",
    "Date",
    "JSON",
    "Math",
    "Map",
    "Set",
    "WeakMap",
    "WeakSet",
    "RegExp",
    "BigInt",
    "File",
    "Blob",
    "Buffer",
    "URL",
    "Function",
    "Record",
    "Partial",
    "Readonly",
    "Required",
    "Pick",
    "Omit",
    "Exclude",
    "Extract",
    "ReturnType",
    "Parameters",
    "InstanceType",
    "Awaited",
    "NonNullable",
    "keyof",
    "typeof",
    "instanceof",
    "async",
    "await",
    "yield",
    "static",
    "readonly",
    "constructor",
    "prototype",
    "toString",
    "valueOf",
    "then",
    "catch",
    "finally",
    "apply",
    "call",
    "bind",
    "push",
    "pop",
    "shift",
    "unshift",
    "slice",
    "splice",
    "concat",
    "join",
    "split",
    "replace",
    "match",
    "test",
    "exec",
    "keys",
    "values",
    "entries",
    "forEach",
    "filter",
    "reduce",
    "some",
    "every",
    "includes",
    "indexOf",
    "length",
    "assign",
    "freeze",
    "create",
    "parse",
    "stringify",
    "resolve",
    "reject",
    "all",
    // Python
    "None",
    "True",
    "False",
    "print",
    "range",
    "list",
    "dict",
    "tuple",
    "bytes",
    "object",
    "type",
    "isinstance",
    "getattr",
    "setattr",
    "hasattr",
    "super",
    "property",
    "staticmethod",
    "classmethod",
    "Exception",
    "ValueError",
    "KeyError",
    "RuntimeError",
    "append",
    "extend",
    "update",
    "items",
    "format",
    "strip",
    "startswith",
    "endswith",
    "lower",
    "upper",
    "open",
    "close",
    "read",
    "write",
    "sorted",
    "enumerate",
    "zip",
    // Rust
    "Self",
    "Some",
    "Ok",
    "Err",
    "Option",
    "Result",
    "Vec",
    "Box",
    "Rc",
    "Arc",
    "Default",
    "Clone",
    "Debug",
    "Display",
    "From",
    "Into",
    "Iterator",
    "unwrap",
    "expect",
    "clone",
    "into",
    "iter",
    "iter_mut",
    "next",
    "collect",
    "insert",
    "remove",
    "contains",
    "with_capacity",
    "as_ref",
    "as_mut",
    "as_str",
    "borrow",
    "to_string",
    "to_owned",
    "default",
    "find",
    "take",
    "drop",
    "poll",
    "flush",
    "lock",
    "spawn",
    // Go
    "nil",
    "iota",
    "make",
    "append",
    "copy",
    "delete",
    "panic",
    "recover",
    "string",
    "error",
    "Error",
    "String",
    "Len",
    "Less",
    "Swap",
    "Read",
    "Write",
    "Close",
    // Everywhere
    "main",
    "init",
    "new",
    "get",
    "set",
    "len",
    "map",
    "size",
    "name",
    "value",
    "data",
    "args",
    "options",
    "result",
    "source",
    "input",
    "output",
    "valid",
    "hello",
    "test",
    "count",
    "index",
    "start",
    "end",
];

/// One definition from ctags.
#[derive(Clone, Debug)]
pub struct GoldDefinition {
    /// Workspace-relative path.
    pub path: String,
    /// 0-based line of the name.
    pub line: u32,
}

/// A recall site: the current file cut right before a use of a uniquely defined name from another file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Site {
    /// The current file, workspace-relative.
    pub path: String,
    /// 0-based line of the identifier (the cursor's line).
    pub line: u32,
    /// Byte column of the identifier on that line (the cursor).
    pub column: u32,
    /// Byte offset of the identifier in the original file (the cut).
    pub offset: usize,
    /// The identifier.
    pub name: String,
    /// The file defining it.
    pub definition_path: String,
    /// 0-based line of its definition (ctags' line).
    pub definition_line: u32,
    /// The rest of the original line from the identifier on (what a completion should produce first).
    pub expected_line: String,
}

#[derive(Deserialize)]
struct CtagsTag {
    #[serde(rename = "_type")]
    kind_of_record: String,
    name: String,
    path: String,
    line: Option<u32>,
    kind: Option<String>,
    scope: Option<String>,
}

/// Every tag ctags finds under `root` for the languages qwen-ls indexes, grouped by name (the name counts
/// every tag, so "unique" means no other definition, field or variable shares it).
pub fn ctags_definitions(root: &Path) -> anyhow::Result<HashMap<String, Vec<GoldDefinition>>> {
    let output = Command::new("ctags")
        .args([
            "-R",
            "--output-format=json",
            "--fields=+nK",
            "--sort=no",
            "--languages=Rust,Python,JavaScript,TypeScript,Go",
            "-f",
            "-",
            ".",
        ])
        .current_dir(root)
        .output()
        .context("cannot run ctags: install universal-ctags (Debian package `universal-ctags`)")?;
    if !output.status.success() {
        bail!(
            "ctags failed on {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut by_name: HashMap<String, Vec<GoldDefinition>> = HashMap::new();
    let mut usable: HashSet<String> = HashSet::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(tag) = serde_json::from_str::<CtagsTag>(line) else {
            continue;
        };
        if tag.kind_of_record != "tag" {
            continue;
        }
        let Some(number) = tag.line.filter(|&n| n > 0) else {
            continue;
        };
        let kind = tag.kind.as_deref().unwrap_or("");
        let defines = DEFINITION_KINDS.contains(&kind)
            || (TOP_LEVEL_KINDS.contains(&kind) && tag.scope.is_none());
        let standard = STANDARD_NAMES.contains(&tag.name.as_str());
        if defines
            && tag.name.len() >= MIN_NAME_BYTES
            && !standard
            && !tag.name.starts_with("Anonymous")
        {
            usable.insert(tag.name.clone());
        }
        by_name.entry(tag.name).or_default().push(GoldDefinition {
            path: tag.path.trim_start_matches("./").to_owned(),
            line: number - 1,
        });
    }
    by_name.retain(|name, definitions| usable.contains(name) && definitions.len() == 1);
    Ok(by_name)
}

/// Up to `limit` sites, chosen deterministically (by a hash of file and name) with at most
/// [`SITES_PER_FILE`] per file and one per name.
pub fn sites(
    snapshot: &IndexSnapshot,
    gold: &HashMap<String, Vec<GoldDefinition>>,
    limit: usize,
) -> Vec<Site> {
    let mut candidates = Vec::new();
    for file in snapshot.files() {
        let Some(language) = file.language else {
            continue;
        };
        let mut seen = HashSet::new();
        let mut in_go_import_block = false;
        // Depth of brackets an import statement left open (`use a::{`, `import {`, `from x import (`).
        let mut open_import = 0i32;
        let mut offset = 0usize;
        for (number, line) in file.text.split_inclusive('\n').enumerate() {
            let line_start = offset;
            offset += line.len();
            let trimmed = line.trim();
            if language.name == "go" {
                if trimmed.starts_with("import (") {
                    in_go_import_block = true;
                    continue;
                }
                if in_go_import_block {
                    in_go_import_block = trimmed != ")";
                    continue;
                }
            }
            if open_import > 0 {
                open_import += bracket_balance(trimmed);
                continue;
            }
            if is_import_line(trimmed) {
                open_import = bracket_balance(trimmed).max(0);
                continue;
            }
            if is_comment_line(trimmed) {
                continue;
            }
            for (column, word) in words(line) {
                let Some(definition) = gold.get(word).and_then(|d| d.first()) else {
                    continue;
                };
                if !seen.insert(word) || definition.path == *file.path {
                    continue;
                }
                if inside_comment_or_string(&line[..column]) || declares_locally(&file.text, word) {
                    continue;
                }
                candidates.push(Site {
                    path: file.path.to_string(),
                    line: number as u32,
                    column: column as u32,
                    offset: line_start + column,
                    name: word.to_owned(),
                    definition_path: definition.path.clone(),
                    definition_line: definition.line,
                    expected_line: line[column..].trim_end().to_owned(),
                });
            }
            // Words used before (in code) are not "about to be typed": mark every word of the line as seen.
            for (_, word) in words(line) {
                seen.insert(word);
            }
        }
    }
    candidates.sort_by_key(|s| {
        (
            xxh3_64(format!("{}\0{}", s.path, s.name).as_bytes()),
            s.offset,
        )
    });
    let mut per_file: HashMap<String, usize> = HashMap::new();
    let mut names = HashSet::new();
    let mut chosen = Vec::new();
    for site in candidates {
        if chosen.len() >= limit {
            break;
        }
        let count = per_file.entry(site.path.clone()).or_default();
        if *count >= SITES_PER_FILE || !names.insert(site.name.clone()) {
            continue;
        }
        *count += 1;
        chosen.push(site);
    }
    chosen.sort_by(|a, b| (&a.path, a.offset).cmp(&(&b.path, b.offset)));
    chosen
}

/// Identifier-like words of a line with their byte columns.
fn words(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = line.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            let boundary =
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            if boundary && (b.is_ascii_alphabetic() || b == b'_' || b == b'$') {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
                {
                    i += 1;
                }
                return Some((start, &line[start..i]));
            }
            i += 1;
        }
        None
    })
}

fn is_import_line(trimmed: &str) -> bool {
    [
        "use ",
        "pub use ",
        "pub(crate) use ",
        "import ",
        "from ",
        "export {",
        "export type {",
        "export * from",
        "mod ",
        "pub mod ",
    ]
    .iter()
    .any(|p| trimmed.starts_with(p))
        || trimmed.contains("require(")
        || (trimmed.starts_with("export ") && trimmed.contains(" from "))
}

/// Opening minus closing brackets on a line.
fn bracket_balance(line: &str) -> i32 {
    line.chars()
        .map(|c| match c {
            '{' | '(' | '[' => 1,
            '}' | ')' | ']' => -1,
            _ => 0,
        })
        .sum()
}

/// Whether the site's own file declares the name (a local, a parameter ctags does not tag, a property key):
/// then its uses there are not uses of the other file's definition.
fn declares_locally(text: &str, name: &str) -> bool {
    [
        format!("let {name}"),
        format!("const {name}"),
        format!("var {name}"),
        format!("type {name}"),
        format!("fn {name}"),
        format!("def {name}"),
        format!("class {name}"),
        format!("function {name}"),
        format!("{name} = "),
        format!("{name}: "),
        format!("{name}?: "),
        format!("{name} := "),
    ]
    .iter()
    .any(|pattern| {
        text.match_indices(pattern.as_str()).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + pattern.len()..].chars().next();
            let boundary_before =
                before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            let boundary_after =
                pattern.ends_with(' ') || after.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            boundary_before && boundary_after
        })
    })
}

fn is_comment_line(trimmed: &str) -> bool {
    ["//", "#", "/*", "*", "\"\"\"", "'''"]
        .iter()
        .any(|p| trimmed.starts_with(p))
}

/// Whether the text before an identifier on its line opens a comment or leaves a string open.
fn inside_comment_or_string(before: &str) -> bool {
    before.contains("//")
        || before.contains(" # ")
        || before.matches('"').count() % 2 == 1
        || before.matches('`').count() % 2 == 1
}
