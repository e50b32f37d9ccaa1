//! Test doubles and fixtures for the tasks tests: a scripted [`Generator`], workspaces on fixture copies, and
//! a fixture model with a larger declared context window.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use qwen_ls::tasks::{
    CancelToken, FinishReason, Flow, GenError, GenOutput, GenRequest, GenStats, Generator,
    GeneratorInfo, Workspace,
};

use crate::common;

/// A generator that answers every request with a fixed text, streamed in small pieces, and records what it
/// was asked. `before_answer` runs inside `generate` (e.g. to change a file while "the model thinks").
pub struct Scripted {
    pub answer: String,
    pub calls: AtomicUsize,
    pub requests: Mutex<Vec<GenRequest>>,
    pub before_answer: Option<Box<dyn Fn() + Send + Sync>>,
    pub window: Option<usize>,
}

impl Scripted {
    pub fn new(answer: &str) -> Scripted {
        Scripted {
            answer: answer.to_string(),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            before_answer: None,
            window: None,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The text of the last prompt.
    pub fn last_prompt(&self) -> String {
        self.requests
            .lock()
            .expect("lock")
            .last()
            .map(|r| r.prompt.to_text())
            .unwrap_or_default()
    }
}

impl Generator for Scripted {
    fn info(&self) -> GeneratorInfo {
        GeneratorInfo {
            backend: "scripted",
            model: "scripted".into(),
            context_window: self.window,
        }
    }

    fn generate(
        &self,
        request: &GenRequest,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<GenOutput, GenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.requests.lock().expect("lock").push(request.clone());
        if let Some(hook) = &self.before_answer {
            hook();
        }
        let mut text = String::new();
        let mut finish = FinishReason::EndOfText;
        let chars: Vec<char> = self.answer.chars().collect();
        for piece in chars.chunks(3) {
            if cancel.is_cancelled() {
                finish = FinishReason::Cancelled;
                break;
            }
            let piece: String = piece.iter().collect();
            text.push_str(&piece);
            if on_text(&piece) == Flow::Stop {
                finish = FinishReason::Stopped;
                break;
            }
        }
        Ok(GenOutput {
            text,
            finish,
            stats: GenStats::default(),
        })
    }
}

/// A copy of `fixtures/repos/<name>` at `<temp>/<name>` (so the repository name in prompts is stable), with
/// a `.git` directory marking the root.
pub fn repo_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join(name);
    common::copy_tree(&common::fixture(name), &root);
    std::fs::create_dir_all(root.join(".git")).expect("mark the root");
    (dir, root)
}

/// A workspace over `root` (no persistent cache).
pub fn workspace(root: &Path) -> Workspace {
    Workspace::from_host(common::load(root)).expect("workspace")
}

/// `fixtures/models/<name>` with `max_position_embeddings` raised to `window`, in a temporary directory
/// (weights and tokenizer linked, not copied): the fixture's 256 positions cannot hold the edit-format
/// instructions, and RoPE has no built-in limit.
pub fn model_with_window(name: &str, window: usize) -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/models")
        .join(name);
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["model.safetensors", "tokenizer.json"] {
        std::os::unix::fs::symlink(source.join(file), dir.path().join(file)).expect("link");
    }
    let config = std::fs::read_to_string(source.join("config.json")).expect("config");
    let mut json: serde_json::Value = serde_json::from_str(&config).expect("json");
    json["max_position_embeddings"] = serde_json::json!(window);
    std::fs::write(dir.path().join("config.json"), json.to_string()).expect("write config");
    dir
}

/// Shares a generator as the tasks take it.
pub fn shared(generator: Scripted) -> Arc<Scripted> {
    Arc::new(generator)
}
