//! Files changed outside the editor: the server registers `workspace/didChangeWatchedFiles` for the indexed
//! languages and the ignore files, and every event goes through the index's incremental path. After files
//! created, changed and deleted, a 100-file branch switch, an ignore-rule change and a deleted directory —
//! all behind the editor's back — the live index must equal a fresh re-index (`qwen-ls.debug.verifyIndex`).
//! Several workspace folders: all indexed, changed by `workspace/didChangeWorkspaceFolders`, context packed
//! from the folder holding the file first.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenError, GenOutput, GenRequest, GenStats, Generator,
    GeneratorInfo,
};
use serde_json::{json, Value};

use super::{uri, Client, InProcess};

/// A model that never says anything: these tests are about the index.
struct Silent;

impl Generator for Silent {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            backend: "local",
            model: "silent".to_owned(),
            context_window: Some(4096),
        }
    }

    fn generate(
        &self,
        _: &GenRequest,
        _: &CancelToken,
        _: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        Ok(GenOutput {
            text: String::new(),
            finish: FinishReason::EndOfText,
            stats: GenStats::default(),
        })
    }
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

/// `{ uri, type }` events (1 created, 2 changed, 3 deleted) sent as one notification.
fn events(client: &Client, root: &Path, events: &[(&str, u8)]) {
    let changes: Vec<Value> = events
        .iter()
        .map(|(path, typ)| json!({ "uri": uri(&root.join(path)), "type": typ }))
        .collect();
    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": changes }),
    );
}

/// `qwen-ls.debug.verifyIndex`; the front door holds it until the events sent before it are applied.
fn verify(client: &Client) -> Value {
    client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.debug.verifyIndex", "arguments": [] }),
    )
}

fn assert_equal(client: &Client, files: usize, what: &str) {
    let check = verify(client);
    assert_eq!(check["equal"], true, "{what}: {check}");
    assert_eq!(check["files"], files, "{what}: {check}");
}

/// `qwen-ls.debug.dumpPrompt` at line 2, column 5 of the open document `file`.
fn dump_prompt(client: &Client, file: &Path) -> String {
    client.request(
        "workspace/executeCommand",
        json!({
            "command": "qwen-ls.debug.dumpPrompt",
            "arguments": [{ "uri": uri(file), "position": { "line": 1, "character": 4 } }],
        }),
    )["prompt"]
        .as_str()
        .expect("prompt")
        .to_owned()
}

fn module(i: usize, body: &str) -> String {
    format!("pub fn function_{i}() -> u32 {{\n    {body}\n}}\n")
}

#[test]
fn files_changed_behind_the_editors_back_keep_the_index_equal_to_a_full_reindex() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("ws");
    write(&root, "src/lib.rs", "pub fn lib() -> u32 { 1 }\n");
    write(&root, ".gitignore", "build/\n");
    write(&root, "build/out.rs", "pub fn built() {}\n");
    for i in 0..100 {
        write(&root, &format!("gen/m{i}.rs"), &module(i, "1"));
    }
    let server = InProcess::start(Arc::new(Silent), None, None);
    let client = &server.client;
    let init = client.initialize_watching(&root, json!({}), &["utf-16"], true);
    assert_eq!(
        init["capabilities"]["experimental"]["qwenLs"]["languageIds"],
        json!(qwen_ls::syntax::lsp_language_ids()),
        "the served languages are the grammar table's"
    );
    client.wait_ready();
    client.wait_until("the watcher registration", Duration::from_secs(10), |c| {
        !c.server_requests("client/registerCapability").is_empty()
    });
    let registration = &client.server_requests("client/registerCapability")[0]["registrations"][0];
    assert_eq!(registration["method"], "workspace/didChangeWatchedFiles");
    let globs: Vec<&str> = registration["registerOptions"]["watchers"]
        .as_array()
        .expect("watchers")
        .iter()
        .filter_map(|w| w["globPattern"].as_str())
        .collect();
    assert_eq!(
        globs,
        [
            "**/*.{rs,py,pyi,js,mjs,cjs,jsx,ts,mts,cts,tsx,go,java}",
            "**/.gitignore",
            "**/.ignore",
            "**/.qwenignore"
        ]
    );
    assert_equal(client, 101, "after the first index");

    // Without an event the index cannot know: the check must be able to fail.
    write(
        &root,
        "src/lib.rs",
        "pub fn lib() -> u32 { 2 }\npub fn unseen() {}\n",
    );
    let stale = verify(client);
    assert_eq!(stale["equal"], false, "{stale}");
    events(client, &root, &[("src/lib.rs", 2)]);
    assert_equal(client, 101, "a changed file");

    write(&root, "src/new.rs", "pub fn created() {}\n");
    events(client, &root, &[("src/new.rs", 1)]);
    assert_equal(client, 102, "a created file");

    std::fs::remove_file(root.join("src/new.rs")).expect("rm");
    events(client, &root, &[("src/new.rs", 3)]);
    assert_equal(client, 101, "a deleted file");

    // A branch switch: 40 files deleted, 60 changed, 100 created in a new directory, one event each.
    let mut switch = Vec::new();
    for i in 0..100 {
        let path = format!("gen/m{i}.rs");
        if i < 40 {
            std::fs::remove_file(root.join(&path)).expect("rm");
            switch.push((path, 3));
        } else {
            write(&root, &path, &module(i, "2 + 2"));
            switch.push((path, 2));
        }
        let created = format!("feature/f{i}.rs");
        write(&root, &created, &module(i + 100, "3"));
        switch.push((created, 1));
    }
    let borrowed: Vec<(&str, u8)> = switch.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    events(client, &root, &borrowed);
    assert_equal(client, 161, "a branch switch of 200 files");

    // A watcher can miss the first files of a new directory (inotify watches it only once it saw it
    // created): one event from inside is enough, the new directory is walked.
    write(&root, "late/a.rs", "pub fn a() {}\n");
    write(&root, "late/sub/c.rs", "pub fn c() {}\n");
    write(&root, "late/b.rs", "pub fn b() {}\n");
    events(client, &root, &[("late/b.rs", 1)]);
    assert_equal(client, 164, "a new directory seen through one of its files");

    // An ignore rule added behind the editor's back drops the files it matches...
    write(&root, ".gitignore", "build/\nfeature/\n");
    events(client, &root, &[(".gitignore", 2)]);
    assert_equal(client, 64, "feature/ ignored");
    // ...and removing it brings them (and build/) back.
    std::fs::remove_file(root.join(".gitignore")).expect("rm");
    events(client, &root, &[(".gitignore", 3)]);
    assert_equal(client, 165, ".gitignore deleted");

    // A deleted directory is reported once.
    std::fs::remove_dir_all(root.join("gen")).expect("rm -r");
    events(client, &root, &[("gen", 3)]);
    assert_equal(client, 105, "a deleted directory");

    client.shutdown_and_exit();
    assert!(server.join(), "clean exit");
}

#[test]
fn no_registration_for_a_client_that_cannot_watch() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "lib.rs", "pub fn lib() {}\n");
    let server = InProcess::start(Arc::new(Silent), None, None);
    let client = &server.client;
    client.initialize_watching(dir.path(), json!({}), &["utf-16"], false);
    client.wait_ready();
    assert_equal(client, 1, "loaded");
    assert!(client
        .server_requests("client/registerCapability")
        .is_empty());
    client.shutdown_and_exit();
    assert!(server.join(), "clean exit");
}

fn status(client: &Client) -> Value {
    client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.status", "arguments": [] }),
    )
}

#[test]
fn every_workspace_folder_is_indexed_and_folders_can_change() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = dir.path().join("app");
    let lib = dir.path().join("lib");
    let extra = dir.path().join("extra");
    // The same words everywhere, so that only the folder decides the order of the context.
    let body = "pub fn parse_config(text: &str) -> usize {\n    text.len()\n}\n";
    write(&app, "src/app_config.rs", body);
    write(&lib, "src/lib_config.rs", body);
    write(
        &lib,
        "src/current.rs",
        "pub fn load() -> usize {\n    parse_config(\"\")\n}\n",
    );
    write(&extra, "x.rs", "pub fn extra() {}\n");
    let server = InProcess::start(Arc::new(Silent), None, None);
    let client = &server.client;
    let init = client.initialize_folders(&[&app, &lib], json!({}), &["utf-16"], true);
    assert_eq!(
        init["capabilities"]["workspace"]["workspaceFolders"],
        json!({ "supported": true, "changeNotifications": true })
    );
    client.wait_ready();
    assert_equal(client, 3, "two folders");
    // Files changed in the second folder reach the index like the first's.
    write(&lib, "src/more.rs", "pub fn more() {}\n");
    events(client, &lib, &[("src/more.rs", 1)]);
    assert_equal(client, 4, "a file created in the second folder");

    // A file of the second folder: its own folder's context comes after (closer to the cursor than) the
    // first folder's.
    let current = lib.join("src/current.rs");
    let text = std::fs::read_to_string(&current).expect("read");
    client.open(&uri(&current), "rust", &text);
    let prompt = dump_prompt(client, &current);
    let at = |needle: &str| {
        prompt
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {prompt}"))
    };
    assert!(
        prompt.contains("<|file_sep|>@lib/src/current.rs\n<|fim_prefix|>"),
        "{prompt}"
    );
    assert!(
        at("<|file_sep|>src/app_config.rs") < at("<|file_sep|>@lib/src/lib_config.rs"),
        "the other folder ranks lower (earlier = less relevant): {prompt}"
    );

    // Edits stay in the first folder for now: a refactor in the second says so.
    let refactor = client.request(
        "workspace/executeCommand",
        json!({
            "command": "qwen-ls.refactor",
            "arguments": [{
                "uri": uri(&current),
                "range": { "start": { "line": 1, "character": 0 }, "end": { "line": 1, "character": 0 } },
                "instruction": "inline it",
            }],
        }),
    );
    assert_eq!(refactor["applied"], false, "{refactor}");
    assert!(
        refactor["message"]
            .as_str()
            .unwrap_or("")
            .contains("first workspace folder"),
        "{refactor}"
    );

    // A folder added, then the second one removed.
    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({ "event": { "added": [{ "uri": uri(&extra), "name": "extra" }], "removed": [] } }),
    );
    client.wait_until("the third folder indexed", Duration::from_secs(30), |c| {
        status(c)["indexedFiles"] == 5
    });
    assert_equal(client, 5, "three folders");
    client.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({ "event": { "added": [], "removed": [{ "uri": uri(&lib), "name": "lib" }] } }),
    );
    client.wait_until("the second folder dropped", Duration::from_secs(30), |c| {
        status(c)["indexedFiles"] == 2
    });
    assert_equal(client, 2, "the second folder removed");
    client.shutdown_and_exit();
    assert!(server.join(), "clean exit");
}

/// Every workspace folder passes the gate by its own rules: a secret, a file its own `.qwenignore` lists and a
/// directory that links to `~/.ssh` reach neither the index nor a prompt — whether they were there at the
/// first index, opened in the editor, or appeared behind its back (a watched file, a new directory, an ignore
/// file that changed).
#[test]
fn every_workspace_folder_passes_the_gate_by_its_own_rules() {
    const SECRETS: [&str; 4] = [
        "s3cr3t-env-0a1b",
        "s3cr3t-private-2c3d",
        "s3cr3t-new-4e5f",
        "s3cr3t-ssh-6a7b",
    ];
    const CONTROL: &str = "control-marker-9c8d";
    let dir = tempfile::tempdir().expect("tmp");
    let app = dir.path().join("app");
    let lib = dir.path().join("lib");
    let home = dir.path().join("home");
    let uses = "pub fn connect() -> usize {\n    database_password().len()\n}\n";
    write(&app, "src/main.rs", uses);
    write(
        &lib,
        "src/db.rs",
        &format!("/// {CONTROL}\npub fn database_password() -> String {{\n    String::new()\n}}\n"),
    );
    write(&lib, ".qwenignore", "private/\n");
    write(
        &lib,
        "private/keys.rs",
        &format!(
            "pub fn database_password() -> &'static str {{\n    \"{}\"\n}}\n",
            SECRETS[1]
        ),
    );
    write(&lib, ".env", &format!("DATABASE_PASSWORD={}\n", SECRETS[0]));
    write(&home, ".ssh/config.rs", &format!("// {}\n", SECRETS[3]));
    let server = InProcess::start(Arc::new(Silent), None, None);
    let client = &server.client;
    client.initialize_folders(&[&app, &lib], json!({}), &["utf-16"], true);
    client.wait_ready();
    assert_equal(client, 2, "main.rs and db.rs only");

    // Opened in the editor: the second folder's `.qwenignore` refuses its file, like the root's would.
    for (path, text) in [
        (lib.join("private/keys.rs"), SECRETS[1]),
        (lib.join(".env"), SECRETS[0]),
    ] {
        let refused = uri(&path);
        client.open(&refused, "rust", text);
        let dumped = client.call(
            "workspace/executeCommand",
            json!({ "command": "qwen-ls.debug.dumpPrompt",
                    "arguments": [{ "uri": refused, "position": { "line": 0, "character": 0 } }] }),
        );
        assert!(
            dumped["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("never reads or sends")),
            "{}: {dumped}",
            path.display()
        );
    }
    assert_equal(client, 2, "refused documents are not indexed");

    // Behind the editor's back: a listed file created, a directory that is a link to `~/.ssh`, and the
    // ignore file rewritten (the rescan of the folder decides again, through the same gate).
    write(
        &lib,
        "private/new.rs",
        &format!("pub fn database_password_new() {{ \"{}\"; }}\n", SECRETS[2]),
    );
    events(client, &lib, &[("private/new.rs", 1)]);
    assert_equal(client, 2, "a file the folder's .qwenignore lists");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(home.join(".ssh"), lib.join("linked")).expect("ln");
        events(client, &lib, &[("linked/config.rs", 1)]);
        assert_equal(client, 2, "a new directory that is a link to ~/.ssh");
    }
    write(&lib, ".qwenignore", "private/\n# rewritten\n");
    events(client, &lib, &[(".qwenignore", 2)]);
    assert_equal(client, 2, "the folder's ignore file rewritten");

    // The prompt of an ordinary file of the first folder packs the second folder's context, but no secret.
    let main = app.join("src/main.rs");
    client.open(&uri(&main), "rust", uses);
    let prompt = dump_prompt(client, &main);
    assert!(
        prompt.contains(CONTROL),
        "the other folder's context is packed: {prompt}"
    );
    for secret in SECRETS {
        assert!(!prompt.contains(secret), "{secret} in {prompt}");
    }
    // Dropping the rule brings the listed files in (the check above could fail).
    write(&lib, ".qwenignore", "");
    events(client, &lib, &[(".qwenignore", 2)]);
    assert_equal(client, 4, "the folder's rule removed");
    client.shutdown_and_exit();
    assert!(server.join(), "clean exit");
}
