//! Fuzz-style robustness: random answers assembled from the format's own pieces (markers of every length,
//! fences, paths including hostile ones, `<think>`, CRLF, real file lines, random bytes) must never panic the
//! parser or the patch builder, and every diff that comes out must be accepted by `git apply --check`.

use std::fs;

use qwen_ls::tasks::patch::{parse_answer, prepare, PatchOptions};

use super::support::{git_apply, git_init, RustChecker};

/// xorshift64*: deterministic, dependency-free randomness, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FILE: &str = "fn a() {\n    one();\n}\n\nfn b() {\n    two();\n}\n";

const PIECES: &[&str] = &[
    "<<<<<<< SEARCH",
    "<<<<< SEARCH",
    "<<<<<<<<< search",
    "<<<< SEARCH",
    "=======",
    "=====",
    "==========",
    ">>>>>>> REPLACE",
    ">>>>> REPLACE",
    ">>>>>>>>>> REPLACE",
    "```",
    "```rust",
    "```rust src/a.rs",
    "~~~",
    "src/a.rs",
    "src/b.rs",
    "`src/a.rs`",
    "**src/new.rs**",
    "### File: src/a.rs",
    "../x.rs",
    "/etc/passwd",
    ".git/config",
    "src\\a.rs",
    "src/a.rs/x",
    "<think>",
    "</think>",
    "fn a() {",
    "    one();",
    "}",
    "",
    "fn b() {",
    "    two();",
    "  one();  ",
    "\t}",
    "Here is the fix:",
    "é ü 日本",
    "\u{feff}",
    "\r",
];

fn random_answer(rng: &mut Rng) -> String {
    let mut answer = String::new();
    for _ in 0..rng.below(40) {
        if rng.below(10) == 0 {
            let len = rng.below(12);
            answer
                .extend((0..len).map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?')));
        } else {
            answer.push_str(rng.pick(PIECES));
        }
        answer.push_str(if rng.below(8) == 0 { "\r\n" } else { "\n" });
    }
    answer
}

#[test]
fn parser_never_panics_on_random_text() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let answer = random_answer(&mut rng);
        let _ = parse_answer(&answer);
        let cut = rng.below(answer.len() + 1);
        if answer.is_char_boundary(cut) {
            let _ = parse_answer(&answer[..cut]);
        }
    }
}

/// A mostly well-formed answer: 1–3 blocks whose SEARCH is a slice of the real file, then mutated (trailing
/// whitespace, indentation, a dropped line, blank edges, empty) and wrapped in varying decoration.
fn structured_answer(rng: &mut Rng) -> String {
    let file_lines: Vec<&str> = FILE.lines().collect();
    let mut answer = String::new();
    for _ in 0..1 + rng.below(3) {
        let path = rng.pick(&[
            "src/a.rs",
            "src/b.rs",
            "src/new.rs",
            "`src/a.rs`",
            "src/a.rs:",
            "src/dir/new.rs",
        ]);
        let start = rng.below(file_lines.len());
        let len = 1 + rng.below(4).min(file_lines.len() - start - 1);
        let mut search: Vec<String> = file_lines[start..start + len]
            .iter()
            .map(|l| l.to_string())
            .collect();
        match rng.below(8) {
            0 => search.iter_mut().for_each(|l| l.push_str("  ")),
            1 => search.iter_mut().for_each(|l| l.insert_str(0, "    ")),
            2 => search
                .iter_mut()
                .for_each(|l| *l = l.trim_start().to_string()),
            3 if search.len() > 1 => {
                search.remove(rng.below(search.len()));
            }
            4 => search.push(String::new()),
            5 => search.clear(),
            _ => {}
        }
        let replace: Vec<&str> = (0..rng.below(4))
            .map(|_| {
                rng.pick(&[
                    "fn c() {}",
                    "    three();",
                    "",
                    "}",
                    "\tfour();",
                    "// é",
                    "fn a() {",
                ])
            })
            .collect();
        let fence = rng.pick(&["```rust\n", "```\n", ""]);
        answer.push_str(rng.pick(&["", "Here you go:\n", "<think>\nsrc/a.rs\n</think>\n"]));
        answer.push_str(&format!("{path}\n{fence}<<<<<<< SEARCH\n"));
        search
            .iter()
            .for_each(|l| answer.push_str(&format!("{l}\n")));
        answer.push_str("=======\n");
        replace
            .iter()
            .for_each(|l| answer.push_str(&format!("{l}\n")));
        answer.push_str(">>>>>>> REPLACE\n");
        if !fence.is_empty() {
            answer.push_str("```\n");
        }
    }
    if rng.below(4) == 0 {
        answer = answer.replace('\n', "\r\n");
    }
    answer
}

#[test]
fn builder_never_panics_and_its_diffs_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("repo");
    fs::create_dir_all(root.join("src")).expect("mkdir");
    fs::write(root.join("src/a.rs"), FILE).expect("write");
    fs::write(root.join("src/b.rs"), FILE.replace('\n', "\r\n").trim_end()).expect("write");
    git_init(&root);
    // `QWEN_LS_FUZZ_ROUNDS=N` runs N rounds and checks every diff with git (slow; for deeper local runs).
    let deep: Option<usize> = std::env::var("QWEN_LS_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut rng = Rng(42);
    let (mut produced, mut checked) = (0, 0);
    for round in 0..deep.unwrap_or(4_000) {
        let answer = if round % 2 == 0 {
            random_answer(&mut rng)
        } else {
            structured_answer(&mut rng)
        };
        let Ok(patch) = prepare(&root, &answer, &PatchOptions::new(&RustChecker)) else {
            continue;
        };
        let diff = &patch.outcome().diff;
        if diff.is_empty() {
            continue;
        }
        produced += 1;
        if deep.is_some() {
            // Our own apply must agree with git's on a fresh copy.
            check_against_git(&root, &patch, &answer);
        }
        // Running git is slow: check a sample of the produced diffs.
        if deep.is_some() || (produced % 10 == 0 && checked < 60) {
            checked += 1;
            let (ok, out) = git_apply(&root, diff, &["--check"]);
            assert!(ok, "round {round}: git apply --check rejected\n{out}\n--- answer\n{answer}\n--- diff\n{diff}");
        }
    }
    assert!(
        produced > 100,
        "the generator should produce valid patches often, got {produced}"
    );
}

/// Applies `patch` with git and with our writer on two copies of `root` and compares the trees.
fn check_against_git(
    root: &std::path::Path,
    patch: &qwen_ls::tasks::patch::PreparedPatch,
    answer: &str,
) {
    use super::support::{copy_dir, snapshot};
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    copy_dir(root, &ours);
    copy_dir(root, &theirs);
    let again =
        prepare(&ours, answer, &PatchOptions::new(&RustChecker)).expect("same answer, same tree");
    assert_eq!(again.outcome(), patch.outcome());
    again.apply().expect("our apply");
    let (ok, out) = git_apply(&theirs, &patch.outcome().diff, &[]);
    assert!(ok, "git apply: {out}\n{answer}");
    assert_eq!(snapshot(&ours), snapshot(&theirs), "{answer}");
}
