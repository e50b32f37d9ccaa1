//! `complete_alternatives`: what an explicitly invoked completion (the user asked for suggestions) answers —
//! up to [`MAX_ALTERNATIVES`] distinct suggestions to cycle through. The first is exactly what [`crate::Analysis::complete`]
//! gives (so the suggestion already on screen stays); the others are sampled with fixed seeds (the same
//! request gives the same list), deduplicated, and the list is ranked by the model's mean log-probability of
//! each generation. Completions the editor requests by itself while typing stay single ([`crate::Analysis::complete`]).
//!
//! Every alternative continues the same session as the first, so the prompt is prefilled once and each
//! further suggestion costs only its decode.

use qwen_engine::CancelToken;

use super::completion::complete_with_stats;
use super::generator::{Generator, Sampling};
use super::{
    Caches, Completion, CompletionSettings, DocumentPosition, TaskError, TaskStats, Workspace,
};

/// The most suggestions an invoked completion returns.
pub const MAX_ALTERNATIVES: usize = 3;

/// Sampling of the alternatives: warm enough to differ from the greedy answer, nucleus-cut to stay plausible.
const TEMPERATURE: f32 = 0.8;
const TOP_P: f32 = 0.95;

/// Seeds tried in order, one generation each; duplicates are dropped, so a confident model may give fewer.
const SEEDS: [u64; 4] = [1, 2, 3, 4];

/// Up to [`MAX_ALTERNATIVES`] distinct completions at the cursor, best first (see the module documentation),
/// with the first call's timings and counters (the suggestion log records them).
pub fn complete_alternatives(
    workspace: &Workspace,
    generator: &dyn Generator,
    caches: &Caches,
    settings: &CompletionSettings,
    request: &DocumentPosition,
    cancel: &CancelToken,
) -> Result<(Vec<Completion>, TaskStats), TaskError> {
    let (first, stats) = complete_with_stats(
        workspace, generator, caches, settings, request, cancel, None,
    )?;
    let mut found: Vec<Completion> = first.into_iter().collect();
    for seed in SEEDS {
        if found.len() >= MAX_ALTERNATIVES {
            break;
        }
        if cancel.is_cancelled() {
            return Err(TaskError::Cancelled);
        }
        let sampling = Sampling {
            temperature: TEMPERATURE.max(settings.temperature),
            top_p: TOP_P,
            seed,
        };
        let (alternative, _) = complete_with_stats(
            workspace,
            generator,
            caches,
            settings,
            request,
            cancel,
            Some(sampling),
        )?;
        if let Some(alternative) = alternative {
            if !found.iter().any(|c| same_edit(c, &alternative)) {
                found.push(alternative);
            }
        }
    }
    rank(&mut found);
    Ok((found, stats))
}

fn same_edit(a: &Completion, b: &Completion) -> bool {
    a.range == b.range && a.text.trim_end() == b.text.trim_end()
}

/// The model's mean log-probability of the generation behind `completion`; a suggestion from the forward
/// cache (already on screen, nothing generated) ranks first.
fn score(completion: &Completion) -> f64 {
    completion
        .stats
        .generation
        .as_ref()
        .map_or(Some(f64::INFINITY), |g| g.mean_logprob)
        .unwrap_or(f64::NEG_INFINITY)
}

/// Best first; equal scores (a backend without log-probabilities) keep the order they were generated in.
fn rank(completions: &mut [Completion]) {
    completions.sort_by(|a, b| score(b).total_cmp(&score(a)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::GenStats;
    use crate::{CompletionSource, TaskStats};

    fn completion(text: &str, mean_logprob: Option<f64>, generated: bool) -> Completion {
        Completion {
            range: 3..3,
            text: text.to_owned(),
            id: text.to_owned(),
            version: Some(1),
            source: CompletionSource::Generated,
            stop: None,
            stats: TaskStats {
                generation: generated.then(|| GenStats {
                    mean_logprob,
                    ..GenStats::default()
                }),
                ..TaskStats::default()
            },
        }
    }

    #[test]
    fn ranked_by_mean_logprob_with_the_cached_suggestion_first() {
        let mut list = vec![
            completion("a", Some(-2.0), true),
            completion("b", Some(-0.5), true),
            completion("cached", None, false),
            completion("c", Some(-1.0), true),
        ];
        rank(&mut list);
        let order: Vec<&str> = list.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(order, ["cached", "b", "c", "a"]);
    }

    #[test]
    fn without_logprobs_the_generation_order_stays() {
        let mut list = vec![
            completion("first", None, true),
            completion("second", None, true),
            completion("third", None, true),
        ];
        rank(&mut list);
        let order: Vec<&str> = list.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(order, ["first", "second", "third"]);
    }

    #[test]
    fn trailing_whitespace_does_not_make_a_new_suggestion() {
        assert!(same_edit(
            &completion("x + 1\n", None, true),
            &completion("x + 1", None, true)
        ));
        assert!(!same_edit(
            &completion("x + 1", None, true),
            &completion("x + 2", None, true)
        ));
    }
}
