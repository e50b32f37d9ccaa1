//! The completion prompt: golden text for a fixture repository, segments cut by tokens within the budget,
//! and a prefix that stays identical while the cursor moves (so the engine reuses its KV cache).

use std::path::PathBuf;

use qwen_ls::context::TokenCounter;
use qwen_ls::tasks::{
    completion_prompt, CompletionPrompt, CompletionRequest, CompletionSettings, Workspace,
    PREFIX_SHARE, SUFFIX_SHARE,
};
use qwen_ls::token_count::QwenTokenCounter;

use super::support::{repo_copy, workspace, Scripted};

fn request(workspace: &Workspace, path: &str, line: usize, column: usize) -> CompletionRequest {
    let text = workspace.read_document(path).expect("document");
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    CompletionRequest {
        path: PathBuf::from(path),
        text: None,
        offset: line_start + column - 1,
        version: Some(1),
        language_id: "rust".into(),
    }
}

fn prompt_at(workspace: &Workspace, budget: usize, line: usize, column: usize) -> CompletionPrompt {
    let settings = CompletionSettings {
        budget,
        ..CompletionSettings::default()
    };
    completion_prompt(
        workspace,
        &Scripted::new(""),
        &settings,
        &request(workspace, "src/lib.rs", line, column),
    )
    .expect("prompt")
}

#[test]
fn golden_repository_fim_prompt() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let prompt = prompt_at(&workspace, 400, 11, 18);
    expect_test::expect_file!["../golden/completion_prompt_polyglot.txt"]
        .assert_eq(&prompt.prompt.to_text());
}

#[test]
fn segments_are_cut_by_tokens_and_the_budget_holds() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let counter = QwenTokenCounter::builtin().expect("tokenizer");
    for budget in [40, 80, 160, 400, 2048] {
        let prompt = prompt_at(&workspace, budget, 11, 18);
        let text = prompt.prompt.to_text();
        assert!(
            counter.count(&text) <= budget,
            "budget {budget}: {} tokens",
            counter.count(&text)
        );
        assert_eq!(prompt.tokens, counter.count(&text), "budget {budget}");
        // The FIM tokens are never clipped, whatever the budget.
        for special in ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"] {
            assert_eq!(text.matches(special).count(), 1, "budget {budget}");
        }
        assert!(text.ends_with("<|fim_middle|>"));
        let cap = |share: f64| (budget as f64 * share) as usize;
        assert!(prompt.prefix_tokens <= cap(PREFIX_SHARE), "budget {budget}");
        assert!(prompt.suffix_tokens <= cap(SUFFIX_SHARE), "budget {budget}");
        assert_eq!(prompt.prefix.end, prompt.suffix.start);
    }
    // A large budget sends the whole (small) file as prefix + suffix and packs nothing of it again.
    let prompt = prompt_at(&workspace, 2048, 11, 18);
    let document = workspace.read_document("src/lib.rs").expect("text");
    assert_eq!(
        (prompt.prefix.start, prompt.suffix.end),
        (0, document.len())
    );
    let context = prompt.context.expect("context");
    assert!(context.items.iter().all(|item| &*item.path != "src/lib.rs"));
}

#[test]
fn the_prompt_prefix_is_stable_while_the_cursor_moves() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let a = prompt_at(&workspace, 6000, 11, 18);
    let b = prompt_at(&workspace, 6000, 12, 5);
    let background = |p: &CompletionPrompt| -> Vec<String> {
        let context = p.context.as_ref().expect("context");
        context
            .items
            .iter()
            .filter(|i| i.background)
            .map(|i| i.path.to_string())
            .collect()
    };
    assert!(
        !background(&a).is_empty(),
        "a large budget has a background tier"
    );
    assert_eq!(background(&a), background(&b));
    let (ta, tb) = (a.prompt.to_text(), b.prompt.to_text());
    let common = ta
        .bytes()
        .zip(tb.bytes())
        .take_while(|(x, y)| x == y)
        .count();
    let last_background = background(&a).last().cloned().expect("one");
    let end_of_background = ta
        .find(&format!("<|file_sep|>{last_background}\n"))
        .expect("rendered");
    assert!(
        common > end_of_background,
        "common prefix {common} bytes ends before the background ({end_of_background})"
    );
}
