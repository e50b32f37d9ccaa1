//! The packer: cross-file definitions reach the context, budgets are never exceeded (exact counts with the
//! real Qwen tokenizer), output is deterministic, ordered least-relevant-first with the current file last,
//! never cuts a line and never repeats the cursor window.

use crate::common;

use std::path::Path;

use qwen_ls::context::{
    pack, ContextRequest, PackConfig, PackedContext, Reason, TokenCountCache, TokenCounter,
};
use qwen_ls::index::{IndexHost, IndexSnapshot};
use qwen_ls::token_count::QwenTokenCounter;

fn request(path: &str, line_1based: u32, budget: usize) -> ContextRequest {
    ContextRequest {
        path: path.into(),
        cursor_line: line_1based - 1,
        cursor_column: 0,
        selection: None,
        instruction: None,
        budget,
    }
}

fn qwen() -> &'static QwenTokenCounter {
    QwenTokenCounter::builtin().expect("built-in tokenizer")
}

fn pack_with(
    snapshot: &IndexSnapshot,
    request: &ContextRequest,
    counter: &dyn TokenCounter,
) -> PackedContext {
    pack(
        snapshot,
        request,
        &PackConfig::default(),
        counter,
        &TokenCountCache::new(),
    )
}

fn assert_contains_definition(packed: &PackedContext, path: &str, needle: &str) {
    let found = packed
        .items
        .iter()
        .any(|item| &*item.path == path && item.text.contains(needle));
    let listing: Vec<String> = packed
        .items
        .iter()
        .map(|i| {
            format!(
                "{}:{}-{} {:?}",
                i.path,
                i.start_line + 1,
                i.end_line + 1,
                i.reason
            )
        })
        .collect();
    assert!(found, "{needle:?} from {path} not packed; got {listing:#?}");
}

#[test]
fn a_call_site_gets_the_callee_definition_from_another_file() {
    let repo = common::fixture_copy("polyglot");
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let cases = [
        ("src/lib.rs", 11, "src/geometry.rs", "pub fn circle_area"),
        ("py/app.py", 12, "py/shapes.py", "def compute_total"),
        (
            "web/main.ts",
            11,
            "web/format.ts",
            "export function formatPrice",
        ),
        ("go/main.go", 10, "go/store.go", "func NewStore"),
        ("web/view.tsx", 4, "web/main.ts", "label(): string"),
    ];
    for (file, line, callee_file, needle) in cases {
        let packed = pack_with(&snapshot, &request(file, line, 200), qwen());
        assert!(packed.used_tokens <= 200);
        assert_contains_definition(&packed, callee_file, needle);
        let item = packed
            .items
            .iter()
            .find(|i| &*i.path == callee_file)
            .expect("item");
        assert!(
            matches!(item.reason, Reason::Definition | Reason::Import),
            "{file}: {:?}",
            item.reason
        );
    }
}

#[test]
fn budgets_are_never_exceeded_and_counts_are_exact() {
    // This repository's own sources: enough text to fill every budget below.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (host, _) = IndexHost::load(&root, Default::default(), None).expect("loads");
    let snapshot = host.snapshot();
    let counter = qwen();
    let cache = TokenCountCache::new();
    for budget in [
        0, 1, 3, 7, 16, 50, 100, 333, 1_000, 2_048, 8_192, 32_768, 131_072,
    ] {
        let request = request("context/src/pack.rs", 120, budget);
        let packed = pack(&snapshot, &request, &PackConfig::default(), counter, &cache);
        let rendered = packed.render();
        let exact = if rendered.is_empty() {
            0
        } else {
            counter.count(&rendered)
        };
        assert!(
            packed.used_tokens <= budget,
            "budget {budget}: used {}",
            packed.used_tokens
        );
        assert_eq!(
            exact, packed.used_tokens,
            "budget {budget}: reported count is exact"
        );
        let items: usize = packed.items.iter().map(|i| i.tokens).sum();
        assert_eq!(
            items + packed.header_tokens,
            packed.used_tokens,
            "budget {budget}"
        );
        if (1_000..=32_768).contains(&budget) {
            assert!(
                packed.used_tokens * 10 >= budget * 9,
                "budget {budget} poorly filled: {}",
                packed.used_tokens
            );
        }
    }
}

#[test]
fn packing_is_deterministic_and_ordered_for_prefix_reuse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (host, _) = IndexHost::load(&root, Default::default(), None).expect("loads");
    let snapshot = host.snapshot();
    let request = request("index/src/host.rs", 200, 20_000);
    let first = pack_with(&snapshot, &request, &common::WordCounter);
    let second = pack(
        &snapshot,
        &request,
        &PackConfig::default(),
        &common::WordCounter,
        &TokenCountCache::new(),
    );
    assert_eq!(first, second);
    assert!(!first.items.is_empty());

    let current_from = first
        .items
        .iter()
        .position(|i| &*i.path == "index/src/host.rs");
    if let Some(at) = current_from {
        assert!(
            first.items[at..]
                .iter()
                .all(|i| &*i.path == "index/src/host.rs"),
            "current file last"
        );
        assert!(first.items[at..]
            .iter()
            .all(|i| i.reason == Reason::Current));
    }
    let others = &first.items[..current_from.unwrap_or(first.items.len())];
    let background = others.iter().take_while(|i| i.background).count();
    assert!(
        background > 0 && others[background..].iter().all(|i| !i.background),
        "background tier first"
    );
    for group in [&others[..background], &others[background..]] {
        assert!(
            group.windows(2).all(|w| w[0].score <= w[1].score),
            "least relevant first"
        );
    }

    // Moving the cursor within the same function keeps a long common prefix.
    let moved = pack_with(
        &snapshot,
        &ContextRequest {
            cursor_line: 202,
            ..request.clone()
        },
        &common::WordCounter,
    );
    let a = first.render();
    let b = moved.render();
    let common_prefix = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    assert!(
        common_prefix * 2 > a.len().min(b.len()),
        "prefix {common_prefix} of {}",
        a.len()
    );
}

#[test]
fn items_are_whole_lines_and_never_repeat_the_cursor_window() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (host, _) = IndexHost::load(&root, Default::default(), None).expect("loads");
    let snapshot = host.snapshot();
    for budget in [500, 5_000, 50_000] {
        let request = request("context/src/pack.rs", 150, budget);
        let packed = pack_with(&snapshot, &request, &common::WordCounter);
        let (window_start, window_end) = packed.cursor_window;
        for item in &packed.items {
            let file = snapshot.file(&item.path).expect("indexed");
            // The shown runs, whole lines each, with one `⋮` line for every run of hidden lines.
            let mut expected = String::new();
            for &(start, end) in &item.shown {
                if item.background && start > 0 {
                    expected.push_str("⋮\n");
                }
                expected.push_str(&file.lines(start, end));
            }
            let last = item.shown.last().expect("shows something").1;
            if item.background && last + 1 < file.line_count {
                expected.push_str("⋮\n");
            }
            assert_eq!(item.text, expected, "{}: whole lines only", item.path);
            if &*item.path == "context/src/pack.rs" {
                assert!(
                    item.shown_lines()
                        .all(|l| l < window_start || l > window_end),
                    "cursor window repeated"
                );
            }
        }
        let mut snippets: Vec<_> = packed
            .items
            .iter()
            .filter(|i| !i.background)
            .map(|i| (i.path.clone(), i.start_line, i.end_line))
            .collect();
        snippets.sort();
        assert!(
            snippets
                .windows(2)
                .all(|w| w[0].0 != w[1].0 || w[0].2 < w[1].1),
            "no overlapping snippets"
        );
    }
}

#[test]
fn whole_files_are_preferred_when_the_budget_allows() {
    let repo = common::fixture_copy("polyglot");
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let packed = pack_with(&snapshot, &request("src/lib.rs", 11, 100_000), qwen());
    assert!(
        packed.items.iter().all(|i| i.whole_file),
        "{:#?}",
        packed.items
    );
    let packed_files: std::collections::BTreeSet<&str> =
        packed.items.iter().map(|i| &*i.path).collect();
    // Every file but the current one (entirely inside the cursor window) is there.
    assert_eq!(packed_files.len(), snapshot.file_count() - 1);
    assert!(packed.render().starts_with("<|repo_name|>"));
}

#[test]
fn an_instruction_retrieves_by_its_identifiers() {
    let repo = common::fixture_copy("polyglot");
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let mut ask = request("README.md", 1, 150);
    ask.instruction = Some("make slugify handle unicode".into());
    let packed = pack_with(&snapshot, &ask, qwen());
    assert_contains_definition(&packed, "web/util.js", "function slugify");
}

/// A temporary repository from `(path, text)` pairs.
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

/// Every (path, line) a packed context shows.
fn shown(packed: &PackedContext) -> std::collections::BTreeSet<(String, u32)> {
    packed
        .items
        .iter()
        .flat_map(|item| item.shown_lines().map(|line| (item.path.to_string(), line)))
        .collect()
}

#[test]
fn budgets_only_add() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (host, _) = IndexHost::load(&root, Default::default(), None).expect("loads");
    let snapshot = host.snapshot();
    let cache = TokenCountCache::new();
    let budgets = [
        16, 64, 200, 512, 1_000, 2_048, 3_000, 4_096, 8_192, 16_384, 32_768, 65_536,
    ];
    for (path, line) in [
        ("context/src/pack.rs", 120),
        ("index/src/host.rs", 200),
        ("engine/src/generate.rs", 40),
        ("fixtures/repos/polyglot/py/app.py", 12),
    ] {
        let mut previous: Option<(usize, std::collections::BTreeSet<(String, u32)>)> = None;
        for budget in budgets {
            let packed = pack(
                &snapshot,
                &request(path, line, budget),
                &PackConfig::default(),
                qwen(),
                &cache,
            );
            let now = shown(&packed);
            if let Some((smaller, before)) = &previous {
                let missing: Vec<_> = before.difference(&now).take(5).collect();
                assert!(
                    missing.is_empty(),
                    "{path}: packed at {smaller} but not at {budget}: {missing:?}"
                );
            }
            previous = Some((budget, now));
        }
    }
}

#[test]
fn a_budget_that_holds_every_source_file_of_the_language_holds_them() {
    let repo = common::fixture_copy("polyglot");
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let counter = qwen();
    // Python: py/app.py at line 12 (its cursor window covers the whole file), py/shapes.py the only other.
    let header = counter.count(&format!(
        "<|repo_name|>{}\n",
        repo.path().file_name().expect("name").to_string_lossy()
    ));
    let shapes = snapshot.file("py/shapes.py").expect("indexed");
    let whole = counter.count(&format!("<|file_sep|>py/shapes.py\n{}", shapes.text));
    let budget = header + whole;
    let packed = pack_with(&snapshot, &request("py/app.py", 12, budget), counter);
    assert!(
        packed
            .items
            .iter()
            .any(|i| &*i.path == "py/shapes.py" && i.whole_file),
        "{:#?}",
        packed.items
    );
    assert_eq!(packed.used_tokens, budget);
    // One token less cannot hold it whole, and packs no other language instead.
    let smaller = pack_with(&snapshot, &request("py/app.py", 12, budget - 1), counter);
    assert!(
        smaller.items.iter().all(|i| i.path.ends_with(".py")),
        "{:#?}",
        smaller.items
    );
}

#[test]
fn library_code_comes_before_tests_and_examples() {
    let body: String = (0..60)
        .map(|i| format!("    let value_{i} = input + {i};\n"))
        .collect();
    let library = format!("pub fn helper(input: u32) -> u32 {{\n{body}    input\n}}\n");
    let test =
        format!("#[test]\nfn helper_works() {{\n{body}    assert_eq!(crate::helper(1), 1);\n}}\n");
    let repo = repo(&[
        ("src/lib.rs", "mod util;\npub use util::helper;\n"),
        ("src/util.rs", &library),
        ("src/other.rs", &library.replace("helper", "other_helper")),
        ("tests/helper_test.rs", &test),
        ("examples/demo.rs", &test.replace("helper_works", "demo")),
        (
            "src/main.rs",
            "fn main() {\n    let x = helper(3);\n    \n}\n",
        ),
    ]);
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    for budget in [100, 300, 600, 1_200, 2_000] {
        let packed = pack_with(&snapshot, &request("src/main.rs", 3, budget), qwen());
        let library_whole = ["src/util.rs", "src/other.rs", "src/lib.rs"]
            .iter()
            .all(|p| packed.items.iter().any(|i| &*i.path == *p && i.whole_file));
        let has_tests = packed
            .items
            .iter()
            .any(|i| i.path.starts_with("tests/") || i.path.starts_with("examples/"));
        assert!(
            library_whole || !has_tests,
            "budget {budget}: tests before library code: {:#?}",
            packed.items
        );
    }
    // From a test file, tests are library code.
    let packed = pack_with(&snapshot, &request("tests/helper_test.rs", 1, 400), qwen());
    assert!(packed.items.iter().any(|i| i.path.starts_with("src/")));
}

#[test]
fn a_map_shows_signatures_under_their_impl_and_covers_the_definition() {
    let body: String = (0..80)
        .map(|i| format!("        let step_{i} = self.count + {i};\n"))
        .collect();
    let store = format!(
        "pub struct Store {{\n    count: u32,\n}}\n\nimpl Store {{\n    pub fn insert_item(&mut self, item: u32) -> bool {{\n{body}        true\n    }}\n\n    pub fn remove_item(&mut self, item: u32) -> bool {{\n{body}        false\n    }}\n}}\n"
    );
    let repo = repo(&[
        ("src/lib.rs", "mod store;\nmod app;\n"),
        ("src/store.rs", &store),
        (
            "src/app.rs",
            "use crate::store::Store;\n\nfn run(store: &mut Store) {\n    store.\n}\n",
        ),
    ]);
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let packed = pack_with(&snapshot, &request("src/app.rs", 4, 300), qwen());
    let map = packed
        .items
        .iter()
        .find(|i| &*i.path == "src/store.rs")
        .unwrap_or_else(|| panic!("store.rs not packed: {:#?}", packed.items));
    assert!(!map.whole_file);
    assert!(map.text.contains("impl Store {\n"), "{}", map.text);
    assert!(
        map.text
            .contains("    pub fn remove_item(&mut self, item: u32) -> bool {\n"),
        "{}",
        map.text
    );
    assert!(map.text.contains("⋮\n"), "{}", map.text);
    let file = snapshot.file("src/store.rs").expect("indexed");
    let remove = file
        .definitions
        .iter()
        .find(|d| &*d.name == "remove_item")
        .expect("tagged");
    assert!(map.shows_line(remove.start_line));
    assert!(packed.used_tokens <= 300);
    assert_eq!(qwen().count(&packed.render()), packed.used_tokens);
}

#[test]
fn imports_resolve_to_the_files_they_name() {
    let repo = repo(&[
        ("rs/src/lib.rs", "mod net;\npub mod util;\n"),
        ("rs/src/net/mod.rs", "use crate::util::{self, helpers::parse};\nuse super::util::Thing;\n"),
        ("rs/src/util.rs", "pub mod helpers;\npub struct Thing;\n"),
        ("rs/src/util/helpers.rs", "pub fn parse() {}\n"),
        ("pkg/app/__init__.py", ""),
        ("pkg/app/views.py", "from .models import User\nfrom . import forms\nimport pkg.app.utils as u\n"),
        ("pkg/app/models.py", "class User: pass\n"),
        ("pkg/app/forms.py", "x = 1\n"),
        ("pkg/app/utils.py", "y = 2\n"),
        ("web/src/main.ts", "import { a } from './lib/a.js';\nimport b from './lib';\nconst c = require('../c');\nimport React from 'react';\n"),
        ("web/src/lib/a.ts", "export const a = 1;\n"),
        ("web/src/lib/index.ts", "export default 2;\n"),
        ("web/c.js", "module.exports = 3;\n"),
        ("go.mod", "module example.com/svc\n"),
        ("cmd/main.go", "package main\n\nimport (\n\t\"fmt\"\n\t\"example.com/svc/store\"\n)\n"),
        ("cmd/flags.go", "package main\n"),
        ("store/store.go", "package store\n"),
    ]);
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let imports = |path: &str| -> Vec<String> {
        let file = snapshot.file(path).expect("indexed");
        qwen_ls::context::imports::imported_files(&snapshot, file)
            .iter()
            .map(|p| p.to_string())
            .collect()
    };
    // lib.rs is a barrel: what it imports comes along (after its own imports).
    assert_eq!(
        imports("rs/src/lib.rs"),
        [
            "rs/src/net/mod.rs",
            "rs/src/util.rs",
            "rs/src/util/helpers.rs"
        ]
    );
    assert_eq!(
        imports("rs/src/net/mod.rs"),
        ["rs/src/util.rs", "rs/src/util/helpers.rs"]
    );
    assert_eq!(
        imports("pkg/app/views.py"),
        [
            "pkg/app/models.py",
            "pkg/app/__init__.py",
            "pkg/app/utils.py"
        ]
    );
    assert_eq!(
        imports("web/src/main.ts"),
        ["web/src/lib/a.ts", "web/src/lib/index.ts", "web/c.js"]
    );
    assert_eq!(imports("cmd/main.go"), ["cmd/flags.go", "store/store.go"]);
}
