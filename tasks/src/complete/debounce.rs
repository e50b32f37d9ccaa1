//! How long to wait after a keystroke before generating: pure policy over recent typing intervals and
//! measured generation latency.
//!
//! A generation started while the user is still typing is cancelled by the next keystroke and wasted. So:
//! - at the start of a line (right after Enter) or on an explicit invocation, start at once: the user has
//!   paused by intent, and this is where multi-line suggestions are most wanted;
//! - when generations are known to finish well within the user's typical gap between keystrokes, start after
//!   the minimum delay: the suggestion lands before the next key anyway;
//! - otherwise wait a little longer than the typical gap (×[`GAP_FACTOR`]): if the user is still typing the
//!   next key arrives first and nothing was wasted; if not, the pause is detected soon after it starts;
//! - with no typing history yet, use the configured base delay.
//!
//! Every delay except the immediate path is clamped to `[min, max]` of [`DebounceConfig`].

use std::collections::VecDeque;
use std::time::Duration;

/// The delay is this multiple of the typical gap between keystrokes.
pub const GAP_FACTOR: f64 = 1.25;
/// Gaps longer than this are pauses, not typing speed, and are ignored.
pub const PAUSE: Duration = Duration::from_millis(1000);
/// Margin a generation must finish within before the next expected keystroke to start without waiting.
pub const LATENCY_MARGIN: Duration = Duration::from_millis(10);

/// Bounds and defaults; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebounceConfig {
    /// Delay used before any typing has been observed (the `completion.debounceMs` setting).
    pub base: Duration,
    /// Smallest delay on the typing path.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for DebounceConfig {
    fn default() -> Self {
        DebounceConfig {
            base: Duration::from_millis(75),
            min: Duration::from_millis(15),
            max: Duration::from_millis(400),
        }
    }
}

/// What triggered the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A keystroke within a line.
    Typing,
    /// The cursor is at the start of a new line, right after a newline was typed.
    NewLine,
    /// The user asked for a suggestion explicitly.
    Explicit,
}

/// A bounded history of durations (keystroke gaps or generation latencies), newest last.
#[derive(Debug, Clone)]
pub struct History {
    capacity: usize,
    values: VecDeque<Duration>,
}

impl History {
    /// A history keeping the last `capacity` values (at least one).
    pub fn new(capacity: usize) -> History {
        History {
            capacity: capacity.max(1),
            values: VecDeque::new(),
        }
    }

    /// Records a value, dropping the oldest beyond capacity.
    pub fn record(&mut self, value: Duration) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// The values, oldest first.
    pub fn values(&self) -> Vec<Duration> {
        self.values.iter().copied().collect()
    }
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// The delay before generating, from recent gaps between keystrokes and recent generation latencies (any
/// order of magnitude; medians make single outliers harmless). See the module documentation.
pub fn debounce_delay(
    config: &DebounceConfig,
    trigger: Trigger,
    keystroke_gaps: &[Duration],
    latencies: &[Duration],
) -> Duration {
    if matches!(trigger, Trigger::NewLine | Trigger::Explicit) {
        return Duration::ZERO;
    }
    let (min, max) = (config.min, config.max.max(config.min));
    let typing = median(
        keystroke_gaps
            .iter()
            .copied()
            .filter(|gap| *gap < PAUSE)
            .collect(),
    );
    let Some(gap) = typing else {
        return config.base.clamp(min, max);
    };
    let latency = median(latencies.to_vec());
    if latency.is_some_and(|latency| latency + LATENCY_MARGIN <= gap) {
        return min;
    }
    gap.mul_f64(GAP_FACTOR).clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn new_lines_and_explicit_requests_are_immediate() {
        let config = DebounceConfig::default();
        assert_eq!(
            debounce_delay(&config, Trigger::NewLine, &ms(&[50, 50]), &ms(&[300])),
            Duration::ZERO
        );
        assert_eq!(
            debounce_delay(&config, Trigger::Explicit, &[], &[]),
            Duration::ZERO
        );
    }

    #[test]
    fn adapts_to_typing_speed_and_latency() {
        let config = DebounceConfig::default();
        assert_eq!(
            debounce_delay(&config, Trigger::Typing, &[], &[]),
            config.base
        );
        // Fast typist, slow model: wait just past the typical gap.
        assert_eq!(
            debounce_delay(&config, Trigger::Typing, &ms(&[80, 100, 120]), &ms(&[400])),
            ms(&[125])[0]
        );
        // Pauses do not count as typing speed.
        assert_eq!(
            debounce_delay(&config, Trigger::Typing, &ms(&[100, 5000, 100]), &[]),
            ms(&[125])[0]
        );
        // Fast model relative to the typist: start right away.
        assert_eq!(
            debounce_delay(
                &config,
                Trigger::Typing,
                &ms(&[200, 220]),
                &ms(&[40, 60, 500])
            ),
            config.min
        );
    }

    #[test]
    fn delays_are_clamped() {
        let config = DebounceConfig::default();
        assert_eq!(
            debounce_delay(&config, Trigger::Typing, &ms(&[900, 950]), &ms(&[2000])),
            config.max
        );
        assert_eq!(
            debounce_delay(&config, Trigger::Typing, &ms(&[2, 3]), &ms(&[50])),
            config.min
        );
        let odd = DebounceConfig {
            base: Duration::from_secs(9),
            min: Duration::from_millis(30),
            max: Duration::ZERO,
        };
        assert_eq!(
            debounce_delay(&odd, Trigger::Typing, &[], &[]),
            Duration::from_millis(30)
        );
    }

    #[test]
    fn history_is_bounded() {
        let mut history = History::new(2);
        for v in [1, 2, 3] {
            history.record(Duration::from_millis(v));
        }
        assert_eq!(history.values(), ms(&[2, 3]));
    }
}
