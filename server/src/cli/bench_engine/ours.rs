//! qwen-ls's own engine on the GGUF file, through the same `Sequence` API the language server uses.

use std::path::Path;
use std::time::Instant;

use qwen_engine::{CancelToken, LoadOptions, LoadedModel, Sequence};

use super::runner::Runner;

/// A loaded model and the sequence being timed.
pub struct Ours {
    loaded: LoadedModel,
    sequence: Sequence,
    never: CancelToken,
    /// Seconds `LoadedModel::load` took.
    pub load_s: f64,
}

impl Ours {
    /// Loads `model` as the CLI does (default options: stored block types, f32 for the rest).
    pub fn load(model: &Path) -> anyhow::Result<Self> {
        let started = Instant::now();
        let loaded = LoadedModel::load(model, &LoadOptions::default())?;
        let load_s = started.elapsed().as_secs_f64();
        let sequence = loaded.new_sequence();
        Ok(Ours {
            loaded,
            sequence,
            never: CancelToken::new(),
            load_s,
        })
    }

    /// The loaded model's summary: tensor types.
    pub fn describe(&self) -> String {
        let types: Vec<String> = self
            .loaded
            .report
            .tensor_types
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        format!("{}: {}", self.loaded.report.format, types.join(", "))
    }
}

impl Runner for Ours {
    fn reset(&mut self) -> anyhow::Result<()> {
        self.sequence = self.loaded.new_sequence();
        Ok(())
    }

    fn prefill(&mut self, prompt: &[u32]) -> anyhow::Result<Vec<f32>> {
        let model = &self.loaded.model;
        let prefill = self
            .sequence
            .prefill(model, prompt, prompt.len(), &self.never)?;
        Ok(prefill.logits.to_vec1::<f32>()?)
    }

    fn step(&mut self, token: u32, _position: usize) -> anyhow::Result<Vec<f32>> {
        let logits = self.sequence.append(&self.loaded.model, token)?;
        Ok(logits.to_vec1::<f32>()?)
    }
}
