//! `qwen-ls context FILE:LINE:COL [--budget N] [--query TEXT] [--json]`: show what would be packed.

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::workspace::{load_index, parse_location, token_memo_path, workspace_root};
use crate::context::{pack, ContextRequest, PackConfig, PackedContext, TokenCountCache};
use crate::index::walk::relative_path;
use crate::token_count::QwenTokenCounter;

/// Arguments of `qwen-ls context`.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// `FILE:LINE:COL`, 1-based as compilers print them; FILE relative to the current directory or absolute.
    pub location: String,
    /// Token budget for the packed context.
    #[arg(long, default_value_t = 8192)]
    pub budget: usize,
    /// An instruction used instead of the text before the cursor for retrieval.
    #[arg(long)]
    pub query: Option<String>,
    /// Print the stable JSON interface.
    #[arg(long)]
    pub json: bool,
    /// Print the packed prompt text (Qwen repository format) after the table.
    #[arg(long)]
    pub render: bool,
    /// Ignore and do not write the persistent index cache and token-count memo.
    #[arg(long)]
    pub no_cache: bool,
}

/// The JSON interface: `{"budget","used_tokens","items":[{"path","start_line","end_line","tokens","score",
/// "reason","map","shown"}]}` with 1-based inclusive lines and workspace-relative paths; `shown` lists the runs
/// of lines an item shows (one for a snippet or a whole file; a map elides the lines between its runs).
#[derive(Debug, Serialize)]
struct ContextJson<'a> {
    budget: usize,
    used_tokens: usize,
    items: Vec<ItemJson<'a>>,
}

#[derive(Debug, Serialize)]
struct ItemJson<'a> {
    path: &'a str,
    start_line: u32,
    end_line: u32,
    tokens: usize,
    score: f64,
    reason: &'static str,
    map: bool,
    shown: Vec<(u32, u32)>,
}

/// Runs the command.
pub fn run(args: &ContextArgs) -> anyhow::Result<()> {
    let location = parse_location(&args.location)?;
    let file = location
        .file
        .canonicalize()
        .with_context(|| format!("cannot open {}", location.file.display()))?;
    let root = workspace_root(&file);
    let relative = relative_path(&root, &file)
        .with_context(|| format!("{} is not inside {}", file.display(), root.display()))?;
    let (host, _report) = load_index(&root, !args.no_cache)?;
    let counter = QwenTokenCounter::builtin().map_err(anyhow::Error::msg)?;
    let request = ContextRequest {
        path: relative,
        cursor_line: location.line - 1,
        cursor_column: location.column - 1,
        selection: None,
        instruction: args.query.clone(),
        budget: args.budget,
    };
    let memo_path = token_memo_path().filter(|_| !args.no_cache);
    let memo = memo_path
        .as_deref()
        .map_or_else(TokenCountCache::new, TokenCountCache::load);
    let known = memo.len();
    let packed = pack(
        &host.snapshot(),
        &request,
        &PackConfig::default(),
        counter,
        &memo,
    );
    if let Some(path) = memo_path.filter(|_| memo.len() != known) {
        if let Err(e) = memo.save(&path) {
            tracing::warn!("cannot save token-count memo {}: {e}", path.display());
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string(&to_json(&packed))?);
    } else {
        print_table(&packed);
    }
    if args.render {
        out!("{}", packed.render());
    }
    Ok(())
}

fn to_json(packed: &PackedContext) -> ContextJson<'_> {
    ContextJson {
        budget: packed.budget,
        used_tokens: packed.used_tokens,
        items: packed
            .items
            .iter()
            .map(|item| ItemJson {
                path: &item.path,
                start_line: item.start_line + 1,
                end_line: item.end_line + 1,
                tokens: item.tokens,
                score: (item.score * 1e6).round() / 1e6,
                reason: item.reason.as_str(),
                map: item.background && !item.whole_file,
                shown: item.shown.iter().map(|&(s, e)| (s + 1, e + 1)).collect(),
            })
            .collect(),
    }
}

fn print_table(packed: &PackedContext) {
    outln!(
        "budget {}  used {}  items {}  (cursor window lines {}-{} left to the caller)",
        packed.budget,
        packed.used_tokens,
        packed.items.len(),
        packed.cursor_window.0 + 1,
        packed.cursor_window.1 + 1
    );
    outln!(
        "{:>7}  {:>8}  {:<10}  location",
        "tokens",
        "score",
        "reason"
    );
    for item in &packed.items {
        let whole = if item.whole_file {
            " (whole)"
        } else if item.background {
            " (map)"
        } else {
            ""
        };
        outln!(
            "{:>7}  {:>8.5}  {:<10}  {}:{}-{}{whole}",
            item.tokens,
            item.score,
            item.reason.as_str(),
            item.path,
            item.start_line + 1,
            item.end_line + 1
        );
    }
}
