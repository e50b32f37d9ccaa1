//! The `index` and `context` subcommands through the real binary: the JSON interfaces are stable.

use crate::common;

use std::process::Command;

fn qwen_ls(cache: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qwen-ls"));
    command
        .env("QWEN_LS_CACHE_DIR", cache)
        .env("QWEN_LS_LOG", "warn");
    command
}

#[test]
fn context_json_has_the_documented_shape() {
    let repo = common::fixture_copy("polyglot");
    std::fs::create_dir(repo.path().join(".git")).expect("mark the workspace root");
    let cache = tempfile::tempdir().expect("temp");
    let file = repo.path().join("src/lib.rs");
    let output = qwen_ls(cache.path())
        .args([
            "context",
            &format!("{}:11:18", file.display()),
            "--budget",
            "300",
            "--json",
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let object = json.as_object().expect("object");
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, ["budget", "items", "used_tokens"]);
    assert_eq!(json["budget"], 300);
    assert!(json["used_tokens"].as_u64().expect("number") <= 300);
    let items = json["items"].as_array().expect("items");
    assert!(!items.is_empty());
    for item in items {
        let keys: Vec<&str> = item
            .as_object()
            .expect("item")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "end_line",
                "map",
                "path",
                "reason",
                "score",
                "shown",
                "start_line",
                "tokens"
            ]
        );
        let reason = item["reason"].as_str().expect("reason");
        assert!([
            "definition",
            "graph",
            "similar",
            "recent",
            "current",
            "import"
        ]
        .contains(&reason));
        let shown = item["shown"].as_array().expect("runs");
        assert_eq!(shown[0][0], item["start_line"]);
        assert_eq!(shown[shown.len() - 1][1], item["end_line"]);
        assert!(item["start_line"].as_u64() >= Some(1), "1-based lines");
        assert!(
            !item["path"].as_str().expect("path").starts_with('/'),
            "workspace-relative"
        );
    }
    // The callee's file: imported by the current file, and defining what it calls.
    assert!(items.iter().any(|i| i["path"] == "src/geometry.rs"
        && (i["reason"] == "definition" || i["reason"] == "import")));
}

#[test]
fn index_reports_files_languages_and_symbols() {
    let repo = common::fixture_copy("polyglot");
    let cache = tempfile::tempdir().expect("temp");
    let run = || {
        let output = qwen_ls(cache.path())
            .args(["index", &repo.path().display().to_string(), "--json"])
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("JSON")
    };
    let first = run();
    assert_eq!(first["files"], 13);
    assert_eq!(first["languages"]["rust"], 3);
    assert_eq!(first["skipped"], 5);
    assert!(first["definitions"].as_u64() > Some(30));
    assert_eq!(first["parsed"], 13);
    let second = run();
    assert_eq!(second["parsed"], 0, "the second run is served by the cache");
    assert_eq!(second["from_cache"], 13);
}

#[test]
fn a_bad_location_is_a_usage_error() {
    let cache = tempfile::tempdir().expect("temp");
    let output = qwen_ls(cache.path())
        .args(["context", "nowhere.rs:1"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("FILE:LINE:COL"));
}

#[test]
fn the_index_benchmark_runs_end_to_end() {
    let repo = common::fixture_copy("polyglot");
    let cache = tempfile::tempdir().expect("temp");
    let output = qwen_ls(cache.path())
        .args([
            "bench",
            "index",
            &repo.path().display().to_string(),
            "--edits",
            "20",
            "--no-ctags",
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    for line in [
        "| full index (no cache) |",
        "| warm restart |",
        "| incremental edit p50",
        "| pack 1048576 tokens |",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }
}

/// A reader that stops early (`qwen-ls isa --supported | head -n 1`, as `.ci/run` does) ends the command
/// quietly with success instead of a panic and exit 101. The pipe's read end is closed before the process
/// starts, so every write it makes hits the closed pipe.
#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let cache = tempfile::tempdir().expect("temp");
    let repo = common::fixture_copy("polyglot");
    let root = repo.path().display().to_string();
    let commands: [&[&str]; 3] = [
        &["isa"],
        &["isa", "--supported"],
        &["index", &root, "--json"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = qwen_ls(cache.path())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
