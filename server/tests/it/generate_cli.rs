//! `qwen-ls generate` end to end: the README's command on a fixture model, and a missing model.

use std::process::Command;

fn qwen_ls() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qwen-ls"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd
}

#[test]
fn generate_streams_text_and_prints_stats() {
    let out = qwen_ls()
        .args([
            "generate",
            "--model",
            "fixtures/models/qwen3-moe-tiny",
            "--prompt",
            "fn main() {",
        ])
        .args(["--max-tokens", "16"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!out.stdout.is_empty());
    assert!(
        stderr.contains("generated 16 tokens") && stderr.contains("tok/s"),
        "{stderr}"
    );
    // Greedy is deterministic; FIM with sampling runs too.
    let again = qwen_ls()
        .args([
            "generate",
            "--model",
            "fixtures/models/qwen3-moe-tiny",
            "--prompt",
            "fn main() {",
        ])
        .args(["--max-tokens", "16"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, again.stdout);
    let fim = qwen_ls()
        .args([
            "generate",
            "--model",
            "fixtures/models/qwen2-tiny",
            "--fim-prefix",
            "fn a() {",
        ])
        .args([
            "--fim-suffix",
            "}",
            "--temperature",
            "0.7",
            "--top-p",
            "0.9",
            "--seed",
            "1",
        ])
        .args(["--max-tokens", "8", "--dtype", "f16"])
        .output()
        .unwrap();
    assert!(
        fim.status.success(),
        "{}",
        String::from_utf8_lossy(&fim.stderr)
    );
}

#[test]
fn missing_model_is_a_usage_error() {
    let out = qwen_ls()
        .args([
            "generate",
            "--model",
            "fixtures/models/nope",
            "--prompt",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fixtures/models/nope"), "{stderr}");
}

#[test]
fn generate_runs_gguf_files_and_quantizes_safetensors_models() {
    let out = qwen_ls()
        .args([
            "generate",
            "--model",
            "fixtures/models/gguf/qwen2-q4km-tiny.gguf",
            "--prompt",
            "fn main() {",
            "--max-tokens",
            "8",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("[model] GGUF (11 F32, 9 Q4_K, 7 Q6_K); tokenizer: GGUF metadata"),
        "{stderr}"
    );
    assert!(stderr.contains("generated 8 tokens"), "{stderr}");
    let out = qwen_ls()
        .args([
            "generate",
            "--model",
            "fixtures/models/qwen3-moe-tiny",
            "--prompt",
            "fn main() {",
            "--max-tokens",
            "8",
            "--quantize",
            "q4_k",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("quantized 0 matrices, 93 in a fallback type, 0 left unquantized")
            && stderr.contains("model.layers.0.self_attn.q_proj.weight: Q8_0 (row length 64"),
        "{stderr}"
    );
}

/// The default model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) completes a FIM prompt with a plausible body.
/// Prefill/decode speeds of this run are recorded in docs/BENCHMARKS.md ("Default model").
#[test]
#[ignore = "needs the default model's GGUF (QWEN_DEFAULT_GGUF or /work/scratch/default-model); run in release"]
fn default_model_completes_fibonacci() {
    let model = std::env::var("QWEN_DEFAULT_GGUF").unwrap_or_else(|_| {
        "/work/scratch/default-model/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf".to_string()
    });
    let out = qwen_ls()
        .args(["generate", "--model", &model])
        .args(["--fim-prefix", "fn fibonacci(n: u64) -> u64 {\n"])
        .args(["--fim-suffix", "\n}\n", "--max-tokens", "96"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let body = String::from_utf8_lossy(&out.stdout);
    eprintln!("{body}\n{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(
        body.contains('n')
            && (body.contains("fibonacci(n - 1)")
                || body.contains("for ")
                || body.contains("while ")
                || body.contains("match n")),
        "implausible body: {body}"
    );
    assert!(stderr.contains("stopped: stop token"), "{stderr}");
}

/// `--isa` caps the kernels (what `.ci/run` and the benchmarks use to run a lesser CPU's path on a better
/// one): the run reports the level it used, and a level this CPU lacks is an error naming what it has.
#[test]
fn isa_flag_caps_the_kernels_and_refuses_what_the_cpu_lacks() {
    let out = qwen_ls()
        .args(["--isa", "scalar", "generate", "--model"])
        .arg("fixtures/models/gguf/qwen3-q8_0-tiny.gguf")
        .args(["--prompt", "fn main() {", "--max-tokens", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("prefill: scalar") && stderr.contains("decode: scalar"),
        "{stderr}"
    );
    let listed = qwen_ls()
        .args(["isa", "--supported"])
        .env_remove("QWEN_LS_ISA")
        .output()
        .unwrap();
    let supported = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(supported.lines().any(|l| l == "scalar"), "{supported}");
    let lacking = ["avx512-vnni+amx-bf16", "avx512-vnni", "avx2"]
        .into_iter()
        .find(|level| !supported.lines().any(|l| l == *level));
    let asked = lacking.unwrap_or("sse9");
    let refused = qwen_ls()
        .args(["--isa", asked, "isa"])
        .env_remove("QWEN_LS_ISA")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains(asked), "{stderr}");
    if lacking.is_some() {
        assert!(
            stderr.contains("it supports: ") && stderr.contains("scalar"),
            "{stderr}"
        );
    }
}
