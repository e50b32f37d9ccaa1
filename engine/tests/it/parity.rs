//! Numerical parity with transformers 4.57 (float32, eager attention) on every fixture architecture.

use crate::common::*;
use candle_core::Tensor;
use qwen_engine::Logits;

#[test]
fn logits_match_transformers_at_every_position() {
    for name in MODELS {
        let model = load_model(name);
        let r = reference(name);
        let expected = reference_logits(name);
        let got = model
            .forward_with(&r.prompt_ids, &mut model.new_cache(), Logits::All)
            .unwrap();
        let d = max_diff(&got, &expected);
        eprintln!("{name}: max abs logit difference {d:e}");
        assert!(d < LOGIT_TOLERANCE, "{name}: max abs logit difference {d}");
    }
}

#[test]
fn greedy_continuation_matches_transformers() {
    for name in MODELS {
        let model = load_model(name);
        let r = reference(name);
        let mut cache = model.new_cache();
        let mut logits = model.forward(&r.prompt_ids, &mut cache).unwrap();
        let mut out = Vec::new();
        while out.len() < r.greedy_ids.len() {
            let next = argmax(&logits);
            out.push(next);
            logits = model.forward(&[next], &mut cache).unwrap();
        }
        assert_eq!(out, r.greedy_ids, "{name}");
    }
}

#[test]
fn incremental_decode_equals_full_forward() {
    for name in MODELS {
        let model = load_model(name);
        let r = reference(name);
        let full = model
            .forward_with(&r.prompt_ids, &mut model.new_cache(), Logits::All)
            .unwrap();
        let mut cache = model.new_cache();
        let steps: Vec<Tensor> = r
            .prompt_ids
            .iter()
            .map(|&t| model.forward(&[t], &mut cache).unwrap())
            .collect();
        let d = max_diff(&Tensor::stack(&steps, 0).unwrap(), &full);
        assert!(d < LOGIT_TOLERANCE, "{name}: {d}");
    }
}
