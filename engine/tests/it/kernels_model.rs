//! The model on our quantized kernels, on every instruction-set level this CPU has and with every thread
//! setting: the GGUF fixtures run with `LoadOptions::isa` forced to each level and compared.
//!
//! - The integer levels (scalar, AVX2, AVX-512 VNNI) compute the same integer sub-block sums and differ only
//!   in float accumulation order: their logits agree to float noise (the MoE fixture within its documented
//!   8-bit rounding flip, `ggml_tolerance`), with the same top-1 everywhere.
//! - The AMX-BF16 prefill path (32 tokens or more) rounds activations to bf16 instead of 8 bits: it is
//!   compared with the float reference under the same bound as the 8-bit path (`activation_rounding_bound`).
//! - Thread counts only change which thread computes which rows, never the arithmetic: bit-identical logits.

use candle_core::Tensor;
use qwen_engine::kernels::Isa;
use qwen_engine::{LoadOptions, LoadedModel, Logits, Threads};

use crate::common::*;
use crate::gguf::{
    activation_rounding_bound, best_int8_isa, ggml_tolerance, gguf_path, gguf_reference,
    logits_file, GGUF_MODELS,
};

fn load(name: &str, isa: Isa, threads: Threads) -> LoadedModel {
    let options = LoadOptions {
        isa: Some(isa),
        threads,
        ..LoadOptions::default()
    };
    LoadedModel::load(&gguf_path(name), &options).unwrap()
}

/// Prompt logits `[len, vocab]` (one prefill) and the logits of each prompt token decoded one by one.
fn prefill_and_decode(m: &LoadedModel, prompt: &[u32]) -> (Tensor, Tensor) {
    let full = m
        .model
        .forward_with(prompt, &mut m.model.new_cache(), Logits::All)
        .unwrap();
    let mut cache = m.model.new_cache();
    let steps: Vec<Tensor> = prompt
        .iter()
        .map(|&t| m.model.forward(&[t], &mut cache).unwrap())
        .collect();
    (full, Tensor::stack(&steps, 0).unwrap())
}

fn top1(logits: &Tensor) -> Vec<u32> {
    logits.argmax(1).unwrap().to_vec1().unwrap()
}

#[test]
fn every_integer_isa_gives_the_same_logits() {
    let int8: Vec<Isa> = Isa::supported()
        .into_iter()
        .filter(|&i| i != Isa::Avx512Amx)
        .collect();
    assert!(int8.contains(&Isa::Scalar));
    for name in GGUF_MODELS {
        let prompt = gguf_reference(name).prompt_ids;
        let one = Threads {
            prefill: 1,
            decode: 1,
        };
        let (ref_full, ref_steps) = prefill_and_decode(&load(name, Isa::Scalar, one), &prompt);
        for &isa in &int8[..int8.len() - 1] {
            let (full, steps) = prefill_and_decode(&load(name, isa, Threads::default()), &prompt);
            let (d_full, d_steps) = (max_diff(&full, &ref_full), max_diff(&steps, &ref_steps));
            eprintln!("{name}: {isa} vs scalar: prefill {d_full:e}, decode {d_steps:e}");
            assert!(d_full < ggml_tolerance(name), "{name} {isa}: {d_full}");
            assert!(d_steps < ggml_tolerance(name), "{name} {isa}: {d_steps}");
            assert_eq!(top1(&full), top1(&ref_full), "{name} {isa}");
        }
    }
}

#[test]
fn thread_counts_do_not_change_the_logits() {
    let isa = best_int8_isa();
    for name in GGUF_MODELS {
        let prompt = gguf_reference(name).prompt_ids;
        let settings = [(1, 1), (2, 2), (2, 1), (1, 2)];
        let runs: Vec<(Tensor, Tensor)> = settings
            .iter()
            .map(|&(prefill, decode)| {
                let m = load(name, isa, Threads { prefill, decode });
                let (p, d) = m.model.kernel_info();
                assert_eq!((p.threads, d.threads), (prefill, decode));
                prefill_and_decode(&m, &prompt)
            })
            .collect();
        for (i, (full, steps)) in runs.iter().enumerate().skip(1) {
            assert_eq!(max_diff(full, &runs[0].0), 0.0, "{name} {:?}", settings[i]);
            assert_eq!(max_diff(steps, &runs[0].1), 0.0, "{name} {:?}", settings[i]);
        }
    }
}

#[test]
fn amx_prefill_stays_within_the_activation_rounding_bound() {
    if !Isa::Avx512Amx.is_supported() {
        eprintln!("skipped: no AMX-BF16 on this CPU/OS");
        return;
    }
    for name in GGUF_MODELS {
        let r = gguf_reference(name);
        let m = load(name, Isa::Avx512Amx, Threads::default());
        let (len, vocab) = (r.prompt_ids.len(), m.model.config().vocab_size);
        assert!(len >= 32, "the fixture prompt must reach the AMX path");
        let got = m
            .model
            .forward_with(&r.prompt_ids, &mut m.model.new_cache(), Logits::All)
            .unwrap();
        let float = logits_file(&format!("{name}.reference_logits.safetensors"), len, vocab);
        let int8_model = load(name, best_int8_isa(), Threads::default()).model;
        let int8 = int8_model
            .forward_with(&r.prompt_ids, &mut int8_model.new_cache(), Logits::All)
            .unwrap();
        let (d_float, d_int8) = (max_diff(&got, &float), max_diff(&int8, &float));
        let agree = |a: &Tensor| {
            top1(a)
                .iter()
                .zip(top1(&float))
                .filter(|(x, y)| **x == *y)
                .count()
        };
        eprintln!(
            "{name}: AMX-BF16 prefill vs float reference {d_float} (int8 path {d_int8}); top-1 agrees at {}/{len} \
             (int8 path {}/{len})",
            agree(&got),
            agree(&int8)
        );
        assert!(
            d_float < activation_rounding_bound(name),
            "{name}: {d_float}"
        );
        assert!(max_diff(&got, &int8) > 0.0, "{name}: AMX should have run");
    }
}
