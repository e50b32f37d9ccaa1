//! `qwen-ls patch "INSTRUCTION" [--root DIR] [--files F…] [--budget N] [--apply | --check] [--json]
//! [--test-cmd CMD… [--max-rounds N] [--test-timeout S] [--apply-failed]] [--allow-syntax-errors]`:
//! the model's edits as a unified diff on stdout (or written, with `--apply`). Exit codes: 0 patch produced
//! (or applied), 1 no change, 2 the answer could not be turned into a valid patch, or `--apply` of a patch
//! that introduces syntax errors (the raw answer is saved in the user's cache directory and its path
//! printed), 3 usage or environment error (including `--apply` of configuration edits without
//! `--allow-config-edits`). With `--test-cmd`, the check loop (`patch_loop.rs`) adds 4: still red after the
//! last round.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::agent::{load_model, load_workspace, root_of_dir, ModelFlags, ShowProgress};
use super::patch_json::outcome_to_json;
use crate::tasks::patch::{recover, ApplyPolicy, PatchExit};
use crate::tasks::{Analysis, Caches, CancelToken, EditAnswer, PatchRequest};

/// Arguments of `qwen-ls patch`.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// What to change, in plain words.
    pub instruction: String,
    /// The repository root (default: the nearest ancestor of the current directory containing `.git`).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Files to show the model whole, first (the rest of the context is retrieved).
    #[arg(long, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Prompt budget in tokens (default 8192, the `codeActions.budget` setting).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Write the patch (atomically, and only if no file changed since the model saw it).
    #[arg(long, conflicts_with = "check")]
    pub apply: bool,
    /// With --apply: also write editor, CI, build-tool and shell configuration (`.vscode/`, `.github/`,
    /// `.cargo/`, `.envrc`, …), which can run programs; without it such a patch is not written.
    #[arg(long, requires = "apply")]
    pub allow_config_edits: bool,
    /// Only check that a valid patch comes out: print no diff (summary and warnings on stderr).
    #[arg(long)]
    pub check: bool,
    /// Print `{"diff","files","warnings","stats","format"}` instead of the diff (with `--test-cmd`: the transcript
    /// of every round as well).
    #[arg(long)]
    pub json: bool,
    /// Check each candidate in a scratch copy of the workspace with this shell command (repeatable; run in
    /// order, in the copy's root) and feed failures back to the model until every command passes. `auto`: the
    /// usual check of each project kind found (cargo check, python -m compileall / ruff, tsc --noEmit, go
    /// vet), each only if its tool is installed.
    #[arg(long = "test-cmd", value_name = "CMD")]
    pub test_cmd: Vec<String>,
    /// Most rounds (model answers) of the check loop.
    #[arg(long, value_name = "N", requires = "test_cmd")]
    pub max_rounds: Option<usize>,
    /// Time limit of each check command, in seconds; the command's whole process group is killed at it.
    #[arg(long, value_name = "SECS", requires = "test_cmd")]
    pub test_timeout: Option<u64>,
    /// With `--apply` and `--test-cmd`: write the last candidate even when its checks still fail.
    #[arg(long, requires_all = ["apply", "test_cmd"])]
    pub apply_failed: bool,
    /// Accept an edit that introduces syntax errors (tree-sitter): `--apply` writes it and the check loop may
    /// call it green. Without it, `--apply` refuses such an edit (exit 2).
    #[arg(long)]
    pub allow_syntax_errors: bool,
    #[command(flatten)]
    pub model: ModelFlags,
}

/// Runs the command.
pub fn run(args: &PatchArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let root = match &args.root {
        Some(root) => cwd.join(root),
        None => root_of_dir(&cwd),
    };
    if !root.is_dir() {
        anyhow::bail!("--root {} is not a directory", root.display());
    }
    // An earlier `--apply` killed between two renames: finish it before the model reads the files.
    match recover(&root) {
        Ok(Some(recovered)) => eprintln!("note: {recovered}"),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(PatchExit::UsageOrEnvironment.code()));
        }
    }
    let mut settings = args.model.settings();
    if let Some(max_tokens) = args.model.max_tokens {
        settings.code_actions.max_tokens = max_tokens;
    }
    let checks = if args.test_cmd.is_empty() {
        None
    } else {
        Some(super::patch_loop::loop_options(args, &root)?)
    };
    let workspace = load_workspace(&root)?;
    let generator = ShowProgress(load_model(&settings)?);
    let request = PatchRequest {
        instruction: args.instruction.clone(),
        files: args.files.iter().map(|f| cwd.join(f)).collect(),
        budget: args.budget,
    };
    if let Some(checks) = checks {
        return super::patch_loop::run(args, &workspace, &generator, &settings, &request, &checks);
    }
    let caches = Caches::new();
    let analysis = Analysis::new(&workspace, &generator, &caches, &settings);
    let answer = analysis.patch(&request, &CancelToken::new())?;
    workspace.save_caches();
    report(args, answer)
}

fn report(args: &PatchArgs, answer: EditAnswer) -> anyhow::Result<ExitCode> {
    let proposal = match &answer.result {
        Ok(proposal) => proposal,
        Err(failure) => {
            eprintln!("error: {failure}");
            let saved = save_answer(&answer.answer)?;
            eprintln!("the model's answer was saved to {}", saved.display());
            return Ok(ExitCode::from(failure.exit().code()));
        }
    };
    let outcome = proposal.outcome();
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    let exit = outcome.exit();
    if exit == PatchExit::NoChange {
        eprintln!("the edits change nothing");
    }
    if args.apply && exit == PatchExit::Produced {
        if let Err(e) = proposal.apply_with(apply_policy(args)) {
            eprintln!("error: {e}");
            if e.exit() == PatchExit::InvalidAnswer {
                let saved = save_answer(&answer.answer)?;
                eprintln!("the model's answer was saved to {}", saved.display());
            }
            return Ok(ExitCode::from(e.exit().code()));
        }
        eprintln!(
            "applied: {} file(s), +{} -{}",
            outcome.stats.files, outcome.stats.lines_added, outcome.stats.lines_removed
        );
    }
    if args.json {
        outln!("{}", serde_json::to_string(&outcome_to_json(outcome))?);
    } else if args.check {
        for file in &outcome.files {
            eprintln!("{} {}", file.status.as_str(), file.path);
        }
    } else {
        out!("{}", outcome.diff);
    }
    Ok(ExitCode::from(exit.code()))
}

/// What `--apply` may write: configuration edits and introduced syntax errors only when asked.
pub(super) fn apply_policy(args: &PatchArgs) -> ApplyPolicy {
    ApplyPolicy {
        allow_config_edits: args.allow_config_edits,
        allow_syntax_errors: args.allow_syntax_errors,
    }
}

/// Saves a raw answer in the user's cache directory (`answers/patch-<time>-<pid>.md`, the directory created
/// private: 0700), never in a shared temporary directory; no cache directory is an error.
pub(super) fn save_answer(answer: &str) -> anyhow::Result<PathBuf> {
    let dir = crate::index::CacheStore::default_dir()
        .context(
            "cannot save the model's answer: no cache directory (set QWEN_LS_CACHE_DIR, XDG_CACHE_HOME or HOME)",
        )?
        .join("answers");
    crate::index::cache::create_private_dir(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let path = dir.join(format!("patch-{stamp}-{}.md", std::process::id()));
    std::fs::write(&path, answer)
        .with_context(|| format!("cannot save the answer to {}", path.display()))?;
    Ok(path)
}
