//! How many tokens to draft per pass: the length that maximises expected tokens per second, from the measured
//! acceptance rate and the measured cost of a pass.
//!
//! With per-token acceptance `a` (drafts are accepted left to right until the first miss), a pass that verifies
//! `k` drafts yields `E(k) = 1 + a + … + a^k` tokens on average. Its cost grows with `k`: verifying a row costs
//! compute (cheap next to reading the weights once, on a bandwidth-bound CPU) and a draft model costs a step of
//! its own per token. With `cost(k) = 1 + α·k` in units of a one-token pass, the best `k` maximises
//! `E(k) / cost(k)`. Both `a` and `α` are measured while generating: `a` per *source* (prompt-lookup drafts
//! from a 4-token match are far more reliable than from a 1-token one; the draft model is one source), as an
//! exponential moving average of accepted over tried tokens plus one prior token; `α` by comparing each drafted
//! pass's seconds with the moving average of passes without drafts, `(t(k)/t(0) − 1)/k`, clamped (a pass
//! stalled by another process must not count as a verdict) and smoothed. Nothing is tuned for one machine: an
//! AMX server with cheap verification drafts longer than a laptop, a loaded machine (where verification is
//! compute-bound) shorter.
//!
//! Every pass ages every source, drafted from or not, and a pass without drafts pulls `α` back toward its prior,
//! so an estimate that stopped drafting (its drafts were rejected, or a noisy pass made verification look
//! expensive) drifts back and is tried again a few dozen passes later: generated text changes character (prose,
//! then code that copies the prompt), and what was measured on the one must not lock out the other.

/// Forgetting per pass of the moving averages (the last ~10 passes dominate).
const DECAY: f64 = 0.9;
/// Weight of the prior acceptance, in tried tokens.
const PRIOR_WEIGHT: f64 = 1.0;
/// How far one drafted pass moves the estimate of `α` toward what it measured.
const ALPHA_GAIN: f64 = 0.1;
/// How far one pass without drafts moves `α` back toward its prior.
const ALPHA_RELAX: f64 = 0.05;
/// Largest `α` one pass can report.
const ALPHA_SAMPLE_MAX: f64 = 2.0;

/// Draft lengths worth trying: passes of 2, 4, 8 or 16 tokens. The quantized kernels multiply a weight block
/// with tokens in groups of 4 (AVX2) or 8 (AVX-512) and unpack the block once per group, so a pass that opens a
/// group for one more token pays most of a group for it; lengths that fill their groups waste nothing.
pub const LENGTHS: [usize; 4] = [1, 3, 7, 15];

/// Adaptive draft length; see the module documentation.
#[derive(Debug, Clone)]
pub struct DraftLength {
    max: usize,
    /// Per source: decayed accepted and tried draft tokens.
    sources: Vec<(f64, f64)>,
    /// Passes without drafts: decayed seconds and count.
    base: (f64, f64),
    /// Estimated cost of one drafted token relative to a pass without drafts.
    alpha: f64,
    prior_acceptance: f64,
    prior_alpha: f64,
}

impl DraftLength {
    /// A controller for at most `max` drafts per pass, `sources` acceptance classes, a prior acceptance rate
    /// and a prior relative cost per drafted token (until passes with and without drafts were timed).
    pub fn new(max: usize, sources: usize, prior_acceptance: f64, prior_alpha: f64) -> Self {
        DraftLength {
            max: max.max(1),
            sources: vec![(0.0, 0.0); sources.max(1)],
            base: (0.0, 0.0),
            alpha: prior_alpha,
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
        self.alpha
    }

    /// The draft length for the next pass with drafts from `source`, at most `available` (what the source can
    /// propose, the tokens left and the context): one of [`LENGTHS`] (or `available` when that is less than the
    /// length that pays best), or 0.
    pub fn choose(&self, source: usize, available: usize) -> usize {
        let a = self.acceptance(source);
        let alpha = self.alpha();
        let limit = self.max.min(available);
        let mut best = (0, 1.0);
        for k in LENGTHS.into_iter().map(|k| k.min(limit)).filter(|&k| k > 0) {
            // 1 + a + … + a^k tokens per pass.
            let expected: f64 = (0..=k).map(|i| a.powi(i as i32)).sum();
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
        if drafted == 0 {
            self.base = (self.base.0 * DECAY + secs, self.base.1 * DECAY + 1.0);
            self.alpha += ALPHA_RELAX * (self.prior_alpha - self.alpha);
        } else if self.base.1 > 0.0 {
            let base = self.base.0 / self.base.1;
            let sample = ((secs / base - 1.0) / drafted as f64).clamp(0.0, ALPHA_SAMPLE_MAX);
            self.alpha += ALPHA_GAIN * (sample - self.alpha);
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
        assert!((1..8).contains(&start), "{start}");
        for _ in 0..20 {
            d.record(0, 8, 8, 0.13);
            d.record(0, 0, 0, 0.05);
        }
        assert!(d.acceptance(0) > 0.9);
        // Drafted passes took (0.13 / 0.05 − 1) / 8 = 0.2 of a plain pass per draft: the prior was right.
        assert!((d.alpha() - 0.2).abs() < 0.01, "{}", d.alpha());
        assert_eq!(d.choose(0, 16), 15);
        assert_eq!(d.choose(0, 5), 5);
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
    fn expensive_drafts_are_short_and_a_stalled_pass_is_not_a_verdict() {
        let mut d = DraftLength::new(16, 1, 0.8, 0.2);
        d.record(0, 0, 0, 0.05);
        // Passes of k drafts cost 1 + 1.0·k plain passes: only an acceptance near 1 pays for long drafts.
        for _ in 0..60 {
            d.record(0, 3, 2, 0.2);
            d.record(0, 7, 5, 0.4);
        }
        assert!((d.alpha() - 1.0).abs() < 0.01, "{}", d.alpha());
        assert!(d.choose(0, 16) <= 3);
        // One pass stalled for a second moves the estimate by a bounded step only.
        let before = d.alpha();
        d.record(0, 1, 1, 1.0);
        assert!(d.alpha() - before <= ALPHA_GAIN * ALPHA_SAMPLE_MAX);
        // Passes without drafts pull it back toward the prior, so drafting resumes.
        for _ in 0..80 {
            d.record(0, 0, 0, 0.05);
        }
        assert!(d.alpha() < 0.25, "{}", d.alpha());
    }
}
