//! `qwen-ls explain FILE[:LINE | :SYMBOL] [--max-tokens N]`: prints the Markdown explanation the hover would
//! show for the function or method at LINE (1-based) or named SYMBOL (`name`, `Type::name`, `Type.name`).
//! Exit 0 with an explanation, 1 when there is none (no function there, empty answer), 3 on errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::agent::{load_model, load_workspace, offset_of, ModelFlags, ShowProgress};
use super::workspace::root_for_file;
use crate::tasks::{function_named, functions_in, Analysis, Caches, CancelToken, DocumentPosition};

/// Arguments of `qwen-ls explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// `FILE:LINE` (1-based) or `FILE:SYMBOL`.
    pub target: String,
    /// Context budget in tokens (default 4096, the `hover.budget` setting).
    #[arg(long)]
    pub budget: Option<usize>,
    /// The workspace root (default: the nearest ancestor of FILE containing `.git`).
    #[arg(long, value_name = "DIR")]
    pub root: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub model: ModelFlags,
}

/// What `FILE[:LINE | :SYMBOL]` names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Line(u32),
    Symbol(String),
    File,
}

/// Splits at the last `:` when what follows is a line number or an identifier and what precedes is a file.
fn parse_target(text: &str) -> (PathBuf, Target) {
    if let Some((file, rest)) = text.rsplit_once(':') {
        if !file.is_empty() && Path::new(file).is_file() {
            if let Ok(line) = rest.parse::<u32>() {
                return (PathBuf::from(file), Target::Line(line.max(1)));
            }
            if !rest.is_empty() {
                return (PathBuf::from(file), Target::Symbol(rest.to_string()));
            }
        }
        // `Type::name` after the file: the split above cut inside `::`.
        if let Some((file, symbol)) = text.split_once(':') {
            if Path::new(file).is_file() && !symbol.is_empty() {
                return (PathBuf::from(file), Target::Symbol(symbol.to_string()));
            }
        }
    }
    (PathBuf::from(text), Target::File)
}

/// Runs the command.
pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let (file, target) = parse_target(&args.target);
    let file = file
        .canonicalize()
        .with_context(|| format!("cannot open {}", file.display()))?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
    let offset = match &target {
        Target::Line(line) => {
            let start = offset_of(&text, *line, 1)?;
            // The first non-blank character: a line's leading whitespace may belong to no function.
            start + text[start..].len() - text[start..].trim_start_matches([' ', '\t']).len()
        }
        Target::Symbol(symbol) => match function_named(&file, &text, symbol) {
            Some(function) => function.range.start,
            None => anyhow::bail!(
                "no function or method named {symbol:?} in {}",
                file.display()
            ),
        },
        Target::File => {
            let names: Vec<String> = functions_in(&file, &text)
                .into_iter()
                .map(|f| match f.scope {
                    Some(scope) => format!("{scope}::{}", f.name),
                    None => f.name,
                })
                .collect();
            anyhow::bail!(
                "name a line or a function: {}:LINE or {}:SYMBOL (functions here: {})",
                args.target,
                args.target,
                if names.is_empty() {
                    "none found".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
    };
    let mut settings = args.model.settings();
    if let Some(max_tokens) = args.model.max_tokens {
        settings.hover.max_tokens = max_tokens;
    }
    if let Some(budget) = args.budget {
        settings.hover.budget = budget;
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
    let explanation = analysis.explain(&request, &CancelToken::new())?;
    workspace.save_caches();
    match explanation {
        Some(explanation) => {
            outln!("{}", explanation.markdown);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no function or method at that position (or an empty answer)");
            Ok(ExitCode::from(1))
        }
    }
}
