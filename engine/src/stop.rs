//! Stop strings on decoded text: output is held back while it might be the start of a stop string, so a
//! stream never emits any part of one, and the final text is cut before the first match.

/// Scans streamed text for stop strings.
#[derive(Debug, Clone)]
pub struct StopScanner {
    stops: Vec<String>,
    /// All text seen so far.
    text: String,
    /// Bytes of `text` already released to the caller.
    emitted: usize,
    matched: Option<String>,
}

/// What one call to [`StopScanner::push`] released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// Text that is now safe to show (never part of a stop string).
    pub text: String,
    /// The stop string that matched, if the output must end here.
    pub stop: Option<String>,
}

impl StopScanner {
    /// A scanner for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        StopScanner {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            text: String::new(),
            emitted: 0,
            matched: None,
        }
    }

    /// Adds decoded text and returns what can be released. After a match, further input is ignored.
    pub fn push(&mut self, delta: &str) -> Released {
        if self.matched.is_some() {
            return Released {
                text: String::new(),
                stop: self.matched.clone(),
            };
        }
        self.text.push_str(delta);
        // Invariant: no stop string starts before `emitted` (anything that could have was held back).
        let pending = &self.text[self.emitted..];
        let first = self
            .stops
            .iter()
            .filter_map(|s| pending.find(s.as_str()).map(|at| (at, s)))
            .min_by_key(|(at, s)| (*at, std::cmp::Reverse(s.len())));
        if let Some((at, stop)) = first {
            let out = pending[..at].to_string();
            self.matched = Some(stop.clone());
            self.text.truncate(self.emitted + at);
            self.emitted = self.text.len();
            return Released {
                text: out,
                stop: self.matched.clone(),
            };
        }
        let hold = self.held_suffix(pending);
        let release_to = self.text.len() - hold;
        let out = self.text[self.emitted..release_to].to_string();
        self.emitted = release_to;
        Released {
            text: out,
            stop: None,
        }
    }

    /// Releases whatever is held back (call at the end of generation when no stop string matched).
    pub fn finish(&mut self) -> String {
        let out = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        out
    }

    /// The whole output so far, cut before the stop string if one matched.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Length in bytes of the longest suffix of `pending` that is a proper prefix of some stop string.
    fn held_suffix(&self, pending: &str) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in pending.char_indices() {
                let suffix = &pending[i..];
                if suffix.len() <= best {
                    break;
                }
                if suffix.len() < stop.len() && stop.starts_with(suffix) {
                    best = suffix.len();
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(stops: &[&str], deltas: &[&str]) -> (Vec<String>, String, Option<String>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut s = StopScanner::new(&stops);
        let mut out = Vec::new();
        let mut stop = None;
        for d in deltas {
            let r = s.push(d);
            out.push(r.text);
            if r.stop.is_some() {
                stop = r.stop;
                break;
            }
        }
        if stop.is_none() {
            out.push(s.finish());
        }
        (out, s.text().to_string(), stop)
    }

    #[test]
    fn stop_string_split_across_deltas_never_leaks() {
        let (out, text, stop) = stream(&["\n\n"], &["fn a()", " {}\n", "\nfn b"]);
        assert_eq!(out, ["fn a()", " {}", ""]);
        assert_eq!(
            (text.as_str(), stop.as_deref()),
            ("fn a() {}", Some("\n\n"))
        );
        let (out, text, stop) = stream(&["</code>"], &["x <", "/co", "de> tail"]);
        assert_eq!(out.concat(), "x ");
        assert!(out.iter().all(|d| !d.contains('<')));
        assert_eq!((text.as_str(), stop.as_deref()), ("x ", Some("</code>")));
    }

    #[test]
    fn false_starts_are_released_and_earliest_match_wins() {
        let (out, text, stop) = stream(&["<|end|>"], &["a <", "b", " c"]);
        assert_eq!(out, ["a ", "<b", " c", ""]);
        assert_eq!((text.as_str(), stop), ("a <b c", None));
        let (_, text, stop) = stream(&["cd", "bcd", "zz"], &["abcdzz"]);
        assert_eq!((text.as_str(), stop.as_deref()), ("a", Some("bcd")));
        // Multi-byte text is held and cut on character boundaries.
        let (out, text, _) = stream(&["é!"], &["caf", "é", "é!"]);
        assert_eq!((out.concat().as_str(), text.as_str()), ("café", "café"));
    }
}
