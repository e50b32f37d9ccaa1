//! `qwen-ls bench context [PATH…] [--budgets 2048,8192,32768] [--sites N] [--json]`: recall of the definition
//! the user is about to use, for the packer and for a BM25 baseline, per repository, per language and on
//! average.
//!
//! Gold: universal-ctags (independent of our tree-sitter queries). A site is the first use (outside import
//! statements) of a name that ctags defines exactly once in the repository, in another file; the current file
//! is cut right before the identifier and sent as an open document, the cursor at the cut. A site is recalled
//! at a budget when a packed item shows the definition's line (a signature counts: it is that line). The
//! baseline ranks fixed 20-line windows of the other files by BM25 against the 20 lines before the cursor and
//! packs them best first. Each pack is also checked against the larger budgets: what a budget packs must be
//! shown again at every larger one.

mod baseline;
mod e2e;
pub mod gold;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::context::{pack, ContextRequest, PackConfig, PackedContext, TokenCountCache};
use crate::index::{Change, IndexConfig, IndexHost};
use crate::token_count::QwenTokenCounter;
use baseline::{query_before, Bm25Index};
use gold::Site;

/// Arguments of `qwen-ls bench context`.
#[derive(Debug, Args)]
pub struct ContextBenchArgs {
    /// Repositories (each one workspace).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Context budgets in tokens, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2048,8192,32768")]
    pub budgets: Vec<usize>,
    /// Sites per repository (at most).
    #[arg(long, default_value_t = 60)]
    pub sites: usize,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write every site as a JSON line (for the Aider script).
    #[arg(long, value_name = "FILE")]
    pub sites_out: Option<PathBuf>,
    /// Print every site each budget misses to stderr, with what was packed from the definition's file.
    #[arg(long)]
    pub misses: bool,
    /// Also complete sites with this model (a path, a Hugging Face id or `default`) and compare the first
    /// line with the original, with the packed context and with the current file alone (slow: two
    /// completions per site).
    #[arg(long, value_name = "MODEL")]
    pub e2e_model: Option<String>,
    /// Sites per repository for the end-to-end comparison (spread over its sites).
    #[arg(long, default_value_t = 6)]
    pub e2e_sites: usize,
    /// Prompt budget of those completions (`completion.budget`).
    #[arg(long, default_value_t = 2048)]
    pub e2e_budget: usize,
    /// `completion.maxTokens` of those completions (only the first line is compared).
    #[arg(long, default_value_t = 48)]
    pub e2e_max_tokens: usize,
}

/// One repository's results.
#[derive(Debug, Serialize)]
struct RepoResult {
    name: String,
    language: String,
    files: usize,
    lines: u64,
    sites: usize,
    budgets: Vec<usize>,
    qwen_ls: Vec<f64>,
    bm25: Vec<f64>,
    /// Sites recalled at a budget but not at a larger one.
    recall_drops: usize,
    /// (site, budget pair) where something packed at the smaller budget is missing at the larger one.
    containment_violations: usize,
    pack_ms_mean: f64,
    pack_ms_p95: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_to_end: Option<e2e::EndToEnd>,
}

#[derive(Debug, Serialize)]
struct Summary {
    language: String,
    repositories: usize,
    qwen_ls: Vec<f64>,
    bm25: Vec<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    budgets: Vec<usize>,
    repositories: Vec<RepoResult>,
    languages: Vec<Summary>,
    mean: Summary,
}

/// Runs the benchmark.
pub fn run(args: &ContextBenchArgs) -> anyhow::Result<()> {
    let counter = QwenTokenCounter::builtin().map_err(anyhow::Error::msg)?;
    let mut budgets = args.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    anyhow::ensure!(!budgets.is_empty(), "--budgets needs at least one budget");
    let mut sites_out = match &args.sites_out {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => None,
    };
    let model = match &args.e2e_model {
        Some(spec) => Some(e2e::Model::load(
            spec,
            args.e2e_budget,
            args.e2e_max_tokens,
        )?),
        None => None,
    };
    let mut results = Vec::new();
    for path in &args.paths {
        let mut result = bench_repository(
            path,
            &budgets,
            args.sites,
            counter,
            sites_out.as_mut(),
            args.misses,
        )?;
        if let Some(model) = &model {
            let root = path.canonicalize()?;
            let gold = gold::ctags_definitions(&root)?;
            let (host, _) = IndexHost::load(&root, IndexConfig::default(), None)?;
            let sites = gold::sites(&host.snapshot(), &gold, args.sites);
            let step = (sites.len() / args.e2e_sites.max(1)).max(1);
            let chosen: Vec<Site> = sites
                .into_iter()
                .step_by(step)
                .take(args.e2e_sites)
                .collect();
            result.end_to_end = Some(e2e::run(model, &root, &chosen)?);
        }
        if !args.json {
            eprintln!(
                "{}: {} sites, qwen-ls {:?}, bm25 {:?}",
                result.name, result.sites, result.qwen_ls, result.bm25
            );
        }
        results.push(result);
    }
    let report = summarize(budgets, results);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_tables(&report);
    }
    Ok(())
}

fn bench_repository(
    path: &Path,
    budgets: &[usize],
    limit: usize,
    counter: &QwenTokenCounter,
    sites_out: Option<&mut std::fs::File>,
    show_misses: bool,
) -> anyhow::Result<RepoResult> {
    use std::io::Write;
    let root = path
        .canonicalize()
        .with_context(|| format!("cannot open {}", path.display()))?;
    let name = root.file_name().map_or_else(
        || root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (mut host, report) = IndexHost::load(&root, IndexConfig::default(), None)?;
    let gold = gold::ctags_definitions(&root)?;
    let snapshot = host.snapshot();
    let sites = gold::sites(&snapshot, &gold, limit);
    let lines: u64 = snapshot.files().map(|f| u64::from(f.line_count)).sum();
    let bm25 = Bm25Index::build(&snapshot);
    drop(snapshot);
    if let Some(out) = sites_out {
        for site in &sites {
            let line = serde_json::json!({ "repository": root, "site": site });
            writeln!(out, "{line}")?;
        }
    }
    let cache = TokenCountCache::new();
    let mut ours = vec![0usize; budgets.len()];
    let mut theirs = vec![0usize; budgets.len()];
    let mut recall_drops = 0;
    let mut containment_violations = 0;
    let mut pack_ms = Vec::new();
    let mut languages: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, site) in sites.iter().enumerate() {
        let snapshot = host.snapshot();
        let Some(file) = snapshot.file(&site.path) else {
            continue;
        };
        if let Some(language) = file.language {
            *languages.entry(language.family).or_default() += 1;
        }
        let masked = file.text[..site.offset].to_owned();
        drop(snapshot);
        host.apply_change(Change::Open {
            path: site.path.clone(),
            version: i as i32,
            text: masked.clone(),
        })?;
        let snapshot = host.snapshot();
        let mut packs = Vec::new();
        for &budget in budgets {
            let request = ContextRequest {
                path: Arc::from(site.path.as_str()),
                cursor_line: site.line,
                cursor_column: site.column,
                selection: None,
                instruction: None,
                budget,
            };
            let started = Instant::now();
            let packed = pack(&snapshot, &request, &PackConfig::default(), counter, &cache);
            pack_ms.push(started.elapsed().as_secs_f64() * 1e3);
            packs.push(packed);
        }
        let recalled: Vec<bool> = packs.iter().map(|p| covers(p, site)).collect();
        for (b, &hit) in recalled.iter().enumerate() {
            ours[b] += usize::from(hit);
        }
        recall_drops += recalled.windows(2).filter(|w| w[0] && !w[1]).count();
        for (small, large) in packs.iter().zip(packs.iter().skip(1)) {
            containment_violations += usize::from(!contained(small, large));
        }
        let ranked = bm25.rank(&site.path, query_before(&masked));
        let mut baseline_hits = Vec::new();
        for (b, &budget) in budgets.iter().enumerate() {
            let packed = bm25.pack(&ranked, budget, counter, &cache);
            let hit = packed.iter().any(|(path, start, end)| {
                **path == *site.definition_path
                    && *start <= site.definition_line
                    && site.definition_line <= *end
            });
            theirs[b] += usize::from(hit);
            baseline_hits.push(hit);
        }
        if show_misses {
            for (b, packed) in packs.iter().enumerate() {
                if !recalled[b] {
                    print_miss(site, budgets[b], packed, baseline_hits[b]);
                }
            }
        }
        drop(snapshot);
        host.apply_change(Change::Close {
            path: site.path.clone(),
        })?;
    }
    let n = sites.len().max(1) as f64;
    pack_ms.sort_by(f64::total_cmp);
    let language = languages
        .iter()
        .max_by_key(|(_, &count)| count)
        .map_or("none", |(name, _)| name)
        .to_owned();
    Ok(RepoResult {
        name,
        language,
        files: report.files,
        lines,
        sites: sites.len(),
        budgets: budgets.to_vec(),
        qwen_ls: ours.iter().map(|&h| round3(h as f64 / n)).collect(),
        bm25: theirs.iter().map(|&h| round3(h as f64 / n)).collect(),
        recall_drops,
        containment_violations,
        pack_ms_mean: round3(pack_ms.iter().sum::<f64>() / pack_ms.len().max(1) as f64),
        pack_ms_p95: round3(percentile(&pack_ms, 0.95)),
        end_to_end: None,
    })
}

/// Whether a packed item shows the site's definition line.
fn covers(packed: &PackedContext, site: &Site) -> bool {
    packed
        .items
        .iter()
        .any(|item| *item.path == *site.definition_path && item.shows_line(site.definition_line))
}

fn print_miss(site: &Site, budget: usize, packed: &PackedContext, baseline_hit: bool) {
    let from_file: Vec<String> = packed
        .items
        .iter()
        .filter(|i| *i.path == *site.definition_path)
        .map(|i| {
            format!(
                "{:?} {} lines, reason {}",
                i.shown.len(),
                i.shown_lines().count(),
                i.reason.as_str()
            )
        })
        .collect();
    let files: std::collections::BTreeSet<&str> = packed.items.iter().map(|i| &*i.path).collect();
    eprintln!(
        "miss @{budget}{}: {}:{} {} -> {}:{} | from its file: {:?} | {} files packed",
        if baseline_hit { " (BM25 hit)" } else { "" },
        site.path,
        site.line + 1,
        site.name,
        site.definition_path,
        site.definition_line + 1,
        from_file,
        files.len()
    );
}

/// Whether every line `small` shows is shown by `large` too.
fn contained(small: &PackedContext, large: &PackedContext) -> bool {
    let shown: HashSet<(&str, u32)> = large
        .items
        .iter()
        .flat_map(|item| item.shown_lines().map(move |line| (&*item.path, line)))
        .collect();
    small.items.iter().all(|item| {
        item.shown_lines()
            .all(|line| shown.contains(&(&*item.path, line)))
    })
}

fn summarize(budgets: Vec<usize>, repositories: Vec<RepoResult>) -> Report {
    let mean_of = |language: &str, rows: &[&RepoResult]| Summary {
        language: language.to_owned(),
        repositories: rows.len(),
        qwen_ls: (0..budgets.len())
            .map(|b| {
                round3(rows.iter().map(|r| r.qwen_ls[b]).sum::<f64>() / rows.len().max(1) as f64)
            })
            .collect(),
        bm25: (0..budgets.len())
            .map(|b| round3(rows.iter().map(|r| r.bm25[b]).sum::<f64>() / rows.len().max(1) as f64))
            .collect(),
    };
    let mut by_language: BTreeMap<&str, Vec<&RepoResult>> = BTreeMap::new();
    for repo in &repositories {
        by_language.entry(&repo.language).or_default().push(repo);
    }
    let languages = by_language
        .iter()
        .map(|(language, rows)| mean_of(language, rows))
        .collect();
    let all: Vec<&RepoResult> = repositories.iter().collect();
    let mean = mean_of("all", &all);
    Report {
        budgets,
        repositories,
        languages,
        mean,
    }
}

fn print_tables(report: &Report) {
    let completed: Vec<&RepoResult> = report
        .repositories
        .iter()
        .filter(|r| r.end_to_end.is_some())
        .collect();
    let budgets: Vec<String> = report
        .budgets
        .iter()
        .map(|b| format!("{}k", b / 1024))
        .collect();
    let joined = budgets.join(" / ");
    outln!("| repository | language | files | lines | sites | qwen-ls @{joined} | BM25 @{joined} | drops | containment | pack ms mean / p95 |");
    outln!("|---|---|---:|---:|---:|---|---|---:|---:|---|");
    for r in &report.repositories {
        outln!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} |",
            r.name,
            r.language,
            r.files,
            r.lines,
            r.sites,
            slash(&r.qwen_ls),
            slash(&r.bm25),
            r.recall_drops,
            r.containment_violations,
            r.pack_ms_mean,
            r.pack_ms_p95
        );
    }
    outln!();
    outln!("| language | repositories | qwen-ls @{joined} | BM25 @{joined} |");
    outln!("|---|---:|---|---|");
    for s in report.languages.iter().chain(std::iter::once(&report.mean)) {
        outln!(
            "| {} | {} | {} | {} |",
            s.language,
            s.repositories,
            slash(&s.qwen_ls),
            slash(&s.bm25)
        );
    }
    if completed.is_empty() {
        return;
    }
    outln!();
    outln!("| repository | sites | exact first line, packed context | current file alone | mean prompt tokens (context / alone) |");
    outln!("|---|---:|---:|---:|---|");
    let (mut sites, mut with, mut alone) = (0, 0, 0);
    for r in completed {
        if let Some(e) = &r.end_to_end {
            outln!(
                "| {} | {} | {} | {} | {:.0} / {:.0} |",
                r.name,
                e.sites,
                e.with_context,
                e.current_file_only,
                e.prompt_tokens.0,
                e.prompt_tokens.1
            );
            sites += e.sites;
            with += e.with_context;
            alone += e.current_file_only;
        }
    }
    let n = sites.max(1) as f64;
    outln!(
        "| all | {sites} | {with} ({:.2}) | {alone} ({:.2}) | |",
        with as f64 / n,
        alone as f64 / n
    );
}

fn slash(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.2}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}
