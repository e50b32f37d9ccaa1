//! candle-transformers' own models as the second baseline (feature `bench-baseline`; the default build and CI
//! do not compile candle-transformers).
//!
//! - `qwen2` / `qwen3` GGUF: `quantized_qwen2` / `quantized_qwen3` on the same file (candle's quantized CPU
//!   matmul, the path the engine used before its own kernels).
//! - `qwen3moe`: candle's `quantized_qwen3_moe` is CUDA-only, so its dense `qwen3_moe` runs on the Hugging Face
//!   checkpoint of the same weights (`--hf-dir`), in `--candle-dtype` (f16 by default: candle's bf16 CPU matmul
//!   is ~10x slower, NOTES). Its config gets `max_position_embeddings` = the benchmark length, because its KV
//!   cache allocates every position on first use; no arithmetic changes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{quantized_qwen2, quantized_qwen3, qwen3_moe};

use super::runner::Runner;

enum Model {
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Qwen3Moe(qwen3_moe::ModelForCausalLM),
}

/// A candle-transformers model under test.
pub struct Candle {
    model: Model,
    /// Seconds to load.
    pub load_s: f64,
    /// What ran, for the report.
    pub description: String,
}

fn logits(t: Tensor) -> anyhow::Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?)
}

impl Candle {
    /// `quantized_qwen2` / `quantized_qwen3` on a GGUF file of that architecture.
    pub fn load_gguf(path: &Path, architecture: &str) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut file)
            .with_context(|| format!("cannot parse {}", path.display()))?;
        let device = Device::Cpu;
        let (model, name) = match architecture {
            "qwen2" => (
                Model::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                    content, &mut file, &device,
                )?),
                "quantized_qwen2",
            ),
            "qwen3" => (
                Model::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
                    content, &mut file, &device,
                )?),
                "quantized_qwen3",
            ),
            other => anyhow::bail!("candle-transformers has no quantized CPU model for `{other}`"),
        };
        Ok(Candle {
            model,
            load_s: started.elapsed().as_secs_f64(),
            description: format!("candle-transformers {name} on the same GGUF"),
        })
    }

    /// Dense `qwen3_moe` on a Hugging Face checkpoint, weights in `dtype`; `positions` sizes its KV cache.
    pub fn load_qwen3_moe(dir: &Path, dtype: DType, positions: usize) -> anyhow::Result<Self> {
        let started = Instant::now();
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).with_context(|| {
            format!(
                "cannot read {}: --hf-dir must be the Hugging Face checkpoint of the GGUF's weights",
                config_path.display()
            )
        })?;
        let mut json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", config_path.display()))?;
        let layers = json["num_hidden_layers"].clone();
        let defaults = [
            ("max_window_layers", layers),
            ("sliding_window", serde_json::Value::Null),
            ("use_sliding_window", serde_json::json!(false)),
            ("attention_bias", serde_json::json!(false)),
            ("tie_word_embeddings", serde_json::json!(false)),
            ("decoder_sparse_step", serde_json::json!(1)),
        ];
        for (key, value) in defaults {
            if json.get(key).is_none() {
                json[key] = value;
            }
        }
        json["max_position_embeddings"] = serde_json::json!(positions);
        let config: qwen3_moe::Config = serde_json::from_value(json)
            .context("candle's qwen3_moe cannot read this config.json")?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        anyhow::ensure!(!files.is_empty(), "no *.safetensors in {}", dir.display());
        // SAFETY: the benchmark's weight files are not modified while it runs.
        let vb =
            unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&files, dtype, &Device::Cpu)? };
        let model = qwen3_moe::ModelForCausalLM::new(&config, vb)?;
        Ok(Candle {
            model: Model::Qwen3Moe(model),
            load_s: started.elapsed().as_secs_f64(),
            description: format!(
                "candle-transformers qwen3_moe, dense {dtype:?} from {} (no quantized CPU qwen3_moe in candle)",
                dir.display()
            ),
        })
    }

    fn forward(&mut self, tokens: &[u32], position: usize) -> anyhow::Result<Vec<f32>> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let out = match &mut self.model {
            Model::Qwen2(m) => m.forward(&input, position)?,
            Model::Qwen3(m) => m.forward(&input, position)?,
            Model::Qwen3Moe(m) => m.forward(&input, position)?,
        };
        logits(out)
    }
}

impl Runner for Candle {
    fn reset(&mut self) -> anyhow::Result<()> {
        match &mut self.model {
            Model::Qwen2(m) => m.clear_kv_cache(),
            Model::Qwen3(m) => m.clear_kv_cache(),
            Model::Qwen3Moe(m) => m.clear_kv_cache(),
        }
        Ok(())
    }

    fn prefill(&mut self, prompt: &[u32]) -> anyhow::Result<Vec<f32>> {
        self.forward(prompt, 0)
    }

    fn step(&mut self, token: u32, position: usize) -> anyhow::Result<Vec<f32>> {
        self.forward(&[token], position)
    }
}
