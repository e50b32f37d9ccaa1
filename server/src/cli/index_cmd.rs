//! `qwen-ls index [PATH] [--json]`: index a workspace and report what was found.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::memory::{mib, peak_rss_bytes};
use super::workspace::load_index;

/// Arguments of `qwen-ls index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Workspace root (default: the current directory).
    pub path: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Ignore and do not write the persistent cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// The JSON printed by `--json` (a stable interface).
#[derive(Debug, Serialize)]
struct IndexSummary {
    root: String,
    files: usize,
    bytes: u64,
    languages: BTreeMap<String, usize>,
    definitions: usize,
    references: usize,
    imports: usize,
    skipped: usize,
    parsed: usize,
    from_cache: usize,
    time_ms: f64,
    peak_rss_bytes: u64,
}

/// Runs the command.
pub fn run(args: &IndexArgs) -> anyhow::Result<()> {
    let root = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let (host, report) = load_index(&root, !args.no_cache)?;
    let snapshot = host.snapshot();
    let mut languages = BTreeMap::new();
    let (mut definitions, mut references, mut imports) = (0, 0, 0);
    for file in snapshot.files() {
        let language = file.language.map_or("text", |l| l.name);
        *languages.entry(language.to_owned()).or_insert(0) += 1;
        definitions += file.definitions.len();
        references += file.references.len();
        imports += file.imports.len();
    }
    let summary = IndexSummary {
        root: snapshot.root().display().to_string(),
        files: report.files,
        bytes: report.bytes,
        languages,
        definitions,
        references,
        imports,
        skipped: report.skipped.len(),
        parsed: report.parsed,
        from_cache: report.reused,
        time_ms: report.elapsed.as_secs_f64() * 1000.0,
        peak_rss_bytes: peak_rss_bytes(),
    };
    if args.json {
        outln!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    let languages: Vec<String> = summary
        .languages
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    outln!("workspace    {}", summary.root);
    outln!(
        "files        {} ({}), {} skipped",
        summary.files,
        mib(summary.bytes),
        summary.skipped
    );
    outln!("languages    {}", languages.join(", "));
    outln!("definitions  {}", summary.definitions);
    outln!("references   {}", summary.references);
    outln!("imports      {}", summary.imports);
    outln!(
        "time         {:.1} ms ({} parsed, {} from cache)",
        summary.time_ms,
        summary.parsed,
        summary.from_cache
    );
    outln!("peak memory  {}", mib(summary.peak_rss_bytes));
    Ok(())
}
