//! `--apply` semantics on real files: all-or-nothing when a file changed after it was read, stale content
//! against what the model saw, permissions kept, failure in a read-only directory, and exit codes.

use std::fs;
use std::path::Path;

use qwen_ls::tasks::patch::{
    exit_status, prepare, ApplyError, FileStatus, NoSyntaxCheck, PatchError, PatchExit,
    PatchOptions, SeenFiles,
};

use super::support::snapshot;

const ANSWER: &str =
    "a.rs\n```rust\n<<<<<<< SEARCH\nfn a() {}\n=======\nfn a() { 1 }\n>>>>>>> REPLACE\n```\n\n\
b.rs\n```rust\n<<<<<<< SEARCH\nfn b() {}\n=======\nfn b() { 2 }\n>>>>>>> REPLACE\n```\n\n\
new/dir/c.rs\n```rust\n<<<<<<< SEARCH\n=======\nfn c() {}\n>>>>>>> REPLACE\n```\n";

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.rs"), "fn a() {}\n").expect("write");
    fs::write(dir.path().join("b.rs"), "fn b() {}\n").expect("write");
    dir
}

fn options() -> PatchOptions<'static> {
    PatchOptions::new(&NoSyntaxCheck)
}

#[test]
fn applies_all_files_and_reports_them() {
    let dir = tree();
    let patch = prepare(dir.path(), ANSWER, &options()).expect("prepares");
    let outcome = patch.outcome();
    let files: Vec<(&str, FileStatus)> = outcome
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.status))
        .collect();
    assert_eq!(
        files,
        [
            ("a.rs", FileStatus::Modified),
            ("b.rs", FileStatus::Modified),
            ("new/dir/c.rs", FileStatus::Added)
        ]
    );
    assert_eq!(
        (
            outcome.stats.blocks,
            outcome.stats.files,
            outcome.stats.lines_added,
            outcome.stats.lines_removed
        ),
        (3, 3, 3, 2)
    );
    assert_eq!(outcome.exit(), PatchExit::Produced);
    patch.apply().expect("applies");
    assert_eq!(
        fs::read_to_string(dir.path().join("a.rs")).expect("a"),
        "fn a() { 1 }\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("new/dir/c.rs")).expect("c"),
        "fn c() {}\n"
    );
}

#[test]
fn file_changed_between_read_and_write_means_nothing_is_written() {
    let dir = tree();
    let patch = prepare(dir.path(), ANSWER, &options()).expect("prepares");
    fs::write(
        dir.path().join("b.rs"),
        "fn b() {} // edited by the user meanwhile\n",
    )
    .expect("write");
    let before = snapshot(dir.path());
    let err = patch.apply().expect_err("refused");
    assert!(
        matches!(&err, PatchError::Apply(ApplyError::Changed { paths }) if paths == &["b.rs"]),
        "{err}"
    );
    assert_eq!(err.exit(), PatchExit::UsageOrEnvironment);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "nothing written, no temporary files, no new directory"
    );
    assert!(!dir.path().join("new").exists());
}

#[test]
fn new_file_appearing_before_write_means_nothing_is_written() {
    let dir = tree();
    let patch = prepare(dir.path(), ANSWER, &options()).expect("prepares");
    fs::create_dir_all(dir.path().join("new/dir")).expect("mkdir");
    fs::write(dir.path().join("new/dir/c.rs"), "// someone else's\n").expect("write");
    let before = snapshot(dir.path());
    let err = patch.apply().expect_err("refused");
    assert!(
        matches!(&err, PatchError::Apply(ApplyError::Changed { paths }) if paths == &["new/dir/c.rs"]),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn content_differing_from_what_the_model_saw_is_stale() {
    let dir = tree();
    let mut seen = SeenFiles::default();
    seen.record("a.rs", "fn a() {}\n");
    seen.record("b.rs", "fn b() {} // the version in the prompt\n");
    let options = PatchOptions {
        seen: Some(&seen),
        ..options()
    };
    let err = prepare(dir.path(), ANSWER, &options).expect_err("stale");
    assert!(
        matches!(&err, PatchError::Stale { paths } if paths == &["b.rs"]),
        "{err}"
    );
    assert_eq!(err.exit(), PatchExit::UsageOrEnvironment);
    assert_eq!(
        err.to_string(),
        "`b.rs` changed since the model saw it; nothing was written"
    );
}

#[cfg(unix)]
#[test]
fn permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tree();
    fs::set_permissions(dir.path().join("a.rs"), fs::Permissions::from_mode(0o750)).expect("chmod");
    prepare(dir.path(), ANSWER, &options())
        .expect("prepares")
        .apply()
        .expect("applies");
    let mode = fs::metadata(dir.path().join("a.rs"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);
}

/// Whether this process can write into a directory without write permission (root, CAP_DAC_OVERRIDE): then a
/// read-only directory cannot make a write fail and the test has nothing to test.
#[cfg(unix)]
fn bypasses_permissions(read_only: &Path) -> bool {
    let probe = read_only.join(".probe");
    let bypass = fs::write(&probe, "").is_ok();
    let _ = fs::remove_file(&probe);
    bypass
}

#[cfg(unix)]
#[test]
fn read_only_directory_fails_without_touching_anything() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tree();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).expect("mkdir");
    fs::write(locked.join("d.rs"), "fn d() {}\n").expect("write");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).expect("chmod");
    if bypasses_permissions(&locked) {
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
        eprintln!("skipped: this process ignores directory permissions (rollback is covered by a unit test)");
        return;
    }
    let answer = format!("{ANSWER}\nlocked/d.rs\n<<<<<<< SEARCH\nfn d() {{}}\n=======\nfn d() {{ 4 }}\n>>>>>>> REPLACE\n");
    let patch = prepare(dir.path(), &answer, &options()).expect("prepares");
    let before = snapshot(dir.path());
    let err = patch.apply().expect_err("read-only directory");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
    assert!(
        matches!(&err, PatchError::Apply(ApplyError::Prepare { path, .. }) if path == "locked/d.rs"),
        "{err}"
    );
    assert!(err.to_string().starts_with("nothing was written"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    assert!(!dir.path().join("new").exists());
}

#[test]
fn exit_codes_follow_the_documented_table() {
    let dir = tree();
    let produced = prepare(dir.path(), ANSWER, &options()).map(|p| p.into_outcome());
    assert_eq!(exit_status(&produced).code(), 0);
    let same = "a.rs\n<<<<<<< SEARCH\nfn a() {}\n=======\nfn a() {}\n>>>>>>> REPLACE\n";
    let unchanged = prepare(dir.path(), same, &options()).map(|p| p.into_outcome());
    assert_eq!(exit_status(&unchanged).code(), 1);
    let prose = prepare(dir.path(), "I cannot do that.", &options()).map(|p| p.into_outcome());
    assert_eq!(exit_status(&prose).code(), 2);
    let no_root =
        prepare(&dir.path().join("missing"), ANSWER, &options()).map(|p| p.into_outcome());
    assert_eq!(exit_status(&no_root).code(), 3);
}

/// Small models often answer with the whole new file in a fence instead of SEARCH/REPLACE blocks. That is
/// taken as a rewrite only for files the model was shown whole, never for excerpts (which would truncate the
/// file) or files it never saw.
#[test]
fn whole_file_answers_rewrite_only_files_shown_whole() {
    let dir = tree();
    let answer = "Here is the updated file:\n\n`a.rs`\n```rust\nfn a() {\n    1\n}\n```\n\n\
                  b.rs\n```rust\nfn b() { 2 }\n```\n\n```sh\ncargo test\n```\n";
    let mut seen = SeenFiles::default();
    seen.record_whole("a.rs", "fn a() {}\n");
    seen.record("b.rs", "fn b() {}\n");
    let whole = PatchOptions {
        seen: Some(&seen),
        ..options()
    };
    let patch = prepare(dir.path(), answer, &whole).expect("a.rs is rewritten");
    let warnings: Vec<String> = patch
        .outcome()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        ["`a.rs`: the answer rewrote the whole file instead of using SEARCH/REPLACE blocks; review the diff"]
    );
    patch.apply().expect("applies");
    assert_eq!(
        fs::read_to_string(dir.path().join("a.rs")).expect("read"),
        "fn a() {\n    1\n}\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("b.rs")).expect("read"),
        "fn b() {}\n"
    );

    // Without a whole file shown, the same answer is no patch at all.
    let mut partial = SeenFiles::default();
    partial.record("a.rs", "fn a() {}\n");
    let excerpt = PatchOptions {
        seen: Some(&partial),
        ..options()
    };
    let err = prepare(dir.path(), answer, &excerpt).expect_err("no blocks");
    assert!(matches!(err, PatchError::Parse(_)), "{err}");
    assert_eq!(err.exit(), PatchExit::InvalidAnswer);
}
