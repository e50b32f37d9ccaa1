//! How many tokens to draft per pass: the length that maximises expected tokens per second, from the measured
//! acceptance rate and the measured cost of a pass.
//!
//! With per-token acceptance `a` (drafts are accepted left to right until the first miss), a pass that verifies
//! `k` drafts yields `E(k) = 1 + a + … + a^k` tokens on average. Its cost grows with `k`: verifying a row costs
//! compute (cheap next to reading the weights once, on a bandwidth-bound CPU) and a draft model costs a step of
//! its own per token. With `cost(k) = 1 + α·k` in units of a one-token pass, the best `k` maximises
//! `E(k) / cost(k)`. Both `a` and `α` are measured while generating: `a` per *source* (prompt-lookup drafts
//! from a 4-token match are far more reliable than from a 1-token one; the draft model is one source), as an
//! exponential moving average of accepted over tried tokens plus one prior token; `α` from the seconds each
//! pass took against its draft length (a least-squares line through the mean time per length, with a prior
//! until two lengths have been seen). Nothing is tuned for one machine: an AMX server with cheap verification
//! drafts longer than a laptop.
//!
//! Every pass ages every source, drafted from or not, so a source that stopped being tried (its drafts were
//! rejected) drifts back to its prior and is tried again a few dozen passes later: generated text changes
//! character (prose, then code that copies the prompt), and a rate measured on the one must not lock out the
//! other.

/// Forgetting per pass of the moving averages (the last ~10 passes dominate).
const DECAY: f64 = 0.9;
/// Weight of the prior acceptance, in tried tokens.
const PRIOR_WEIGHT: f64 = 1.0;

/// Adaptive draft length; see the module documentation.
#[derive(Debug, Clone)]
pub struct DraftLength {
    max: usize,
    /// Per source: decayed accepted and tried draft tokens.
    sources: Vec<(f64, f64)>,
    /// Per draft length `0..=max`: decayed seconds and pass count.
    times: Vec<(f64, f64)>,
    prior_acceptance: f64,
    prior_alpha: f64,
}

impl DraftLength {
    /// A controller for at most `max` drafts per pass, `sources` acceptance classes, a prior acceptance rate
    /// and a prior relative cost per drafted token (used until passes of two lengths were timed).
    pub fn new(max: usize, sources: usize, prior_acceptance: f64, prior_alpha: f64) -> Self {
        DraftLength {
            max,
            sources: vec![(0.0, 0.0); sources.max(1)],
            times: vec![(0.0, 0.0); max + 1],
            prior_acceptance: prior_acceptance.clamp(0.0, 1.0),
            prior_alpha,
        }
    }

    /// Estimated acceptance rate of drafts from `source`.
    pub fn acceptance(&self, source: usize) -> f64 {
        let (ok, tried) = self.sources[source.min(self.sources.len() - 1)];
        (ok + PRIOR_WEIGHT * self.prior_acceptance) / (tried + PRIOR_WEIGHT)
    }

    /// Estimated cost of one drafted token relative to a one-token pass.
    pub fn alpha(&self) -> f64 {
        // Weighted least squares of mean pass time against draft length, over the lengths seen.
        let points: Vec<(f64, f64, f64)> = self
            .times
            .iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0.0)
            .map(|(k, (secs, n))| (k as f64, secs / n, n.min(4.0)))
            .collect();
        if points.len() < 2 {
            return self.prior_alpha;
        }
        let w: f64 = points.iter().map(|p| p.2).sum();
        let mk = points.iter().map(|p| p.2 * p.0).sum::<f64>() / w;
        let mt = points.iter().map(|p| p.2 * p.1).sum::<f64>() / w;
        let var = points.iter().map(|p| p.2 * (p.0 - mk).powi(2)).sum::<f64>();
        let cov = points
            .iter()
            .map(|p| p.2 * (p.0 - mk) * (p.1 - mt))
            .sum::<f64>();
        let slope = cov / var;
        let base = mt - slope * mk;
        if !(base > 0.0 && slope.is_finite()) {
            return self.prior_alpha;
        }
        (slope / base).clamp(0.01, 4.0)
    }

    /// The draft length for the next pass with drafts from `source`, at most `available` (what the source can
    /// propose, the tokens left and the context).
    pub fn choose(&self, source: usize, available: usize) -> usize {
        let a = self.acceptance(source);
        let alpha = self.alpha();
        let mut best = (0, 1.0);
        let (mut expected, mut term) = (1.0, 1.0);
        for k in 1..=self.max.min(available) {
            term *= a;
            expected += term;
            let rate = expected / (1.0 + alpha * k as f64);
            if rate > best.1 {
                best = (k, rate);
            }
        }
        best.0
    }

    /// Records a pass: `drafted` tokens from `source` of which the first `accepted` were taken, in `secs`.
    pub fn record(&mut self, source: usize, drafted: usize, accepted: usize, secs: f64) {
        for s in &mut self.sources {
            *s = (s.0 * DECAY, s.1 * DECAY);
        }
        if drafted > 0 {
            let last = self.sources.len() - 1;
            let s = &mut self.sources[source.min(last)];
            // Drafts are checked left to right: the first miss is the last token tried.
            s.0 += accepted as f64;
            s.1 += (accepted + usize::from(accepted < drafted)) as f64;
        }
        if let Some(t) = self.times.get_mut(drafted) {
            *t = (t.0 * DECAY + secs, t.1 * DECAY + 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_longer_when_drafts_are_accepted_and_verification_is_cheap() {
        let mut d = DraftLength::new(16, 2, 0.5, 0.2);
        let start = d.choose(0, 16);
        assert!(start >= 1 && start < 8, "{start}");
        for _ in 0..20 {
            d.record(0, 8, 8, 0.13);
            d.record(0, 0, 0, 0.05);
        }
        assert!(d.acceptance(0) > 0.9);
        assert!((d.alpha() - 0.2).abs() < 1e-9, "{}", d.alpha());
        assert_eq!(d.choose(0, 16), 16);
        assert_eq!(d.choose(0, 3), 3);
        // The other source kept its prior.
        assert!((d.acceptance(1) - 0.5).abs() < 1e-9);
        // Rejected drafts shorten the next ones, down to nothing...
        for _ in 0..60 {
            d.record(0, 4, 0, 0.09);
        }
        assert!(d.acceptance(0) < 0.1, "{}", d.acceptance(0));
        assert_eq!(d.choose(0, 16), 0);
        // ...until passes without drafts from that source age the misses out and it is tried again.
        for _ in 0..40 {
            d.record(1, 0, 0, 0.05);
        }
        assert!(d.choose(0, 16) >= 1);
    }

    #[test]
    fn expensive_drafts_are_short() {
        let mut d = DraftLength::new(16, 1, 0.8, 1.0);
        // A pass of k drafts costs 1 + 1.0·k: only an acceptance near 1 pays for long drafts.
        for _ in 0..10 {
            d.record(0, 2, 1, 0.15);
            d.record(0, 4, 3, 0.25);
        }
        assert!((d.alpha() - 1.0).abs() < 1e-6, "{}", d.alpha());
        let k = d.choose(0, 16);
        assert!(k <= 3, "{k}");
    }
}
