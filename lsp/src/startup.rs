//! Background start: the model and the workspace index load concurrently after `initialized`, reporting
//! `$/progress` (when the client supports work-done progress), `qwen-ls/status` on every state change and one
//! `window/showMessage` per lasting problem. Requests meanwhile get fast empty answers.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tower_lsp_server::ls_types::MessageType;

use super::guard::blocking;
use super::progress::WorkDone;
use super::state::{Engine, State};
use super::status::{IndexState, ModelState};
use qwen_index::IndexConfig;
use qwen_tasks::{Backend, Caches, Workspace, WorkspaceOptions};

/// Problem keys for `show_problem`.
const MODEL_PROBLEM: &str = "model";
const INDEX_PROBLEM: &str = "index";

/// Starts loading the model and indexing the workspace.
pub fn start(state: &Arc<State>) {
    tokio::spawn(load_model(state.clone()));
    tokio::spawn(load_index(state.clone()));
}

/// (Re)loads the model for the current settings; a newer call supersedes an older one still running.
pub async fn load_model(state: Arc<State>) {
    let epoch = state.model_epoch.fetch_add(1, Ordering::SeqCst) + 1;
    let settings = state.settings();
    let settings_backend = settings.backend;
    let name = if settings.model.trim().is_empty() {
        "the default model".to_owned()
    } else {
        settings.model.clone()
    };
    state.set_engine(None);
    state
        .update_status(|s| {
            s.model = ModelState::Loading;
            s.model_name = name.clone();
            s.backend = settings.backend.as_str().to_owned();
        })
        .await;
    let progress = WorkDone::begin(&state, "qwen-ls: loading model", &name).await;
    let reporter = progress.reporter();
    let loader = state.loader.clone();
    let started = Instant::now();
    let loaded = blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            loader(&settings, &reporter)
        }))
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "the model loader panicked (a bug; see the log)"
            ))
        })
    })
    .await;
    progress.end().await;
    if state.model_epoch.load(Ordering::SeqCst) != epoch {
        return; // A newer configuration is loading.
    }
    match loaded {
        Ok((generator, description)) => {
            tracing::info!("model {description} loaded in {:.1?}", started.elapsed());
            state.set_engine(Some(Engine {
                generator,
                caches: Arc::new(Caches::new()),
            }));
            state.problem_solved(MODEL_PROBLEM);
            state
                .update_status(|s| {
                    s.model = ModelState::Loaded;
                    s.model_name = description;
                })
                .await;
        }
        Err(e) => {
            let message = match settings_backend {
                Backend::Local => format!(
                    "qwen-ls: the model {name} could not be loaded: {e:#}. Set `model` to a model directory \
                     (config.json + safetensors), a .gguf file or a Hugging Face id, then save the settings."
                ),
                // The remote errors say which setting to change.
                Backend::OpenAi => format!("qwen-ls: the model server cannot be used: {e:#}"),
            };
            tracing::error!("{message}");
            state
                .update_status(|s| s.model = ModelState::Failed(message.clone()))
                .await;
            state
                .show_problem(MODEL_PROBLEM, MessageType::ERROR, message)
                .await;
        }
    }
}

/// An empty directory to stand in for a workspace when the client gave no root: documents are then
/// completed without repository context. Created fresh and private (in the user's cache directory when there
/// is one): a directory that already exists could hold files someone else put there for the index to read.
fn empty_root() -> std::io::Result<PathBuf> {
    let name = format!("no-workspace-{}", std::process::id());
    let dir = match qwen_index::CacheStore::default_dir() {
        Some(cache) => {
            qwen_index::cache::create_private_dir(&cache)?;
            cache.join(name)
        }
        None => std::env::temp_dir().join(format!("qwen-ls-{name}")),
    };
    // Left empty by an earlier process with the same id: removed; anything else makes `create_dir` fail.
    let _ = std::fs::remove_dir(&dir);
    std::fs::create_dir(&dir)?;
    qwen_index::cache::create_private_dir(&dir)?;
    Ok(dir)
}

/// (Re)indexes the workspace folders; a newer call (the folders changed again) supersedes an older one.
pub async fn load_index(state: Arc<State>) {
    let epoch = state.index_epoch.fetch_add(1, Ordering::SeqCst) + 1;
    state.update_status(|s| s.index = IndexState::Loading).await;
    let root = state.root();
    let folders = state.folders();
    let title = match &root {
        Some(root) => root.display().to_string(),
        None => "no workspace folder".to_owned(),
    };
    let progress = WorkDone::begin(&state, "qwen-ls: indexing", &title).await;
    let started = Instant::now();
    let loaded = blocking(move || {
        let (root, persistent) = match root {
            Some(root) => (root, true),
            None => (empty_root().map_err(|e| e.to_string())?, false),
        };
        let options = WorkspaceOptions {
            index: IndexConfig::default(),
            folders,
            persistent_cache: persistent,
        };
        Workspace::load(&root, &options)
            .map(|(workspace, report)| (workspace, report.files))
            .map_err(|e| format!("{root}: {e}", root = root.display()))
    })
    .await;
    progress.end().await;
    if state.index_epoch.load(Ordering::SeqCst) != epoch {
        return; // The folders changed meanwhile: a newer index is loading.
    }
    match loaded {
        Ok((workspace, files)) => {
            tracing::info!("indexed {files} files in {:.1?}", started.elapsed());
            let workspace = Arc::new(workspace);
            state.set_workspace(workspace.clone());
            state.feed.go_live(&state.documents, workspace);
            state.problem_solved(INDEX_PROBLEM);
            state
                .update_status(|s| {
                    s.index = IndexState::Loaded(files);
                    s.indexed_files = files;
                })
                .await;
        }
        Err(message) => {
            tracing::error!("indexing failed: {message}");
            // Completions still work on the open documents alone.
            if let Ok(fallback) = blocking(|| {
                let root = empty_root().map_err(|e| e.to_string())?;
                Workspace::load(&root, &WorkspaceOptions::default()).map_err(|e| e.to_string())
            })
            .await
            {
                let workspace = Arc::new(fallback.0);
                state.set_workspace(workspace.clone());
                state.feed.go_live(&state.documents, workspace);
            }
            state
                .update_status(|s| s.index = IndexState::Failed(message.clone()))
                .await;
            state
                .show_problem(
                    INDEX_PROBLEM,
                    MessageType::WARNING,
                    format!("qwen-ls: indexing failed ({message}); completions will lack repository context"),
                )
                .await;
        }
    }
}
