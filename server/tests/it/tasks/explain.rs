//! `tasks::explain` with a scripted generator: `None` at once outside functions, a prompt holding the
//! function with its callees and callers, and answers cached by the function's content.

use std::path::PathBuf;

use qwen_ls::tasks::{Analysis, Caches, CancelToken, DocumentPosition, HoverSettings, Settings};

use super::support::{repo_copy, workspace, Scripted};

fn request(offset: usize) -> DocumentPosition {
    DocumentPosition {
        path: PathBuf::from("src/lib.rs"),
        text: None,
        offset,
        version: Some(2),
        language_id: String::new(),
    }
}

#[test]
fn explains_functions_with_related_code_and_caches_the_answer() {
    let (_dir, root) = repo_copy("polyglot");
    let workspace = workspace(&root);
    let text = workspace.read_document("src/lib.rs").expect("text");
    let generator = Scripted::new("<think>hmm</think>Sums the **areas** of the circles.");
    let caches = Caches::new();
    let settings = Settings {
        hover: HoverSettings::default(),
        ..Settings::default()
    };
    let inside = text.find("total += ").expect("body");
    let first = Analysis::new(&workspace, &generator, &caches, &settings)
        .explain(&request(inside), &CancelToken::new())
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
    let again = Analysis::new(&workspace, &generator, &caches, &settings)
        .explain(&request(inside + 3), &CancelToken::new())
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
    assert_eq!(
        Analysis::new(
            &workspace,
            &Scripted::new(""),
            &Caches::new(),
            &Settings::default()
        )
        .explain_target(&at_use)
        .expect("runs"),
        None
    );
    let answer = Analysis::new(&workspace, &generator, &Caches::new(), &Settings::default())
        .explain(&at_use, &CancelToken::new())
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
    let request = DocumentPosition {
        path: root.join("src/geometry.rs"),
        text: None,
        offset: text.find("pub fn circle_area").expect("definition"),
        version: None,
        language_id: String::new(),
    };
    Analysis::new(&workspace, &generator, &Caches::new(), &Settings::default())
        .explain(&request, &CancelToken::new())
        .expect("runs")
        .expect("an explanation");
    let prompt = generator.last_prompt();
    assert!(
        prompt.contains("`src/lib.rs` lines 8-14 (calls `circle_area`)"),
        "{prompt}"
    );
}
