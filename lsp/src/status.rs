//! The server's state as clients see it (`qwen-ls.status`, `qwen-ls/status`): folded from the model's and the
//! index's progress into one of `starting`, `loading-model`, `indexing`, `ready`, `error`.

use serde_json::{json, Value};

/// Where the model is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ModelState {
    /// Not started yet (before `initialized`).
    #[default]
    Pending,
    /// Being found, downloaded or loaded.
    Loading,
    /// Ready.
    Loaded,
    /// Missing or broken: what is wrong and how to fix it.
    Failed(String),
}

/// Where the workspace index is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IndexState {
    /// Not started yet.
    #[default]
    Pending,
    /// Walking and parsing.
    Loading,
    /// Ready with this many files.
    Loaded(usize),
    /// Failed (completions still work, without repository context).
    Failed(String),
}

/// The protocol's state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Initializing.
    Starting,
    /// The model is being loaded.
    LoadingModel,
    /// The workspace is being indexed.
    Indexing,
    /// Serving.
    Ready,
    /// A lasting problem (model missing or broken).
    Error,
}

impl Phase {
    /// The protocol's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::LoadingModel => "loading-model",
            Phase::Indexing => "indexing",
            Phase::Ready => "ready",
            Phase::Error => "error",
        }
    }
}

/// Everything `qwen-ls.status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// The model.
    pub model: ModelState,
    /// The index.
    pub index: IndexState,
    /// The model as a person would name it (spec or path).
    pub model_name: String,
    /// `local` or `openai`.
    pub backend: String,
    /// Files indexed so far.
    pub indexed_files: usize,
}

impl Status {
    /// The folded phase and its message.
    pub fn phase(&self) -> (Phase, String) {
        match (&self.model, &self.index) {
            (ModelState::Failed(message), _) => (Phase::Error, message.clone()),
            (ModelState::Pending, _) => (Phase::Starting, String::new()),
            (ModelState::Loading, _) => {
                (Phase::LoadingModel, format!("loading {}", self.model_name))
            }
            (ModelState::Loaded, IndexState::Pending | IndexState::Loading) => {
                (Phase::Indexing, "indexing the workspace".to_owned())
            }
            (ModelState::Loaded, IndexState::Loaded(files)) => (
                Phase::Ready,
                format!("{} ready, {files} files indexed", self.model_name),
            ),
            (ModelState::Loaded, IndexState::Failed(message)) => (
                Phase::Ready,
                format!("{} ready; indexing failed: {message}", self.model_name),
            ),
        }
    }

    /// The `qwen-ls/status` notification's params.
    pub fn notification(&self) -> Value {
        let (phase, message) = self.phase();
        json!({ "state": phase.as_str(), "message": message })
    }

    /// The `qwen-ls.status` command's result.
    pub fn command_result(&self) -> Value {
        let (phase, message) = self.phase();
        json!({
            "state": phase.as_str(),
            "message": message,
            "model": self.model_name,
            "backend": self.backend,
            "indexedFiles": self.indexed_files,
            "version": env!("CARGO_PKG_VERSION"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_fold_model_then_index() {
        let mut s = Status {
            model_name: "m".into(),
            backend: "local".into(),
            ..Status::default()
        };
        assert_eq!(s.phase().0, Phase::Starting);
        s.model = ModelState::Loading;
        s.index = IndexState::Loading;
        assert_eq!(s.phase().0, Phase::LoadingModel);
        s.model = ModelState::Loaded;
        assert_eq!(s.phase().0, Phase::Indexing);
        s.index = IndexState::Loaded(3);
        s.indexed_files = 3;
        assert_eq!(s.phase().0, Phase::Ready);
        assert_eq!(s.command_result()["indexedFiles"], 3);
        assert_eq!(s.command_result()["state"], "ready");
        s.model = ModelState::Failed("no model; set `model`".into());
        assert_eq!(s.notification()["state"], "error");
        assert_eq!(s.notification()["message"], "no model; set `model`");
    }
}
