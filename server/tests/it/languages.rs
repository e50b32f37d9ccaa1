//! The editors' built-in language lists are the syntax table's: a language added to the table and not to
//! a client (or the reverse) fails here, before a user's editor sends documents the server does not serve.

use std::path::Path;

fn repository_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The double-quoted strings between `start` and the next `end` in `text`.
fn quoted_list(text: &str, start: &str, end: &str) -> Vec<String> {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let to = from + text[from..].find(end).expect("list ends");
    text[from..to]
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn editor_language_lists_are_the_syntax_tables() {
    let table: Vec<String> = qwen_ls::syntax::lsp_language_ids()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let vscode = repository_file("editors/vscode/src/languages.ts");
    assert_eq!(
        quoted_list(&vscode, "export const LANGUAGES = [", "]"),
        table,
        "editors/vscode/src/languages.ts"
    );
    let manifest = repository_file("editors/vscode/package.json");
    let activation: Vec<String> = quoted_list(&manifest, "\"activationEvents\": [", "]")
        .into_iter()
        .map(|event| event.trim_start_matches("onLanguage:").to_owned())
        .collect();
    assert_eq!(activation, table, "editors/vscode/package.json");
    let nvim = repository_file("editors/nvim/lua/qwen-ls/config.lua");
    assert_eq!(
        quoted_list(&nvim, "M.FILETYPES = {", "}"),
        table,
        "editors/nvim/lua/qwen-ls/config.lua"
    );
}
