//! Patches that check themselves: ask for an edit, apply it to a scratch copy of the workspace, run the
//! project's checks there, show the model what failed, ask again — until a round is green or the rounds run
//! out. The CLI (`patch --test-cmd`) and the LSP ("Fix diagnostics in range" with `codeActions.checkCommand`)
//! both call [`edit_until_green`].
//!
//! ```text
//! scratch.rs   the copy (ignore rules kept, `.git` left out, the editor's unsaved text written over it)
//! command.rs   one check: `sh -c`, own process group, timeout → SIGKILL to the group, bounded output
//! feedback.rs  the next user message: current files (or the diff), then the failure (output cut by tokens)
//! auto.rs      `--test-cmd auto`: one check per project kind whose tool is installed
//! outcome.rs   rounds, verdict, summaries
//! ```
//!
//! Each round reads the answer against the scratch tree as it is after the earlier rounds (the model saw those
//! files in the feedback), writes it there atomically, and checks. The conversation stays bounded: the first
//! prompt, the last answer and its feedback. The user's tree is never written here: the result is a patch of
//! the original files (the difference between them and the scratch tree's final state) that the caller
//! applies atomically, or not.

pub mod auto;
pub mod command;
pub mod feedback;
mod outcome;
pub mod scratch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qwen_engine::{CancelToken, Message, Role};

pub use self::outcome::{LoopResult, Round, RoundOutcome, Verdict};

use self::command::{run_command, CommandRun, EXIT_NOT_FOUND};
use self::feedback::{feedback, CurrentFile, Failure};
use self::scratch::{ScratchError, ScratchTree};
use super::checker::TreeSitterChecker;
use super::edit::{
    generate_answer, open_documents_overlay, patch_job, read_answer, refactor_job, EditJob,
};
use super::generator::{Generator, Sampling};
use super::patch::{prepare_contents, ApplyPolicy, FileContents, PatchWarning, SeenFiles};
use super::{
    CodeActionSettings, EditProposal, PatchRequest, RefactorRequest, TaskError, Workspace,
};
use qwen_engine::prompt::CHAT_TEMPLATE_TOKENS;

/// Tokens kept free for one round's feedback message when the prompt is built.
pub const FEEDBACK_BUDGET: usize = 3072;
/// The sampling temperature of rounds after the first (see [`round_sampling`]).
pub const RETRY_TEMPERATURE: f32 = 0.7;
/// Below this many tokens of room for feedback, another round is not attempted.
const MIN_FEEDBACK: usize = 256;

/// How to check candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopOptions {
    /// Shell commands, run in order in the scratch tree's root; a round is green when all exit 0.
    pub commands: Vec<String>,
    /// Most rounds (answers); at least 1.
    pub max_rounds: usize,
    /// Time limit of each command.
    pub command_timeout: Duration,
    /// Time limit of the whole loop (`None`: only the rounds bound it). At the limit the generation or command
    /// in progress is stopped and the loop ends red.
    pub time_limit: Option<Duration>,
    /// Whether syntax errors the edit introduces (tree-sitter) are allowed in a green round.
    pub allow_syntax_errors: bool,
}

/// Where the loop is, for progress displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopEvent<'a> {
    /// Copying the workspace.
    Copying,
    /// Waiting for the model's answer of a round.
    Generating {
        /// 1-based round.
        round: usize,
        /// Most rounds.
        of: usize,
    },
    /// Running a check.
    Checking {
        /// 1-based round.
        round: usize,
        /// Most rounds.
        of: usize,
        /// The command.
        command: &'a str,
    },
}

impl std::fmt::Display for LoopEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoopEvent::Copying => write!(f, "copying the workspace"),
            LoopEvent::Generating { round, of } => write!(f, "round {round}/{of}: generating"),
            LoopEvent::Checking { round, of, command } => {
                write!(f, "round {round}/{of}: running `{command}`")
            }
        }
    }
}

impl LoopOptions {
    /// The loop of the "Fix diagnostics in range" action, when `codeActions.checkCommand` names checks.
    pub fn for_fix(settings: &CodeActionSettings) -> Option<LoopOptions> {
        (!settings.check_commands.is_empty()).then(|| LoopOptions {
            commands: settings.check_commands.clone(),
            max_rounds: settings.max_rounds,
            command_timeout: Duration::from_secs(settings.check_timeout_secs),
            time_limit: Some(Duration::from_secs(settings.fix_time_limit_secs)),
            allow_syntax_errors: false,
        })
    }
}

/// Why the loop could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// Building the prompt or generating failed (including cancellation).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The scratch tree could not be made or written.
    #[error(transparent)]
    Scratch(#[from] ScratchError),
    /// A check command does not exist (`sh` exit 127).
    #[error("the check `{command}` was not found (exit code 127):\n{output}")]
    CommandNotFound {
        /// The command.
        command: String,
        /// What `sh` said.
        output: String,
    },
    /// A check could not be started, or a candidate could not be written to the scratch tree.
    #[error("{0}")]
    Environment(String),
    /// `auto` found no check for the project.
    #[error("{0}")]
    NoChecks(String),
}

/// What the loop edits: a workspace-wide patch (CLI `patch --test-cmd`) or one file's range (the "Fix
/// diagnostics in range" action).
#[derive(Debug, Clone, Copy)]
pub enum CheckedEdit<'a> {
    /// `patch`: the instruction across the workspace.
    Patch(&'a PatchRequest),
    /// `refactor`: one file's range; edits elsewhere are refused.
    Refactor(&'a RefactorRequest),
}

/// The edit, checked: rounds of answer → scratch copy → checks → feedback, until green or out of rounds.
pub(crate) fn edit_until_green(
    workspace: &Workspace,
    generator: &dyn Generator,
    settings: &CodeActionSettings,
    edit: CheckedEdit<'_>,
    options: &LoopOptions,
    progress: &dyn Fn(LoopEvent<'_>),
    cancel: &CancelToken,
) -> Result<LoopResult, LoopError> {
    let _span = tracing::info_span!("edit_until_green", rounds = options.max_rounds).entered();
    let settings = reserve_feedback(generator, settings);
    let job = match edit {
        CheckedEdit::Patch(request) => patch_job(workspace, generator, &settings, request)?,
        CheckedEdit::Refactor(request) => refactor_job(workspace, generator, &settings, request)?,
    };
    run_rounds(workspace, generator, &job, options, progress, cancel)
}

/// The first prompt's budget, lowered when the context window must also hold a round's answer and feedback.
fn reserve_feedback(
    generator: &dyn Generator,
    settings: &CodeActionSettings,
) -> CodeActionSettings {
    let mut settings = settings.clone();
    if let Some(window) = generator.info().context_window {
        let room = window.saturating_sub(2 * settings.max_tokens + FEEDBACK_BUDGET);
        settings.budget = settings.budget.min(room.max(1));
    }
    settings
}

/// Round 1 is greedy, like `patch` without checks. Later rounds sample (temperature [`RETRY_TEMPERATURE`],
/// top-p 0.95, seeded by the round, so a run is reproducible): in the first benchmark runs the greedy default
/// model, shown its failure, repeated its answer token for token in every later round.
fn round_sampling(round: usize) -> Sampling {
    if round <= 1 {
        return Sampling::greedy();
    }
    Sampling {
        temperature: RETRY_TEMPERATURE,
        top_p: 0.95,
        seed: round as u64,
    }
}

/// A cancel token that also fires at the loop's time limit.
struct Deadline {
    token: CancelToken,
    at: Option<Instant>,
    _stop: Option<mpsc::Sender<()>>,
}

impl Deadline {
    fn new(parent: &CancelToken, limit: Option<Duration>) -> Deadline {
        let token = parent.child();
        let Some(limit) = limit else {
            return Deadline {
                token,
                at: None,
                _stop: None,
            };
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let watched = token.clone();
        std::thread::spawn(move || {
            // A message or a hang-up means the loop is over; a timeout means the limit was reached.
            if stopped.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                watched.cancel();
            }
        });
        Deadline {
            token,
            at: Some(Instant::now() + limit),
            _stop: Some(stop),
        }
    }

    fn passed(&self) -> bool {
        self.at.is_some_and(|at| Instant::now() >= at)
    }

    fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// Environment for the checks: no colours, and (unless the user chose one) a persistent cargo target
/// directory under the cache, so the scratch copy of a crate does not rebuild its dependencies every run.
fn check_env(root: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        ("NO_COLOR".to_string(), "1".to_string()),
        ("CARGO_TERM_COLOR".to_string(), "never".to_string()),
    ];
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        if let Some(cache) = qwen_index::CacheStore::default_dir() {
            let name = root
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("workspace");
            let key = xxhash_rust::xxh3::xxh3_64(root.as_os_str().as_encoded_bytes());
            let dir: PathBuf = cache
                .join("check-target")
                .join(format!("{name}-{key:016x}"));
            env.push((
                "CARGO_TARGET_DIR".to_string(),
                dir.to_string_lossy().into_owned(),
            ));
        }
    }
    env
}

/// The loop's state between rounds.
struct Candidate {
    /// Original content of every file any round changed (`None`: created by the loop).
    originals: BTreeMap<String, Option<Vec<u8>>>,
    usable: bool,
}

impl Candidate {
    /// The changes so far against the originals (files back to their original content are left out).
    fn contents(&self, scratch: &ScratchTree) -> Vec<FileContents> {
        self.originals
            .iter()
            .filter_map(|(rel, before)| {
                let after = String::from_utf8(scratch.read(rel)?).ok()?;
                (before.as_deref() != Some(after.as_bytes())).then(|| FileContents {
                    rel: rel.clone(),
                    before: before.clone(),
                    after,
                })
            })
            .collect()
    }
}

fn run_rounds(
    workspace: &Workspace,
    generator: &dyn Generator,
    job: &EditJob,
    options: &LoopOptions,
    progress: &dyn Fn(LoopEvent<'_>),
    cancel: &CancelToken,
) -> Result<LoopResult, LoopError> {
    let started = Instant::now();
    let deadline = Deadline::new(cancel, options.time_limit);
    progress(LoopEvent::Copying);
    let overlay = open_documents_overlay(workspace);
    let scratch = ScratchTree::copy(workspace.root(), (!overlay.is_empty()).then_some(&overlay))?;
    tracing::info!(
        files = scratch.files,
        bytes = scratch.bytes,
        "scratch copy in {:.2}s",
        scratch.copy_time.as_secs_f64()
    );
    let commands: Vec<String> = auto::expand(&options.commands, workspace.root())
        .map_err(LoopError::NoChecks)?
        .into_iter()
        .map(|check| check.command)
        .collect();
    let env = check_env(workspace.root());
    let scratch_prefix = format!("{}/", scratch.root().display());
    let count = |text: &str| workspace.count_tokens(text);
    let max_rounds = options.max_rounds.max(1);
    let mut seen: SeenFiles = job.prompt.seen.clone();
    let mut messages = job.prompt.messages.clone();
    let mut prompt_tokens = job.prompt.tokens;
    let mut candidate = Candidate {
        originals: BTreeMap::new(),
        usable: false,
    };
    let mut rounds: Vec<Round> = Vec::new();
    let mut stopped_early = None;
    for number in 1..=max_rounds {
        if cancel.is_cancelled() {
            return Err(TaskError::Cancelled.into());
        }
        if deadline.passed() {
            stopped_early = Some("the time limit was reached".to_string());
            break;
        }
        progress(LoopEvent::Generating {
            round: number,
            of: max_rounds,
        });
        let generating = Instant::now();
        let generation = match generate_answer(
            generator,
            job,
            messages.clone(),
            round_sampling(number),
            &deadline.token,
        ) {
            Err(TaskError::Cancelled) if !cancel.is_cancelled() => {
                stopped_early =
                    Some("the time limit was reached while the model was answering".to_string());
                break;
            }
            other => other?,
        };
        let generation_time = generating.elapsed();
        let mut round = Round {
            number,
            prompt_tokens,
            generated_tokens: generation.stats.generated_tokens,
            answer: generation.text.clone(),
            finish: generation.finish,
            format: None,
            answer_error: None,
            unchanged: false,
            feedback: None,
            diff: String::new(),
            syntax_errors: Vec::new(),
            checks: Vec::new(),
            outcome: RoundOutcome::InvalidAnswer,
            generation_time,
            check_time: Duration::ZERO,
        };
        match read_answer(scratch.root(), &generation.text, &seen, None, job) {
            Err(failure) => round.answer_error = Some(failure.to_string()),
            // Configuration that can run programs (`patch/protected.rs`) is never written here: the checks would
            // run it before the user confirmed it. The model hears why and may change other files.
            Ok(patch) if !patch.needs_confirmation().is_empty() => {
                let paths: Vec<String> = patch
                    .needs_confirmation()
                    .into_iter()
                    .map(|(path, what)| format!("`{path}` ({what})"))
                    .collect();
                round.answer_error = Some(format!(
                    "it edits {}: configuration that can run programs, which the check loop never writes or \
                     runs. Make the change in other files.",
                    paths.join(", ")
                ));
            }
            Ok(patch) => {
                for file in patch.files() {
                    candidate
                        .originals
                        .entry(file.path.clone())
                        .or_insert_with(|| file.before.map(String::into_bytes));
                }
                // Syntax errors are written: the checks and the next feedback report them.
                let policy = ApplyPolicy {
                    allow_config_edits: false,
                    allow_syntax_errors: true,
                };
                patch.apply_with(policy).map_err(|e| {
                    LoopError::Environment(format!(
                        "cannot write the candidate to the scratch tree: {e}"
                    ))
                })?;
                candidate.usable = true;
                round.format = Some(patch.outcome().format);
                round.unchanged = patch.outcome().files.is_empty();
            }
        }
        if candidate.usable {
            let cumulative = prepare_contents(
                scratch.root(),
                candidate.contents(&scratch),
                &TreeSitterChecker,
            )
            .map_err(|e| LoopError::Environment(format!("cannot compare the scratch tree: {e}")))?;
            round.diff = cumulative.outcome().diff.clone();
            round.syntax_errors = cumulative
                .outcome()
                .warnings
                .iter()
                .filter_map(|w| match w {
                    PatchWarning::SyntaxErrors { path, lines } => {
                        Some((path.clone(), lines.clone()))
                    }
                    _ => None,
                })
                .collect();
        }
        if round.answer_error.is_none() {
            let checking = Instant::now();
            for command in &commands {
                progress(LoopEvent::Checking {
                    round: number,
                    of: max_rounds,
                    command,
                });
                let timeout = deadline
                    .remaining()
                    .map_or(options.command_timeout, |left| {
                        left.min(options.command_timeout)
                    });
                let mut run = run_command(command, scratch.root(), &env, timeout, &deadline.token)
                    .map_err(|e| LoopError::Environment(format!("cannot run `{command}`: {e}")))?;
                run.output = run.output.replace(&scratch_prefix, "");
                if run.exit_code == Some(EXIT_NOT_FOUND) {
                    return Err(LoopError::CommandNotFound {
                        command: command.clone(),
                        output: run.output,
                    });
                }
                if run.cancelled && cancel.is_cancelled() {
                    return Err(TaskError::Cancelled.into());
                }
                let passed = run.passed();
                round.checks.push(run);
                if !passed {
                    break;
                }
            }
            round.check_time = checking.elapsed();
            let syntax_ok = options.allow_syntax_errors || round.syntax_errors.is_empty();
            round.outcome = if syntax_ok && round.checks.iter().all(CommandRun::passed) {
                RoundOutcome::Green
            } else {
                RoundOutcome::Red
            };
        }
        tracing::info!(
            round = number,
            outcome = round.outcome.as_str(),
            "round finished in {:.1}s",
            (round.generation_time + round.check_time).as_secs_f64()
        );
        let green = round.outcome == RoundOutcome::Green;
        rounds.push(round);
        if green || number == max_rounds {
            break;
        }
        let Some(round) = rounds.last() else { break };
        // The next prompt: the first one, this answer, and what went wrong.
        let answer_tokens = count(&round.answer);
        let room = generator
            .info()
            .context_window
            .map_or(FEEDBACK_BUDGET, |window| {
                window.saturating_sub(
                    job.prompt.tokens + answer_tokens + job.max_tokens + CHAT_TEMPLATE_TOKENS,
                )
            })
            .min(FEEDBACK_BUDGET);
        if room < MIN_FEEDBACK {
            stopped_early = Some(format!(
                "no room for another round in the model's context window ({room} tokens left for feedback)"
            ));
            break;
        }
        let next = next_feedback(round, &candidate, &scratch, room, &count);
        for path in candidate.originals.keys() {
            if let Some(bytes) = scratch.read(path) {
                if next.shown_whole.contains(path) {
                    seen.record_whole(path.clone(), bytes);
                } else {
                    seen.record(path.clone(), bytes);
                }
            }
        }
        prompt_tokens =
            job.prompt.tokens + answer_tokens + count(&next.text) + CHAT_TEMPLATE_TOKENS;
        messages = job.prompt.messages.clone();
        messages.push(Message::new(Role::Assistant, round.answer.clone()));
        messages.push(Message::new(Role::User, next.text.clone()));
        if let Some(round) = rounds.last_mut() {
            round.feedback = Some(next.text);
        }
    }
    let verdict = match rounds.last() {
        Some(last) if last.outcome == RoundOutcome::Green => Verdict::Green,
        _ if candidate.usable => Verdict::Red,
        _ => Verdict::NoUsableAnswer,
    };
    let proposal = if candidate.usable {
        let patch = prepare_contents(
            workspace.root(),
            candidate.contents(&scratch),
            &TreeSitterChecker,
        )
        .map_err(|e| LoopError::Environment(format!("cannot build the final patch: {e}")))?;
        Some(EditProposal::new(workspace, patch))
    } else {
        None
    };
    Ok(LoopResult {
        verdict,
        rounds,
        proposal,
        stopped_early,
        scratch: (scratch.files, scratch.bytes, scratch.copy_time),
        total_time: started.elapsed(),
    })
}

/// The feedback after a red round.
fn next_feedback(
    round: &Round,
    candidate: &Candidate,
    scratch: &ScratchTree,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> feedback::Feedback {
    let mut failures = Vec::new();
    if let Some(error) = &round.answer_error {
        failures.push(Failure::InvalidAnswer(error));
    }
    if round.unchanged {
        failures.push(Failure::Unchanged);
    }
    if !round.syntax_errors.is_empty() {
        failures.push(Failure::SyntaxErrors(&round.syntax_errors));
    }
    if let Some(run) = round.checks.iter().find(|run| !run.passed()) {
        failures.push(Failure::Command(run));
    }
    let texts: Vec<(String, String)> = candidate
        .originals
        .keys()
        .filter_map(|path| {
            let text = String::from_utf8(scratch.read(path)?).ok()?;
            Some((path.clone(), text))
        })
        .collect();
    let files: Vec<CurrentFile<'_>> = texts
        .iter()
        .map(|(path, text)| CurrentFile { path, text })
        .collect();
    feedback(&failures, &round.diff, &files, budget, count)
}
