//! `qwen-ls patch --test-cmd`: the check loop through the real binary, its real remote backend and the scripted
//! OpenAI-compatible server `editors/testdata/fake_openai.py` (`--answers`: one answer per round, in order).
//! The checks are real commands (`cargo check` on a one-file crate, `sleep`), run in the scratch copy. Also the
//! `--apply` refusals that need no loop (syntax errors, a truncated whole-file answer), on the same setup.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The scripted model server; killed on drop.
struct FakeServer {
    child: Child,
    endpoint: String,
    requests: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeServer {
    /// Starts `fake_openai.py` serving `answers` to the chat requests, in order.
    fn start(answers: &[&str]) -> FakeServer {
        let dir = tempfile::tempdir().expect("temp");
        let script = dir.path().join("answers.json");
        std::fs::write(&script, serde_json::to_string(answers).expect("json")).expect("write");
        let requests = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors/testdata/fake_openai.py"))
            .arg("--answers")
            .arg(&script)
            .arg("--requests")
            .arg(&requests)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs editors/testdata/fake_openai.py (the scripted model server)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("url");
        assert!(line.starts_with("http://"), "fake_openai.py said {line:?}");
        FakeServer {
            child,
            endpoint: line.trim().to_string(),
            requests,
            _dir: dir,
        }
    }

    /// The chat requests received, in order (each the last user message's text).
    fn user_messages(&self) -> Vec<String> {
        std::fs::read_to_string(&self.requests)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|request| {
                let messages = request["messages"].as_array()?.clone();
                messages.last()?["content"].as_str().map(str::to_string)
            })
            .collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LIB: &str = "/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";

/// A one-file crate (no dependencies: `cargo check --offline` needs nothing) marked as a workspace root.
fn crate_root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp");
    let root = dir.path().join("demo");
    std::fs::create_dir_all(root.join("src")).expect("src");
    std::fs::create_dir_all(root.join(".git")).expect("root marker");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .expect("manifest");
    std::fs::write(root.join(".gitignore"), "target/\n").expect("gitignore");
    std::fs::write(root.join("src/lib.rs"), LIB).expect("lib");
    (dir, root)
}

fn block(search: &str, replace: &str) -> String {
    format!("src/lib.rs\n```rust\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")
}

fn patch(server: &FakeServer, root: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .arg("patch")
        .args(args)
        .arg("--root")
        .arg(root)
        .arg("--files")
        .arg(root.join("src/lib.rs"))
        .args([
            "--endpoint",
            &server.endpoint,
            "--remote-model",
            "fake-coder",
            "--json",
        ])
        .env("QWEN_LS_CACHE_DIR", cache)
        .env("XDG_CACHE_HOME", cache)
        .env("QWEN_LS_LOG", "warn")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("qwen-ls runs")
}

fn transcript(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Round 1 breaks the build (`a + c`), round 2 fixes it against the file as round 1 left it: green in round
/// 2 with round 2's diff, and the user's file is the original while every check runs.
#[test]
fn a_failing_first_answer_and_a_passing_second_end_green_in_round_two() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let server = FakeServer::start(&[
        &block("    a + b\n", "    a + c\n"),
        &block("    a + c\n", "    a.wrapping_add(b)\n"),
    ]);
    // Each check first records what the user's file holds at that moment.
    let seen_by_checks = root
        .parent()
        .expect("parent")
        .join("user-file-during-checks");
    let record = format!(
        "cat '{}' >> '{}' && cargo check --offline",
        root.join("src/lib.rs").display(),
        seen_by_checks.display()
    );
    let out = patch(
        &server,
        &root,
        cache.path(),
        &["Use wrapping addition in add", "--test-cmd", &record],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json = transcript(&out);
    assert_eq!(json["verdict"], "green", "{json:#}");
    let rounds = json["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{json:#}");
    assert_eq!(rounds[0]["outcome"], "red");
    assert_eq!(rounds[0]["checks"][0]["exit_code"], 101);
    let first_output = rounds[0]["checks"][0]["output"].as_str().expect("output");
    assert!(
        first_output.contains("cannot find value `c`"),
        "{first_output}"
    );
    assert_eq!(rounds[1]["outcome"], "green");
    assert_eq!(rounds[1]["checks"][0]["exit_code"], 0);
    assert!(rounds[0]["prompt_tokens"].as_u64().expect("tokens") > 0);
    // The final diff is round 2's: the original file to the fixed one.
    let diff = json["diff"].as_str().expect("diff");
    assert_eq!(diff, rounds[1]["diff"].as_str().expect("round diff"));
    assert!(
        diff.contains("-    a + b\n+    a.wrapping_add(b)\n"),
        "{diff}"
    );
    assert!(!diff.contains("a + c"), "{diff}");
    // The second prompt told the model what failed and showed the file as round 1 left it.
    let prompts = server.user_messages();
    assert_eq!(prompts.len(), 2);
    assert!(
        prompts[1].contains("cargo check --offline")
            && prompts[1].contains("cannot find value `c`")
    );
    assert!(prompts[1].contains("    a + c\n"), "{}", prompts[1]);
    // The transcript records that message as round 1's feedback.
    assert_eq!(rounds[0]["feedback"].as_str(), Some(prompts[1].as_str()));
    assert!(rounds[1]["feedback"].is_null());
    // Without --apply nothing is written; during the checks the user's file was the original.
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        LIB
    );
    assert_eq!(
        std::fs::read_to_string(&seen_by_checks).expect("recorded"),
        format!("{LIB}{LIB}")
    );
    assert!(
        !root.join("target").exists(),
        "the checks ran in the scratch copy"
    );
}

/// `--apply` writes only after the green round, atomically; `--test-cmd auto` finds `cargo check` here.
#[test]
fn apply_writes_the_green_result_and_auto_finds_cargo() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let server = FakeServer::start(&[
        &block("    a + b\n", "    a + c\n"),
        &block("    a + c\n", "    a.wrapping_add(b)\n"),
    ]);
    let out = patch(
        &server,
        &root,
        cache.path(),
        &["Use wrapping addition", "--test-cmd", "auto", "--apply"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("check (from Cargo.toml): cargo check --all-targets"),
        "{stderr}"
    );
    let json = transcript(&out);
    assert_eq!(
        (
            json["applied"].as_bool(),
            json["rounds"].as_array().map(Vec::len)
        ),
        (Some(true), Some(2))
    );
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        LIB.replace("a + b", "a.wrapping_add(b)")
    );
}

/// Red after the last round: exit 4, the last candidate printed, nothing written unless `--apply-failed`.
#[test]
fn red_after_the_last_round_is_not_applied_unless_asked() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let broken = block("    a + b\n", "    a + c\n");
    let server = FakeServer::start(&[&broken, "I cannot fix it."]);
    let args = [
        "Break it",
        "--test-cmd",
        "cargo check --offline",
        "--max-rounds",
        "2",
        "--apply",
    ];
    let out = patch(&server, &root, cache.path(), &args);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = transcript(&out);
    assert_eq!(
        (json["verdict"].as_str(), json["applied"].as_bool()),
        (Some("red"), Some(false))
    );
    assert_eq!(json["rounds"][1]["outcome"], "invalid_answer");
    assert!(json["diff"].as_str().expect("diff").contains("+    a + c"));
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        LIB
    );

    let server = FakeServer::start(&[&broken]);
    let args = [
        "Break it",
        "--test-cmd",
        "cargo check --offline",
        "--max-rounds",
        "1",
        "--apply",
        "--apply-failed",
    ];
    let out = patch(&server, &root, cache.path(), &args);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(transcript(&out)["applied"], true);
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        LIB.replace("a + b", "a + c")
    );
}

/// An answer that edits configuration that can run programs (`.cargo/config.toml`) is never written to the
/// scratch copy, so no check runs it: the round is an invalid answer, the model is told why, and the next
/// round's edit of the source is checked (and would be red had the configuration reached the copy).
#[test]
fn configuration_edits_never_reach_the_checks() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let config = "src/lib.rs\n```rust\n<<<<<<< SEARCH\n    a + b\n=======\n    a.wrapping_add(b)\n>>>>>>> REPLACE\n```\n\n\
                  .cargo/config.toml\n```toml\n<<<<<<< SEARCH\n=======\n[build]\nrustc-wrapper = \"/bin/false\"\n\
                  >>>>>>> REPLACE\n```\n";
    let server = FakeServer::start(&[config, &block("    a + b\n", "    a.wrapping_add(b)\n")]);
    let args = [
        "Use wrapping addition in add",
        "--test-cmd",
        "test ! -e .cargo/config.toml && cargo check --offline",
    ];
    let out = patch(&server, &root, cache.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json = transcript(&out);
    let rounds = json["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{json:#}");
    assert_eq!(rounds[0]["outcome"], "invalid_answer");
    let error = rounds[0]["answer_error"].as_str().expect("answer error");
    assert!(
        error.contains("`.cargo/config.toml` (Cargo configuration)")
            && error.contains("configuration that can run programs"),
        "{error}"
    );
    assert!(
        rounds[0]["checks"].as_array().is_none_or(Vec::is_empty),
        "{json:#}"
    );
    assert_eq!(rounds[1]["outcome"], "green");
    let prompts = server.user_messages();
    assert!(
        prompts[1].contains("`.cargo/config.toml`"),
        "{}",
        prompts[1]
    );
    let diff = json["diff"].as_str().expect("diff");
    assert!(!diff.contains(".cargo"), "{diff}");
    assert!(!root.join(".cargo").exists());
}

/// A check that hangs is killed at `--test-timeout` (with its whole process group), and the round is red.
#[test]
fn a_hanging_check_is_killed_at_its_timeout() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let server = FakeServer::start(&[&block("    a + b\n", "    b + a\n")]);
    let started = Instant::now();
    let args = [
        "Swap",
        "--test-cmd",
        "sleep 60 & sleep 60",
        "--test-timeout",
        "1",
        "--max-rounds",
        "1",
    ];
    let out = patch(&server, &root, cache.path(), &args);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = &transcript(&out)["rounds"][0]["checks"][0];
    assert_eq!(
        (check["timed_out"].as_bool(), check["exit_code"].is_null()),
        (Some(true), true)
    );
    let took = check["duration_secs"].as_f64().expect("duration");
    assert!((1.0..10.0).contains(&took), "{took}");
}

/// No answer of any round is an edit: exit 2 with the answers saved; a check that does not exist: exit 3.
#[test]
fn no_usable_answer_exits_2_and_a_missing_check_exits_3() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let server = FakeServer::start(&["Sure, I will do that.", "Done!"]);
    let out = patch(
        &server,
        &root,
        cache.path(),
        &["x", "--test-cmd", "true", "--max-rounds", "2"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let saved = stderr
        .lines()
        .find_map(|l| l.strip_prefix("the model's answers were saved to "))
        .expect("saved");
    let text = std::fs::read_to_string(saved).expect("answers");
    assert!(
        text.contains("Sure, I will do that.") && text.contains("Done!"),
        "{text}"
    );
    assert_eq!(transcript(&out)["verdict"], "no_usable_answer");

    let server = FakeServer::start(&[&block("    a + b\n", "    b + a\n")]);
    let out = patch(
        &server,
        &root,
        cache.path(),
        &["x", "--test-cmd", "no-such-check-qwen-ls"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("was not found"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        LIB
    );
}

/// Without the loop: `--apply` refuses an edit that introduces syntax errors (exit 2, nothing written, the
/// answer saved) unless `--allow-syntax-errors`; a whole-file answer that keeps one function of a file is
/// refused as cut short.
#[test]
fn apply_refuses_syntax_errors_and_truncated_whole_files() {
    let (_dir, root) = crate_root();
    let cache = tempfile::tempdir().expect("cache");
    let broken = block("    a + b\n", "    a + (b\n");
    let server = FakeServer::start(&[&broken, &broken]);
    let out = patch(&server, &root, cache.path(), &["Break it", "--apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("introduces syntax errors") && stderr.contains("answer was saved"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        LIB
    );
    let out = patch(
        &server,
        &root,
        cache.path(),
        &["Break it", "--apply", "--allow-syntax-errors"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(root.join("src/lib.rs"))
        .expect("read")
        .contains("a + (b"));

    let many: String = (0..10)
        .map(|i| format!("pub fn f{i}() -> u32 {{\n    {i}\n}}\n\n"))
        .collect();
    std::fs::write(root.join("src/lib.rs"), &many).expect("write");
    let server = FakeServer::start(&[
        "src/lib.rs\n```rust\n/// The first.\npub fn f0() -> u32 {\n    0\n}\n```\n",
    ]);
    let out = patch(&server, &root, cache.path(), &["Document f0", "--apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not plausibly the whole file"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
        many
    );
}
