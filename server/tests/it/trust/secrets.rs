//! The attack of finding 1: a secret file opened in the editor must reach no prompt — not the remote backend's
//! request bodies, not `qwen-ls.debug.dumpPrompt` — and no index, whatever its case or a link's name for it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qwen_ls::index::Change;
use qwen_ls::lsp::IndexHook;
use qwen_ls::tasks::generator::{OpenAiConfig, OpenAiGenerator, RetryPolicy, Timeouts};
use qwen_ls::tasks::{TaskError, Workspace, WorkspaceOptions};
use serde_json::{json, Value};

use super::fake_openai::FakeOpenAi;
use crate::lsp::harness::position_of;
use crate::lsp::{uri, InProcess};

/// In the secret file on disk.
const SECRET_ON_DISK: &str = "s3cr3t-on-disk-7f3a9c1e";
/// Typed into the secret file in the editor (never saved).
const SECRET_TYPED: &str = "s3cr3t-typed-b81d44e0";
/// In an ordinary file that shares the secret's identifiers: packed into prompts, which proves the test would
/// see a leak.
const CONTROL: &str = "control-marker-5e2a";

const LIB: &str = "/// Connects with DATABASE_PASSWORD and DATABASE_USER from the environment.\n\
pub fn connect(database_password: &str, database_user: &str) -> bool {\n    \
!database_password.is_empty() && !database_user.is_empty()\n}\n\n\
pub fn database_url() -> String {\n    let database_password = \"\";\n    \n}\n";

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".git")).expect("mkdir");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::create_dir_all(root.join("docs")).expect("mkdir");
    std::fs::write(root.join("src/lib.rs"), LIB).expect("write");
    let secret = format!(
        "DATABASE_PASSWORD={SECRET_ON_DISK}\nDATABASE_USER=admin\nDATABASE_URL=postgres://admin:{SECRET_ON_DISK}@db\n"
    );
    std::fs::write(root.join(".env"), &secret).expect("write");
    std::fs::write(root.join("Terraform.TFVARS"), &secret).expect("write");
    std::fs::write(
        root.join("docs/database.md"),
        format!("DATABASE_PASSWORD and DATABASE_USER come from the environment ({CONTROL}).\n"),
    )
    .expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join(".env"), root.join("docs/notes.md")).expect("ln");
    dir
}

fn remote(endpoint: &str) -> Arc<OpenAiGenerator> {
    let config = OpenAiConfig {
        endpoint: endpoint.to_string(),
        model: String::new(),
        api_key_env: "QWEN_LS_TEST_UNSET_KEY".to_string(),
        allow_http: false,
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            response: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            discovery: Duration::from_secs(5),
        },
        retry: RetryPolicy::none(),
    };
    Arc::new(OpenAiGenerator::new(config).expect("generator"))
}

fn leaks(text: &str) -> bool {
    text.contains(SECRET_ON_DISK) || text.contains(SECRET_TYPED)
}

#[test]
fn a_secret_file_opened_in_the_editor_reaches_no_prompt_and_no_index() {
    let dir = workspace();
    let root = dir.path().canonicalize().expect("canonical");
    let server = FakeOpenAi::start("    todo!()", "It connects.");
    // Every change the index writer applies, as text: the secret must never be among them.
    let applied: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = applied.clone();
    let hook: IndexHook = Arc::new(move |change: &Change| {
        seen.lock().expect("lock").push(format!("{change:?}"));
    });
    let s = InProcess::start(remote(&server.endpoint), None, Some(hook));
    let client = &s.client;
    let prompts = root.join("prompts-log");
    client.initialize(
        &root,
        json!({ "debug": { "dumpPrompt": true }, "logFile": prompts.join("q.log") }),
        &["utf-16"],
    );
    client.wait_ready();

    // The secret opened three ways: by its name, in another case, and through a harmless-looking link.
    let typed = format!("DATABASE_PASSWORD={SECRET_TYPED}\nDATABASE_USER=admin\n");
    let mut secret_uris = vec![uri(&root.join(".env")), uri(&root.join("Terraform.TFVARS"))];
    #[cfg(unix)]
    secret_uris.push(uri(&root.join("docs/notes.md")));
    for secret in &secret_uris {
        client.open(secret, "dotenv", &typed);
        client.edit(secret, 0, 0, &format!("# {SECRET_TYPED}\n"));
        let text = client.doc(secret).text;
        let at = position_of(&text, text.len());
        let before = server.generation_bodies().len();
        let completion = client.request(
            "textDocument/inlineCompletion",
            json!({ "textDocument": { "uri": secret }, "position": at, "context": { "triggerKind": 1 } }),
        );
        assert!(completion.is_null(), "{secret}: {completion}");
        let hover = client.request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": secret }, "position": at }),
        );
        assert!(hover.is_null(), "{secret}: {hover}");
        let dumped = client.call(
            "workspace/executeCommand",
            json!({ "command": "qwen-ls.debug.dumpPrompt", "arguments": [{ "uri": secret, "position": at }] }),
        );
        assert!(
            dumped["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("never reads or sends")),
            "{dumped}"
        );
        let refactor = client.call(
            "workspace/executeCommand",
            json!({ "command": "qwen-ls.refactor", "arguments": [{ "uri": secret, "range": { "start": at, "end": at }, "instruction": "tidy" }] }),
        );
        assert!(refactor.get("error").is_some(), "{refactor}");
        assert_eq!(
            server.generation_bodies().len(),
            before,
            "{secret}: a request about a refused file reached the model server"
        );
    }
    // Told once per file, why.
    let told: Vec<Value> = client
        .notifications("window/showMessage")
        .into_iter()
        .filter(|m| {
            m["message"]
                .as_str()
                .is_some_and(|t| t.contains("never read"))
        })
        .collect();
    assert_eq!(told.len(), secret_uris.len(), "{told:?}");

    // An ordinary file whose identifiers the secret shares: completion, dumpPrompt, hover, a refactor and a
    // workspace instruction all build prompts with packed context.
    let lib = uri(&root.join("src/lib.rs"));
    client.open(&lib, "rust", LIB);
    let cursor = LIB.find("    \n}").expect("blank line") + 4;
    let at = position_of(LIB, cursor);
    let completion = client.request(
        "textDocument/inlineCompletion",
        json!({ "textDocument": { "uri": lib }, "position": at, "context": { "triggerKind": 1 } }),
    );
    assert!(completion["items"].as_array().is_some(), "{completion}");
    let dumped = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.debug.dumpPrompt", "arguments": [{ "uri": lib, "position": at }] }),
    );
    let prompt = dumped["prompt"].as_str().expect("prompt");
    assert!(
        prompt.contains(CONTROL),
        "packed context is in the prompt:\n{prompt}"
    );
    assert!(
        !leaks(prompt),
        "the dumped prompt holds the secret:\n{prompt}"
    );
    let fn_at = position_of(LIB, LIB.find("connect(").expect("fn"));
    client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.explain", "arguments": [{ "uri": lib, "position": fn_at }] }),
    );
    client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.applyInstruction", "arguments": [{ "instruction": "Document DATABASE_PASSWORD", "uris": [lib] }] }),
    );
    let refused = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.applyInstruction", "arguments": [{ "instruction": "Read it", "uris": [lib, uri(&root.join(".env"))] }] }),
    );
    assert_eq!(refused["applied"], false, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("never read")),
        "{refused}"
    );

    let bodies = server.generation_bodies();
    assert!(
        bodies.len() >= 3,
        "completion, explain and instruction reached the server: {bodies:?}"
    );
    assert!(
        bodies.iter().any(|b| b.contains(CONTROL)),
        "context was packed into the requests"
    );
    for body in &bodies {
        assert!(!leaks(body), "a request body holds the secret:\n{body}");
    }
    // The prompts debug.dumpPrompt wrote next to the log.
    let mut written = 0;
    for entry in std::fs::read_dir(prompts.join("qwen-ls-prompts")).expect("prompt dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        assert!(!leaks(&text), "a dumped prompt file holds the secret");
        written += 1;
    }
    assert!(written > 0, "dumpPrompt wrote prompt files");
    // The index never took the secret in.
    let applied = applied.lock().expect("lock").clone();
    assert!(
        applied.iter().any(|c| c.contains("src/lib.rs")),
        "{applied:?}"
    );
    for change in &applied {
        assert!(
            !leaks(change),
            "the index writer was handed the secret: {change}"
        );
        assert!(
            !change.contains(".env") && !change.contains("TFVARS"),
            "{change}"
        );
    }
    client.shutdown_and_exit();
    assert!(s.join());
}

/// The same gate below the editor: the index refuses an `Open` of a secret, `--files` and every task refuse a
/// secret path, by name or through a link.
#[test]
fn tasks_and_the_index_refuse_secret_paths() {
    let dir = workspace();
    let root = dir.path().canonicalize().expect("canonical");
    let (workspace, report) = Workspace::load(&root, &WorkspaceOptions::default()).expect("load");
    assert!(
        report.skipped.iter().any(|s| s.path == "Terraform.TFVARS"),
        "{:?}",
        report.skipped
    );
    let open = workspace.apply_change(Change::Open {
        path: ".env".into(),
        version: 1,
        text: format!("X={SECRET_TYPED}"),
    });
    assert!(open.is_err(), "{open:?}");
    let snapshot = workspace.snapshot();
    assert!(snapshot.file("src/lib.rs").is_some());
    for file in snapshot.files() {
        assert!(
            !leaks(&file.text),
            "{} in the index holds the secret",
            file.path
        );
    }
    for secret in [".env", "Terraform.TFVARS", "docs/notes.md"] {
        if cfg!(not(unix)) && secret == "docs/notes.md" {
            continue;
        }
        let refused = workspace.read_document(secret);
        assert!(
            matches!(refused, Err(TaskError::Refused { .. })),
            "{secret}: {refused:?}"
        );
        let absolute = root.join(secret);
        assert!(
            matches!(workspace.admit(&absolute), Err(TaskError::Refused { .. })),
            "{secret}"
        );
    }
    assert!(workspace.admit(Path::new("src/lib.rs")).is_ok());
    // A file event under a directory that is a link to a credential directory: only the last component
    // looks harmless, the real path does not.
    #[cfg(unix)]
    {
        let home = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(home.path().join(".ssh")).expect("mkdir");
        std::fs::write(home.path().join(".ssh/config"), SECRET_ON_DISK).expect("write");
        std::os::unix::fs::symlink(home.path().join(".ssh"), root.join("linked")).expect("ln");
        workspace
            .apply_change(Change::Write {
                path: "linked/config".into(),
            })
            .expect("a refused file event is not an error");
        assert!(workspace.snapshot().file("linked/config").is_none());
        assert!(matches!(
            workspace.read_document("linked/config"),
            Err(TaskError::Refused { .. })
        ));
    }
}

/// `qwen-ls patch --files .env` (and `complete` in it) is refused before any request leaves the process.
#[test]
fn the_command_line_refuses_secret_files_before_any_request() {
    let dir = workspace();
    let root = dir.path().canonicalize().expect("canonical");
    let server = FakeOpenAi::start("x", "no edits");
    let cache = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
            .args(args)
            .arg("--root")
            .arg(&root)
            .args(["--endpoint", &server.endpoint])
            .env("QWEN_LS_CACHE_DIR", cache.path())
            .env("QWEN_LS_LOG", "warn")
            .output()
            .expect("runs")
    };
    let env_file = root.join(".env").display().to_string();
    let position = format!("{env_file}:1:5");
    for args in [
        vec!["patch", "Use the password", "--files", env_file.as_str()],
        vec!["complete", position.as_str()],
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("never read or sent"), "{stderr}");
        assert!(!leaks(&stderr) && !leaks(&String::from_utf8_lossy(&out.stdout)));
    }
    assert!(
        server.generation_bodies().is_empty(),
        "{:?}",
        server.generation_bodies()
    );
}
