//! What `patch`, `complete` and `explain` share: the model flags, loading the workspace and the model with
//! progress on stderr (a spinner on a terminal, nothing otherwise), and a generator wrapper that shows
//! generation progress. The tasks themselves are `crate::tasks` calls.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::model::{TerminalProgress, CHOOSING_A_MODEL};
use crate::load::load_generator;
use crate::store::{ModelSpec, Store};
use crate::tasks::{
    Backend, CancelToken, Flow, GenError, GenOutput, GenRequest, Generator, GeneratorInfo,
    Settings, SpeculativeMode, Workspace, WorkspaceOptions,
};

/// `--model`, `--max-tokens` and the remote-backend flags, common to the model-running subcommands.
#[derive(Debug, Clone, Args)]
pub struct ModelFlags {
    /// Model: a directory, a `.gguf` file, a Hugging Face id or `default` (pulled on first use).
    #[arg(long, env = "QWEN_LS_MODEL")]
    pub model: Option<String>,
    /// Most tokens to generate (default: the feature's setting).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Where the model runs: `local` (in-process, the default) or `openai` (an OpenAI-compatible server such as
    /// vLLM, SGLang or llama.cpp's). `--endpoint` alone implies `openai`.
    #[arg(long, env = "QWEN_LS_BACKEND", value_parser = ["local", "openai"])]
    pub backend: Option<String>,
    /// Base URL of the OpenAI-compatible server, e.g. `http://gpu-node:8000/v1` (setting `openai.endpoint`).
    #[arg(long, env = "QWEN_LS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Model name on the server (setting `openai.model`; default: the first one its `/v1/models` lists).
    #[arg(long, env = "QWEN_LS_REMOTE_MODEL")]
    pub remote_model: Option<String>,
    /// Name of the environment variable holding the server's API key (setting `openai.apiKeyEnv`; default
    /// `QWEN_LS_API_KEY`). The key itself is never a flag.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Speculative decoding: `off`, `lookup` (drafts copied from the prompt; the default for patches and
    /// explanations) or `draft` (drafts from `--draft-model`). The output is the same; only the speed differs.
    #[arg(long, env = "QWEN_LS_SPECULATIVE")]
    pub speculative: Option<SpeculativeMode>,
    /// The draft model of `--speculative draft` (setting `draftModel`; default `qwen2.5-coder-0.5b`, pulled on
    /// first use).
    #[arg(long, env = "QWEN_LS_DRAFT_MODEL")]
    pub draft_model: Option<String>,
    /// A separate local model for completions (setting `completion.model`, e.g. `qwen2.5-coder-0.5b`).
    #[arg(long, env = "QWEN_LS_COMPLETION_MODEL")]
    pub completion_model: Option<String>,
    /// Allow a plain `http://` endpoint on another machine (code crosses the network unencrypted); loopback
    /// and https need no flag. Same as `QWEN_LS_ALLOW_HTTP=1`.
    #[arg(long)]
    pub allow_http: bool,
}

impl ModelFlags {
    /// Settings with the model and backend flags applied (`max_tokens` is per feature: callers apply it).
    pub fn settings(&self) -> Settings {
        let mut settings = Settings {
            model: self.model.clone().unwrap_or_default(),
            ..Settings::default()
        };
        settings.backend = match (&self.backend, &self.endpoint) {
            (Some(backend), _) => Backend::parse(backend).unwrap_or_default(),
            (None, Some(_)) => Backend::OpenAi,
            (None, None) => Backend::Local,
        };
        if let Some(endpoint) = &self.endpoint {
            settings.openai.endpoint = endpoint.clone();
        }
        if let Some(model) = &self.remote_model {
            settings.openai.model = model.clone();
        }
        if let Some(env) = &self.api_key_env {
            settings.openai.api_key_env = env.clone();
        }
        if let Some(mode) = self.speculative {
            settings.completion.speculative = mode;
            settings.hover.speculative = mode;
            settings.code_actions.speculative = mode;
        }
        if let Some(draft) = &self.draft_model {
            settings.draft_model = draft.clone();
        }
        if let Some(model) = &self.completion_model {
            settings.completion_model = model.clone();
        }
        settings.openai.allow_http = self.allow_http;
        settings
    }
}

/// A spinner on stderr when it is a terminal; silent otherwise (output stays machine-readable).
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// Starts a spinner with `message`.
    pub fn start(message: &str) -> Spinner {
        Spinner(std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }))
    }

    /// Replaces the message.
    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Removes the spinner.
    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Indexes `root` (persistent cache on) with a spinner.
pub fn load_workspace(root: &Path) -> anyhow::Result<Workspace> {
    let spinner = Spinner::start(&format!("indexing {}", root.display()));
    let options = WorkspaceOptions {
        persistent_cache: true,
        ..WorkspaceOptions::default()
    };
    let loaded = Workspace::load(root, &options);
    spinner.finish();
    let (workspace, report) = loaded.with_context(|| format!("cannot index {}", root.display()))?;
    tracing::info!(files = report.files, "indexed {}", root.display());
    Ok(workspace)
}

/// Indexes `root` without a spinner or persistent cache (benchmarks).
pub fn load_workspace_quietly(root: &Path) -> anyhow::Result<Workspace> {
    let (workspace, _) = Workspace::load(root, &WorkspaceOptions::default())
        .with_context(|| format!("cannot index {}", root.display()))?;
    Ok(workspace)
}

/// Finds (downloading on first use, with a progress bar) and loads the model of `settings`; for the remote
/// backend, connects to the server and checks the model name.
pub fn load_model(settings: &Settings) -> anyhow::Result<Arc<dyn Generator>> {
    let store = Store::from_env();
    if settings.backend == Backend::OpenAi {
        if !settings.model.is_empty() {
            tracing::warn!("--model is ignored with --backend openai (use --remote-model)");
        }
        let spinner = Spinner::start(&format!("connecting to {}", settings.openai.endpoint));
        let loaded = load_generator(settings, &store, &TerminalProgress::new());
        spinner.finish();
        let loaded = loaded.context("cannot use the remote model server")?;
        tracing::info!("remote model: {}", loaded.description);
        return Ok(loaded.generator);
    }
    let spec = ModelSpec::parse(&settings.model)?;
    if matches!(spec, ModelSpec::Default) {
        eprintln!(
            "Using the default model ({}); choose another with --model. {CHOOSING_A_MODEL}",
            store.describe(&spec)
        );
    }
    let progress = TerminalProgress::new();
    let spinner = Spinner::start("loading model");
    let loaded = load_generator(settings, &store, &progress);
    spinner.finish();
    let loaded = loaded.context("cannot load the model")?;
    tracing::info!(path = %loaded.path.display(), "model loaded");
    Ok(loaded.generator)
}

/// A generator that shows a spinner with the number of tokens generated while it runs.
pub struct ShowProgress(pub Arc<dyn Generator>);

impl Generator for ShowProgress {
    fn info(&self) -> GeneratorInfo {
        self.0.info()
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        let spinner = Spinner::start("generating");
        let started = Instant::now();
        let mut chars = 0usize;
        let result = self.0.generate(request, cancel, &mut |delta| {
            chars += delta.chars().count();
            spinner.set_message(format!("generating ({chars} characters)"));
            on_text(delta)
        });
        spinner.finish();
        if let Ok(output) = &result {
            // A remote server's prefix-cache hits, when it reports them (vLLM, SGLang, llama.cpp).
            let cached = output
                .stats
                .cached_tokens
                .map(|c| {
                    format!(
                        ", {c} of {} prompt tokens from the server's prefix cache",
                        output.stats.prompt_tokens
                    )
                })
                .unwrap_or_default();
            tracing::info!(
                "generated {} tokens in {:.1}s{cached}",
                output.stats.generated_tokens,
                started.elapsed().as_secs_f64()
            );
        }
        result
    }

    fn reset_sessions(&self) {
        self.0.reset_sessions();
    }
}

/// The workspace root for a directory: the nearest ancestor (or itself) containing `.git`, else itself.
pub fn root_of_dir(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(dir)
        .to_path_buf()
}

/// Byte offset of 1-based `line` and byte `column` in `text` (clamped to the line's end).
pub fn offset_of(text: &str, line: u32, column: u32) -> anyhow::Result<usize> {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => anyhow::bail!(
                "line {line} is past the end of the file ({} lines)",
                text.lines().count()
            ),
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut offset = (start + column as usize - 1).min(end);
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_from_lines_and_columns() {
        let text = "ab\ncdé\n";
        assert_eq!(offset_of(text, 1, 1).expect("ok"), 0);
        assert_eq!(offset_of(text, 2, 3).expect("ok"), 5);
        assert_eq!(offset_of(text, 2, 99).expect("ok"), 7);
        assert_eq!(offset_of(text, 3, 1).expect("ok"), 8);
        assert!(offset_of(text, 4, 1).is_err());
    }
}
