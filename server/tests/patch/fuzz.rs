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

#[test]
fn builder_never_panics_and_its_diffs_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("repo");
    fs::create_dir_all(root.join("src")).expect("mkdir");
    fs::write(root.join("src/a.rs"), FILE).expect("write");
    fs::write(root.join("src/b.rs"), FILE.replace('\n', "\r\n")).expect("write");
    git_init(&root);
    let mut rng = Rng(42);
    let mut checked = 0;
    for round in 0..3_000 {
        let answer = random_answer(&mut rng);
        let Ok(patch) = prepare(&root, &answer, &PatchOptions::new(&RustChecker)) else {
            continue;
        };
        let diff = &patch.outcome().diff;
        // Running git is slow: check a sample of the produced diffs.
        if !diff.is_empty() && checked < 40 {
            checked += 1;
            let (ok, out) = git_apply(&root, diff, &["--check"]);
            assert!(ok, "round {round}: git apply --check rejected\n{out}\n--- answer\n{answer}\n--- diff\n{diff}");
        }
    }
}
