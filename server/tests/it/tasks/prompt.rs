//! The completion prompt: golden text for a fixture repository, segments cut by tokens within the budget,
//! a prefix that stays identical while the cursor moves (so the engine reuses its KV cache), and editing
//! regions: while the user types at one place everything before the cursor stays put.

use std::path::PathBuf;

use qwen_ls::context::TokenCounter;
use std::sync::Arc;

use qwen_ls::tasks::{
    Analysis, Caches, CompletionPrompt, CompletionSettings, DocumentPosition, Layout, Settings,
    Workspace, PREFIX_SHARE, SUFFIX_SHARE,
};
use qwen_ls::token_count::QwenTokenCounter;

use super::support::{repo_copy, workspace, Scripted};

fn request(workspace: &Workspace, path: &str, line: usize, column: usize) -> DocumentPosition {
    let text = workspace.read_document(path).expect("document");
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    DocumentPosition {
        path: PathBuf::from(path),
        text: None,
        offset: line_start + column - 1,
        version: Some(1),
        language_id: "rust".into(),
    }
}

fn prompt_at(workspace: &Workspace, budget: usize, line: usize, column: usize) -> CompletionPrompt {
    let settings = Settings {
        completion: CompletionSettings {
            budget,
            ..CompletionSettings::default()
        },
        ..Settings::default()
    };
    Analysis::new(workspace, &Scripted::new(""), &Caches::new(), &settings)
        .completion_prompt(
            &request(workspace, "src/lib.rs", line, column),
            Layout::Full,
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
        // The engine writes the pieces, the context layer the text it counted: one format.
        if let Some(context) = &prompt.context {
            assert!(text.starts_with(&context.render()), "budget {budget}");
        }
        // The FIM tokens are never clipped, whatever the budget.
        for special in ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"] {
            assert_eq!(text.matches(special).count(), 1, "budget {budget}");
        }
        assert!(text.ends_with("<|fim_middle|>"));
        let cap = |share: f64| (budget as f64 * share) as usize;
        assert!(prompt.prefix_tokens <= cap(PREFIX_SHARE), "budget {budget}");
        assert!(prompt.suffix_tokens <= cap(SUFFIX_SHARE), "budget {budget}");
        assert!(
            prompt.suffix_tokens <= CompletionSettings::default().suffix_tokens,
            "budget {budget}"
        );
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
    // With a short suffix window, the rest of the file after it is packed as context, without repeating it.
    let settings = Settings {
        completion: CompletionSettings {
            budget: 2048,
            suffix_tokens: 8,
            ..CompletionSettings::default()
        },
        ..Settings::default()
    };
    let prompt = Analysis::new(&workspace, &Scripted::new(""), &Caches::new(), &settings)
        .completion_prompt(&request(&workspace, "src/lib.rs", 11, 18), Layout::Full)
        .expect("prompt");
    assert!(prompt.suffix_tokens <= 8);
    assert!(prompt.suffix.end < document.len());
    let context = prompt.context.expect("context");
    let rest: Vec<_> = context
        .items
        .iter()
        .filter(|item| &*item.path == "src/lib.rs")
        .collect();
    assert!(!rest.is_empty(), "the rest of the file is packed");
    let suffix = &document[prompt.suffix.clone()];
    for item in rest {
        assert!(!item.text.contains(suffix.trim()), "{suffix:?} repeated");
    }
}

/// The document after typing `typed` at `offset`, and the request at the end of the typed text.
fn typed(text: &str, offset: usize, typed: &str) -> (String, DocumentPosition) {
    let mut edited = text.to_string();
    edited.insert_str(offset, typed);
    let request = DocumentPosition {
        path: PathBuf::from("src/lib.rs"),
        text: Some(Arc::from(edited.as_str())),
        offset: offset + typed.len(),
        version: Some(2),
        language_id: "rust".into(),
    };
    (edited, request)
}

/// The prompt's text before `<|fim_suffix|>`: everything up to the cursor.
fn before_cursor(prompt: &CompletionPrompt) -> String {
    let text = prompt.prompt.to_text();
    let end = text.find("<|fim_suffix|>").expect("a FIM prompt");
    text[..end].to_string()
}

fn full_prompt(
    workspace: &Workspace,
    caches: &Caches,
    budget: usize,
    request: &DocumentPosition,
) -> CompletionPrompt {
    let settings = Settings {
        completion: CompletionSettings {
            budget,
            ..CompletionSettings::default()
        },
        ..Settings::default()
    };
    Analysis::new(workspace, &Scripted::new(""), caches, &settings)
        .completion_prompt(request, Layout::Full)
        .expect("prompt")
}

#[test]
fn while_typing_in_a_region_everything_before_the_cursor_stays_put() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let caches = Caches::new();
    let first = request(&workspace, "src/lib.rs", 11, 18);
    let text = workspace.read_document("src/lib.rs").expect("text");
    for budget in [160, 400, 2048] {
        let before = full_prompt(&workspace, &caches, budget, &first);
        // Type a few characters, one request each: the part before the cursor only grows by them.
        for n in 1..=6 {
            let (_, request) = typed(&text, first.offset, &"x_y(1)"[..n]);
            let prompt = full_prompt(&workspace, &caches, budget, &request);
            let stable = before_cursor(&prompt);
            assert_eq!(
                stable,
                format!("{}{}", before_cursor(&before), &"x_y(1)"[..n]),
                "budget {budget}"
            );
            assert!(
                prompt.tokens <= budget,
                "budget {budget}: {}",
                prompt.tokens
            );
            assert!(prompt.prompt.to_text().starts_with(&stable));
        }
    }
    // A new region costs a new layout: without the remembered region the same request may pack otherwise,
    // but it always fits the budget.
    let (_, request) = typed(&text, first.offset, "x_y(1)");
    let fresh = full_prompt(&workspace, &Caches::new(), 400, &request);
    assert!(fresh.tokens <= 400);
}

#[test]
fn a_region_ends_when_the_cursor_leaves_it_or_the_text_before_it_changes() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let text = workspace.read_document("src/lib.rs").expect("text");
    let budget = 100;
    let caches = Caches::new();
    let at = request(&workspace, "src/lib.rs", 11, 18);
    let first = full_prompt(&workspace, &caches, budget, &at);
    assert!(
        first.prefix.start > 0,
        "a small budget does not reach the top of the file"
    );
    // The text before the prefix window changes: a new region (its prefix window is laid out again).
    let (edited, _) = typed(&text, 0, "// top\n");
    let moved = DocumentPosition {
        text: Some(Arc::from(edited.as_str())),
        offset: at.offset + "// top\n".len(),
        ..at.clone()
    };
    let prompt = full_prompt(&workspace, &caches, budget, &moved);
    assert!(prompt.tokens <= budget);
    let fresh = full_prompt(&workspace, &Caches::new(), budget, &moved);
    assert_eq!(
        prompt.prompt.to_text(),
        fresh.prompt.to_text(),
        "laid out again"
    );
    // Back in the original text, the cursor moves up above the anchor: a new region that starts earlier.
    let caches = Caches::new();
    full_prompt(&workspace, &caches, budget, &at);
    let up = DocumentPosition {
        offset: first.prefix.start.saturating_sub(1),
        ..at.clone()
    };
    let prompt = full_prompt(&workspace, &caches, budget, &up);
    assert!(prompt.prefix.start < first.prefix.start);
    // Typing more than the region's room for growth: a new region, still within the budget.
    let caches = Caches::new();
    full_prompt(&workspace, &caches, budget, &at);
    let long = "let value = compute_total(&squares) + 1;\n    ".repeat(8);
    let (_, request) = typed(&text, at.offset, &long);
    let prompt = full_prompt(&workspace, &caches, budget, &request);
    assert!(prompt.tokens <= budget);
    assert!(prompt.prefix.start > first.prefix.start);
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
