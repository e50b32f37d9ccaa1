//! The exact token counter against its oracle, the engine's `tokenizers`-based tokenizer
//! (`encode_with_specials`: what `QwenTokenCounter` counted before it had its own pipeline): the committed
//! corpus, source files from the cargo registry, and random text built to hit every rule of the pre-tokenizer.
//! The counter must agree on every input, not on average.

use std::path::{Path, PathBuf};
use std::time::Instant;

use qwen_engine::Tokenizer;
use qwen_ls::context::TokenCounter;
use qwen_ls::token_count::QwenTokenCounter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn oracle() -> std::sync::Arc<Tokenizer> {
    Tokenizer::builtin().expect("built-in tokenizer")
}

fn reference_count(tokenizer: &Tokenizer, text: &str) -> usize {
    tokenizer
        .encode_with_specials(text)
        .expect("reference encodes")
        .len()
}

fn counter() -> &'static QwenTokenCounter {
    QwenTokenCounter::builtin().expect("counter")
}

#[track_caller]
fn assert_same(tokenizer: &Tokenizer, text: &str, what: &str) {
    let expected = reference_count(tokenizer, text);
    let got = counter().count(text);
    assert_eq!(got, expected, "{what}: {text:?}");
}

#[test]
fn corpus_counts_equal_the_committed_ids() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tokenizer");
    let ids: std::collections::HashMap<String, Vec<u32>> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("corpus_ids.json")).expect("corpus_ids.json"),
    )
    .expect("json");
    assert!(ids.len() >= 5);
    let tokenizer = oracle();
    let mut all = String::new();
    for (file, expected) in &ids {
        let text = std::fs::read_to_string(dir.join("corpus").join(file)).expect("corpus file");
        assert_eq!(counter().count(&text), expected.len(), "{file}");
        assert_same(&tokenizer, &text, file);
        all.push_str("<|file_sep|>");
        all.push_str(file);
        all.push('\n');
        all.push_str(&text);
    }
    assert_same(&tokenizer, &all, "the corpus as one packed text");
}

/// Pieces random text is assembled from: every class of the pre-tokenizer's regex, the characters NFC changes,
/// and added-token markup whole and broken.
const PIECES: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    " \n",
    "\u{b}",
    "\u{c}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{3000}",
    "\u{1680}",
    "\u{202f}",
    "'",
    "'s",
    "'S",
    "'ſ",
    "'t",
    "'re",
    "'RE",
    "'rE",
    "'ve",
    "'m",
    "'ll",
    "'lL",
    "'d",
    "'x",
    "'",
    "a",
    "Z",
    "word",
    "Hello",
    "_",
    "__init__",
    "x1",
    "0",
    "42",
    "3.14",
    "٣",
    "Ⅷ",
    "½",
    "²",
    "{",
    "}",
    "()",
    "=>",
    "::",
    "->",
    "//",
    "/*",
    "*/",
    "#",
    "\"",
    "\\",
    "`",
    "~",
    "@",
    "é",
    "e\u{301}",
    "A\u{30a}",
    "\u{212b}",
    "\u{212a}",
    "\u{37e}",
    "\u{301}",
    "\u{308}\u{301}",
    "\u{327}",
    "o\u{308}\u{304}",
    "\u{1100}\u{1161}\u{11a8}",
    "한국어",
    "\u{1100}",
    "\u{1161}",
    "日本語",
    "中文",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "❤️",
    "\u{fe0f}",
    "\u{200d}",
    "\u{200b}",
    "ß",
    "ẞ",
    "ﬁ",
    "Ω",
    "Ω",
    "Ж",
    "ж",
    "عربي",
    "हिन्दी",
    "\u{94d}",
    "ก่",
    "\u{e000}",
    "\u{10ffff}",
    "\u{1f600}",
    "𝔘",
    "\u{feff}",
    "\u{fffd}",
    "\0",
    "\u{7f}",
    "\u{1b}",
    "<|file_sep|>",
    "<|repo_name|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|endoftext|>",
    "<tool_call>",
    "</think>",
    "<think>",
    "<|",
    "|>",
    "<|file_sep",
    "<",
    "<<|im_start|>",
    "<|fim_pad|>|>",
];

fn random_char(rng: &mut StdRng) -> char {
    loop {
        let code = match rng.random_range(0..4) {
            0 => rng.random_range(0..0x80),
            1 => rng.random_range(0x80..0x800),
            2 => rng.random_range(0x800..0x1_0000),
            _ => rng.random_range(0x1_0000..0x11_0000),
        };
        if let Some(c) = char::from_u32(code) {
            return c;
        }
    }
}

fn random_text(rng: &mut StdRng, parts: usize) -> String {
    let mut text = String::new();
    for _ in 0..parts {
        if rng.random_range(0..4) == 0 {
            text.push(random_char(rng));
        } else {
            text.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        }
    }
    text
}

#[test]
fn random_text_counts_equal_the_reference() {
    let tokenizer = oracle();
    let mut rng = StdRng::seed_from_u64(0x51_7e_c0_de);
    for round in 0..6_000 {
        let parts = if round % 100 == 0 {
            600
        } else {
            rng.random_range(0..40)
        };
        let text = random_text(&mut rng, parts);
        assert_same(&tokenizer, &text, "random text");
    }
}

#[test]
fn long_pieces_and_edge_cases_equal_the_reference() {
    let tokenizer = oracle();
    let mut cases: Vec<String> = vec![
        String::new(),
        " ".repeat(1000),
        format!("{}x", " ".repeat(999)),
        "\n".repeat(300),
        "\r\n".repeat(200),
        " \t".repeat(200) + "\n",
        "=".repeat(777),
        "a".repeat(5000),
        "ab".repeat(3000),
        "Supercalifragilisticexpialidocious".repeat(40),
        "日本語".repeat(500),
        "😀".repeat(300),
        "e\u{301}".repeat(300),
        "\u{1100}\u{1161}".repeat(300),
        "0123456789".repeat(100),
        "<|file_sep|>".repeat(50),
        "<|file_sep".repeat(50),
        "'s'S'ſ're've'll'd'm't".repeat(50),
        "trailing spaces   \nand tabs\t\t\n  \r\n\r\n".repeat(20),
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..20 {
        cases.push((0..3000).map(|_| random_char(&mut rng)).collect());
    }
    for text in &cases {
        assert_same(&tokenizer, text, "edge case");
    }
}

/// Up to `per_crate` bytes of source text from each crate of the cargo registry, in name order (the registry
/// is what the build downloaded; absent on a machine that has none).
fn registry_sample(per_crate: usize, total: usize) -> Vec<(PathBuf, String)> {
    let Some(home) = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    else {
        return Vec::new();
    };
    let mut crates: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|index| {
            std::fs::read_dir(index.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|entry| entry.path())
        .collect();
    crates.sort();
    let mut sample = Vec::new();
    let mut taken = 0;
    for krate in crates {
        let mut files = Vec::new();
        collect_sources(&krate, &mut files);
        files.sort();
        let mut from_crate = 0;
        for file in files {
            if from_crate >= per_crate || taken >= total {
                break;
            }
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            from_crate += text.len();
            taken += text.len();
            sample.push((file, text));
        }
    }
    sample
}

fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_sources(&path, out);
        } else if kind.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("rs" | "py" | "ts" | "js" | "go" | "c" | "h" | "md" | "toml" | "txt")
            )
        {
            out.push(path);
        }
    }
}

fn check_registry(per_crate: usize, total: usize) {
    let tokenizer = oracle();
    let sample = registry_sample(per_crate, total);
    let mut tokens = 0;
    for (path, text) in &sample {
        let expected = reference_count(&tokenizer, text);
        assert_eq!(counter().count(text), expected, "{}", path.display());
        tokens += expected;
    }
    eprintln!(
        "{} registry files, {} bytes, {tokens} tokens: all counts equal",
        sample.len(),
        sample.iter().map(|(_, t)| t.len()).sum::<usize>()
    );
}

#[test]
fn registry_sources_count_like_the_reference() {
    check_registry(8 << 10, 3 << 19);
}

/// Every source file of the registry (minutes in a debug build):
/// `cargo test --release -p qwen-ls --test it -- --ignored --nocapture registry_sources_all`.
#[test]
#[ignore]
fn registry_sources_all_count_like_the_reference() {
    check_registry(usize::MAX, usize::MAX);
}

/// Counting throughput against the `tokenizers` crate on the same text, in one run:
/// `cargo test --release -p qwen-ls --test it -- --ignored --nocapture token_count_throughput`.
#[test]
#[ignore]
fn token_count_throughput() {
    let texts: Vec<String> = registry_sample(64 << 10, 8 << 20)
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert!(!texts.is_empty(), "no cargo registry to measure on");
    let bytes: usize = texts.iter().map(String::len).sum();
    let tokenizer = oracle();

    let started = Instant::now();
    let reference: usize = texts.iter().map(|t| reference_count(&tokenizer, t)).sum();
    let reference_time = started.elapsed().as_secs_f64();

    // A fresh counter: its per-thread memo starts empty, as in a new process.
    let build_started = Instant::now();
    let fresh =
        QwenTokenCounter::from_json(qwen_engine::tokenizer::builtin_json()).expect("counter");
    let build_time = build_started.elapsed().as_secs_f64();
    let started = Instant::now();
    let cold: usize = texts.iter().map(|t| fresh.count(t)).sum();
    let cold_time = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let warm: usize = texts.iter().map(|t| fresh.count(t)).sum();
    let warm_time = started.elapsed().as_secs_f64();
    assert_eq!(cold, reference);
    assert_eq!(warm, reference);

    let rate = |seconds: f64| reference as f64 / seconds.max(1e-9) / 1e6;
    println!(
        "{} files, {:.1} MB, {reference} tokens, one thread",
        texts.len(),
        bytes as f64 / 1e6
    );
    println!("| counter | M tokens/s | ratio |");
    println!("|---|---:|---:|");
    println!(
        "| tokenizers (encode_with_specials) | {:.2} | 1.00x |",
        rate(reference_time)
    );
    println!(
        "| exact counter, cold memo | {:.2} | {:.1}x |",
        rate(cold_time),
        reference_time / cold_time
    );
    println!(
        "| exact counter, warm memo | {:.2} | {:.1}x |",
        rate(warm_time),
        reference_time / warm_time
    );
    println!(
        "counter construction (parse tokenizer.json, tables): {:.0} ms",
        build_time * 1e3
    );
}
