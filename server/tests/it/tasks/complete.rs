//! `tasks::complete` with a scripted generator: stop rules end the generation mid-stream, typing through a
//! shown suggestion is answered without generating, cancellation, and nothing for useless output; with the
//! fixture model: a warm-up makes the next request at its place nearly free, a keystroke cheap.

use std::path::PathBuf;
use std::sync::Arc;

use qwen_engine::{LoadOptions, LoadedModel};
use qwen_ls::tasks::{
    Analysis, Caches, CancelToken, Change, CompletionSettings, CompletionSource, DocumentPosition,
    Layout, LocalGenerator, LocalOptions, Settings, TaskError, WarmFinish,
};

use super::support::{model_with_window, repo_copy, workspace, Scripted};

const DOC: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    \n}\n";

fn request(text: &str, offset: usize) -> DocumentPosition {
    DocumentPosition {
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
    let settings = Settings {
        completion: CompletionSettings::default(),
        ..Settings::default()
    };
    // The model closes the function and starts another: the stop rules cut at the closing brace.
    let generator = Scripted::new("a + b\n}\n\nfn sub(a: i32) -> i32 {\n    a\n}\n");
    let cursor = DOC.find("    \n").expect("body") + 4;
    let first = Analysis::new(&workspace, &generator, &caches, &settings)
        .complete(&request(DOC, cursor), &CancelToken::new())
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
    let second = Analysis::new(&workspace, &generator, &caches, &settings)
        .complete(&request(&typed, cursor + 3), &CancelToken::new())
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
    let settings = Settings {
        completion: CompletionSettings::default(),
        ..Settings::default()
    };
    let cursor = DOC.find("    \n").expect("body") + 4;
    let generator = Scripted::new("a + b");
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = Analysis::new(&workspace, &generator, &Caches::new(), &settings)
        .complete(&request(DOC, cursor), &cancel)
        .expect_err("cancelled");
    assert!(matches!(err, TaskError::Cancelled));
    assert_eq!(generator.calls(), 0, "a cancelled request never generates");
    // Whitespace only: nothing to show.
    let blank = Scripted::new("\n\n   \n");
    let none = Analysis::new(&workspace, &blank, &Caches::new(), &settings)
        .complete(&request(DOC, cursor), &CancelToken::new())
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
    let request = DocumentPosition {
        path: root.join("src/lib.rs"),
        text: None,
        offset: edited.find("    \n").expect("body") + 4,
        version: Some(3),
        language_id: String::new(),
    };
    let prompt = Analysis::new(
        &workspace,
        &Scripted::new(""),
        &Caches::new(),
        &Settings::default(),
    )
    .completion_prompt(&request, Layout::Full)
    .expect("prompt")
    .prompt
    .to_text();
    assert!(
        prompt.contains("<|fim_prefix|>// edited in the editor\n"),
        "{prompt}"
    );
    assert_eq!(workspace.open_documents(), ["src/lib.rs"]);
}

/// The fixture model as the local generator, with `window` positions (its tokenizer is not the Qwen one the
/// budgets are counted with: budgets stay well inside the window).
fn local_generator(window: usize) -> (tempfile::TempDir, LocalGenerator) {
    let dir = model_with_window("qwen3-moe-tiny", window);
    let model = LoadedModel::load(dir.path(), &LoadOptions::default()).expect("fixture model");
    (dir, LocalGenerator::new(model, LocalOptions::default()))
}

#[test]
fn a_warm_up_leaves_the_request_at_its_place_one_token_and_a_keystroke_a_few() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let (_model, generator) = local_generator(1024);
    let caches = Caches::new();
    let settings = Settings {
        completion: CompletionSettings {
            budget: 400,
            max_tokens: 4,
            suffix_tokens: 16,
            ..CompletionSettings::default()
        },
        ..Settings::default()
    };
    let text = std::fs::read_to_string(root.join("src/geometry.rs")).expect("fixture");
    let at = text.find("circle_area(self.radius)").expect("call") + "circle_area(".len();
    let at_cursor = |text: &str, offset: usize| DocumentPosition {
        path: PathBuf::from("src/geometry.rs"),
        text: Some(Arc::from(text)),
        offset,
        version: Some(1),
        language_id: "rust".into(),
    };
    let never = CancelToken::new();
    let warm = Analysis::new(&workspace, &generator, &caches, &settings)
        .warm_up(&at_cursor(&text, at), &never)
        .expect("warm-up");
    assert_eq!(warm.finish, WarmFinish::Done);
    assert!(warm.prefilled_tokens > 100, "{warm:?}");
    let stats = |request: &DocumentPosition| {
        let (_, stats) = Analysis::new(&workspace, &generator, &caches, &settings)
            .complete_with_stats(request, &never)
            .expect("runs");
        stats.generation.expect("a generation")
    };
    // At the warmed place: everything but the last token comes from the cache.
    let first = stats(&at_cursor(&text, at));
    assert_eq!(first.prefilled_tokens, 1, "{first:?}");
    // A keystroke there: the tokens from the edit on (the typed text, the suffix window, the FIM tokens).
    let mut typed = text.clone();
    typed.insert(at, 'q');
    let second = stats(&at_cursor(&typed, at + 1));
    // (Counted in the fixture tokenizer's tokens, up to about twice the Qwen ones the windows are cut by.)
    assert!(
        second.reused_tokens > 8 * second.prefilled_tokens,
        "{second:?}"
    );
    assert!(
        second.prefilled_tokens <= 2 * settings.completion.suffix_tokens + 8,
        "{second:?}"
    );
    // Again at the same place: the warm-up finds it warm and runs nothing.
    let again = Analysis::new(&workspace, &generator, &caches, &settings)
        .warm_up(&at_cursor(&typed, at + 1), &never)
        .expect("warm-up");
    assert_eq!(
        (again.finish, again.prefilled_tokens),
        (WarmFinish::AlreadyWarm, 0)
    );
}
