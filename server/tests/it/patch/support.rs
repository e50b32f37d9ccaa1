//! Shared helpers: a tree-sitter Rust syntax checker, directory copies and snapshots, and `git`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use qwen_ls::tasks::patch::SyntaxChecker;
use tree_sitter::{Node, Parser};

/// Syntax errors of `.rs` files via `tree_sitter_rust` (the real checker is wired to `syntax/` later).
pub struct RustChecker;

impl SyntaxChecker for RustChecker {
    fn error_lines(&self, path: &Path, text: &str) -> Option<Vec<usize>> {
        if path.extension()? != "rs" {
            return None;
        }
        let mut parser = Parser::new();
        parser
            .set_language(&tree_sitter_rust::LANGUAGE.into())
            .ok()?;
        let tree = parser.parse(text, None)?;
        let mut lines = Vec::new();
        collect_errors(tree.root_node(), &mut lines);
        Some(lines)
    }
}

/// Records the innermost ERROR nodes and every MISSING node: an outer ERROR (often the whole file) says less
/// about where the mistake is than the inner one.
fn collect_errors(node: Node<'_>, lines: &mut Vec<usize>) {
    if node.is_missing() {
        lines.push(node.start_position().row + 1);
        return;
    }
    if !node.has_error() {
        return;
    }
    let before = lines.len();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect_errors(child, lines);
    }
    if node.is_error() && lines.len() == before {
        lines.push(node.start_position().row + 1);
    }
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    let Ok(entries) = fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Every regular file under `dir` (not following links, skipping `.git`) with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).expect("read dir").flatten() {
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            if entry.file_name() == ".git" {
                continue;
            }
            let rel = path.strip_prefix(dir).expect("inside").to_path_buf();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                files.insert(rel, fs::read(&path).expect("read"));
            } else {
                files.insert(rel, b"<symlink>".to_vec());
            }
        }
    }
    files
}

/// Runs git in `dir`, returning (success, combined output).
pub fn git(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("git")
        .args(["-c", "core.autocrlf=false", "-c", "apply.whitespace=nowarn"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Makes `dir` a git repository (so `git apply` resolves paths against it).
pub fn git_init(dir: &Path) {
    let (ok, out) = git(dir, &["init", "-q"]);
    assert!(ok, "git init: {out}");
}

/// Writes `diff` next to `dir` and runs `git apply` with `extra` args (e.g. `--check`) inside `dir`.
pub fn git_apply(dir: &Path, diff: &str, extra: &[&str]) -> (bool, String) {
    let patch = dir.with_extension("patch");
    fs::write(&patch, diff).expect("write patch");
    let patch_arg = patch.to_string_lossy().into_owned();
    let mut args = vec!["apply"];
    args.extend_from_slice(extra);
    args.push(&patch_arg);
    git(dir, &args)
}
