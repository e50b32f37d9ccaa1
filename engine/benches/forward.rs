//! Prefill and decode speed of qwen-engine next to candle-transformers' own `qwen3_moe`, on the same weights,
//! in one run, with the ratio printed.
//!
//! ```sh
//! fixtures/venv/bin/python fixtures/models/make_bench_model.py moe-1b      # writes target/bench-models/moe-1b
//! cargo bench -p qwen-engine --features bench-baseline --bench forward -- [MODEL_DIR] \
//!     [--prompt-tokens 512] [--decode-tokens 128] [--dtype f32|f16] [--only ours|candle]
//! ```
//!
//! Both engines get the same deterministic prompt ids, one warm-up, a single prefill of the whole prompt, then
//! greedy decode of `--decode-tokens` single-token steps (argmax on the host). The two models are loaded one
//! after the other so only one copy of the weights is in memory. candle's config gets
//! `max_position_embeddings` lowered to the benchmark length because its KV cache allocates every position on
//! first use (262,144 positions would not fit next to the weights); this changes no arithmetic.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use qwen_engine::sampling::argmax;
use qwen_engine::{CancelToken, LoadOptions, LoadedModel, ModelConfig, WeightDType};

struct Args {
    model: PathBuf,
    prompt_tokens: usize,
    decode_tokens: usize,
    dtype: WeightDType,
    only: Option<String>,
}

fn parse_args() -> Result<Args> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut args = Args {
        model: root.join("target/bench-models/moe-1b"),
        prompt_tokens: 512,
        decode_tokens: 128,
        dtype: WeightDType::F32,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--prompt-tokens" => args.prompt_tokens = value()?.parse()?,
            "--decode-tokens" => args.decode_tokens = value()?.parse()?,
            "--dtype" => args.dtype = value()?.parse().map_err(anyhow::Error::msg)?,
            "--only" => args.only = Some(value()?),
            flag if flag.starts_with("--") => bail!("unknown flag {flag}"),
            path => args.model = PathBuf::from(path),
        }
    }
    // `cargo bench` runs in engine/: accept paths relative to the workspace root too.
    if args.model.is_relative() && !args.model.exists() {
        args.model = root.join(&args.model);
    }
    Ok(args)
}

/// Deterministic pseudo-random prompt ids below `vocab`.
fn prompt_ids(n: usize, vocab: usize) -> Vec<u32> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % vocab as u64) as u32
        })
        .collect()
}

struct Measured {
    load_secs: f64,
    prefill_tok_s: f64,
    decode_tok_s: f64,
    tokens: Vec<u32>,
}

fn bench_ours(args: &Args, prompt: &[u32]) -> Result<Measured> {
    let started = Instant::now();
    let options = LoadOptions {
        dtype: args.dtype,
        ..Default::default()
    };
    let loaded = LoadedModel::load(&args.model, &options)?;
    let load_secs = started.elapsed().as_secs_f64();
    let model = &loaded.model;
    let never = CancelToken::new();
    // Warm-up: thread pool, allocator.
    let mut warm = loaded.new_sequence();
    warm.prefill(model, &prompt[..prompt.len().min(16)], 512, &never)?;
    warm.append(model, prompt[0])?;
    drop(warm);

    let mut seq = loaded.new_sequence();
    let t = Instant::now();
    let prefill = seq.prefill(model, prompt, prompt.len(), &never)?;
    let prefill_secs = t.elapsed().as_secs_f64();
    let mut logits: Vec<f32> = prefill.logits.to_vec1()?;
    let mut tokens = Vec::new();
    let t = Instant::now();
    for _ in 0..args.decode_tokens {
        let next = argmax(&logits);
        tokens.push(next);
        logits = seq.append(model, next)?.to_vec1()?;
    }
    let decode_secs = t.elapsed().as_secs_f64();
    Ok(Measured {
        load_secs,
        prefill_tok_s: prompt.len() as f64 / prefill_secs,
        decode_tok_s: args.decode_tokens as f64 / decode_secs,
        tokens,
    })
}

fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

fn bench_candle(args: &Args, prompt: &[u32]) -> Result<Measured> {
    use candle_transformers::models::qwen3_moe::{Config, ModelForCausalLM};
    let started = Instant::now();
    let text = std::fs::read_to_string(args.model.join("config.json"))?;
    let mut json: serde_json::Value = serde_json::from_str(&text)?;
    let defaults = [
        (
            "max_window_layers",
            serde_json::json!(json["num_hidden_layers"]),
        ),
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
    json["max_position_embeddings"] = serde_json::json!(prompt.len() + args.decode_tokens + 16);
    let cfg: Config = serde_json::from_value(json).context("candle's qwen3_moe config")?;
    let device = Device::Cpu;
    let files = safetensors_files(&args.model)?;
    // SAFETY: the benchmark's weight files are not modified while it runs.
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(&files, args.dtype.dtype(), &device)?
    };
    let mut model = ModelForCausalLM::new(&cfg, vb)?;
    let load_secs = started.elapsed().as_secs_f64();
    let last_logits =
        |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?) };
    let warm = Tensor::new(&prompt[..prompt.len().min(16)], &device)?.unsqueeze(0)?;
    model.forward(&warm, 0)?;
    model.clear_kv_cache();

    let input = Tensor::new(prompt, &device)?.unsqueeze(0)?;
    let t = Instant::now();
    let mut logits = last_logits(model.forward(&input, 0)?)?;
    let prefill_secs = t.elapsed().as_secs_f64();
    let mut tokens = Vec::new();
    let t = Instant::now();
    for i in 0..args.decode_tokens {
        let next = argmax(&logits);
        tokens.push(next);
        let input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
        logits = last_logits(model.forward(&input, prompt.len() + i)?)?;
    }
    let decode_secs = t.elapsed().as_secs_f64();
    Ok(Measured {
        load_secs,
        prefill_tok_s: prompt.len() as f64 / prefill_secs,
        decode_tok_s: args.decode_tokens as f64 / decode_secs,
        tokens,
    })
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let config = ModelConfig::from_hf_file(&args.model.join("config.json"))?;
    let prompt = prompt_ids(args.prompt_tokens, config.vocab_size.min(151_643));
    println!(
        "model {} ({:?}, {} layers, hidden {}, experts {:?}), dtype {:?}, {} threads",
        args.model.display(),
        config.architecture,
        config.num_hidden_layers,
        config.hidden_size,
        config
            .moe
            .as_ref()
            .map(|m| (m.num_experts, m.num_experts_per_tok)),
        args.dtype,
        candle_core::utils::get_num_threads(),
    );
    println!(
        "prompt {} tokens (one prefill), decode {} tokens (greedy, one token per step)\n",
        args.prompt_tokens, args.decode_tokens
    );
    let run_ours = args.only.as_deref() != Some("candle");
    let run_candle = args.only.as_deref() != Some("ours");
    let ours = if run_ours {
        Some(bench_ours(&args, &prompt)?)
    } else {
        None
    };
    // candle's qwen3_moe ignores `mlp_only_layers` (and supports only qwen3_moe): report, don't abort.
    let candle = if run_candle {
        bench_candle(&args, &prompt)
            .map_err(|e| println!("candle-transformers qwen3_moe cannot run this model: {e:#}\n"))
            .ok()
    } else {
        None
    };
    println!("| engine | load s | prefill tok/s | decode tok/s |");
    println!("|---|---:|---:|---:|");
    for (name, m) in [
        ("qwen-engine", &ours),
        ("candle-transformers qwen3_moe", &candle),
    ] {
        if let Some(m) = m {
            println!(
                "| {name} | {:.1} | {:.1} | {:.2} |",
                m.load_secs, m.prefill_tok_s, m.decode_tok_s
            );
        }
    }
    if let (Some(o), Some(c)) = (&ours, &candle) {
        let agree = o
            .tokens
            .iter()
            .zip(&c.tokens)
            .take_while(|(a, b)| a == b)
            .count();
        println!(
            "\nratio qwen-engine / candle: prefill {:.2}x, decode {:.2}x; greedy tokens agree for {agree}/{}",
            o.prefill_tok_s / c.prefill_tok_s,
            o.decode_tok_s / c.decode_tok_s,
            o.tokens.len()
        );
    }
    Ok(())
}
