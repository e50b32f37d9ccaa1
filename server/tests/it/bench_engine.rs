//! `qwen-ls bench engine`: the bytes-per-token count on a committed GGUF fixture against a value computed by
//! hand from its tensor table, and a smoke run of the whole command on that fixture (tiny sizes, no llama.cpp).

use std::path::Path;
use std::process::Command;

use qwen_engine::GgufFile;
use qwen_ls::cli::bench_engine::traffic::{decode_traffic, DecodeTraffic};

const MOE: &str = "fixtures/models/gguf/qwen3moe-q8_0-tiny.gguf";

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Q8_0 stores 32 weights in 34 bytes (an f16 scale + 32 int8).
fn q8_0(elements: u64) -> u64 {
    elements / 32 * 34
}

#[test]
fn bytes_per_token_of_the_moe_fixture_match_the_hand_count() {
    let file = GgufFile::open(&root().join(MOE)).unwrap();
    // From the file's tensor table (gguf-dump): vocab 4160, hidden 128, 2 layers, 4 q / 2 kv heads × 64,
    // 8 experts top-2 of FFN 64; token_embd F16, norms and router F32, every matrix Q8_0, untied output.
    let embedding_row = 128 * 2; // one F16 row of token_embd
    let lm_head = q8_0(4160 * 128); // output.weight = 565,760
    let output_norm = 128 * 4;
    let per_layer_dense = 2 * 128 * 4            // attn_norm, ffn_norm
        + q8_0(256 * 128) + 2 * q8_0(128 * 128) + q8_0(128 * 256) // q, k, v, o = 104,448
        + 2 * 64 * 4                              // q_norm, k_norm
        + 8 * 128 * 4; // router ffn_gate_inp
    let per_layer_experts = 3 * q8_0(8 * 64 * 128) * 2 / 8; // gate/up/down exps, 2 of 8 experts = 52,224
    let expected = DecodeTraffic {
        experts: 2 * per_layer_experts,
        lm_head,
        embedding_row,
        dense: output_norm + 2 * per_layer_dense,
    };
    let traffic = decode_traffic(&file.tensors(), Some((8, 2)), None).unwrap();
    assert_eq!(traffic, expected);
    assert_eq!(traffic.total(), 891_136);

    // Held dense in f16 (candle's qwen3_moe), every element is 2 bytes.
    let f16 = decode_traffic(&file.tensors(), Some((8, 2)), Some(2.0)).unwrap();
    assert_eq!(f16.lm_head, 4160 * 128 * 2);
    assert_eq!(f16.experts, 2 * 3 * (8 * 64 * 128 * 2) * 2 / 8);

    // Stacked experts without an expert count are an error, not a silent full count.
    assert!(decode_traffic(&file.tensors(), None, None).is_err());
}

#[test]
fn a_dense_model_reads_everything_but_the_embedding_table_and_a_tied_table_once() {
    // qwen2 fixture (Q4_K_M-like, untied): every byte but the token_embd table, plus one of its 4160 rows.
    let file = GgufFile::open(&root().join("fixtures/models/gguf/qwen2-q4km-tiny.gguf")).unwrap();
    let mut tensors = file.tensors();
    let all: u64 = tensors.iter().map(|t| t.bytes).sum();
    let embd = tensors
        .iter()
        .find(|t| t.name == "token_embd.weight")
        .unwrap()
        .clone();
    let untied = decode_traffic(&tensors, None, None).unwrap();
    assert_eq!(untied.experts, 0);
    assert_eq!(untied.embedding_row, embd.bytes / 4160);
    assert_eq!(untied.total(), all - embd.bytes + embd.bytes / 4160);

    // The same file without `output.weight` is a tied model: the lm_head reads the whole table, counted once.
    tensors.retain(|t| t.name != "output.weight");
    let tied = decode_traffic(&tensors, None, None).unwrap();
    assert_eq!(tied.lm_head, embd.bytes);
    assert_eq!(tied.embedding_row, 0);
    assert_eq!(tied.total(), tensors.iter().map(|t| t.bytes).sum::<u64>());
}

#[test]
fn bench_engine_smoke_runs_on_the_fixture() {
    let out = Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .current_dir(root())
        .args(["bench", "engine", "--model", MOE])
        .args([
            "--prompt-tokens",
            "24",
            "--decode-tokens",
            "4",
            "--repeat",
            "2",
        ])
        .args(["--bandwidth-mib", "16", "--threads", "2", "--no-llama"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("read bandwidth: "), "{stdout}");
    assert!(
        stdout.contains("weight bytes per decoded token: 0.9 MB"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| qwen-ls |"))
        .unwrap_or_else(|| panic!("no qwen-ls row in\n{stdout}"));
    // | qwen-ls | load | prefill | decode | vs | vs | bound | fraction |
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let prefill: f64 = cells[3].parse().unwrap();
    let decode: f64 = cells[4].parse().unwrap();
    assert!(prefill > 0.0 && decode > 0.0, "{row}");
    assert!(
        stdout.contains("llama.cpp: skipped (--no-llama)"),
        "{stdout}"
    );
    assert!(stdout.contains("load average before: "), "{stdout}");
    assert!(stdout.contains("load average after: "), "{stdout}");
}

#[test]
fn bench_engine_says_what_to_do_without_a_gguf_or_llama() {
    let out = Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .current_dir(root())
        .args(["bench", "engine", "--model", "fixtures/models/qwen2-tiny"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--model must be a GGUF file"), "{stderr}");

    // From a directory without target/bench-models/llama-venv, so no default Python is found either.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qwen-ls"))
        .current_dir(elsewhere.path())
        .env_remove("QWEN_LS_LLAMA_PYTHON")
        .arg("bench")
        .arg("engine")
        .arg("--model")
        .arg(root().join(MOE))
        .arg("--no-candle")
        .args([
            "--prompt-tokens",
            "8",
            "--decode-tokens",
            "2",
            "--repeat",
            "1",
        ])
        .args(["--bandwidth-mib", "16"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("llama.cpp: NOT MEASURED") && stdout.contains("--llama-python"),
        "{stdout}"
    );
}
