//! The end-to-end effect: exact match of the first completed line at the same sites, with the packed
//! repository context and with the current file alone, at the same prompt budget, through the same
//! `tasks::complete` the language server calls (greedy, the configured model).
//!
//! "Current file alone" completes the same text from a workspace that does not contain it (an empty
//! directory), which is how a file outside the workspace is completed: prefix and suffix windows only.

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use super::gold::Site;
use crate::cli::agent::{load_model, load_workspace_quietly};
use crate::tasks::{
    Analysis, Caches, CancelToken, Change, DocumentPosition, Generator, Settings, Workspace,
};

/// One repository's exact-match counts.
#[derive(Debug, Default, Serialize)]
pub struct EndToEnd {
    /// Sites completed.
    pub sites: usize,
    /// First line equal to the original, with the packed context.
    pub with_context: usize,
    /// First line equal to the original, with the current file alone.
    pub current_file_only: usize,
    /// Mean prompt tokens with the context / alone.
    pub prompt_tokens: (f64, f64),
}

/// The model and the settings every completion uses.
pub struct Model {
    generator: Arc<dyn Generator>,
    settings: Settings,
    empty: Workspace,
    empty_dir: std::path::PathBuf,
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.empty_dir);
    }
}

impl Model {
    /// Loads `spec` (a path, a Hugging Face id or `default`) once for every repository.
    pub fn load(spec: &str, budget: usize, max_tokens: usize) -> anyhow::Result<Self> {
        let mut settings = Settings {
            model: spec.to_owned(),
            ..Settings::default()
        };
        settings.completion.budget = budget;
        settings.completion.max_tokens = max_tokens;
        settings.completion.temperature = 0.0;
        let generator = load_model(&settings)?;
        let empty_dir =
            std::env::temp_dir().join(format!("qwen-ls-bench-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty_dir)
            .with_context(|| format!("cannot create {}", empty_dir.display()))?;
        let empty = load_workspace_quietly(&empty_dir)?;
        Ok(Self {
            generator,
            settings,
            empty,
            empty_dir,
        })
    }
}

/// Completes every site twice and compares the first line with the original.
pub fn run(model: &Model, root: &std::path::Path, sites: &[Site]) -> anyhow::Result<EndToEnd> {
    let workspace = load_workspace_quietly(root)?;
    let mut result = EndToEnd::default();
    let mut tokens = (0usize, 0usize);
    for (i, site) in sites.iter().enumerate() {
        let absolute = root.join(&site.path);
        let text = std::fs::read_to_string(&absolute)
            .with_context(|| format!("cannot read {}", absolute.display()))?;
        let masked: Arc<str> = Arc::from(&text[..site.offset]);
        workspace.apply_change(Change::Open {
            path: site.path.clone(),
            version: i as i32,
            text: masked.to_string(),
        })?;
        let request = DocumentPosition {
            path: absolute.clone(),
            text: Some(masked.clone()),
            offset: masked.len(),
            version: None,
            language_id: String::new(),
        };
        let with = first_line(&workspace, model, &request)?;
        workspace.apply_change(Change::Close {
            path: site.path.clone(),
        })?;
        let alone = first_line(&model.empty, model, &request)?;
        let expected = site.expected_line.trim();
        result.sites += 1;
        result.with_context += usize::from(with.0.trim() == expected);
        result.current_file_only += usize::from(alone.0.trim() == expected);
        tokens.0 += with.1;
        tokens.1 += alone.1;
        eprintln!(
            "e2e {}:{}: context {} alone {} | expected {expected:?} | context {:?} | alone {:?}",
            site.path,
            site.line + 1,
            u8::from(with.0.trim() == expected),
            u8::from(alone.0.trim() == expected),
            with.0.trim(),
            alone.0.trim()
        );
    }
    let n = result.sites.max(1) as f64;
    result.prompt_tokens = (tokens.0 as f64 / n, tokens.1 as f64 / n);
    Ok(result)
}

/// The first line of the completion (empty when there is none) and the prompt's tokens.
fn first_line(
    workspace: &Workspace,
    model: &Model,
    request: &DocumentPosition,
) -> anyhow::Result<(String, usize)> {
    let caches = Caches::new();
    let analysis = Analysis::new(
        workspace,
        model.generator.as_ref(),
        &caches,
        &model.settings,
    );
    let completion = analysis.complete(request, &CancelToken::new())?;
    Ok(completion.map_or_else(
        || (String::new(), 0),
        |c| {
            let line = c.text.lines().next().unwrap_or("").to_owned();
            (line, c.stats.prompt_tokens)
        },
    ))
}
