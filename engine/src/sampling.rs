//! Next-token selection: greedy, or temperature with top-k / top-p, from a seeded RNG (deterministic: the same
//! seed, logits and parameters always give the same tokens).

use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to pick the next token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` (or less) means greedy argmax.
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (`None` or 0: no limit).
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches `top_p` (`1.0`: no limit).
    pub top_p: f32,
    /// RNG seed.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: None,
            top_p: 1.0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        Self::default()
    }
}

/// A sampler with its own RNG state (one per generation).
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    scratch: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler seeded from `params.seed`.
    pub fn new(params: &SamplingParams) -> Self {
        Sampler {
            params: params.clone(),
            rng: StdRng::seed_from_u64(params.seed),
            scratch: Vec::new(),
        }
    }

    /// Picks a token from `[vocab]` logits (any float dtype).
    pub fn sample(&mut self, logits: &Tensor) -> candle_core::Result<u32> {
        let logits: Vec<f32> = logits
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        Ok(self.sample_slice(&logits))
    }

    /// Picks a token like [`Sampler::sample`] and returns the model's log-probability of it (log-softmax of
    /// the raw logits, independent of temperature and truncation).
    pub fn sample_scored(&mut self, logits: &Tensor) -> candle_core::Result<(u32, f32)> {
        let logits: Vec<f32> = logits
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let token = self.sample_slice(&logits);
        Ok((token, log_softmax_at(&logits, token)))
    }

    /// Picks a token from logits on the host.
    pub fn sample_slice(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        if p.temperature <= 0.0 || p.top_k == Some(1) {
            return argmax(logits);
        }
        let candidates = &mut self.scratch;
        candidates.clear();
        candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.is_nan())
                .map(|(i, &l)| (i as u32, l / p.temperature)),
        );
        if candidates.is_empty() {
            return 0;
        }
        let by_logit_desc =
            |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if let Some(k) = p.top_k.filter(|&k| k > 0 && k < candidates.len()) {
            candidates.select_nth_unstable_by(k - 1, by_logit_desc);
            candidates.truncate(k);
        }
        candidates.sort_unstable_by(by_logit_desc);
        // Softmax over the survivors (max first, so exp never overflows).
        let max = candidates[0].1;
        let mut total = 0.0f64;
        for c in candidates.iter_mut() {
            c.1 = (c.1 - max).exp();
            total += c.1 as f64;
        }
        if p.top_p < 1.0 {
            let mut cumulative = 0.0f64;
            let mut keep = candidates.len();
            for (i, c) in candidates.iter().enumerate() {
                cumulative += c.1 as f64 / total;
                if cumulative >= p.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            candidates.truncate(keep);
            total = candidates.iter().map(|c| c.1 as f64).sum();
        }
        let mut r = self.rng.random::<f64>() * total;
        for c in candidates.iter() {
            r -= c.1 as f64;
            if r < 0.0 {
                return c.0;
            }
        }
        candidates[candidates.len() - 1].0
    }
}

/// `log_softmax(logits)[index]`, computed stably (max subtracted); NaN logits are left out of the sum.
pub fn log_softmax_at(logits: &[f32], index: u32) -> f32 {
    let max = logits
        .iter()
        .copied()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    let chosen = logits
        .get(index as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    (f64::from(chosen - max) - sum.ln()) as f32
}

/// Index of the largest logit (the first one on ties, like `torch.argmax`).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGITS: [f32; 6] = [1.0, 3.0, 2.5, -1.0, 3.0, 0.0];

    fn run(params: SamplingParams, n: usize) -> Vec<u32> {
        let mut s = Sampler::new(&params);
        (0..n).map(|_| s.sample_slice(&LOGITS)).collect()
    }

    #[test]
    fn log_softmax_matches_the_definition() {
        let total: f64 = LOGITS.iter().map(|&l| f64::from(l).exp()).sum();
        for (i, &l) in LOGITS.iter().enumerate() {
            let expected = (f64::from(l).exp() / total).ln();
            let got = f64::from(log_softmax_at(&LOGITS, i as u32));
            assert!((got - expected).abs() < 1e-5, "{i}: {got} vs {expected}");
        }
        assert_eq!(log_softmax_at(&LOGITS, 99), f32::NEG_INFINITY);
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(run(SamplingParams::greedy(), 3), [1, 1, 1]);
    }

    #[test]
    fn seeded_sampling_is_deterministic_and_respects_filters() {
        let hot = SamplingParams {
            temperature: 1.5,
            seed: 7,
            ..Default::default()
        };
        let a = run(hot.clone(), 200);
        assert_eq!(a, run(hot.clone(), 200));
        assert_ne!(
            a,
            run(
                SamplingParams {
                    seed: 8,
                    ..hot.clone()
                },
                200
            )
        );
        assert!(a.iter().collect::<std::collections::BTreeSet<_>>().len() >= 4);
        let top2 = run(
            SamplingParams {
                top_k: Some(2),
                ..hot.clone()
            },
            200,
        );
        assert!(top2.iter().all(|&t| t == 1 || t == 4));
        // Tokens 1, 4 (e^3 each) and 2 (e^2.5) hold ~84% at T=1: top_p 0.5 keeps just 1 and 4.
        let nucleus = run(
            SamplingParams {
                temperature: 1.0,
                top_p: 0.5,
                ..hot
            },
            200,
        );
        assert!(nucleus.iter().all(|&t| t == 1 || t == 4));
        assert!(nucleus.contains(&1) && nucleus.contains(&4));
    }
}
