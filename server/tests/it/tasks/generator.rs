//! `LocalGenerator` on the fixture model: a second request in the same session prefills only the new
//! tokens, sessions are separate and bounded, cancellation before the start and mid-stream, the callback's
//! early stop leaves the caller's token alone, warm-ups fill a session only while no request waits and give
//! way to one that arrives, and among offered prompts the one the cache makes fast enough runs.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use qwen_engine::{LoadOptions, LoadedModel, Prompt};
use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenPrompt, GenRequest, Generator, LocalGenerator,
    LocalOptions, Sampling, SessionKey, SpeculativeMode, WarmFinish,
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

/// A prompt of about `tokens` tokens (six per line).
fn long_text(tokens: usize) -> String {
    "let x = 1;\n".repeat(tokens / 6)
}

#[test]
fn a_warm_up_fills_the_session_and_the_next_request_continues_it() {
    let g = generator(LocalOptions::default());
    let never = CancelToken::new();
    let stable = GenRequest {
        prompt: GenPrompt::Raw(Prompt::text("fn add(a: i32, b: i32) -> i32 {\n    a")),
        ..request("", "doc:a", 0)
    };
    let warm = g.warm(&stable, &never).expect("warm-up");
    assert_eq!(warm.finish, WarmFinish::Done);
    assert_eq!(warm.prefilled_tokens, warm.prompt_tokens);
    assert!(g.speed().is_some(), "a warm-up measures the prefill speed");
    // Again: nothing to do.
    let again = g.warm(&stable, &never).expect("warm-up");
    assert_eq!(
        (again.finish, again.prefilled_tokens),
        (WarmFinish::AlreadyWarm, 0)
    );
    // The request continuing the warmed text prefills only its own tail.
    let full = GenRequest {
        prompt: GenPrompt::Raw(Prompt::text("fn add(a: i32, b: i32) -> i32 {\n    a + b")),
        ..request("", "doc:a", 2)
    };
    let out = g
        .generate(&full, &never, &mut |_| Flow::Continue)
        .expect("runs");
    assert!(
        out.stats.reused_tokens >= warm.prompt_tokens - 1,
        "{:?}",
        out.stats
    );
    assert!(out.stats.prefilled_tokens <= 3, "{:?}", out.stats);
}

#[test]
fn a_warm_up_never_runs_while_a_request_waits_or_runs() {
    let g = Arc::new(generator(LocalOptions::default()));
    let (started, request_started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    // A request holds the engine: its stream callback blocks until the test releases it.
    let holder = {
        let g = g.clone();
        std::thread::spawn(move || {
            let mut first = true;
            g.generate(
                &request("fn main() {", "doc:r", 4),
                &CancelToken::new(),
                &mut |_| {
                    if first {
                        first = false;
                        started.send(()).expect("test alive");
                        released.recv().expect("released");
                    }
                    Flow::Continue
                },
            )
            .expect("runs")
        })
    };
    request_started
        .recv_timeout(Duration::from_secs(60))
        .expect("the request streams");
    let warming = {
        let g = g.clone();
        std::thread::spawn(move || {
            let stable = GenRequest {
                prompt: GenPrompt::Raw(Prompt::text(long_text(64))),
                ..request("", "doc:w", 0)
            };
            g.warm(&stable, &CancelToken::new()).expect("warm-up")
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !warming.is_finished(),
        "the warm-up ran while a request held the engine"
    );
    assert!(!g.warming());
    release.send(()).expect("holder alive");
    holder.join().expect("request thread");
    let warm = warming.join().expect("warm-up thread");
    assert_eq!(warm.finish, WarmFinish::Done);
    assert!(
        warm.queue_secs >= 0.15,
        "it waited for the request: {warm:?}"
    );
}

#[test]
fn a_request_arriving_during_a_warm_up_is_answered_first() {
    // One-token chunks over a long prompt keep the warm-up busy long enough to arrive in the middle of it
    // (on any machine: a try where it finished first is repeated).
    let g = Arc::new(generator(LocalOptions {
        warm_chunk: 1,
        ..LocalOptions::default()
    }));
    for attempt in 0.. {
        assert!(
            attempt < 5,
            "the warm-up always finished before the request arrived"
        );
        let session = format!("doc:w{attempt}");
        let warming = {
            let g = g.clone();
            std::thread::spawn(move || {
                let stable = GenRequest {
                    prompt: GenPrompt::Raw(Prompt::text(long_text(200))),
                    ..request("", &session, 0)
                };
                g.warm(&stable, &CancelToken::new()).expect("warm-up")
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !g.warming() && !warming.is_finished() {
            assert!(Instant::now() < deadline, "the warm-up never started");
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(5));
        let arrived = Instant::now();
        let out = g
            .generate(
                &request("fn main() {", "doc:r", 4),
                &CancelToken::new(),
                &mut |_| Flow::Continue,
            )
            .expect("runs");
        let answered = arrived.elapsed();
        let warm = warming.join().expect("warm-up thread");
        if warm.finish == WarmFinish::Done {
            continue;
        }
        assert_eq!(warm.finish, WarmFinish::Preempted);
        assert!(warm.prefilled_tokens < warm.prompt_tokens, "{warm:?}");
        assert_ne!(out.finish, FinishReason::Cancelled);
        assert!(out.stats.generated_tokens > 0);
        // It waited at most for the layer running when it arrived, not for the warm-up's remaining work.
        let rest = (warm.prompt_tokens - warm.prefilled_tokens) as f64 * warm.prefill_secs
            / warm.prefilled_tokens.max(1) as f64;
        assert!(
            out.stats.queue_secs < rest.max(0.05),
            "queued {:.3} s behind a warm-up with {rest:.3} s left (answered in {answered:?})",
            out.stats.queue_secs
        );
        break;
    }
}

#[test]
fn the_offer_the_cache_makes_fast_enough_runs() {
    let g = generator(LocalOptions::default());
    let never = CancelToken::new();
    let long = GenRequest {
        prompt: GenPrompt::Raw(Prompt::text(long_text(160))),
        ..request("", "doc:full", 1)
    };
    let short = request("fn x() {", "doc:fast", 1);
    let offers = [long.clone(), short.clone()];
    // Speed unknown: the cheapest (last) offer runs, and measures it.
    let (chosen, _) = g
        .generate_within(&offers, Duration::from_secs(3600), &never, &mut |_| {
            Flow::Continue
        })
        .expect("runs");
    assert_eq!(chosen, 1);
    // Known speed, a limit nothing cold meets: the first offer is too slow cold, the last one runs.
    let (chosen, _) = g
        .generate_within(&offers, Duration::ZERO, &never, &mut |_| Flow::Continue)
        .expect("runs");
    assert_eq!(chosen, 1);
    // Once the first offer's session holds its prompt, it costs nothing and runs.
    g.warm(&long, &never).expect("warm-up");
    let (chosen, out) = g
        .generate_within(&offers, Duration::from_micros(1), &never, &mut |_| {
            Flow::Continue
        })
        .expect("runs");
    assert_eq!(chosen, 0);
    assert!(out.stats.prefilled_tokens <= 1, "{:?}", out.stats);
}
