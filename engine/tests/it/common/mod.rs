//! Shared helpers of the integration tests: fixture paths, loading, tensor comparison.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use qwen_engine::{Model, ModelConfig, SafetensorsWeights};

/// The tiny fixture models, one per architecture variant, and one FP8 checkpoint (block-wise e4m3, loaded by
/// dequantizing: the same parity bound applies).
pub const MODELS: [&str; 5] = [
    "qwen3-moe-tiny",
    "qwen3-dense-tiny",
    "qwen2-tiny",
    "qwen3-moe-yarn-tiny",
    "qwen3-moe-fp8-tiny",
];

/// Max abs logit difference allowed against transformers' float32 reference (and between our own paths): the
/// issue's 1e-4 for every fixture. (The fixtures are generated so that float32 noise is well below it: see
/// `QWEN2_INIT` in fixtures/models/make_models.py.)
pub const LOGIT_TOLERANCE: f32 = 1e-4;

/// `fixtures/` at the workspace root.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The directory of fixture model `name` (`QWEN_TEST_MODELS` overrides `fixtures/models`).
pub fn model_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("QWEN_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures().join("models"));
    root.join(name)
}

/// `reference.json` of a fixture model.
#[derive(Debug, serde::Deserialize)]
pub struct Reference {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
}

pub fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(model_dir(name).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Reference logits `[prompt_len, vocab]` from transformers.
pub fn reference_logits(name: &str) -> Tensor {
    let path = model_dir(name).join("reference_logits.safetensors");
    let w = SafetensorsWeights::open_files(&[path]).unwrap();
    let shape: Vec<usize> = {
        let r = reference(name);
        let cfg = ModelConfig::from_hf_file(&model_dir(name).join("config.json")).unwrap();
        vec![r.prompt_ids.len(), cfg.vocab_size]
    };
    w.load("logits", &shape, DType::F32, &Device::Cpu).unwrap()
}

pub fn load_model(name: &str) -> Model {
    let dir = model_dir(name);
    let cfg = ModelConfig::from_hf_file(&dir.join("config.json")).unwrap();
    let w = SafetensorsWeights::open_dir(&dir).unwrap();
    Model::load(cfg, &w, DType::F32, &Device::Cpu).unwrap()
}

/// Largest absolute elementwise difference.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_vec0()
        .unwrap()
}

pub fn argmax(logits: &Tensor) -> u32 {
    logits.argmax(0).unwrap().to_vec0().unwrap()
}
