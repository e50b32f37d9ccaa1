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
            matches!(item.reason, Reason::Definition),
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
        let request = request("server/src/context/pack.rs", 120, budget);
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
    let request = request("server/src/index/host.rs", 200, 20_000);
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
        .position(|i| &*i.path == "server/src/index/host.rs");
    if let Some(at) = current_from {
        assert!(
            first.items[at..]
                .iter()
                .all(|i| &*i.path == "server/src/index/host.rs"),
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
        let request = request("server/src/context/pack.rs", 150, budget);
        let packed = pack_with(&snapshot, &request, &common::WordCounter);
        let (window_start, window_end) = packed.cursor_window;
        for item in &packed.items {
            let file = snapshot.file(&item.path).expect("indexed");
            assert_eq!(
                item.text,
                file.lines(item.start_line, item.end_line),
                "whole lines only"
            );
            if &*item.path == "server/src/context/pack.rs" {
                assert!(
                    item.end_line < window_start || item.start_line > window_end,
                    "cursor window repeated"
                );
            }
        }
        let mut spans: Vec<_> = packed
            .items
            .iter()
            .map(|i| (i.path.clone(), i.start_line, i.end_line))
            .collect();
        spans.sort();
        assert!(
            spans
                .windows(2)
                .all(|w| w[0].0 != w[1].0 || w[0].2 < w[1].1),
            "no overlapping items"
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
