//! `qwen-ls complete FILE:LINE:COL [--max-tokens N] [--budget N] [--json]`: prints exactly the completion the
//! language server would show at that position (the inserted text; `--json` adds the replaced byte range).
//! Exit 0 with a completion, 1 when there is nothing to show, 3 on errors.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use super::agent::{load_model, load_workspace, offset_of, ModelFlags, ShowProgress};
use super::workspace::{parse_location, root_for_file};
use crate::tasks::{Analysis, Caches, CancelToken, DocumentPosition};

/// Arguments of `qwen-ls complete`.
#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// `FILE:LINE:COL`, 1-based as compilers print them (COL in bytes).
    pub location: String,
    /// Prompt budget in tokens (default 2048, the `completion.budget` setting).
    #[arg(long)]
    pub budget: Option<usize>,
    /// Print `{"text","start","end","stop"}` (byte offsets of the replaced range) instead of the text.
    #[arg(long)]
    pub json: bool,
    /// The workspace root (default: the nearest ancestor of FILE containing `.git`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub model: ModelFlags,
}

/// Runs the command.
pub fn run(args: &CompleteArgs) -> anyhow::Result<ExitCode> {
    let location = parse_location(&args.location)?;
    let file = location
        .file
        .canonicalize()
        .with_context(|| format!("cannot open {}", location.file.display()))?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let offset = offset_of(&text, location.line, location.column)?;
    let mut settings = args.model.settings();
    if let Some(max_tokens) = args.model.max_tokens {
        settings.completion.max_tokens = max_tokens;
    }
    // One answer, no editor waiting on keystrokes: always the full prompt.
    settings.completion.latency_ms = 0;
    if let Some(budget) = args.budget {
        settings.completion.budget = budget;
    }
    let workspace = load_workspace(&root_for_file(args.root.as_deref(), &file)?)?;
    let generator = ShowProgress(load_model(&settings)?);
    let request = DocumentPosition {
        path: file,
        text: Some(text.into()),
        offset,
        version: None,
        language_id: String::new(),
    };
    let caches = Caches::new();
    let analysis = Analysis::new(&workspace, &generator, &caches, &settings);
    let completion = analysis.complete(&request, &CancelToken::new())?;
    workspace.save_caches();
    let Some(completion) = completion else {
        if args.json {
            outln!("null");
        }
        return Ok(ExitCode::from(1));
    };
    if args.json {
        let value = json!({
            "text": completion.text,
            "start": completion.range.start,
            "end": completion.range.end,
            "stop": completion.stop.map(|s| format!("{:?}", s.reason)),
        });
        outln!("{value}");
    } else {
        outln!("{}", completion.text);
    }
    Ok(ExitCode::SUCCESS)
}
