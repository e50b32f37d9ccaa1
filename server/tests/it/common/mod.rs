//! Shared helpers for the index and context tests: fixture copies in temporary directories, a symbol dump for
//! golden files, and a deterministic fake token counter.
#![allow(dead_code)]

use std::fmt::Write;
use std::path::{Path, PathBuf};

use qwen_ls::context::TokenCounter;
use qwen_ls::index::{IndexConfig, IndexHost, IndexSnapshot};

/// `fixtures/repos/<name>` in the source tree.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/repos")
        .join(name)
}

/// A copy of a fixture repository (symbolic links recreated as links) in a fresh temporary directory.
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&fixture(name), dir.path());
    dir
}

/// Copies a directory tree (symbolic links recreated as links).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).expect("read_link");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Loads a workspace without a persistent cache.
pub fn load(root: &Path) -> IndexHost {
    IndexHost::load(root, IndexConfig::default(), None)
        .expect("index loads")
        .0
}

/// A readable dump of every file's symbols (lines 1-based), for golden files.
pub fn symbol_dump(snapshot: &IndexSnapshot) -> String {
    let mut out = String::new();
    for file in snapshot.files() {
        let language = file.language.map_or("text", |l| l.name);
        let lossy = if file.lossy { ", lossy" } else { "" };
        let _ = writeln!(
            out,
            "== {} ({language}{lossy}, {} lines, {} windows)",
            file.path,
            file.line_count,
            file.windows.len()
        );
        for d in &file.definitions {
            let scope = d
                .scope
                .as_deref()
                .map(|s| format!(" in {s}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "def {} {}{scope} {}-{} | {}",
                d.kind.as_str(),
                d.name,
                d.start_line + 1,
                d.end_line + 1,
                d.signature
            );
        }
        for r in &file.references {
            let _ = writeln!(out, "ref {} {} @{}", r.kind.as_str(), r.name, r.line + 1);
        }
        for i in &file.imports {
            let _ = writeln!(out, "import {} @{}", i.path, i.line + 1);
        }
    }
    out
}

/// Counts one token per whitespace-separated word plus one per line: deterministic and additive across
/// lines, like a real tokenizer is across `<|file_sep|>` boundaries.
pub struct WordCounter;

impl TokenCounter for WordCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count() + text.matches('\n').count()
    }
}
