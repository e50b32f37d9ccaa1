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
