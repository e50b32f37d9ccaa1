//! Import resolution for the current file: its `use`/`mod` (Rust), `import`/`from` (Python, relative and
//! package), ES imports and `require` (JavaScript/TypeScript: extensions, index files) and Go package imports,
//! mapped to the indexed files they name. Only the current file is resolved, at request time: the work is
//! proportional to its imports, not to the repository.
//!
//! Deliberately approximate: no build-system or `tsconfig` paths, no `#[path]` attributes, no Python
//! `sys.path` beyond the repository root, `src/` and the current file's ancestors. A path that does not resolve
//! is simply not a signal.

use std::collections::HashSet;
use std::sync::Arc;

use qwen_index::{FileIndex, IndexSnapshot};

/// Extensions tried, in order, for a JavaScript/TypeScript module specifier without one.
const SCRIPT_EXTENSIONS: &[&str] = &["ts", "tsx", "js", "jsx", "mjs", "cjs", "mts", "cts"];

/// Module files that mostly re-export others: what they import is what importing them brings in.
const BARREL_NAMES: &[&str] = &[
    "index.ts",
    "index.js",
    "index.tsx",
    "index.mjs",
    "__init__.py",
    "mod.rs",
    "lib.rs",
];

/// The files the current file imports (in order of first import, without duplicates or itself), and for Go,
/// the other files of its own package; then what the imported barrel files (`index.ts`, `__init__.py`,
/// `mod.rs`) import in turn.
pub fn imported_files(snapshot: &IndexSnapshot, file: &FileIndex) -> Vec<Arc<str>> {
    let mut found = direct_imports(snapshot, file);
    let barrels: Vec<Arc<str>> = found
        .iter()
        .filter(|path| BARREL_NAMES.iter().any(|name| path.ends_with(name)))
        .cloned()
        .collect();
    for barrel in barrels {
        if let Some(barrel) = snapshot.file(&barrel) {
            for path in direct_imports(snapshot, barrel) {
                if *path != *file.path && !found.contains(&path) {
                    found.push(path);
                }
            }
        }
    }
    found
}

fn direct_imports(snapshot: &IndexSnapshot, file: &FileIndex) -> Vec<Arc<str>> {
    let Some(language) = file.language else {
        return Vec::new();
    };
    let mut found: Vec<Arc<str>> = Vec::new();
    let mut push = |path: &str| {
        if path != &*file.path {
            if let Some(indexed) = snapshot.file(path) {
                if !found.contains(&indexed.path) {
                    found.push(indexed.path.clone());
                }
            }
        }
    };
    match language.name {
        "rust" => {
            let resolver = RustModules::new(snapshot, &file.path);
            for definition in &file.definitions {
                let is_declaration = definition.kind == qwen_syntax::DefinitionKind::Module
                    && definition.start_line == definition.end_line
                    && definition.signature.ends_with(';');
                if is_declaration {
                    for candidate in resolver.child_files(&definition.name) {
                        push(&candidate);
                    }
                }
            }
            for import in &file.imports {
                for path in expand_use_tree(&import.path) {
                    if let Some(resolved) = resolver.resolve(&path) {
                        push(&resolved);
                    }
                }
            }
        }
        "python" => {
            for import in &file.imports {
                for candidate in python_candidates(snapshot, &file.path, &import.path) {
                    push(&candidate);
                }
            }
        }
        "javascript" | "typescript" | "tsx" => {
            for import in &file.imports {
                for candidate in script_candidates(&file.path, &import.path) {
                    if snapshot.file(&candidate).is_some() {
                        push(&candidate);
                        break;
                    }
                }
            }
        }
        "go" => {
            for other in snapshot.files_in_directory(parent(&file.path)) {
                if other.language.is_some_and(|l| l.name == "go") {
                    push(&other.path);
                }
            }
            for import in &file.imports {
                if let Some(directory) = go_package_directory(snapshot, &import.path) {
                    for other in snapshot.files_in_directory(&directory) {
                        if other.language.is_some_and(|l| l.name == "go") {
                            push(&other.path);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    found
}

/// The names the current file brings in by import statements (`use a::B`, `from x import y`, `import {y}`).
pub fn imported_names(file: &FileIndex) -> HashSet<&str> {
    file.references
        .iter()
        .filter(|r| r.kind == qwen_syntax::ReferenceKind::Import)
        .map(|r| &*r.name)
        .collect()
}

/// The directory part of a workspace-relative path (`""` at the root).
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn join(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        name.to_owned()
    } else {
        format!("{directory}/{name}")
    }
}

/// Normalises `a/./b/../c` (never above the root: `None` then).
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Rust module paths: the crate root (the nearest `src/` above the file, or the directory of the nearest
/// `lib.rs`/`main.rs`) and the current module's directory.
struct RustModules<'s> {
    snapshot: &'s IndexSnapshot,
    crate_root: String,
    /// Segments of the current module below the crate root.
    module: Vec<String>,
}

impl<'s> RustModules<'s> {
    fn new(snapshot: &'s IndexSnapshot, path: &str) -> Self {
        let directory = parent(path);
        let mut crate_root = directory.to_owned();
        let mut search = directory;
        loop {
            let has_root = ["lib.rs", "main.rs"]
                .iter()
                .any(|f| snapshot.file(&join(search, f)).is_some());
            if has_root || search.ends_with("/src") || search == "src" {
                crate_root = search.to_owned();
                break;
            }
            if search.is_empty() {
                break;
            }
            search = parent(search);
        }
        let below = path
            .strip_prefix(crate_root.as_str())
            .unwrap_or(path)
            .trim_start_matches('/')
            .trim_end_matches(".rs");
        let mut module: Vec<String> = below.split('/').map(str::to_owned).collect();
        if matches!(
            module.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            module.pop();
        }
        Self {
            snapshot,
            crate_root,
            module,
        }
    }

    /// The files a `mod name;` in the current module may live in.
    fn child_files(&self, name: &str) -> Vec<String> {
        let mut base: Vec<&str> = vec![&self.crate_root];
        base.extend(self.module.iter().map(String::as_str));
        let directory = base
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        vec![
            join(&directory, &format!("{name}.rs")),
            join(&directory, &format!("{name}/mod.rs")),
        ]
    }

    /// The deepest existing module file named by a `use` path (`crate::a::b::Item` → `src/a/b.rs`).
    fn resolve(&self, path: &str) -> Option<String> {
        let mut segments: Vec<&str> = path.split("::").map(str::trim).collect();
        let mut module: Vec<String> = match segments.first().copied() {
            Some("crate") => {
                segments.remove(0);
                Vec::new()
            }
            Some("self") => {
                segments.remove(0);
                self.module.clone()
            }
            Some("super") => {
                let mut module = self.module.clone();
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    module.pop();
                }
                module
            }
            // 2018 paths: a top-level module of this crate, or another crate (then nothing resolves).
            _ => Vec::new(),
        };
        // `use super::*` and `use self::x` name at least the module itself.
        let mut best = if module.is_empty() {
            None
        } else {
            self.module_file(&module)
        };
        for segment in segments {
            if segment.is_empty() || segment == "*" || segment == "self" {
                break;
            }
            module.push(segment.to_owned());
            match self.module_file(&module) {
                Some(file) => best = Some(file),
                None => break,
            }
        }
        best
    }

    /// The indexed file of a module below the crate root (`a/b.rs` or `a/b/mod.rs`).
    fn module_file(&self, module: &[String]) -> Option<String> {
        let directory = std::iter::once(self.crate_root.as_str())
            .chain(module.iter().map(String::as_str))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        [format!("{directory}.rs"), format!("{directory}/mod.rs")]
            .into_iter()
            .find(|candidate| self.snapshot.file(candidate).is_some())
    }
}

/// `a::{b, c::{D, E}}` → `a::b`, `a::c::D`, `a::c::E` (aliases dropped).
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        if !path.is_empty() {
            out.push(format!("{prefix}{path}"));
        }
        return;
    };
    let head = &tree[..open];
    let Some(close) = tree.rfind('}') else {
        return;
    };
    let inner = &tree[open + 1..close];
    let prefix = format!("{prefix}{head}");
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand_into(&prefix, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand_into(&prefix, &inner[start..], out);
}

/// Files a Python module path may name, from the current file: `.x` / `..x.y` relative to its package,
/// `pkg.mod` under the repository root, `src/`, or any ancestor directory of the current file.
fn python_candidates(snapshot: &IndexSnapshot, current: &str, module: &str) -> Vec<String> {
    let dots = module.len() - module.trim_start_matches('.').len();
    let rest = &module[dots..];
    let mut bases: Vec<String> = Vec::new();
    if dots > 0 {
        let mut directory = parent(current);
        for _ in 1..dots {
            directory = parent(directory);
        }
        bases.push(directory.to_owned());
    } else {
        let mut directory = parent(current);
        loop {
            bases.push(directory.to_owned());
            if directory.is_empty() {
                break;
            }
            directory = parent(directory);
        }
        bases.push("src".to_owned());
    }
    let relative = rest.replace('.', "/");
    let mut out = Vec::new();
    for base in bases {
        let target = if relative.is_empty() {
            base.clone()
        } else {
            join(&base, &relative)
        };
        for candidate in [format!("{target}.py"), join(&target, "__init__.py")] {
            if snapshot.file(&candidate).is_some() && !out.contains(&candidate) {
                out.push(candidate);
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    out
}

/// Files a relative JavaScript/TypeScript specifier may name, in the order tried (bare specifiers — packages —
/// name none).
fn script_candidates(current: &str, specifier: &str) -> Vec<String> {
    if !specifier.starts_with('.') {
        return Vec::new();
    }
    let Some(target) = normalize(&join(parent(current), specifier)) else {
        return Vec::new();
    };
    let mut out = vec![target.clone()];
    // `./x.js` written for an ES module compiled from `./x.ts`.
    for (written, source) in [
        (".js", ".ts"),
        (".js", ".tsx"),
        (".mjs", ".mts"),
        (".cjs", ".cts"),
    ] {
        if let Some(stem) = target.strip_suffix(written) {
            out.push(format!("{stem}{source}"));
        }
    }
    for extension in SCRIPT_EXTENSIONS {
        out.push(format!("{target}.{extension}"));
    }
    for extension in SCRIPT_EXTENSIONS {
        out.push(format!("{target}/index.{extension}"));
    }
    out
}

/// The directory of a Go import path: the longest suffix of it that is an indexed directory with Go files
/// (`github.com/org/repo/pkg/sub` → `pkg/sub` in the repository of `org/repo`).
fn go_package_directory(snapshot: &IndexSnapshot, import: &str) -> Option<String> {
    let segments: Vec<&str> = import.split('/').collect();
    (0..segments.len()).find_map(|skip| {
        let directory = segments[skip..].join("/");
        let has_go = snapshot
            .files_in_directory(&directory)
            .any(|f| f.language.is_some_and(|l| l.name == "go"));
        has_go.then_some(directory)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_trees_expand_to_paths() {
        assert_eq!(
            expand_use_tree("crate::runtime::{self, task::{JoinHandle, Id as TaskId}, Builder}"),
            vec![
                "crate::runtime::self",
                "crate::runtime::task::JoinHandle",
                "crate::runtime::task::Id",
                "crate::runtime::Builder"
            ]
        );
        assert_eq!(expand_use_tree("super::x"), vec!["super::x"]);
    }

    #[test]
    fn script_specifiers_try_extensions_and_index_files() {
        let candidates = script_candidates("src/a/b.ts", "../util.js");
        assert_eq!(candidates[0], "src/util.js");
        assert!(candidates.contains(&"src/util.ts".to_owned()));
        assert!(candidates.contains(&"src/util.js/index.ts".to_owned()));
        assert!(script_candidates("src/a.ts", "react").is_empty());
        assert!(script_candidates("a.ts", "../../x").is_empty());
    }
}
