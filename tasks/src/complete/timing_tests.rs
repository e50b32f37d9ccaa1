//! Timing of the stop rules on a large document, printed (run with `--nocapture`), never asserted: the
//! streaming checker against a naive baseline that reparses the whole document with the completion inserted
//! at every line end.

// Printing the timings is this module's job.
#![allow(clippy::print_stderr)]

use std::time::{Duration, Instant};

use qwen_syntax::LanguageSpec;

use super::CompletionSession;

/// A Rust document of `functions` small functions, optionally all inside one `impl` block.
fn big_document(functions: usize, in_impl: bool) -> (String, usize) {
    let indent = if in_impl { "    " } else { "" };
    let mut doc = String::from(if in_impl { "impl Big {\n" } else { "" });
    let mut cursor = 0;
    for i in 0..functions {
        doc.push_str(&format!(
            "{indent}fn f{i}(x: u64) -> u64 {{\n{indent}    let y = x * {i};\n{indent}    if y > 10 {{\n{indent}        return y - 1;\n{indent}    }}\n{indent}    "
        ));
        if i == functions / 2 {
            cursor = doc.len();
        }
        doc.push_str(&format!("\n{indent}    y + 1\n{indent}}}\n\n"));
    }
    if in_impl {
        doc.push_str("}\n");
    }
    (doc, cursor)
}

/// Full parses timed for the naive baseline (the rest is extrapolated, to keep the test fast).
const NAIVE_SAMPLES: usize = 2;

const COMPLETION: &str = "let mut total = 0;\n        for k in 0..y {\n            total += k * 2;\n            if total > 1000 {\n                break;\n            }\n        }\n        let z = total.saturating_sub(3);\n        println!(\"{z}\");\n        z\n    }\n\n    fn after() {}\n";

/// Times of (session creation, all pushes, finish) and the number of deltas pushed.
fn streamed(
    doc: &str,
    cursor: usize,
    grammar: &'static LanguageSpec,
    completion: &str,
) -> ([Duration; 3], usize) {
    let start = Instant::now();
    let mut session = CompletionSession::new(doc, cursor, "rust", Some(grammar));
    let created = start.elapsed();
    let mut deltas = 0;
    let bytes = completion.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end = (i + 3).min(bytes.len());
        deltas += 1;
        if session.push(&completion[i..end]).is_some() {
            break;
        }
        i = end;
    }
    let pushed = start.elapsed();
    let _ = session.finish();
    (
        [created, pushed - created, start.elapsed() - pushed],
        deltas,
    )
}

fn naive(doc: &str, cursor: usize, grammar: &'static LanguageSpec, completion: &str) -> Duration {
    let start = Instant::now();
    // A few parses are enough to know the cost of one; extrapolate to every line end.
    let line_ends: Vec<usize> = completion.match_indices('\n').map(|(end, _)| end).collect();
    for &end in line_ends.iter().take(NAIVE_SAMPLES) {
        let text = format!("{}{}{}", &doc[..cursor], &completion[..end], &doc[cursor..]);
        let _ = qwen_syntax::parse(grammar, &text, None);
    }
    let sampled = line_ends.len().clamp(1, NAIVE_SAMPLES) as f64;
    start.elapsed().mul_f64(line_ends.len() as f64 / sampled)
}

#[test]
fn stop_rules_timing_on_a_large_document() {
    let grammar = crate::complete::golden_tests::grammar_for("rust").expect("in the syntax table");
    for (label, in_impl) in [
        ("2000 top-level fns", false),
        ("2000 methods in one impl", true),
    ] {
        let (doc, cursor) = big_document(2000, in_impl);
        let completion =
            COMPLETION.replace("\n    ", if in_impl { "\n        " } else { "\n    " });
        let ([created, pushed, finished], deltas) = streamed(&doc, cursor, grammar, &completion);
        let ours = created + pushed + finished;
        let baseline = naive(&doc, cursor, grammar, &completion);
        eprintln!(
            "stop rules, {label} ({} KiB): session {created:?} + {deltas} deltas {pushed:?} ({:?}/delta) + finish \
             {finished:?}; naive full reparse per line end (extrapolated) {baseline:?}; ratio {:.1}x",
            doc.len() / 1024,
            pushed / deltas.max(1) as u32,
            baseline.as_secs_f64() / ours.as_secs_f64().max(1e-9),
        );
    }
}
