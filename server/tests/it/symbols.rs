//! Snapshot tests of the symbols extracted from the fixture repository, and of what the walk skips.
//! Refresh the golden file with `UPDATE_EXPECT=1 cargo test -p qwen-ls --test symbols`.

use crate::common;

use qwen_ls::index::SkipReason;

#[test]
fn fixture_symbols_match_the_golden_file() {
    let repo = common::fixture_copy("polyglot");
    let host = common::load(repo.path());
    expect_test::expect_file!["golden/polyglot_symbols.txt"]
        .assert_eq(&common::symbol_dump(&host.snapshot()));
}

#[test]
fn the_walk_skips_what_it_must_and_says_why() {
    let repo = common::fixture_copy("polyglot");
    let (host, report) =
        qwen_ls::index::IndexHost::load(repo.path(), Default::default(), None).expect("loads");
    let skipped: Vec<(String, SkipReason)> = report
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.reason.clone()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("data/logo.png".to_owned(), SkipReason::Binary),
            ("deploy/prod.env".to_owned(), SkipReason::Secret),
            ("escape".to_owned(), SkipReason::Link),
            ("loop".to_owned(), SkipReason::Link),
            ("vendor/min.js".to_owned(), SkipReason::Minified),
        ]
    );
    let snapshot = host.snapshot();
    assert!(snapshot.file("build/generated.rs").is_none(), ".gitignore");
    assert!(snapshot.file("notes/private.txt").is_none(), ".qwenignore");
    assert!(snapshot.file(".gitignore").is_none(), "hidden files");
    let latin1 = snapshot
        .file("notes/latin1.txt")
        .expect("invalid UTF-8 is indexed lossily");
    assert!(latin1.lossy && latin1.text.contains('\u{FFFD}'));
}

#[test]
fn a_file_with_syntax_errors_keeps_recovered_symbols() {
    let repo = common::fixture_copy("polyglot");
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let broken = snapshot.file("src/broken.rs").expect("indexed");
    let names: Vec<&str> = broken.definitions.iter().map(|d| &*d.name).collect();
    for expected in ["before_the_error", "StillFound", "after_the_error"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}
