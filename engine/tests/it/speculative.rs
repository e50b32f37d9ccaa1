//! Speculative decoding: verification passes give every position exactly the logits a one-token step gives it,
//! so greedy output is byte-identical with and without speculation, on every fixture, instruction set and KV
//! cache kind; with sampling the acceptance rule keeps the target distribution (a chi-square test).

use std::collections::BTreeMap;

use crate::common::*;
use crate::gguf::{gguf_path, GGUF_MODELS};
use candle_core::Tensor;
use qwen_engine::kernels::Isa;
use qwen_engine::{
    generate, CancelToken, GenerateParams, Generation, KvCacheKind, LoadOptions, LoadedModel,
    SamplingParams, Sequence, Speculation,
};

/// Every fixture: safetensors (dense f32, MoE, YaRN, FP8) and GGUF (Q4_K, Q8_0, quantized MoE).
fn fixtures() -> Vec<std::path::PathBuf> {
    MODELS
        .iter()
        .map(|m| model_dir(m))
        .chain(GGUF_MODELS.iter().map(|m| gguf_path(m)))
        .collect()
}

fn load(path: &std::path::Path, isa: Option<Isa>) -> LoadedModel {
    let options = LoadOptions {
        isa,
        ..LoadOptions::default()
    };
    LoadedModel::load(path, &options).unwrap()
}

fn name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A prompt of `len` ids that repeats a pattern (so prompt lookup finds matches), inside the vocabulary.
fn repetitive_prompt(m: &LoadedModel, len: usize) -> Vec<u32> {
    let vocab = m.model.config().vocab_size as u32;
    let pattern: Vec<u32> = (0..13).map(|i| (i * 37 + 11) % vocab).collect();
    (0..len)
        .map(|i| {
            if i % 29 < 13 {
                pattern[i % 29]
            } else {
                (i as u32 * 101) % vocab
            }
        })
        .collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

/// Verification passes against one-token steps, bit for bit: across a key-tile boundary (position 128), for
/// every fixture, every instruction set this CPU has (the quantized fixtures) and every KV cache kind.
#[test]
fn verify_rows_are_bit_identical_to_one_token_steps() {
    for path in fixtures() {
        let isas: Vec<Option<Isa>> = if path.extension().is_some_and(|e| e == "gguf") {
            Isa::supported().into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        for isa in isas {
            let m = load(&path, isa);
            let ids = repetitive_prompt(&m, 134);
            let (prompt, tail) = ids.split_at(124);
            for kind in [KvCacheKind::F32, KvCacheKind::Q8, KvCacheKind::Candle] {
                let never = CancelToken::new();
                let mut stepped = Sequence::with_cache_kind(&m.model, kind);
                stepped.prefill(&m.model, prompt, 512, &never).unwrap();
                let steps: Vec<Vec<u32>> = tail
                    .iter()
                    .map(|&t| bits(&stepped.append(&m.model, t).unwrap()))
                    .collect();
                let mut verified = Sequence::with_cache_kind(&m.model, kind);
                verified.prefill(&m.model, prompt, 512, &never).unwrap();
                let rows = verified.verify(&m.model, tail).unwrap();
                assert_eq!(rows.dims2().unwrap().0, tail.len());
                for (i, step) in steps.iter().enumerate() {
                    let row = bits(&rows.get(i).unwrap());
                    assert!(
                        row == *step,
                        "{} {isa:?} {kind:?}: row {i} differs from the one-token step",
                        name(&path)
                    );
                }
                // And the cache the verification left behind is the one the steps built.
                let next = tail[0];
                assert_eq!(
                    bits(&stepped.append(&m.model, next).unwrap()),
                    bits(&verified.append(&m.model, next).unwrap()),
                    "{} {isa:?} {kind:?}: the cache after verification",
                    name(&path)
                );
            }
        }
    }
}

fn run(m: &LoadedModel, seq: &mut Sequence, prompt: &[u32], params: &GenerateParams) -> Generation {
    let mut streamed = String::new();
    let g = generate(
        &m.model,
        &m.tokenizer,
        seq,
        prompt,
        params,
        &CancelToken::new(),
        &mut |d| streamed.push_str(d),
    )
    .unwrap();
    assert_eq!(streamed, g.text, "streamed deltas add up to the text");
    g
}

/// Greedy decoding; a draft model drafts 4 tokens per pass (adaptive lengths would rightly stop drafting with a
/// draft as slow as the model itself), prompt lookup adapts.
fn greedy(speculation: Speculation, max_tokens: usize) -> GenerateParams {
    let draft_tokens = matches!(speculation, Speculation::Draft(_)).then_some(4);
    GenerateParams {
        max_tokens,
        speculation,
        draft_tokens,
        ..GenerateParams::default()
    }
}

/// Greedy text and tokens with prompt lookup and with a draft model (the same model: every draft accepted;
/// another fixture: most rejected) equal plain decoding's, and the sequences end holding the same tokens.
#[test]
fn greedy_output_is_byte_identical_in_every_mode() {
    let other = load(&model_dir("qwen2-tiny"), None).model;
    let mut lookup_drafted = 0;
    for path in fixtures() {
        let isas: Vec<Option<Isa>> = if path.extension().is_some_and(|e| e == "gguf") {
            Isa::supported().into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        for isa in isas {
            let m = load(&path, isa);
            let label = format!("{} {isa:?}", name(&path));
            let prompt = repetitive_prompt(&m, 60);
            let mut plain_seq = m.new_sequence();
            let plain = run(&m, &mut plain_seq, &prompt, &greedy(Speculation::Off, 48));
            assert_eq!(plain.stats.drafted_tokens, 0);
            // Greedy takes the argmax, whose log-probability lies in [−ln(vocab), 0].
            let n = plain.token_ids.len() as f64;
            let vocab = m.model.config().vocab_size as f64;
            let lp = plain.stats.logprob_sum;
            assert!((-n * vocab.ln()..=0.0).contains(&lp), "{label}: {lp}");
            let same_vocab = other.config().vocab_size == m.model.config().vocab_size;
            let mut modes = vec![
                ("lookup", Speculation::Lookup),
                ("draft=self", Speculation::Draft(m.model.clone())),
            ];
            if same_vocab {
                modes.push(("draft=qwen2-tiny", Speculation::Draft(other.clone())));
            }
            for (mode, speculation) in modes {
                let mut seq = m.new_sequence();
                let g = run(&m, &mut seq, &prompt, &greedy(speculation, 48));
                assert_eq!(g.token_ids, plain.token_ids, "{label} {mode}: tokens");
                assert_eq!(g.text, plain.text, "{label} {mode}: text");
                assert_eq!(g.stop_reason, plain.stop_reason, "{label} {mode}");
                // Verification rows are bit-identical to one-token steps, so are the tokens' log-probabilities.
                assert_eq!(
                    g.stats.logprob_sum, plain.stats.logprob_sum,
                    "{label} {mode}: logprob_sum"
                );
                let s = &g.stats;
                // Prompt lookup drafts whenever a chosen token (but the last) occurred before it.
                let ids = &g.token_ids;
                let repeats = (0..ids.len().saturating_sub(1))
                    .any(|i| prompt.contains(&ids[i]) || ids[..i].contains(&ids[i]));
                if mode == "lookup" {
                    assert_eq!(s.drafted_tokens > 0, repeats, "{label} lookup: {s:?}");
                    lookup_drafted += s.drafted_tokens;
                } else {
                    assert!(s.drafted_tokens > 0, "{label} {mode}: nothing was drafted");
                }
                if mode == "draft=self" {
                    assert_eq!(s.accepted_tokens, s.drafted_tokens, "{label}: {s:?}");
                    assert!(
                        s.decode_steps * 3 < plain.stats.decode_steps,
                        "{label}: {s:?}"
                    );
                }
                // Whatever was drafted, the sequence holds the prompt and generated tokens only.
                let held = seq.tokens();
                assert!(
                    held.len() <= prompt.len() + g.token_ids.len(),
                    "{label} {mode}"
                );
                assert_eq!(&held[..prompt.len()], prompt.as_slice());
                assert_eq!(
                    &held[prompt.len()..],
                    &g.token_ids[..held.len() - prompt.len()]
                );
            }
        }
    }
    assert!(
        lookup_drafted > 0,
        "prompt lookup never drafted on any fixture"
    );
}

/// Stop strings, stop tokens and the token budget cut a speculative pass exactly where plain decoding stops.
#[test]
fn stops_inside_a_pass_match_plain_decoding() {
    let m = load(&model_dir("qwen3-dense-tiny"), None);
    let prompt = repetitive_prompt(&m, 60);
    let mut seq = m.new_sequence();
    let plain = run(&m, &mut seq, &prompt, &greedy(Speculation::Off, 40));
    let ids = &plain.token_ids;
    // Stop on the token plain decoding produced 23rd, and on a string from the middle of its text.
    let stop_token = ids[22];
    let first = ids.iter().position(|&t| t == stop_token).unwrap();
    let text_at = plain
        .text
        .char_indices()
        .nth(plain.text.chars().count() / 2)
        .unwrap()
        .0;
    let stop_string: String = plain.text[text_at..].chars().take(3).collect();
    for speculation in [
        Speculation::Off,
        Speculation::Lookup,
        Speculation::Draft(m.model.clone()),
    ] {
        for max_tokens in [1, 2, 7, 33] {
            let mut a = m.new_sequence();
            let mut b = m.new_sequence();
            let base = greedy(Speculation::Off, max_tokens);
            let spec = greedy(speculation.clone(), max_tokens);
            let (x, y) = (
                run(&m, &mut a, &prompt, &base),
                run(&m, &mut b, &prompt, &spec),
            );
            assert_eq!((x.token_ids, x.stop_reason), (y.token_ids, y.stop_reason));
        }
        let with_stops = |speculation: Speculation| GenerateParams {
            stop_tokens: vec![stop_token],
            ..greedy(speculation, 40)
        };
        let g = run(
            &m,
            &mut m.new_sequence(),
            &prompt,
            &with_stops(speculation.clone()),
        );
        assert_eq!(g.token_ids, ids[..first]);
        let strings = |speculation: Speculation| GenerateParams {
            stop_strings: vec![stop_string.clone()],
            ..greedy(speculation, 40)
        };
        let (x, y) = (
            run(
                &m,
                &mut m.new_sequence(),
                &prompt,
                &strings(Speculation::Off),
            ),
            run(
                &m,
                &mut m.new_sequence(),
                &prompt,
                &strings(speculation.clone()),
            ),
        );
        assert_eq!((&x.text, &x.stop_reason), (&y.text, &y.stop_reason));
    }
}

/// The draft model's KV cache lives in the target's sequence and follows its prefix reuse: a second request
/// sharing most of the prompt prefills only the rest in both, and gives plain decoding's output.
#[test]
fn the_draft_cache_follows_prefix_reuse() {
    let m = load(&gguf_path("qwen2-q4km-tiny"), None);
    let draft = load(&model_dir("qwen2-tiny"), None).model;
    let prompt = repetitive_prompt(&m, 70);
    let mut seq = m.new_sequence();
    run(
        &m,
        &mut seq,
        &prompt[..60],
        &greedy(Speculation::Draft(draft.clone()), 12),
    );
    let held = seq.draft_sequence(&draft).tokens().to_vec();
    assert!(held.len() >= 60 && held[..60] == prompt[..60], "{held:?}");
    let g = run(
        &m,
        &mut seq,
        &prompt,
        &greedy(Speculation::Draft(draft.clone()), 12),
    );
    assert_eq!(g.stats.reused_tokens, 60);
    let d = seq.draft_sequence(&draft).tokens();
    assert_eq!(&d[..70], prompt.as_slice());
    let plain = run(
        &m,
        &mut m.new_sequence(),
        &prompt,
        &greedy(Speculation::Off, 12),
    );
    assert_eq!(g.token_ids, plain.token_ids);
}

/// With sampling (temperature 1, top-k 4), the tokens at positions decided by the acceptance rule follow the
/// target model's distribution: 3,000 generations of 3 tokens drafted by the model itself, against the exact
/// joint probabilities of the first two tokens, chi-square over the 16 cells.
#[test]
fn sampling_with_drafts_keeps_the_target_distribution() {
    let m = load(&model_dir("qwen2-tiny"), None);
    let prompt = reference("qwen2-tiny").prompt_ids;
    let sampling = |seed| SamplingParams {
        temperature: 1.0,
        top_k: Some(4),
        top_p: 1.0,
        seed,
    };
    // Exact target distribution: top-4 softmax at the prompt's end, then after each of those 4 tokens.
    let top4 = |logits: &Tensor| -> Vec<(u32, f64)> {
        let l: Vec<f32> = logits.to_vec1().unwrap();
        let mut idx: Vec<usize> = (0..l.len()).collect();
        idx.sort_by(|&a, &b| l[b].total_cmp(&l[a]).then(a.cmp(&b)));
        let max = l[idx[0]] as f64;
        let w: Vec<f64> = idx[..4]
            .iter()
            .map(|&i| (l[i] as f64 - max).exp())
            .collect();
        let total: f64 = w.iter().sum();
        idx[..4]
            .iter()
            .zip(w)
            .map(|(&i, w)| (i as u32, w / total))
            .collect()
    };
    let never = CancelToken::new();
    let mut seq = m.new_sequence();
    let first = top4(&seq.prefill(&m.model, &prompt, 512, &never).unwrap().logits);
    let mut exact = BTreeMap::new();
    for &(t1, p1) in &first {
        let mut s = m.new_sequence();
        s.prefill(&m.model, &prompt, 512, &never).unwrap();
        for (t2, p2) in top4(&s.append(&m.model, t1).unwrap()) {
            exact.insert((t1, t2), p1 * p2);
        }
    }
    let n = 3000;
    let mut counts: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let (mut drafted, mut accepted) = (0, 0);
    let mut seq = m.new_sequence();
    for seed in 0..n {
        let params = GenerateParams {
            max_tokens: 3,
            sampling: sampling(seed),
            speculation: Speculation::Draft(m.model.clone()),
            draft_tokens: Some(1),
            ..GenerateParams::default()
        };
        let g = run(&m, &mut seq, &prompt, &params);
        drafted += g.stats.drafted_tokens;
        accepted += g.stats.accepted_tokens;
        *counts.entry((g.token_ids[0], g.token_ids[1])).or_default() += 1;
    }
    // Both branches of the rule ran many times.
    assert!(
        accepted > 300 && drafted - accepted > 300,
        "{accepted} of {drafted}"
    );
    assert!(counts.keys().all(|k| exact.contains_key(k)), "{counts:?}");
    let chi2: f64 = exact
        .iter()
        .map(|(k, p)| {
            let expected = p * n as f64;
            let observed = *counts.get(k).unwrap_or(&0) as f64;
            (observed - expected).powi(2) / expected
        })
        .sum();
    // 15 degrees of freedom: P(chi2 > 37.7) = 0.001.
    assert!(
        chi2 < 37.7,
        "chi-square {chi2:.1} over {exact:?} vs {counts:?}"
    );
}
