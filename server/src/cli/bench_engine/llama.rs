//! llama.cpp through `benches/engine/time_llama_cpp.py` (embedded in the binary, written to a temporary
//! directory) run as a child process by a Python that has llama-cpp-python. Its stdout is one JSON object.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::runner::Timings;

/// The timing script, embedded so the bench does not depend on the working directory.
const SCRIPT: &str = include_str!("../../../../benches/engine/time_llama_cpp.py");

/// What the script reported.
#[derive(Debug, Clone)]
pub struct LlamaRun {
    /// Per-repetition throughput and greedy tokens.
    pub timings: Timings,
    /// Seconds to load the model.
    pub load_s: f64,
    /// `llama-cpp-python X.Y.Z`.
    pub version: String,
    /// llama.cpp's `llama_print_system_info()`: the compiled-in instruction sets.
    pub system_info: String,
}

/// Runs the script on `model` with the given prompt ids.
pub fn run(
    python: &Path,
    model: &Path,
    prompt: &[u32],
    decode: usize,
    repeat: usize,
    threads: usize,
) -> anyhow::Result<LlamaRun> {
    let dir = std::env::temp_dir().join(format!("qwen-ls-bench-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create {} for the llama.cpp script", dir.display()))?;
    let result = run_in(&dir, python, model, prompt, decode, repeat, threads);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(
    dir: &Path,
    python: &Path,
    model: &Path,
    prompt: &[u32],
    decode: usize,
    repeat: usize,
    threads: usize,
) -> anyhow::Result<LlamaRun> {
    let script = dir.join("time_llama_cpp.py");
    std::fs::write(&script, SCRIPT).context("cannot write the llama.cpp timing script")?;
    let ids = dir.join("prompt.json");
    std::fs::write(&ids, serde_json::to_vec(prompt)?).context("cannot write the prompt ids")?;
    let output = Command::new(python)
        .arg(&script)
        .arg(model)
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--prompt-ids")
        .arg(&ids)
        .arg("--decode")
        .arg(decode.to_string())
        .arg("--repeat")
        .arg(repeat.to_string())
        .output()
        .with_context(|| {
            format!(
                "cannot run {}: pass --llama-python with a Python that has llama-cpp-python, or run \
                 benches/engine/make_models.sh to build one",
                python.display()
            )
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!(
            "{} {} failed ({}):\n{}",
            python.display(),
            script.display(),
            output.status,
            tail.join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .with_context(|| {
            format!("the llama.cpp script printed no JSON result; stdout: {stdout}")
        })?;
    let floats = |key: &str| -> anyhow::Result<Vec<f64>> {
        json[key]
            .as_array()
            .with_context(|| format!("llama.cpp result has no `{key}` list: {json}"))?
            .iter()
            .map(|v| v.as_f64().with_context(|| format!("`{key}` holds {v}")))
            .collect()
    };
    let tokens = json["tokens"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_u64().map(|t| t as u32))
                .collect()
        })
        .unwrap_or_default();
    Ok(LlamaRun {
        timings: Timings {
            prefill: floats("prefill_tok_s")?,
            decode: floats("decode_tok_s")?,
            tokens,
        },
        load_s: json["load_s"].as_f64().unwrap_or(f64::NAN),
        version: json["version"].as_str().unwrap_or("?").to_string(),
        system_info: json["system_info"].as_str().unwrap_or("").to_string(),
    })
}

/// The Python to run llama.cpp with: `--llama-python` / `QWEN_LS_LLAMA_PYTHON`, else the venv
/// `benches/engine/make_models.sh` creates by default (relative to the current directory).
pub fn find_python(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path.to_path_buf());
    }
    let default = PathBuf::from("target/bench-models/llama-venv/bin/python");
    default.is_file().then_some(default)
}
