//! `qwen-ls patch "…" --test-cmd CMD [--test-cmd CMD…] [--max-rounds N]`: the check loop
//! (`tasks::fix_loop`) from the command line. One line per round on stderr (and a spinner on a terminal), the
//! final diff on stdout (or the JSON transcript with `--json`); `--apply` writes only a green result, unless
//! `--apply-failed`. Exit codes: 0 green, 1 green but nothing changes, 2 no round produced a usable answer
//! (the answers are saved), 3 usage or setup error (a check that does not exist, a workspace that cannot be
//! copied), 4 still red after the last round.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::agent::{ShowProgress, Spinner};
use super::patch::{apply_policy, save_answer, PatchArgs};
use super::patch_json::loop_to_json;
use crate::tasks::fix_loop::auto;
use crate::tasks::patch::PatchError;
use crate::tasks::{
    Analysis, Caches, CancelToken, CheckedEdit, LoopEvent, LoopOptions, LoopResult, PatchRequest,
    Settings, Verdict, Workspace,
};

/// Default for `--max-rounds`.
pub const DEFAULT_MAX_ROUNDS: usize = 3;
/// Default for `--test-timeout`, in seconds.
pub const DEFAULT_TEST_TIMEOUT_SECS: u64 = 300;
/// Exit code: the checks still fail after the last round.
pub const EXIT_RED: u8 = 4;

/// The loop's options from the flags; `auto` expands to the detected checks of the project at `root`.
pub fn loop_options(args: &PatchArgs, root: &Path) -> anyhow::Result<LoopOptions> {
    if args.test_cmd.iter().any(|c| c.trim().is_empty()) {
        anyhow::bail!("--test-cmd needs a command");
    }
    let checks =
        auto::expand(&args.test_cmd, root).map_err(|e| anyhow::anyhow!("--test-cmd {e}"))?;
    for check in checks.iter().filter(|c| c.reason != "given") {
        eprintln!("check (from {}): {}", check.reason, check.command);
    }
    let commands = checks.into_iter().map(|c| c.command).collect();
    let max_rounds = args.max_rounds.unwrap_or(DEFAULT_MAX_ROUNDS);
    if max_rounds == 0 {
        anyhow::bail!("--max-rounds must be at least 1");
    }
    Ok(LoopOptions {
        commands,
        max_rounds,
        command_timeout: Duration::from_secs(
            args.test_timeout.unwrap_or(DEFAULT_TEST_TIMEOUT_SECS),
        ),
        time_limit: None,
        allow_syntax_errors: args.allow_syntax_errors,
    })
}

/// Runs the loop and reports it.
pub fn run(
    args: &PatchArgs,
    workspace: &Workspace,
    generator: &ShowProgress,
    settings: &Settings,
    request: &PatchRequest,
    options: &LoopOptions,
) -> anyhow::Result<ExitCode> {
    let spinner = Spinner::start("copying the workspace");
    let progress = |event: LoopEvent<'_>| spinner.set_message(event.to_string());
    // The loop shows its own progress: the inner generator, without a second spinner.
    let caches = Caches::new();
    let result = Analysis::new(workspace, generator.0.as_ref(), &caches, settings)
        .edit_until_green(
            CheckedEdit::Patch(request),
            options,
            &progress,
            &CancelToken::new(),
        );
    spinner.finish();
    workspace.save_caches();
    let result = result?;
    for round in &result.rounds {
        eprintln!("{}", round.summary());
    }
    eprintln!("{}", result.summary());
    report(args, &result)
}

fn report(args: &PatchArgs, result: &LoopResult) -> anyhow::Result<ExitCode> {
    let Some(proposal) = &result.proposal else {
        if let Some(error) = result.rounds.last().and_then(|r| r.answer_error.as_deref()) {
            eprintln!("error: {error}");
        }
        let answers: Vec<String> = result
            .rounds
            .iter()
            .map(|r| format!("<!-- round {} -->\n{}\n", r.number, r.answer))
            .collect();
        let saved = save_answer(&answers.concat())?;
        eprintln!("the model's answers were saved to {}", saved.display());
        if args.json {
            outln!(
                "{}",
                serde_json::to_string(&loop_to_json(result, 2, false))?
            );
        }
        return Ok(ExitCode::from(2));
    };
    let outcome = proposal.outcome();
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    let green = result.verdict == Verdict::Green;
    let code: u8 = match (green, outcome.files.is_empty()) {
        (true, false) => 0,
        (true, true) => 1,
        (false, _) => EXIT_RED,
    };
    if code == 1 {
        eprintln!("the checks pass and the edits change nothing");
    }
    if !green && args.apply && !args.apply_failed {
        eprintln!("the last candidate was not written (--apply-failed writes it)");
    }
    let mut applied = false;
    if args.apply && code != 1 && (green || args.apply_failed) {
        match proposal.apply_with(apply_policy(args)) {
            Ok(()) => {
                applied = true;
                eprintln!(
                    "applied: {} file(s), +{} -{}",
                    outcome.stats.files, outcome.stats.lines_added, outcome.stats.lines_removed
                );
            }
            // A red candidate with syntax errors (`--apply-failed`): not written, and the exit stays "red".
            Err(e @ PatchError::SyntaxErrors { .. }) => eprintln!("error: {e}"),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(e.exit().code()));
            }
        }
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string(&loop_to_json(result, code, applied))?
        );
    } else if args.check {
        for file in &outcome.files {
            eprintln!("{} {}", file.status.as_str(), file.path);
        }
    } else {
        out!("{}", outcome.diff);
    }
    Ok(ExitCode::from(code))
}
