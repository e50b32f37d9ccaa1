//! `LocalGenerator` on the fixture model: a second request in the same session prefills only the new
//! tokens, sessions are separate and bounded, cancellation before the start and mid-stream, and the
//! callback's early stop leaves the caller's token alone.

use std::path::Path;
use std::sync::Arc;

use qwen_engine::{LoadOptions, LoadedModel, Prompt};
use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenPrompt, GenRequest, Generator, LocalGenerator,
    LocalOptions, Sampling, SessionKey, SpeculativeMode,
};

fn generator(options: LocalOptions) -> LocalGenerator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/qwen3-moe-tiny");
    let model = LoadedModel::load(&path, &LoadOptions::default()).expect("fixture model");
    LocalGenerator::new(model, options)
}

fn request(text: &str, session: &str, max_tokens: usize) -> GenRequest {
    GenRequest {
        prompt: GenPrompt::Raw(Prompt::fim(text, "\n}\n")),
        max_tokens,
        sampling: Sampling::greedy(),
        stop: Vec::new(),
        session: Some(SessionKey(session.to_string())),
        speculation: SpeculativeMode::Off,
    }
}

#[test]
fn a_session_reuses_its_prefix_and_sessions_are_separate() {
    let g = generator(LocalOptions::default());
    let never = CancelToken::new();
    let first = g
        .generate(
            &request("fn add(a: i32, b: i32) -> i32 {", "doc:a", 4),
            &never,
            &mut |_| Flow::Continue,
        )
        .expect("first");
    assert_eq!(first.stats.reused_tokens, 0);
    assert_eq!(first.stats.prefilled_tokens, first.stats.prompt_tokens);
    // A keystroke later: only the tokens after the common prefix are prefilled.
    let second = g
        .generate(
            &request("fn add(a: i32, b: i32) -> i32 { a", "doc:a", 4),
            &never,
            &mut |_| Flow::Continue,
        )
        .expect("second");
    assert!(second.stats.reused_tokens > 0, "{:?}", second.stats);
    assert_eq!(
        second.stats.reused_tokens + second.stats.prefilled_tokens,
        second.stats.prompt_tokens
    );
    assert!(second.stats.prefilled_tokens < second.stats.prompt_tokens / 2);
    // Another session starts cold.
    let other = g
        .generate(
            &request("fn add(a: i32, b: i32) -> i32 { a", "doc:b", 4),
            &never,
            &mut |_| Flow::Continue,
        )
        .expect("other");
    assert_eq!(other.stats.reused_tokens, 0);
    assert_eq!(g.session_count(), 2);
    assert!(g.kv_bytes() > 0);
    g.reset_sessions();
    assert_eq!(g.session_count(), 0);
}

#[test]
fn the_pool_is_bounded() {
    let g = generator(LocalOptions {
        max_sessions: 2,
        ..LocalOptions::default()
    });
    let never = CancelToken::new();
    for session in ["a", "b", "c"] {
        g.generate(&request("fn x() {", session, 1), &never, &mut |_| {
            Flow::Continue
        })
        .expect("runs");
    }
    assert_eq!(g.session_count(), 2);
    // `a` was evicted (least recently used): it starts cold again.
    let again = g
        .generate(&request("fn x() {", "a", 1), &never, &mut |_| {
            Flow::Continue
        })
        .expect("runs");
    assert_eq!(again.stats.reused_tokens, 0);
    let tiny = generator(LocalOptions {
        max_kv_bytes: 1,
        ..LocalOptions::default()
    });
    for session in ["a", "b"] {
        tiny.generate(&request("fn x() {", session, 1), &never, &mut |_| {
            Flow::Continue
        })
        .expect("runs");
    }
    assert_eq!(
        tiny.session_count(),
        1,
        "the session just used is always kept"
    );
}

#[test]
fn cancelled_before_the_start_nothing_runs() {
    let g = generator(LocalOptions::default());
    let cancel = CancelToken::new();
    cancel.cancel();
    let mut deltas = 0;
    let out = g
        .generate(&request("fn main() {", "s", 8), &cancel, &mut |_| {
            deltas += 1;
            Flow::Continue
        })
        .expect("cancellation is not an error");
    assert_eq!(out.finish, FinishReason::Cancelled);
    assert_eq!(
        (out.stats.prompt_tokens, out.stats.generated_tokens, deltas),
        (0, 0, 0)
    );
}

#[test]
fn cancelled_mid_stream_stops_at_the_next_token() {
    let g = generator(LocalOptions::default());
    let cancel = CancelToken::new();
    let mut deltas = 0;
    let out = g
        .generate(&request("fn main() {", "s", 64), &cancel, &mut |_| {
            deltas += 1;
            cancel.cancel();
            Flow::Continue
        })
        .expect("runs");
    assert_eq!(out.finish, FinishReason::Cancelled);
    assert_eq!(deltas, 1);
    assert!(out.stats.generated_tokens < 64, "{:?}", out.stats);
}

#[test]
fn the_callback_can_stop_without_cancelling_the_request() {
    let g = Arc::new(generator(LocalOptions::default()));
    let cancel = CancelToken::new();
    let mut seen = String::new();
    let out = g
        .generate(&request("fn main() {", "s", 64), &cancel, &mut |delta| {
            seen.push_str(delta);
            Flow::Stop
        })
        .expect("runs");
    assert_eq!(out.finish, FinishReason::Stopped);
    assert!(!cancel.is_cancelled());
    assert_eq!(out.text, seen, "the text is exactly what was streamed");
    assert!(out.stats.generated_tokens < 64);
    // Prompts longer than the window are refused, not clipped.
    let long = "x ".repeat(400);
    let err = g
        .generate(&request(&long, "s", 8), &cancel, &mut |_| Flow::Continue)
        .expect_err("too long");
    assert!(err.to_string().contains("context window is 256"), "{err}");
}
