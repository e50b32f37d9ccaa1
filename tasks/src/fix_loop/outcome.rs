//! What the check loop produced: every round (answer, checks, outcome, times) and the verdict, with the
//! one-line summaries both front ends print.

use std::time::Duration;

use super::command::CommandRun;
use crate::generator::FinishReason;
use crate::patch::AnswerFormat;
use crate::EditProposal;

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundOutcome {
    /// Every check passed.
    Green,
    /// The edit applied but a check failed (or the edit introduced syntax errors).
    Red,
    /// The answer could not be turned into an edit.
    InvalidAnswer,
}

impl RoundOutcome {
    /// `green`, `red` or `invalid_answer` (the JSON words).
    pub fn as_str(self) -> &'static str {
        match self {
            RoundOutcome::Green => "green",
            RoundOutcome::Red => "red",
            RoundOutcome::InvalidAnswer => "invalid_answer",
        }
    }
}

/// One round: the answer, what came of it, the checks.
#[derive(Debug, Clone)]
pub struct Round {
    /// 1-based.
    pub number: usize,
    /// Tokens of the conversation sent (exact count of the messages plus the chat template).
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// The raw answer.
    pub answer: String,
    /// Why generation ended.
    pub finish: FinishReason,
    /// How the answer wrote its edits, when it could be read.
    pub format: Option<AnswerFormat>,
    /// Why the answer could not be used.
    pub answer_error: Option<String>,
    /// The answer applied but changed nothing (the next feedback says so: otherwise a greedy model asked the
    /// same question answers the same).
    pub unchanged: bool,
    /// The message the next round was sent about this one (`None` for the last round).
    pub feedback: Option<String>,
    /// The changes so far (all rounds) as a diff against the original files.
    pub diff: String,
    /// Syntax errors the changes so far introduce (path, 1-based lines).
    pub syntax_errors: Vec<(String, Vec<usize>)>,
    /// The checks run, in order (they stop at the first failure).
    pub checks: Vec<CommandRun>,
    /// How it ended.
    pub outcome: RoundOutcome,
    /// Time spent generating.
    pub generation_time: Duration,
    /// Time spent in checks.
    pub check_time: Duration,
}

impl Round {
    /// One line: `round 2: green (answer 14.2 s, checks 3.1 s)`, `round 1: red: `cargo check` exited with code
    /// 101 (…)`.
    pub fn summary(&self) -> String {
        let times = format!(
            "answer {:.1} s, checks {:.1} s",
            self.generation_time.as_secs_f64(),
            self.check_time.as_secs_f64()
        );
        format!(
            "round {}: {}{} ({times})",
            self.number,
            self.outcome.as_str(),
            self.why()
        )
    }

    /// Why the round was not green (`": `cargo check` exited with code 101"`), or nothing.
    fn why(&self) -> String {
        match self.outcome {
            RoundOutcome::Green => String::new(),
            RoundOutcome::InvalidAnswer => format!(
                ": {}",
                self.answer_error
                    .as_deref()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
            RoundOutcome::Red => match self.checks.iter().find(|run| !run.passed()) {
                Some(run) if run.timed_out => format!(": `{}` timed out", run.command),
                Some(run) => match run.exit_code {
                    Some(code) => format!(": `{}` exited with code {code}", run.command),
                    None => format!(": `{}` was killed", run.command),
                },
                None => ": the edit introduces syntax errors".to_string(),
            },
        }
    }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The last round was green.
    Green,
    /// Some answer applied, but no round was green.
    Red,
    /// No answer of any round could be turned into an edit.
    NoUsableAnswer,
}

impl Verdict {
    /// `green`, `red` or `no_usable_answer` (the JSON words).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Green => "green",
            Verdict::Red => "red",
            Verdict::NoUsableAnswer => "no_usable_answer",
        }
    }
}

/// What the loop produced.
#[derive(Debug)]
pub struct LoopResult {
    /// How it ended.
    pub verdict: Verdict,
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// The changes of all rounds as one patch of the user's tree (`None` when no answer was usable). Applying
    /// it is the caller's decision: atomically, and only if every file still holds its original content.
    pub proposal: Option<EditProposal>,
    /// Why the loop stopped before its last round, if it did (time limit, no room in the context window).
    pub stopped_early: Option<String>,
    /// Files and bytes copied, and the time the copy took.
    pub scratch: (usize, u64, Duration),
    /// Wall time of the whole loop.
    pub total_time: Duration,
}

impl LoopResult {
    /// One sentence for a person: how it ended and, when red, why the last round was.
    pub fn summary(&self) -> String {
        let rounds = self.rounds.len();
        let why = self.rounds.last().map(Round::why).unwrap_or_default();
        let stopped = self
            .stopped_early
            .as_ref()
            .map(|reason| format!("; stopped early: {reason}"))
            .unwrap_or_default();
        match self.verdict {
            Verdict::Green => format!("the checks pass after {rounds} round(s)"),
            Verdict::Red => format!("the checks still fail after {rounds} round(s){why}{stopped}"),
            Verdict::NoUsableAnswer => {
                format!("no answer in {rounds} round(s) could be turned into an edit{why}{stopped}")
            }
        }
    }
}
