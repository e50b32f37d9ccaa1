//! Sequences, prefix reuse, chunked prefill and the generation loop on every fixture model.

use crate::common::*;
use qwen_engine::{
    generate, CancelToken, GenerateParams, Generation, LoadOptions, LoadedModel, Prompt,
    SamplingParams, Sequence, SequenceError, StopReason,
};

fn load(name: &str) -> LoadedModel {
    LoadedModel::load(&model_dir(name), &LoadOptions::default()).unwrap()
}

fn run(
    m: &LoadedModel,
    seq: &mut Sequence,
    prompt: &[u32],
    params: &GenerateParams,
) -> (Generation, Vec<String>) {
    let mut deltas = Vec::new();
    let g = generate(
        &m.model,
        &m.tokenizer,
        seq,
        prompt,
        params,
        &CancelToken::new(),
        &mut |d| deltas.push(d.to_string()),
    )
    .unwrap();
    (g, deltas)
}

fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams {
        max_tokens,
        ..Default::default()
    }
}

#[test]
fn generate_reproduces_the_greedy_reference_and_streams_its_text() {
    for name in MODELS {
        let m = load(name);
        let r = reference(name);
        let mut seq = m.new_sequence();
        let (g, deltas) = run(&m, &mut seq, &r.prompt_ids, &greedy(16));
        assert_eq!(g.token_ids, r.greedy_ids, "{name}");
        assert_eq!(g.stop_reason, StopReason::MaxTokens);
        assert_eq!(deltas.concat(), g.text, "{name}");
        assert_eq!(g.text, m.tokenizer.decode(&r.greedy_ids));
        let s = &g.stats;
        assert_eq!(
            (s.prompt_tokens, s.reused_tokens, s.prefilled_tokens),
            (32, 0, 32)
        );
        assert_eq!((s.generated_tokens, s.decode_steps), (16, 15));
        assert!(s.prefill_tok_s > 0.0 && s.decode_tok_s > 0.0);
        // The sequence keeps prompt + fed-back tokens: a rerun reuses all but the last prompt token.
        assert_eq!(seq.len(), 32 + 15);
        let (again, _) = run(&m, &mut seq, &r.prompt_ids, &greedy(16));
        assert_eq!(again.token_ids, r.greedy_ids, "{name}: warm rerun");
        assert_eq!(
            (again.stats.reused_tokens, again.stats.prefilled_tokens),
            (31, 1)
        );
    }
}

#[test]
fn prefix_reuse_and_chunked_prefill_equal_a_cold_run() {
    for name in MODELS {
        let m = load(name);
        let r = reference(name);
        let prompt = &r.prompt_ids;
        let never = CancelToken::new();
        let cold = m
            .new_sequence()
            .prefill(&m.model, prompt, 512, &never)
            .unwrap();
        // A sequence that ran a different prompt sharing 20 tokens: only the rest is prefilled.
        let mut seq = m.new_sequence();
        let mut other = prompt[..20].to_vec();
        other.extend_from_slice(&[7, 8, 9, 10, 11]);
        seq.prefill(&m.model, &other, 512, &never).unwrap();
        let warm = seq.prefill(&m.model, prompt, 512, &never).unwrap();
        assert_eq!((warm.reused, warm.prefilled), (20, 12), "{name}");
        let d = max_diff(&warm.logits, &cold.logits);
        assert!(d < LOGIT_TOLERANCE, "{name}: prefix reuse differs by {d}");
        assert_eq!(seq.tokens(), prompt.as_slice());
        // Chunked prefill (chunks of 5, so chunks straddle the reused prefix too).
        for chunk in [1, 5, 7] {
            let chunked = m
                .new_sequence()
                .prefill(&m.model, prompt, chunk, &never)
                .unwrap();
            let d = max_diff(&chunked.logits, &cold.logits);
            assert!(d < LOGIT_TOLERANCE, "{name}: chunk {chunk} differs by {d}");
        }
        // Greedy continuation after a chunked, reused prefill is the reference one.
        let params = GenerateParams {
            prefill_chunk: 5,
            ..greedy(16)
        };
        let mut seq = m.new_sequence();
        seq.prefill(&m.model, &other, 3, &never).unwrap();
        let (g, _) = run(&m, &mut seq, prompt, &params);
        assert_eq!(g.token_ids, r.greedy_ids, "{name}");
        assert_eq!(g.stats.reused_tokens, 20);
    }
}

#[test]
fn a_prefill_cancelled_inside_a_chunk_keeps_a_reusable_prefix() {
    let m = load(MODELS[0]);
    let r = reference(MODELS[0]);
    let mut prompt = Vec::new();
    while prompt.len() < 192 {
        prompt.extend_from_slice(&r.prompt_ids);
    }
    prompt.truncate(192);
    let never = CancelToken::new();
    let cold = m
        .new_sequence()
        .prefill(&m.model, &prompt, 512, &never)
        .unwrap();
    // Cancelled before the first layer: nothing changes.
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let mut seq = m.new_sequence();
    seq.prefill(&m.model, &prompt[..40], 512, &never).unwrap();
    let err = seq
        .prefill(&m.model, &prompt, 64, &cancelled)
        .expect_err("cancelled");
    assert!(matches!(err, SequenceError::Cancelled), "{err}");
    assert_eq!(seq.tokens(), &prompt[..40]);
    // Cancelled at some point of a chunk (wherever the other thread's timing lands): the sequence keeps the
    // chunks it finished, and continuing it gives the cold logits.
    for delay_us in [0, 300, 3000] {
        let cancel = CancelToken::new();
        let mut seq = m.new_sequence();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(std::time::Duration::from_micros(delay_us));
                cancel.cancel();
            });
            match seq.prefill(&m.model, &prompt, 64, &cancel) {
                Ok(_) | Err(SequenceError::Cancelled) => {}
                Err(e) => panic!("{e}"),
            }
        });
        assert!(
            seq.len().is_multiple_of(64) || seq.len() == prompt.len(),
            "{}",
            seq.len()
        );
        assert_eq!(seq.tokens(), &prompt[..seq.len()]);
        let warm = seq.prefill(&m.model, &prompt, 64, &never).unwrap();
        let d = max_diff(&warm.logits, &cold.logits);
        assert!(d < LOGIT_TOLERANCE, "after a cancel at {delay_us} us: {d}");
    }
}

#[test]
fn seeded_sampling_is_deterministic() {
    let m = load("qwen3-moe-tiny");
    let r = reference("qwen3-moe-tiny");
    let params = |seed| GenerateParams {
        sampling: SamplingParams {
            temperature: 1.0,
            top_k: Some(50),
            top_p: 0.95,
            seed,
        },
        ..greedy(24)
    };
    let (a, _) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &params(42));
    let (b, _) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &params(42));
    let (c, _) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &params(43));
    assert_eq!(a.token_ids, b.token_ids);
    assert_eq!(a.text, b.text);
    assert_ne!(a.token_ids, c.token_ids);
    assert_ne!(a.token_ids, r.greedy_ids);
}

#[test]
fn stop_strings_cut_the_output_and_never_leak_into_the_stream() {
    let m = load("qwen3-moe-tiny");
    let r = reference("qwen3-moe-tiny");
    let (full, _) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &greedy(16));
    let chars: Vec<(usize, char)> = full.text.char_indices().collect();
    assert!(chars.len() > 12, "{:?}", full.text);
    // Every stop string made of 2–5 characters starting in the middle of the output.
    for start in [3, chars.len() / 2, chars.len() - 6] {
        for len in 2..=5 {
            let from = chars[start].0;
            let to = chars.get(start + len).map_or(full.text.len(), |c| c.0);
            let stop = full.text[from..to].to_string();
            let cut = full.text.find(&stop).unwrap();
            let params = GenerateParams {
                stop_strings: vec![stop.clone()],
                ..greedy(16)
            };
            let (g, deltas) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &params);
            assert_eq!(g.stop_reason, StopReason::StopString(stop.clone()));
            assert_eq!(g.text, full.text[..cut], "stop {stop:?}");
            assert_eq!(
                deltas.concat(),
                g.text,
                "stop {stop:?}: the stream leaked {deltas:?}"
            );
        }
    }
}

#[test]
fn stop_tokens_max_tokens_and_cancellation() {
    let m = load("qwen3-moe-tiny");
    let r = reference("qwen3-moe-tiny");
    let stop_id = r.greedy_ids[3];
    let first = r.greedy_ids.iter().position(|&t| t == stop_id).unwrap();
    let params = GenerateParams {
        stop_tokens: vec![stop_id],
        ..greedy(16)
    };
    let (g, _) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &params);
    assert_eq!(g.stop_reason, StopReason::StopToken(stop_id));
    assert_eq!(g.token_ids, r.greedy_ids[..first]);

    let (g, _) = run(&m, &mut m.new_sequence(), &r.prompt_ids, &greedy(5));
    assert_eq!(
        (g.stop_reason, g.token_ids.len()),
        (StopReason::MaxTokens, 5)
    );

    // Cancelled before starting: nothing runs.
    let cancel = CancelToken::new();
    cancel.cancel();
    let mut seq = m.new_sequence();
    let g = generate(
        &m.model,
        &m.tokenizer,
        &mut seq,
        &r.prompt_ids,
        &greedy(16),
        &cancel,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (g.stop_reason, g.token_ids.len(), seq.len()),
        (StopReason::Cancelled, 0, 0)
    );
    // Cancelled from the stream callback (as an editor keystroke would): stops at the next step.
    let cancel = CancelToken::new();
    let (c2, mut n) = (cancel.clone(), 0);
    let g = generate(
        &m.model,
        &m.tokenizer,
        &mut m.new_sequence(),
        &r.prompt_ids,
        &greedy(16),
        &cancel,
        &mut |_| {
            n += 1;
            if n == 2 {
                c2.cancel();
            }
        },
    )
    .unwrap();
    assert_eq!(g.stop_reason, StopReason::Cancelled);
    assert!(g.token_ids.len() < 16 && g.token_ids == r.greedy_ids[..g.token_ids.len()]);
}

#[test]
fn prompts_run_through_the_facade() {
    let m = load("qwen2-tiny");
    let prompt = Prompt::fim("fn add(a: i32, b: i32) -> i32 {\n", "\n}\n");
    let ids = prompt.to_ids(&m.tokenizer).unwrap();
    let specials = m.tokenizer.specials();
    assert_eq!(
        ids[0],
        specials.get(qwen_engine::SpecialToken::FimPrefix).unwrap()
    );
    assert_eq!(
        *ids.last().unwrap(),
        specials.get(qwen_engine::SpecialToken::FimMiddle).unwrap()
    );
    let mut seq = m.new_sequence();
    let g = m
        .generate(
            &mut seq,
            &prompt,
            &greedy(8),
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(g.stats.prompt_tokens, ids.len());
    assert!(matches!(
        g.stop_reason,
        StopReason::MaxTokens | StopReason::StopToken(_)
    ));
    // Literal special text inside the code stays text.
    let tricky = Prompt::fim("let s = \"<|fim_middle|>\";", "");
    let ids = tricky.to_ids(&m.tokenizer).unwrap();
    let middle = specials.get(qwen_engine::SpecialToken::FimMiddle).unwrap();
    assert_eq!(ids.iter().filter(|&&i| i == middle).count(), 1);
}
