//! The one timing loop every in-process engine goes through, so they are measured the same way: a warm-up,
//! then per repetition a fresh cache, one prefill of the whole prompt and `decode` greedy single-token steps
//! (argmax on the host, inside the timed region).

use std::time::Instant;

use qwen_engine::sampling::argmax;

/// An engine under test: last-position logits after a prefill or a decode step.
pub trait Runner {
    /// Empties the KV cache.
    fn reset(&mut self) -> anyhow::Result<()>;
    /// Runs the whole prompt as one forward pass; logits of its last position.
    fn prefill(&mut self, prompt: &[u32]) -> anyhow::Result<Vec<f32>>;
    /// Appends `token` at `position`; its logits.
    fn step(&mut self, token: u32, position: usize) -> anyhow::Result<Vec<f32>>;
}

/// Throughput of each repetition and the greedy tokens of the first.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Prefill tokens per second, one entry per repetition.
    pub prefill: Vec<f64>,
    /// Decode tokens per second, one entry per repetition.
    pub decode: Vec<f64>,
    /// Greedy continuation of the first repetition.
    pub tokens: Vec<u32>,
}

/// Warm-up (16 prompt tokens and one step), then `repeat` prefill + decode repetitions.
pub fn time_runner(
    runner: &mut dyn Runner,
    prompt: &[u32],
    decode: usize,
    repeat: usize,
) -> anyhow::Result<Timings> {
    anyhow::ensure!(!prompt.is_empty(), "the prompt is empty");
    runner.reset()?;
    let warm = &prompt[..prompt.len().min(16)];
    let logits = runner.prefill(warm)?;
    runner.step(argmax(&logits), warm.len())?;

    let mut timings = Timings::default();
    for rep in 0..repeat.max(1) {
        runner.reset()?;
        let started = Instant::now();
        let mut logits = runner.prefill(prompt)?;
        timings
            .prefill
            .push(prompt.len() as f64 / started.elapsed().as_secs_f64().max(1e-9));
        let started = Instant::now();
        let mut tokens = Vec::with_capacity(decode);
        for i in 0..decode {
            let next = argmax(&logits);
            tokens.push(next);
            logits = runner.step(next, prompt.len() + i)?;
        }
        timings
            .decode
            .push(decode as f64 / started.elapsed().as_secs_f64().max(1e-9));
        if rep == 0 {
            timings.tokens = tokens;
        }
    }
    Ok(timings)
}

/// The benchmark's prompt: deterministic pseudo-random ids below `vocab` (a 64-bit LCG, bits 33..;
/// `benches/engine/time_llama_cpp.py` generates the same ids when run on its own).
pub fn prompt_ids(n: usize, vocab: usize) -> Vec<u32> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % vocab.max(1) as u64) as u32
        })
        .collect()
}
