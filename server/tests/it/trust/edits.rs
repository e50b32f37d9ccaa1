//! The attacks of findings 5 and 6 on model-written edits: every path into `.git` refused, every configuration
//! path of the table held for confirmation (library, `qwen-ls patch --apply`, and LSP change annotations), and
//! `--apply` of an edit that breaks the syntax refused — each time with nothing written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use qwen_ls::tasks::patch::protected::CONFIRM;
use qwen_ls::tasks::patch::{
    prepare, ApplyPolicy, EditErrorKind, NoSyntaxCheck, PatchError, PatchOptions, PathError,
};
use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenError, GenOutput, GenRequest, GenStats, Generator,
    GeneratorInfo,
};
use serde_json::json;

use super::fake_openai::FakeOpenAi;
use crate::lsp::{uri, InProcess};

const LIB: &str = "pub fn one() -> u32 {\n    1\n}\n";

/// A block creating `path` with one line.
fn create(path: &str) -> String {
    format!("{path}\n```\n<<<<<<< SEARCH\n=======\nplanted = true\n>>>>>>> REPLACE\n```\n")
}

/// Every regular file under `root` with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), std::fs::read(entry.path()).expect("read"));
            }
        }
    }
    out
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join(".git/hooks")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("sub/.git")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    std::fs::write(dir.path().join("src/lib.rs"), LIB).expect("write");
    dir
}

#[test]
fn paths_into_git_are_refused_in_any_case_at_any_depth() {
    let dir = repo();
    let before = tree(dir.path());
    for path in [
        ".git/hooks/pre-commit",
        ".GIT/config",
        ".Git/hooks/post-checkout",
        "sub/.git/hooks/pre-push",
        "sub/.GIT/config",
        "vendor/x/.git./config",
        ".qwen-ls-apply.journal",
        "src/.lib.rs.1.1.qwen-ls-tmp",
    ] {
        let err = prepare(
            dir.path(),
            &create(path),
            &PatchOptions::new(&NoSyntaxCheck),
        )
        .expect_err(path);
        let PatchError::Edits(errors) = &err else {
            panic!("{path}: {err}")
        };
        assert!(
            matches!(
                errors[0].kind,
                EditErrorKind::Path(PathError::GitDir(_) | PathError::Reserved(_))
            ),
            "{path}: {err}"
        );
    }
    assert_eq!(tree(dir.path()), before, "nothing was written");
}

#[test]
fn every_configuration_path_of_the_table_is_held_for_confirmation() {
    for (pattern, what) in CONFIRM {
        let dir = repo();
        let path = match pattern.strip_suffix('/') {
            Some(directory) => format!("nested/{directory}/settings.json"),
            None => format!("nested/{}", pattern.to_uppercase()),
        };
        let answer = format!(
            "{}src/lib.rs\n```rust\n<<<<<<< SEARCH\n    1\n=======\n    2\n>>>>>>> REPLACE\n```\n",
            create(&path)
        );
        let patch = prepare(dir.path(), &answer, &PatchOptions::new(&NoSyntaxCheck))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(patch.needs_confirmation(), vec![(path.clone(), *what)]);
        let before = tree(dir.path());
        let err = patch.apply().expect_err(&path);
        assert!(
            matches!(err, PatchError::NeedsConfirmation { .. })
                && err.to_string().contains("--allow-config-edits"),
            "{path}: {err}"
        );
        assert_eq!(tree(dir.path()), before, "{path}: nothing was written");
        patch
            .apply_with(ApplyPolicy {
                allow_config_edits: true,
                ..ApplyPolicy::default()
            })
            .expect("confirmed");
        assert!(dir.path().join(&path).is_file(), "{path}");
    }
}

struct Cli {
    cache: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            cache: tempfile::tempdir().expect("tmp"),
        }
    }

    fn patch(&self, root: &Path, endpoint: &str, flags: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
            .args(["patch", "Make one return 2", "--root"])
            .arg(root)
            .args(["--endpoint", endpoint, "--budget", "2000"])
            .args(flags)
            .env("QWEN_LS_CACHE_DIR", self.cache.path())
            .env("QWEN_LS_LOG", "warn")
            .output()
            .expect("runs")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn patch_apply_holds_configuration_edits_and_refuses_syntax_errors() {
    let cli = Cli::new();
    let edit = "src/lib.rs\n```rust\n<<<<<<< SEARCH\n    1\n=======\n    2\n>>>>>>> REPLACE\n```\n";

    let dir = repo();
    let workflow = format!("{}{edit}", create(".github/workflows/ci.yml"));
    let server = FakeOpenAi::start("", &workflow);
    let before = tree(dir.path());
    let out = cli.patch(dir.path(), &server.endpoint, &["--apply"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-config-edits"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tree(dir.path()), before, "nothing was written");
    let out = cli.patch(
        dir.path(),
        &server.endpoint,
        &["--apply", "--allow-config-edits"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join(".github/workflows/ci.yml").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("src/lib.rs")).expect("read"),
        "pub fn one() -> u32 {\n    2\n}\n"
    );

    let dir = repo();
    let broken = "src/lib.rs\n```rust\n<<<<<<< SEARCH\n    1\n}\n=======\n    1 + (\n}\n>>>>>>> REPLACE\n```\n";
    let server = FakeOpenAi::start("", broken);
    let before = tree(dir.path());
    let out = cli.patch(dir.path(), &server.endpoint, &["--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("syntax error"), "{}", stderr(&out));
    assert_eq!(tree(dir.path()), before, "nothing was written");
    // The answer is saved in the user's cache directory, in a private folder.
    let saved = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("the model's answer was saved to "))
        .map(PathBuf::from)
        .expect("saved answer");
    assert!(saved.starts_with(cli.cache.path()), "{}", saved.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(saved.parent().expect("dir"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let out = cli.patch(
        dir.path(),
        &server.endpoint,
        &["--apply", "--allow-syntax-errors"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(dir.path().join("src/lib.rs"))
        .expect("read")
        .contains("1 + ("));
}

/// A model that answers every chat with the same text.
struct Answers(String);

impl Generator for Answers {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            backend: "local",
            model: "scripted".into(),
            context_window: None,
        }
    }

    fn generate(
        &self,
        _request: &GenRequest,
        _cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        on_text(&self.0);
        Ok(GenOutput {
            text: self.0.clone(),
            finish: FinishReason::EndOfText,
            stats: GenStats::default(),
        })
    }
}

/// The server's `workspace/applyEdit` for an instruction whose answer creates `.vscode/settings.json`, on a
/// client with or without `changeAnnotationSupport`; and the command's result.
fn lsp_config_edit(annotations: bool) -> (Vec<serde_json::Value>, serde_json::Value) {
    let dir = repo();
    let root = dir.path().canonicalize().expect("canonical");
    let answer = create(".vscode/settings.json");
    let s = InProcess::start(Arc::new(Answers(answer)), None, None);
    let client = &s.client;
    let mut workspace_edit = json!({ "documentChanges": true });
    if annotations {
        workspace_edit["changeAnnotationSupport"] = json!({ "groupsOnLabel": false });
    }
    let root_uri = uri(&root);
    client.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": root_uri,
            "capabilities": { "workspace": { "applyEdit": true, "workspaceEdit": workspace_edit } },
        }),
    );
    client.notify("initialized", json!({}));
    client.wait_ready();
    client.refuse_edits(true);
    let result = client.request(
        "workspace/executeCommand",
        json!({ "command": "qwen-ls.applyInstruction", "arguments": [{ "instruction": "Configure the editor" }] }),
    );
    let requests = client.server_requests("workspace/applyEdit");
    client.shutdown_and_exit();
    assert!(s.join());
    (requests, result)
}

#[test]
fn lsp_configuration_edits_carry_a_confirmation_annotation_or_are_not_sent() {
    let (requests, _) = lsp_config_edit(true);
    assert_eq!(requests.len(), 1, "{requests:?}");
    let edit = &requests[0]["edit"];
    let annotations = edit["changeAnnotations"].as_object().expect("annotations");
    let (id, annotation) = annotations.iter().next().expect("one annotation");
    assert_eq!(annotation["needsConfirmation"], true, "{edit}");
    let operations = edit["documentChanges"].as_array().expect("operations");
    assert!(!operations.is_empty());
    for operation in operations {
        match operation.get("kind") {
            Some(_) => assert_eq!(
                operation["annotationId"].as_str(),
                Some(id.as_str()),
                "{operation}"
            ),
            None => {
                for text_edit in operation["edits"].as_array().expect("edits") {
                    assert_eq!(
                        text_edit["annotationId"].as_str(),
                        Some(id.as_str()),
                        "{text_edit}"
                    );
                }
            }
        }
    }

    let (requests, result) = lsp_config_edit(false);
    assert!(requests.is_empty(), "{requests:?}");
    assert_eq!(result["applied"], false, "{result}");
    assert!(
        result["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs your confirmation")),
        "{result}"
    );
}
