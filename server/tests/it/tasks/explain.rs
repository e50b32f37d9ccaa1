//! `tasks::explain` with a scripted generator: `None` at once outside functions, a prompt holding the
//! function with its callees and callers, and answers cached by the function's content.

use std::path::PathBuf;

use qwen_ls::tasks::{explain, explain_target, Caches, CancelToken, ExplainRequest, HoverSettings};

use super::support::{repo_copy, workspace, Scripted};

fn request(offset: usize) -> ExplainRequest {
    ExplainRequest {
        path: PathBuf::from("src/lib.rs"),
        text: None,
        offset,
        version: Some(2),
    }
}

#[test]
fn explains_functions_with_related_code_and_caches_the_answer() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let text = workspace.read_document("src/lib.rs").expect("text");
    let generator = Scripted::new("<think>hmm</think>Sums the **areas** of the circles.");
    let caches = Caches::new();
    let settings = HoverSettings::default();
    let inside = text.find("total += ").expect("body");
    let first = explain(
        &workspace,
        &generator,
        &caches,
        &settings,
        &request(inside),
        &CancelToken::new(),
    )
    .expect("runs")
    .expect("an explanation");
    assert_eq!(first.markdown, "Sums the **areas** of the circles.");
    assert_eq!(first.function.name, "total_area");
    assert_eq!(first.function.lines, (7, 13));
    assert!(!first.cached);
    let prompt = generator.last_prompt();
    assert!(
        prompt.contains("Explain what the function `total_area` in `src/lib.rs` does"),
        "{prompt}"
    );
    assert!(
        prompt.contains("pub fn total_area(circles: &[Circle]) -> f64 {"),
        "{prompt}"
    );
    // Its callee's definition comes from the index.
    assert!(prompt.contains("(defines `circle_area`)"), "{prompt}");
    assert!(prompt.contains("pub fn circle_area"), "{prompt}");
    // Hovering again: from the cache, no generation.
    let again = explain(
        &workspace,
        &generator,
        &caches,
        &settings,
        &request(inside + 3),
        &CancelToken::new(),
    )
    .expect("runs")
    .expect("cached");
    assert!(again.cached);
    assert_eq!(again.markdown, first.markdown);
    assert_eq!(generator.calls(), 1);
}

#[test]
fn outside_functions_answers_none_without_generating() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let generator = Scripted::new("never");
    let at_use = request(5);
    assert_eq!(explain_target(&workspace, &at_use).expect("runs"), None);
    let answer = explain(
        &workspace,
        &generator,
        &Caches::new(),
        &HoverSettings::default(),
        &at_use,
        &CancelToken::new(),
    )
    .expect("runs");
    assert_eq!(answer, None);
    assert_eq!(generator.calls(), 0);
}

#[test]
fn callers_come_from_the_index() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let text = workspace.read_document("src/geometry.rs").expect("text");
    let generator = Scripted::new("Computes a circle's area.");
    let request = ExplainRequest {
        path: root.join("src/geometry.rs"),
        text: None,
        offset: text.find("pub fn circle_area").expect("definition"),
        version: None,
    };
    explain(
        &workspace,
        &generator,
        &Caches::new(),
        &HoverSettings::default(),
        &request,
        &CancelToken::new(),
    )
    .expect("runs")
    .expect("an explanation");
    let prompt = generator.last_prompt();
    assert!(
        prompt.contains("`src/lib.rs` lines 8-14 (calls `circle_area`)"),
        "{prompt}"
    );
}
