//! The persistent cache: a restart on an unchanged repository parses nothing; corrupt, truncated, foreign or
//! old-format caches are discarded and rebuilt.

use crate::common;

use std::path::Path;

use qwen_ls::index::{CacheStatus, CacheStore, IndexConfig, IndexHost};

fn load_with(root: &Path, store: &CacheStore) -> (IndexHost, qwen_ls::index::LoadReport) {
    IndexHost::load(root, IndexConfig::default(), Some(store.clone())).expect("loads")
}

fn canonical(root: &Path) -> std::path::PathBuf {
    root.canonicalize().expect("canonical")
}

#[test]
fn a_warm_restart_parses_nothing_and_equals_a_cold_index() {
    let repo = common::fixture_copy("polyglot");
    let cache_dir = tempfile::tempdir().expect("temp");
    let store = CacheStore::in_dir(cache_dir.path(), &canonical(repo.path()));
    let (cold, report) = load_with(repo.path(), &store);
    assert_eq!(report.cache, CacheStatus::Missing);
    assert!(report.cache_outdated && report.parsed == report.files);
    cold.save_cache().expect("saves");

    let (warm, report) = load_with(repo.path(), &store);
    assert_eq!(report.cache, CacheStatus::Loaded(report.files));
    assert_eq!((report.parsed, report.reused), (0, report.files));
    assert!(!report.cache_outdated);
    assert_eq!(warm.snapshot().state_dump(), cold.snapshot().state_dump());

    // One changed file is parsed again; the rest still come from the cache.
    std::fs::write(repo.path().join("src/lib.rs"), "pub fn changed() {}\n").expect("write");
    let (_, report) = load_with(repo.path(), &store);
    assert_eq!(report.parsed, 1);
    assert!(report.cache_outdated);
}

#[test]
fn corrupt_truncated_and_foreign_caches_are_discarded_and_rebuilt() {
    let repo = common::fixture_copy("polyglot");
    let cache_dir = tempfile::tempdir().expect("temp");
    let store = CacheStore::in_dir(cache_dir.path(), &canonical(repo.path()));
    let (host, _) = load_with(repo.path(), &store);
    host.save_cache().expect("saves");
    let expected = host.snapshot().state_dump();
    let good = std::fs::read(store.path()).expect("cache file");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let mut old_version = good.clone();
    old_version[8] = old_version[8].wrapping_add(1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped byte", flipped),
        ("truncated", good[..good.len() - 7].to_vec()),
        ("old format", old_version),
        ("garbage", b"not a cache at all".to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        std::fs::write(store.path(), &bytes).expect("write");
        let (rebuilt, report) = load_with(repo.path(), &store);
        assert!(
            matches!(report.cache, CacheStatus::Discarded(_)),
            "{what}: {:?}",
            report.cache
        );
        assert_eq!(report.parsed, report.files, "{what}: everything reparsed");
        assert!(report.cache_outdated, "{what}: will be rewritten");
        assert_eq!(rebuilt.snapshot().state_dump(), expected, "{what}");
        assert!(!store.path().exists(), "{what}: a bad cache is removed");
        rebuilt.save_cache().expect("rewrites");
    }

    // A cache made for another workspace (same file name) is not used.
    let other = common::fixture_copy("polyglot");
    std::fs::copy(
        store.path(),
        CacheStore::in_dir(cache_dir.path(), &canonical(other.path())).path(),
    )
    .expect("copy");
    let other_store = CacheStore::in_dir(cache_dir.path(), &canonical(other.path()));
    let (_, report) = load_with(other.path(), &other_store);
    assert!(
        matches!(report.cache, CacheStatus::Discarded(_)),
        "{:?}",
        report.cache
    );
}

#[test]
fn cache_writes_are_atomic_renames() {
    let repo = common::fixture_copy("polyglot");
    let cache_dir = tempfile::tempdir().expect("temp");
    let store = CacheStore::in_dir(
        &cache_dir.path().join("nested/dir"),
        &canonical(repo.path()),
    );
    let (host, _) = load_with(repo.path(), &store);
    host.save_cache().expect("creates directories and saves");
    let names: Vec<String> = std::fs::read_dir(store.path().parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left behind: {names:?}");
    assert!(names[0].ends_with(".idx"));
}
