//! `tasks::complete` with a scripted generator: stop rules end the generation mid-stream, typing through a
//! shown suggestion is answered without generating, cancellation, and nothing for useless output.

use std::path::PathBuf;
use std::sync::Arc;

use qwen_ls::tasks::{
    complete, completion_prompt, Caches, CancelToken, Change, CompletionRequest,
    CompletionSettings, CompletionSource, Layout, TaskError,
};

use super::support::{repo_copy, workspace, Scripted};

const DOC: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    \n}\n";

fn request(text: &str, offset: usize) -> CompletionRequest {
    CompletionRequest {
        path: PathBuf::from("src/new.rs"),
        text: Some(Arc::from(text)),
        offset,
        version: Some(7),
        language_id: "rust".into(),
    }
}

#[test]
fn stop_rules_end_generation_and_typing_through_reuses_the_suggestion() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let caches = Caches::new();
    let settings = CompletionSettings::default();
    // The model closes the function and starts another: the stop rules cut at the closing brace.
    let generator = Scripted::new("a + b\n}\n\nfn sub(a: i32) -> i32 {\n    a\n}\n");
    let cursor = DOC.find("    \n").expect("body") + 4;
    let first = complete(
        &workspace,
        &generator,
        &caches,
        &settings,
        &request(DOC, cursor),
        &CancelToken::new(),
    )
    .expect("runs")
    .expect("a completion");
    assert_eq!(first.text, "a + b");
    assert_eq!(
        (first.range.clone(), first.version),
        (cursor..cursor, Some(7))
    );
    assert_eq!(first.source, CompletionSource::Generated);
    assert!(first.stop.is_some());
    assert_eq!(generator.calls(), 1);
    // The prompt was a repository FIM prompt for the document's path.
    let prompt = generator.last_prompt();
    assert!(prompt.starts_with("<|repo_name|>polyglot\n"), "{prompt}");
    assert!(
        prompt.contains("<|file_sep|>src/new.rs\n<|fim_prefix|>pub fn add"),
        "{prompt}"
    );
    // Typing "a +" through the suggestion: answered from the forward cache, no generation.
    let typed = DOC.replacen("    \n", "    a +\n", 1);
    let second = complete(
        &workspace,
        &generator,
        &caches,
        &settings,
        &request(&typed, cursor + 3),
        &CancelToken::new(),
    )
    .expect("runs")
    .expect("the rest of the suggestion");
    assert_eq!(second.text, " b");
    assert_eq!(second.source, CompletionSource::ForwardCache);
    assert_ne!(second.id, first.id);
    assert_eq!(generator.calls(), 1);
}

#[test]
fn cancelled_requests_never_answer_and_useless_output_is_none() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let settings = CompletionSettings::default();
    let cursor = DOC.find("    \n").expect("body") + 4;
    let generator = Scripted::new("a + b");
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = complete(
        &workspace,
        &generator,
        &Caches::new(),
        &settings,
        &request(DOC, cursor),
        &cancel,
    )
    .expect_err("cancelled");
    assert!(matches!(err, TaskError::Cancelled));
    assert_eq!(generator.calls(), 0, "a cancelled request never generates");
    // Whitespace only: nothing to show.
    let blank = Scripted::new("\n\n   \n");
    let none = complete(
        &workspace,
        &blank,
        &Caches::new(),
        &settings,
        &request(DOC, cursor),
        &CancelToken::new(),
    )
    .expect("runs");
    assert_eq!(none, None);
}

#[test]
fn open_documents_win_over_the_disk() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let edited = "// edited in the editor\npub fn total() -> f64 {\n    \n}\n";
    workspace
        .apply_change(Change::Open {
            path: "src/lib.rs".into(),
            version: 3,
            text: edited.into(),
        })
        .expect("open");
    let request = CompletionRequest {
        path: root.join("src/lib.rs"),
        text: None,
        offset: edited.find("    \n").expect("body") + 4,
        version: Some(3),
        language_id: String::new(),
    };
    let prompt = completion_prompt(
        &workspace,
        &Scripted::new(""),
        &Caches::new(),
        &CompletionSettings::default(),
        &request,
        Layout::Full,
    )
    .expect("prompt")
    .prompt
    .to_text();
    assert!(
        prompt.contains("<|fim_prefix|>// edited in the editor\n"),
        "{prompt}"
    );
    assert_eq!(workspace.open_documents(), ["src/lib.rs"]);
}
