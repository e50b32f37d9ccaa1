//! Next-token selection: greedy, or temperature with top-k / top-p, from a seeded RNG (deterministic: the same
//! seed, logits and parameters always give the same tokens).

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

    /// Picks a token from logits on the host.
    pub fn sample_slice(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() {
            return argmax(logits);
        }
        let Some(total) = self.filter(logits) else {
            return 0;
        };
        let r = self.rng.random::<f64>() * total;
        self.walk(r, None)
    }

    /// Whether this sampler takes the argmax.
    pub fn is_greedy(&self) -> bool {
        self.params.temperature <= 0.0 || self.params.top_k == Some(1)
    }

    /// Picks a token from `logits` given a token proposed for this position (speculative decoding): the output
    /// follows exactly the distribution [`Sampler::sample_slice`] draws from, whatever was proposed.
    ///
    /// Greedy: the argmax. Sampling: the standard acceptance rule (Leviathan et al. 2023, Chen et al. 2023) for a
    /// deterministic proposal `d` (the proposal distribution `q` is a point mass, as for prompt lookup and greedy
    /// drafts): accept `d` with probability `min(1, p(d)/q(d)) = p(d)`, else draw from the residual
    /// `max(0, p − q)` normalised, which is `p` without `d`. So `P(d) = p(d)` and, for `x ≠ d`,
    /// `P(x) = (1 − p(d)) · p(x)/(1 − p(d)) = p(x)`.
    pub fn choose(&mut self, logits: &[f32], proposal: Option<u32>) -> u32 {
        let Some(d) = proposal else {
            return self.sample_slice(logits);
        };
        if self.is_greedy() {
            return argmax(logits);
        }
        let Some(total) = self.filter(logits) else {
            return 0;
        };
        let weight_d = self
            .scratch
            .iter()
            .find(|c| c.0 == d)
            .map_or(0.0, |c| c.1 as f64);
        if self.rng.random::<f64>() * total < weight_d {
            return d;
        }
        let rest = total - weight_d;
        if rest <= 0.0 {
            return d;
        }
        let r = self.rng.random::<f64>() * rest;
        self.walk(r, Some(d))
    }

    /// Fills `scratch` with the candidates that survive temperature, top-k and top-p, as unnormalised weights in
    /// descending order, and returns their total (`None` when every logit is NaN).
    fn filter(&mut self, logits: &[f32]) -> Option<f64> {
        let p = &self.params;
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
            return None;
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
        Some(total)
    }

    /// The candidate where the running sum of weights passes `r` (skipping `except`).
    fn walk(&self, mut r: f64, except: Option<u32>) -> u32 {
        let mut last = None;
        for c in self.scratch.iter().filter(|c| Some(c.0) != except) {
            r -= c.1 as f64;
            if r < 0.0 {
                return c.0;
            }
            last = Some(c.0);
        }
        last.or(except).unwrap_or(0)
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

    /// The acceptance rule with a point-mass proposal: whatever token is proposed (likely, unlikely, or
    /// outside the top-k), the chosen tokens follow the sampler's distribution (within 5 standard errors).
    #[test]
    fn choosing_against_a_proposal_keeps_the_distribution() {
        let params = SamplingParams {
            temperature: 1.0,
            top_k: Some(4),
            seed: 3,
            ..Default::default()
        };
        // Top-4 of LOGITS at T = 1: tokens 1 and 4 (e^3), 2 (e^2.5), 0 (e^1).
        let weights = [
            (1u32, 3f64.exp()),
            (4, 3f64.exp()),
            (2, 2.5f64.exp()),
            (0, 1f64.exp()),
        ];
        let total: f64 = weights.iter().map(|w| w.1).sum();
        let n = 40_000;
        for proposal in [1, 2, 0, 3, 5] {
            let mut s = Sampler::new(&params);
            let mut counts = [0usize; 6];
            for _ in 0..n {
                counts[s.choose(&LOGITS, Some(proposal)) as usize] += 1;
            }
            assert_eq!(
                counts[3] + counts[5],
                0,
                "proposal {proposal}: outside the top-k"
            );
            for (token, w) in weights {
                let p = w / total;
                let expected = p * n as f64;
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                let got = counts[token as usize] as f64;
                assert!(
                    (got - expected).abs() < 5.0 * sd,
                    "proposal {proposal}, token {token}: {got} vs {expected:.0}"
                );
            }
        }
        // Greedy ignores the proposal.
        let mut g = Sampler::new(&SamplingParams::greedy());
        assert_eq!(g.choose(&LOGITS, Some(2)), 1);
    }
}
