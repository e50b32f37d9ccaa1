//! `qwen-ls bench speculative`: how fast patches, refactors and explanations are generated with speculative
//! decoding off, with prompt lookup and with a draft model — the same tasks, model and machine, in one run, so
//! the ratios compare like with like. Every task runs each mode back to back (the prompt's KV cache is reused,
//! so only the first mode pays the prefill; decode speed is measured from the end of prefill).
//!
//! Greedy output must not depend on the mode: the bench compares the answers of all modes byte for byte and
//! reports any difference (an end-to-end check of the engine's exactness on a real model).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use qwen_engine::GgufFile;
use serde::Deserialize;

use super::bench_engine::{bandwidth, cpu_name, load_average, traffic::decode_traffic};
use super::model::TerminalProgress;
use crate::load::load_generator;
use crate::store::Store;
use crate::tasks::{
    function_named, Analysis, Caches, CancelToken, CodeActionSettings, DocumentPosition, Flow,
    GenError, GenOutput, GenRequest, GenStats, Generator, GeneratorInfo, HoverSettings,
    PatchRequest, RefactorRequest, Settings, SpeculativeMode, Workspace, WorkspaceOptions,
};

/// Arguments of `qwen-ls bench speculative`.
#[derive(Debug, Args)]
pub struct SpeculativeBenchArgs {
    /// The task list (JSON: see the file's `about`).
    #[arg(long, default_value = "benches/speculative/tasks.json")]
    tasks: PathBuf,
    /// The model (a spec as for `qwen-ls model path`; default: the default model).
    #[arg(long, default_value = "")]
    model: String,
    /// The draft model of the `draft` mode.
    #[arg(long, default_value = crate::tasks::DEFAULT_DRAFT_MODEL)]
    draft_model: String,
    /// Modes to compare, the baseline first.
    #[arg(long, value_delimiter = ',', default_value = "off,lookup,draft")]
    modes: Vec<SpeculativeMode>,
    /// Task kinds to run.
    #[arg(long, value_delimiter = ',', default_value = "patch,refactor,explain")]
    kinds: Vec<Kind>,
    /// Run only the first N tasks.
    #[arg(long)]
    limit: Option<usize>,
    /// Prompt budget of patches and refactors (`codeActions.budget`).
    #[arg(long, default_value_t = 4096)]
    budget: usize,
    /// `codeActions.maxTokens` for patches and refactors.
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
    /// Append every run as a JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// MiB read to measure the memory bandwidth (0: skip the bandwidth bound).
    #[arg(long, default_value_t = 1024)]
    bandwidth_mib: usize,
}

/// What a task asks the model for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// A whole-file patch (`qwen-ls patch` with the file shown whole).
    Patch,
    /// A refactor of one function (the editor's code action).
    Refactor,
    /// An explanation of one function (the editor's hover).
    Explain,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Patch => "patch",
            Kind::Refactor => "refactor",
            Kind::Explain => "explain",
        }
    }
}

#[derive(Debug, Deserialize)]
struct TaskFile {
    tasks: Vec<Task>,
}

#[derive(Debug, Deserialize)]
struct Task {
    name: String,
    /// A directory of this repository.
    root: Option<PathBuf>,
    /// A crate in the cargo registry, `name-version`.
    #[serde(rename = "crate")]
    krate: Option<String>,
    file: PathBuf,
    function: String,
    instruction: String,
}

/// One generation of one task in one mode.
#[derive(Debug, Clone)]
struct Run {
    task: String,
    kind: Kind,
    mode: SpeculativeMode,
    text: String,
    stats: GenStats,
}

impl Run {
    fn tok_s(&self) -> f64 {
        rate(
            self.stats.generated_tokens.saturating_sub(1),
            self.stats.decode_secs,
        )
    }

    fn tokens_per_pass(&self) -> f64 {
        let passes = self.stats.decode_passes;
        if passes == 0 {
            return 0.0;
        }
        (passes + self.stats.accepted_tokens) as f64 / passes as f64
    }
}

fn rate(tokens: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        tokens as f64 / secs
    } else {
        0.0
    }
}

/// Keeps the statistics of the last generation.
struct Recording {
    inner: Arc<dyn Generator>,
    last: Mutex<Option<GenStats>>,
}

impl Recording {
    fn take(&self) -> GenStats {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }
}

impl Generator for Recording {
    fn info(&self) -> GeneratorInfo {
        self.inner.info()
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        let out = self.inner.generate(request, cancel, on_text)?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(out.stats.clone());
        Ok(out)
    }

    fn reset_sessions(&self) {
        self.inner.reset_sessions();
    }
}

/// Runs the benchmark.
pub fn run(args: &SpeculativeBenchArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.tasks)
        .with_context(|| format!("reading the task list {}", args.tasks.display()))?;
    let mut tasks: Vec<Task> = serde_json::from_str::<TaskFile>(&text)
        .with_context(|| format!("parsing {}", args.tasks.display()))?
        .tasks;
    tasks.truncate(args.limit.unwrap_or(usize::MAX));
    let Some(&baseline) = args.modes.first() else {
        anyhow::bail!("--modes needs at least one mode");
    };

    let mut settings = Settings {
        model: args.model.clone(),
        draft_model: args.draft_model.clone(),
        ..Settings::default()
    };
    if args.modes.contains(&SpeculativeMode::Draft) {
        // Makes the loader load the draft model; each request then says its own mode.
        settings.code_actions.speculative = SpeculativeMode::Draft;
    }
    let store = Store::from_env();
    let progress = TerminalProgress::new();
    eprintln!("loading the model…");
    let loaded = load_generator(&settings, &store, &progress).context("cannot load the model")?;
    let generator = Recording {
        inner: loaded.generator,
        last: Mutex::new(None),
    };
    outln!("# qwen-ls bench speculative");
    outln!("model: {}", loaded.description);
    outln!(
        "cpu: {} ({} threads); load average before: {}",
        cpu_name(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    if args.bandwidth_mib > 0 {
        print_bound(&loaded.path, args.bandwidth_mib)?;
    }
    outln!(
        "modes: {} (baseline {}); patch/refactor budget {} tokens, max {} tokens; explain: hover defaults",
        args.modes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
        baseline.as_str(),
        args.budget,
        args.max_tokens
    );
    outln!();
    outln!(
        "{:<24} {:<8} {:<7} {:>6} {:>8} {:>7} {:>7} {:>8}  same",
        "task",
        "kind",
        "mode",
        "tokens",
        "decode s",
        "tok/s",
        "tok/pass",
        "× base"
    );
    let mut runs: Vec<Run> = Vec::new();
    let mut differing = Vec::new();
    for task in &tasks {
        let root = task_root(task)?;
        let root = root
            .canonicalize()
            .with_context(|| format!("{}: cannot open {}", task.name, root.display()))?;
        let (workspace, _) = Workspace::load(&root, &WorkspaceOptions::default())
            .with_context(|| format!("indexing {}", root.display()))?;
        let path = root.join(&task.file);
        let source = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let function = function_named(&path, &source, &task.function).with_context(|| {
            format!(
                "{}: no function `{}` in {}",
                task.name,
                task.function,
                path.display()
            )
        })?;
        for &kind in &args.kinds {
            let mut texts: Vec<(SpeculativeMode, String)> = Vec::new();
            for &mode in &args.modes {
                let started = Instant::now();
                let text = run_one(
                    &workspace,
                    &generator,
                    args,
                    task,
                    &path,
                    kind,
                    mode,
                    function.range.start,
                )
                .with_context(|| format!("{} {} {}", task.name, kind.name(), mode.as_str()))?;
                let stats = generator.take();
                let run = Run {
                    task: task.name.clone(),
                    kind,
                    mode,
                    text,
                    stats,
                };
                let base = runs
                    .iter()
                    .find(|r| r.task == run.task && r.kind == kind && r.mode == baseline)
                    .map(Run::tok_s);
                let same = texts.first().is_none_or(|(_, t)| *t == run.text);
                if !same {
                    differing.push(format!("{} {} {}", task.name, kind.name(), mode.as_str()));
                }
                outln!(
                    "{:<24} {:<8} {:<7} {:>6} {:>8.2} {:>7.1} {:>7.2} {:>8}  {}",
                    task.name,
                    kind.name(),
                    mode.as_str(),
                    run.stats.generated_tokens,
                    run.stats.decode_secs,
                    run.tok_s(),
                    run.tokens_per_pass(),
                    base.filter(|b| *b > 0.0)
                        .map_or("-".to_string(), |b| format!("{:.2}", run.tok_s() / b)),
                    if same { "yes" } else { "NO" },
                );
                if let Some(json) = &args.json {
                    append_json(json, &run, started.elapsed().as_secs_f64())?;
                }
                texts.push((mode, run.text.clone()));
                runs.push(run);
            }
        }
    }
    summarize(&runs, &args.modes, baseline);
    outln!("load average after: {}", load_average());
    if differing.is_empty() {
        outln!("greedy output: identical in every mode for every task");
        Ok(())
    } else {
        anyhow::bail!(
            "greedy output differs from the baseline's: {}",
            differing.join("; ")
        )
    }
}

#[allow(clippy::too_many_arguments)] // one task run: where, what, how
fn run_one(
    workspace: &Workspace,
    generator: &dyn Generator,
    args: &SpeculativeBenchArgs,
    task: &Task,
    path: &Path,
    kind: Kind,
    mode: SpeculativeMode,
    offset: usize,
) -> anyhow::Result<String> {
    let never = CancelToken::new();
    let code_actions = CodeActionSettings {
        budget: args.budget,
        max_tokens: args.max_tokens,
        speculative: mode,
        ..CodeActionSettings::default()
    };
    let hover = HoverSettings {
        speculative: mode,
        ..HoverSettings::default()
    };
    let settings = Settings {
        code_actions,
        hover,
        ..Settings::default()
    };
    // A fresh cache: an explanation cached by the previous mode would not be generated again.
    let caches = Caches::new();
    let analysis = Analysis::new(workspace, generator, &caches, &settings);
    Ok(match kind {
        Kind::Patch => {
            let request = PatchRequest {
                instruction: task.instruction.clone(),
                files: vec![path.to_path_buf()],
                budget: None,
            };
            analysis.patch(&request, &never)?.answer
        }
        Kind::Refactor => {
            let request = RefactorRequest {
                path: path.to_path_buf(),
                text: None,
                range: offset..offset,
                instruction: task.instruction.clone(),
            };
            analysis.refactor(&request, &never)?.answer
        }
        Kind::Explain => {
            let request = DocumentPosition {
                path: path.to_path_buf(),
                text: None,
                offset,
                version: None,
                language_id: String::new(),
            };
            analysis
                .explain(&request, &never)?
                .map(|e| e.markdown)
                .unwrap_or_default()
        }
    })
}

/// Per kind and mode: median speed, median ratio to the baseline, median tokens per pass; then edits overall.
fn summarize(runs: &[Run], modes: &[SpeculativeMode], baseline: SpeculativeMode) {
    outln!();
    outln!(
        "{:<10} {:<7} {:>5} {:>12} {:>14} {:>14}",
        "kind",
        "mode",
        "runs",
        "median tok/s",
        "median × base",
        "median tok/pass"
    );
    let groups: [(&str, &[Kind]); 4] = [
        ("patch", &[Kind::Patch]),
        ("refactor", &[Kind::Refactor]),
        ("explain", &[Kind::Explain]),
        ("edits", &[Kind::Patch, Kind::Refactor]),
    ];
    for (label, kinds) in groups {
        for &mode in modes {
            let selected: Vec<&Run> = runs
                .iter()
                .filter(|r| r.mode == mode && kinds.contains(&r.kind))
                .collect();
            if selected.is_empty() {
                continue;
            }
            let ratios: Vec<f64> = selected
                .iter()
                .filter_map(|r| {
                    let base = runs
                        .iter()
                        .find(|b| b.task == r.task && b.kind == r.kind && b.mode == baseline)?;
                    (base.tok_s() > 0.0).then(|| r.tok_s() / base.tok_s())
                })
                .collect();
            outln!(
                "{:<10} {:<7} {:>5} {:>12.1} {:>14.2} {:>14.2}",
                label,
                mode.as_str(),
                selected.len(),
                median(selected.iter().map(|r| r.tok_s()).collect()),
                median(ratios),
                median(selected.iter().map(|r| r.tokens_per_pass()).collect()),
            );
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The one-token-per-pass bound: read bandwidth ÷ bytes read per decoded token.
fn print_bound(model: &Path, mib: usize) -> anyhow::Result<()> {
    let Ok(file) = GgufFile::open(model) else {
        outln!(
            "bandwidth bound: not computed ({} is not a GGUF file)",
            model.display()
        );
        return Ok(());
    };
    let config = qwen_engine::gguf::config::model_config(&file)?;
    let experts = config
        .moe
        .as_ref()
        .map(|m| (m.num_experts, m.num_experts_per_tok));
    let traffic = decode_traffic(&file.tensors(), experts, None)?;
    drop(file);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bw = bandwidth::measure(mib << 20, threads, 5);
    outln!(
        "one-token-per-pass bound: {:.1} tok/s ({:.1} MB per token ÷ {:.1} GB/s read bandwidth, best of 5 \
         passes over {mib} MiB)",
        bw.best / traffic.total() as f64,
        traffic.total() as f64 / 1e6,
        bw.best / 1e9
    );
    Ok(())
}

/// The task's workspace: a directory of this repository, or a crate in the cargo registry.
fn task_root(task: &Task) -> anyhow::Result<PathBuf> {
    match (&task.root, &task.krate) {
        (Some(root), _) => Ok(root.clone()),
        (None, Some(krate)) => registry_crate(krate),
        (None, None) => anyhow::bail!("task {}: give `root` or `crate`", task.name),
    }
}

fn registry_crate(krate: &str) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let src = home.join("registry").join("src");
    let found = std::fs::read_dir(&src)
        .with_context(|| format!("reading {}", src.display()))?
        .filter_map(Result::ok)
        .map(|index| index.path().join(krate))
        .find(|dir| dir.is_dir());
    found.with_context(|| {
        format!(
            "crate {krate} is not in {} (run `cargo fetch` in a project that depends on it)",
            src.display()
        )
    })
}

fn append_json(path: &Path, run: &Run, secs: f64) -> anyhow::Result<()> {
    use std::io::Write;
    let line = serde_json::json!({
        "task": run.task,
        "kind": run.kind.name(),
        "mode": run.mode.as_str(),
        "generated_tokens": run.stats.generated_tokens,
        "prompt_tokens": run.stats.prompt_tokens,
        "reused_tokens": run.stats.reused_tokens,
        "prefill_secs": run.stats.prefill_secs,
        "decode_secs": run.stats.decode_secs,
        "decode_passes": run.stats.decode_passes,
        "accepted_tokens": run.stats.accepted_tokens,
        "tok_s": run.tok_s(),
        "tokens_per_pass": run.tokens_per_pass(),
        "wall_secs": secs,
        "load_average": load_average(),
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_the_task_list_parses() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let text = include_str!("../../../benches/speculative/tasks.json");
        let file: TaskFile = serde_json::from_str(text).expect("parses");
        assert!(
            file.tasks.len() >= 11,
            "the README demo and at least 10 real tasks"
        );
        for t in &file.tasks {
            assert!(
                t.root.is_some() != t.krate.is_some(),
                "{}: root or crate",
                t.name
            );
        }
    }
}
