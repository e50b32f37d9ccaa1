//! `qwen-ls patch`, `complete` and `explain` through the binary on the fixture model (random weights:
//! gibberish answers). Whatever the model says, `patch` either prints a diff `git apply --check` accepts or
//! exits 2 with the raw answer saved — never a crash, never a partial write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::support::{model_with_window, repo_copy};

struct Env {
    _model: tempfile::TempDir,
    model: PathBuf,
    cache: tempfile::TempDir,
}

fn env() -> Env {
    let model = model_with_window("qwen3-moe-tiny", 8192);
    Env {
        model: model.path().to_path_buf(),
        _model: model,
        cache: tempfile::tempdir().expect("temp"),
    }
}

fn qwen_ls(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .args(args)
        .arg("--model")
        .arg(&env.model)
        .env("QWEN_LS_CACHE_DIR", env.cache.path())
        .env("XDG_CACHE_HOME", env.cache.path())
        .env("QWEN_LS_LOG", "warn")
        .output()
        .expect("runs")
}

/// Every regular file under `root` (outside `.git`) with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let kind = entry.file_type().expect("type");
            if entry.file_name() == ".git" || kind.is_symlink() {
                continue;
            }
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), std::fs::read(entry.path()).expect("read"));
            }
        }
    }
    out
}

fn saved_answer(stderr: &str) -> PathBuf {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("the model's answer was saved to "))
        .unwrap_or_else(|| panic!("no saved answer in {stderr}"));
    PathBuf::from(line)
}

fn check_patch_run(root: &Path, before: &BTreeMap<PathBuf, Vec<u8>>, out: &Output, apply: bool) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("killed: {stderr}"));
    match code {
        0 if !apply => {
            let diff_file = root.join("../out.diff");
            std::fs::write(&diff_file, &out.stdout).expect("write");
            let ok = Command::new("git")
                .args(["apply", "--check"])
                .arg(&diff_file)
                .current_dir(root)
                .status()
                .expect("git")
                .success();
            assert!(
                ok,
                "git apply --check refused:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert_eq!(&tree(root), before, "printing a patch writes nothing");
        }
        0 => assert!(stderr.contains("applied:"), "{stderr}"),
        1 => assert_eq!(&tree(root), before),
        2 => {
            let path = saved_answer(&stderr);
            assert!(path.is_file(), "{}", path.display());
            assert_eq!(&tree(root), before, "an invalid answer writes nothing");
        }
        other => panic!("exit {other}: {stderr}"),
    }
}

#[test]
fn patch_prints_a_valid_diff_or_saves_the_answer() {
    let env = env();
    let (_dir, root) = repo_copy("polyglot");
    let before = tree(&root);
    let root_arg = root.to_string_lossy().to_string();
    for instruction in [
        "Rename total_area to sum_areas",
        "Add a doc comment to describe",
    ] {
        let out = qwen_ls(
            &env,
            &[
                "patch",
                instruction,
                "--root",
                &root_arg,
                "--max-tokens",
                "48",
                "--budget",
                "1500",
            ],
        );
        check_patch_run(&root, &before, &out, false);
        // `--apply` the same way: all or nothing.
        let out = qwen_ls(
            &env,
            &[
                "patch",
                instruction,
                "--root",
                &root_arg,
                "--apply",
                "--max-tokens",
                "48",
                "--budget",
                "1500",
            ],
        );
        check_patch_run(&root, &before, &out, true);
    }
    // The answer is the model's, byte for byte (gibberish here): exit 2 leaves it readable.
    let out = qwen_ls(
        &env,
        &[
            "patch",
            "x",
            "--root",
            &root_arg,
            "--files",
            &format!("{root_arg}/src/lib.rs"),
            "--json",
            "--max-tokens",
            "16",
            "--budget",
            "1500",
        ],
    );
    check_patch_run(&root, &before, &out, false);
}

#[test]
fn patch_usage_errors_exit_3() {
    let env = env();
    let out = qwen_ls(&env, &["patch", "x", "--root", "/nonexistent/qwen-ls"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_dir, root) = repo_copy("polyglot");
    // A budget too small for the instructions themselves.
    let out = qwen_ls(
        &env,
        &[
            "patch",
            "x",
            "--root",
            &root.to_string_lossy(),
            "--budget",
            "50",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("budget"));
    let missing = Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .args(["patch", "x", "--root"])
        .arg(&root)
        .args(["--model", "/nonexistent/model"])
        .env("QWEN_LS_CACHE_DIR", env.cache.path())
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(3));
}

#[test]
fn complete_and_explain_print_what_the_editor_would_show() {
    let env = env();
    let (_dir, root) = repo_copy("polyglot");
    let lib = root.join("src/lib.rs").to_string_lossy().to_string();
    let out = qwen_ls(
        &env,
        &[
            "complete",
            &format!("{lib}:11:18"),
            "--max-tokens",
            "8",
            "--json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            assert!(json["text"].is_string() && json["start"].is_u64(), "{json}");
        }
        Some(1) => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null"),
        other => panic!("{other:?}: {stderr}"),
    }
    let out = qwen_ls(
        &env,
        &["explain", &format!("{lib}:total_area"), "--max-tokens", "8"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    // Line 2 is a `use`: no function there.
    let out = qwen_ls(&env, &["explain", &format!("{lib}:2"), "--max-tokens", "8"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = qwen_ls(&env, &["explain", &format!("{lib}:no_such_fn")]);
    assert_eq!(out.status.code(), Some(3));
}
