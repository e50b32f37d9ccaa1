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

/// Java came as one row of the syntax table plus its tag query: its files are parsed, tagged and imported
/// like the other languages'.
#[test]
fn java_files_get_symbols_references_and_imports() {
    let repo = tempfile::tempdir().expect("temp");
    std::fs::create_dir(repo.path().join(".git")).expect("mark the root");
    let source = "package shapes;\n\nimport java.util.List;\n\npublic interface Shape {\n    double area();\n}\n\n\
                  public record Circle(double radius) implements Shape {\n    public double area() {\n        \
                  return Math.PI * radius * radius;\n    }\n}\n\nenum Unit { CM, INCH }\n\n\
                  class Totals {\n    private final List<Shape> shapes;\n\n    Totals(List<Shape> shapes) {\n        \
                  this.shapes = shapes;\n    }\n\n    double total() {\n        \
                  return shapes.stream().mapToDouble(Shape::area).sum() + new Circle(1.0).area();\n    }\n}\n";
    std::fs::write(repo.path().join("Shapes.java"), source).expect("write");
    let host = common::load(repo.path());
    let snapshot = host.snapshot();
    let file = snapshot.file("Shapes.java").expect("indexed");
    assert_eq!(file.language.map(|l| l.name), Some("java"));
    let definitions: Vec<(String, &str)> = file
        .definitions
        .iter()
        .map(|d| (d.name.to_string(), d.kind.as_str()))
        .collect();
    for expected in [
        ("Shape", "interface"),
        ("area", "method"),
        ("Circle", "class"),
        ("Unit", "enum"),
        ("Totals", "class"),
        ("shapes", "variable"),
        ("total", "method"),
    ] {
        assert!(
            definitions
                .iter()
                .any(|(n, k)| (n.as_str(), *k) == expected),
            "{expected:?} in {definitions:?}"
        );
    }
    let references: Vec<(String, &str)> = file
        .references
        .iter()
        .map(|r| (r.name.to_string(), r.kind.as_str()))
        .collect();
    for expected in [
        ("Circle", "class"),
        ("Shape", "implementation"),
        ("area", "call"),
    ] {
        assert!(
            references.iter().any(|(n, k)| (n.as_str(), *k) == expected),
            "{expected:?} in {references:?}"
        );
    }
    let imports: Vec<&str> = file.imports.iter().map(|i| &*i.path).collect();
    assert_eq!(imports, ["java.util.List"]);
}
