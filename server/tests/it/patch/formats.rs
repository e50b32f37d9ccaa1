//! The answer formats models actually write — unified diffs, whole files, blocks without a path when one file is
//! in play — and the truncation guard on whole-file answers, through `prepare` with the server's real
//! tree-sitter checker.

use std::fs;

use qwen_ls::tasks::patch::{
    prepare, AnswerFormat, EditErrorKind, PatchError, PatchExit, PatchOptions, SeenFiles,
};
use qwen_ls::tasks::TreeSitterChecker;

/// Ten three-line functions.
fn ten_functions() -> String {
    (0..10)
        .map(|i| format!("pub fn f{i}() -> u32 {{\n    {i}\n}}\n\n"))
        .collect()
}

fn whole_file_answer(content: &str) -> String {
    format!("Here is the updated file:\n\nsrc/lib.rs\n```rust\n{content}```\n")
}

fn setup(content: &str) -> (tempfile::TempDir, SeenFiles) {
    let dir = tempfile::tempdir().expect("temp");
    fs::create_dir_all(dir.path().join("src")).expect("src");
    fs::write(dir.path().join("src/lib.rs"), content).expect("write");
    let mut seen = SeenFiles::default();
    seen.record_whole("src/lib.rs", content);
    (dir, seen)
}

/// The attack of the trust issue: asked to document one function, a small model answers with that function
/// alone in a fence named after the file. Read as the whole file it would delete 80% of it: refused, nothing
/// written, exit 2.
#[test]
fn a_whole_file_answer_that_drops_80_percent_of_the_file_is_refused() {
    let original = ten_functions();
    let (dir, seen) = setup(&original);
    let kept: String = original
        .split("\n\n")
        .take(2)
        .map(|f| format!("/// Doc.\n{f}\n\n"))
        .collect();
    let options = PatchOptions {
        seen: Some(&seen),
        instruction: "Add documentation to f0 and f1",
        ..PatchOptions::new(&TreeSitterChecker)
    };
    let err = prepare(dir.path(), &whole_file_answer(&kept), &options).expect_err("refused");
    assert_eq!(err.exit(), PatchExit::InvalidAnswer);
    let PatchError::Edits(errors) = &err else {
        panic!("{err}");
    };
    let EditErrorKind::NotWhole(not_whole) = &errors[0].kind else {
        panic!("{err}");
    };
    assert_eq!((not_whole.lost_lines, not_whole.total_lines), (22, 30));
    assert_eq!(not_whole.dropped.len(), 8, "{not_whole}");
    assert!(err.to_string().contains("drop `function f2`"), "{err}");
    assert_eq!(
        fs::read_to_string(dir.path().join("src/lib.rs")).expect("read"),
        original
    );

    // The same answer is a whole file when the instruction asks for exactly that.
    let removal = PatchOptions {
        instruction: "Remove f2, f3, f4, f5, f6, f7, f8 and f9; document f0 and f1",
        ..options
    };
    let patch = prepare(dir.path(), &whole_file_answer(&kept), &removal).expect("named removals");
    assert_eq!(patch.outcome().format, AnswerFormat::WholeFiles);

    // A whole file that keeps every function is a rewrite, with a warning.
    let edited = original.replace("    3\n", "    33\n");
    let patch = prepare(dir.path(), &whole_file_answer(&edited), &options).expect("whole");
    assert_eq!(patch.outcome().stats.lines_added, 1);
    assert!(patch.outcome().warnings[0]
        .to_string()
        .contains("rewrote the whole file"));
}

/// A unified diff is read hunk by hunk and placed by content, whatever its line numbers say.
#[test]
fn unified_diff_answers_are_placed_by_content() {
    let original = ten_functions();
    let (dir, _) = setup(&original);
    let answer = "```diff\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -99,3 +99,3 @@\n pub fn f4() -> u32 {\n-    4\n+    40\n }\n```\n";
    let patch = prepare(dir.path(), answer, &PatchOptions::new(&TreeSitterChecker)).expect("diff");
    assert_eq!(patch.outcome().format, AnswerFormat::UnifiedDiff);
    patch.apply().expect("applies");
    assert_eq!(
        fs::read_to_string(dir.path().join("src/lib.rs")).expect("read"),
        original.replace("    4\n", "    40\n")
    );
}

/// With one file in play, a block or a fence without a path edits it; without one, it is an error.
#[test]
fn the_one_file_in_play_needs_no_path() {
    let original = "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\nfn sub(a: i32, b: i32) -> i32 {\n    a - b\n}\n";
    let (dir, seen) = setup(original);
    let options = PatchOptions {
        seen: Some(&seen),
        default_path: Some("src/lib.rs"),
        instruction: "rename add to sum",
        ..PatchOptions::new(&TreeSitterChecker)
    };
    let block = "```rust\n<<<<<<< SEARCH\nfn add(a: i32, b: i32) -> i32 {\n=======\nfn sum(a: i32, b: i32) -> i32 {\n>>>>>>> REPLACE\n```\n";
    let patch = prepare(dir.path(), block, &options).expect("block");
    assert!(
        patch.outcome().diff.contains("+fn sum("),
        "{}",
        patch.outcome().diff
    );
    // The issue's measured answer: the whole corrected file in an unnamed fence.
    let fence = format!("```rust\n{}```\n", original.replace("fn add", "fn sum"));
    let patch = prepare(dir.path(), &fence, &options).expect("unnamed fence");
    assert_eq!(patch.outcome().format, AnswerFormat::WholeFiles);
    // Without a file in play, neither is an edit.
    let anywhere = PatchOptions {
        default_path: None,
        ..options
    };
    assert_eq!(
        prepare(dir.path(), block, &anywhere)
            .expect_err("no path")
            .exit(),
        PatchExit::InvalidAnswer
    );
    assert!(prepare(dir.path(), &fence, &anywhere).is_err());
}

/// A whole-file fence for a file that does not exist creates it; a bare file name that is the tail of one file
/// the model saw means that file, never a second copy at the root.
#[test]
fn whole_file_fences_create_new_files_and_resolve_bare_names() {
    let original = "pub fn a() {}\n";
    let (dir, seen) = setup(original);
    let options = PatchOptions {
        seen: Some(&seen),
        ..PatchOptions::new(&TreeSitterChecker)
    };
    let answer = "lib.rs\n```rust\npub fn a() {}\npub fn b() {}\n```\n\nsrc/extra.rs\n```rust\npub fn c() {}\n```\n";
    let patch = prepare(dir.path(), answer, &options).expect("whole files");
    let files: Vec<&str> = patch
        .outcome()
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(files, ["src/extra.rs", "src/lib.rs"]);
    patch.apply().expect("applies");
    assert!(!dir.path().join("lib.rs").exists());
    assert_eq!(
        fs::read_to_string(dir.path().join("src/lib.rs")).expect("read"),
        "pub fn a() {}\npub fn b() {}\n"
    );
}

/// A misplaced path (`src/game.py` for `game.py`, as the default model wrote it in the benchmark) edits the only
/// file of that name the model saw, with a warning; with two such files it is not guessed.
#[test]
fn a_misplaced_path_edits_the_only_namesake_the_model_saw() {
    let dir = tempfile::tempdir().expect("temp");
    fs::write(dir.path().join("game.py"), "x = 1\n").expect("write");
    let mut seen = SeenFiles::default();
    seen.record_whole("game.py", "x = 1\n");
    let options = PatchOptions {
        seen: Some(&seen),
        ..PatchOptions::new(&TreeSitterChecker)
    };
    let block =
        "src/game.py\n```python\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n";
    let patch = prepare(dir.path(), block, &options).expect("guessed");
    assert_eq!(patch.outcome().files[0].path, "game.py");
    assert_eq!(
        patch.outcome().warnings[0].to_string(),
        "`src/game.py` does not exist; the answer's edit went to `game.py`, the only file of that name the model was shown"
    );
    let whole = "src/game.py\n```python\nx = 3\n```\n";
    let patch = prepare(dir.path(), whole, &options).expect("whole, guessed");
    assert_eq!(patch.outcome().files[0].path, "game.py");
    assert!(!dir.path().join("src").exists());
    // A path that does not resolve inside the root (a leading `/`, a climb out) is guessed the same way: only
    // ever to a file the model was shown.
    for written in ["/game.py", "/src/game.py", "../elsewhere/game.py"] {
        let whole = format!("{written}\n```python\nx = 4\n```\n");
        let patch = prepare(dir.path(), &whole, &options).expect(written);
        assert_eq!(patch.outcome().files[0].path, "game.py", "{written}");
    }
    let unseen = "/src/other.py\n```python\nx = 5\n```\n";
    let err = prepare(dir.path(), unseen, &options).expect_err("no namesake seen: no edit");
    assert_eq!(err.exit(), PatchExit::InvalidAnswer);

    fs::create_dir(dir.path().join("lib")).expect("dir");
    fs::write(dir.path().join("lib/game.py"), "y = 1\n").expect("write");
    seen.record_whole("lib/game.py", "y = 1\n");
    let options = PatchOptions {
        seen: Some(&seen),
        ..PatchOptions::new(&TreeSitterChecker)
    };
    let err = prepare(dir.path(), block, &options).expect_err("two namesakes: no guess");
    assert_eq!(err.exit(), PatchExit::InvalidAnswer);
}
