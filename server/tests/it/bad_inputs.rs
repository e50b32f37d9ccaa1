//! Bad inputs give a log line and a skipped (or lossily read) file, never a failed index.

use crate::common;

use qwen_ls::index::filter::SecretMatcher;
use qwen_ls::index::walk::read_file;
use qwen_ls::index::{IndexConfig, IndexHost, SkipReason};

#[test]
fn a_50_mb_file_is_skipped_without_being_read() {
    let repo = common::fixture_copy("polyglot");
    let big = std::fs::File::create(repo.path().join("src/huge.rs")).expect("create");
    big.set_len(50 * 1024 * 1024).expect("sparse 50 MB file");
    let (host, report) = IndexHost::load(repo.path(), IndexConfig::default(), None).expect("loads");
    assert!(report.skipped.iter().any(|s| s.path == "src/huge.rs"
        && matches!(s.reason, SkipReason::TooLarge(n) if n == 50 * 1024 * 1024)));
    assert!(
        host.snapshot().file("src/geometry.rs").is_some(),
        "the rest is indexed"
    );
}

#[test]
fn a_file_deleted_during_the_walk_is_reported_not_fatal() {
    let repo = common::fixture_copy("polyglot");
    let config = IndexConfig::default();
    let secrets = SecretMatcher::new(&config.secret_patterns);
    let gone = repo.path().join("src/gone.rs");
    let result = read_file(&gone, &"src/gone.rs".into(), &config, &secrets);
    assert!(matches!(result, Err(SkipReason::Io(_))));
}

#[test]
fn an_unreadable_file_is_skipped_and_the_rest_indexed() {
    use std::os::unix::fs::PermissionsExt;
    let repo = common::fixture_copy("polyglot");
    let locked = repo.path().join("src/locked.rs");
    std::fs::write(&locked, "pub fn locked() {}\n").expect("write");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let (host, report) = IndexHost::load(repo.path(), IndexConfig::default(), None).expect("loads");
    let snapshot = host.snapshot();
    // Root can read anything: then the file is simply indexed. Anyone else gets a skip with a reason.
    let skipped = report
        .skipped
        .iter()
        .any(|s| s.path == "src/locked.rs" && matches!(s.reason, SkipReason::Io(_)));
    assert!(skipped || snapshot.file("src/locked.rs").is_some());
    assert!(snapshot.file("src/lib.rs").is_some());
}

#[test]
fn invalid_utf8_in_source_is_indexed_lossily_with_symbols() {
    let repo = common::fixture_copy("polyglot");
    std::fs::write(
        repo.path().join("src/bytes.rs"),
        b"pub fn before() {}\n// \xff\xfe\npub fn after() {}\n",
    )
    .expect("write");
    let (host, _) = IndexHost::load(repo.path(), IndexConfig::default(), None).expect("loads");
    let snapshot = host.snapshot();
    let file = snapshot.file("src/bytes.rs").expect("indexed");
    assert!(file.lossy);
    let names: Vec<&str> = file.definitions.iter().map(|d| &*d.name).collect();
    assert_eq!(names, ["before", "after"]);
}

#[test]
fn a_missing_root_is_an_error_not_a_panic() {
    let result = IndexHost::load(
        std::path::Path::new("/definitely/not/here"),
        IndexConfig::default(),
        None,
    );
    assert!(result.is_err());
}
