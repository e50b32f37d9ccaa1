//! `qwen-ls generate`: run one prompt (raw text or fill-in-the-middle) through a local model, stream the text
//! to stdout and print the statistics to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use qwen_engine::{
    CancelToken, GenerateParams, KvCacheKind, LoadOptions, LoadReport, LoadedModel, Prompt,
    QuantizeTo, SamplingParams, Sequence, Speculation, SpeculativeMode, StopReason, Threads,
    WeightDType,
};

use super::model::TerminalProgress;
use crate::load::check_draft_vocabulary;
use crate::store::{ModelSpec, Store};
use crate::tasks::DEFAULT_DRAFT_MODEL;

/// Arguments of `qwen-ls generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model: a GGUF file (or Ollama blob), or a directory with config.json, *.safetensors (dense or FP8) and
    /// tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// Raw prompt text to continue (special-token text in it stays plain text).
    #[arg(
        long,
        required_unless_present = "fim_prefix",
        conflicts_with = "fim_prefix"
    )]
    prompt: Option<String>,
    /// Fill-in-the-middle: the code before the cursor.
    #[arg(long)]
    fim_prefix: Option<String>,
    /// Fill-in-the-middle: the code after the cursor (default empty).
    #[arg(long, requires = "fim_prefix")]
    fim_suffix: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Sample only among the K most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Nucleus sampling: keep tokens up to this cumulative probability.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Random seed (sampling is deterministic for a given seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Weight dtype: f32, f16 or bf16 (bf16 is slow on CPU).
    #[arg(long, default_value = "f32")]
    dtype: WeightDType,
    /// Quantize dense weight matrices at load time: q8_0 or q4_k (rows that do not fit fall back to q8_0 or
    /// stay dense; GGUF matrices that are already quantized stay as stored).
    #[arg(long)]
    quantize: Option<QuantizeTo>,
    /// KV cache: f32 (exact), q8 (int8 with a scale per 32 values: 3.6x less memory and bandwidth at long
    /// context, small logit error) or candle (candle tensors and ops: the pre-kernel path, for comparisons).
    #[arg(long, default_value = "f32")]
    kv_cache: KvCacheKind,
    /// Stop when this string appears (repeatable); it is not printed.
    #[arg(long)]
    stop: Vec<String>,
    /// Threads of the quantized kernels for prompt processing (0: automatic, every core).
    #[arg(long, default_value_t = 0)]
    threads_prefill: usize,
    /// Threads of the quantized kernels for decoding (0: automatic, every core).
    #[arg(long, default_value_t = 0)]
    threads_decode: usize,
    /// Prefill chunk size in tokens.
    #[arg(long, default_value_t = qwen_engine::DEFAULT_PREFILL_CHUNK)]
    prefill_chunk: usize,
    /// Speculative decoding: off (one token per pass), lookup (drafts copied from the prompt and the text so far)
    /// or draft (drafts from --draft-model). The output is the same either way; only the speed changes.
    #[arg(long, default_value = "lookup")]
    speculative: SpeculativeMode,
    /// The draft model for `--speculative draft`: a model spec as for `qwen-ls model path` (default: the pinned
    /// Qwen2.5-Coder-0.5B-Instruct, `qwen-ls model pull qwen2.5-coder-0.5b`), or a GGUF file.
    #[arg(long)]
    draft_model: Option<String>,
    /// Tokens drafted per pass (default: adapted to the acceptance rate and the measured pass cost).
    #[arg(long)]
    draft_tokens: Option<usize>,
}

/// Runs the command.
pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let options = LoadOptions {
        dtype: args.dtype,
        quantize: args.quantize,
        threads: Threads {
            prefill: args.threads_prefill,
            decode: args.threads_decode,
        },
        ..LoadOptions::default()
    };
    let loaded = LoadedModel::load(&args.model, &options)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!("{}", describe_load(&loaded.report));
    let (prefill, decode) = loaded.model.kernel_info();
    eprintln!("[kernels] prefill: {prefill}; decode: {decode}");
    let prompt = match (&args.prompt, &args.fim_prefix) {
        (Some(text), _) => Prompt::text(text.as_str()),
        (None, Some(prefix)) => Prompt::fim(prefix, args.fim_suffix.as_deref().unwrap_or("")),
        (None, None) => anyhow::bail!("pass --prompt or --fim-prefix"),
    };
    let speculation = match args.speculative {
        SpeculativeMode::Off => Speculation::Off,
        SpeculativeMode::Lookup => Speculation::Lookup,
        SpeculativeMode::Draft => {
            let draft = load_draft(args.draft_model.as_deref(), &options, &loaded)?;
            Speculation::Draft(draft.model)
        }
    };
    let params = GenerateParams {
        max_tokens: args.max_tokens,
        sampling: SamplingParams {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        stop_tokens: Vec::new(),
        stop_strings: args.stop.clone(),
        prefill_chunk: args.prefill_chunk,
        speculation,
        draft_tokens: args.draft_tokens,
    };
    let mut stdout = std::io::stdout().lock();
    let mut write_error = None;
    let mut seq = Sequence::with_cache_kind(&loaded.model, args.kv_cache);
    let generation = loaded
        .generate(
            &mut seq,
            &prompt,
            &params,
            &CancelToken::new(),
            &mut |delta| {
                if write_error.is_none() {
                    if let Err(e) = stdout
                        .write_all(delta.as_bytes())
                        .and_then(|_| stdout.flush())
                    {
                        write_error = Some(e);
                    }
                }
            },
        )
        .context("generation failed")?;
    if let Some(err) = write_error.or_else(|| writeln!(stdout).err()) {
        super::stdout::exit_on_write_error(&err);
    }
    let s = &generation.stats;
    let reason = match &generation.stop_reason {
        StopReason::StopToken(id) => format!("stop token {id}"),
        StopReason::StopString(text) => format!("stop string {text:?}"),
        StopReason::MaxTokens => "max tokens".to_string(),
        StopReason::ContextFull => "context full".to_string(),
        StopReason::Cancelled => "cancelled".to_string(),
    };
    eprintln!(
        "[load {load_secs:.2}s] prompt {} tokens ({} reused, {} prefilled) in {:.3}s = {:.1} tok/s; \
         generated {} tokens in {:.3}s = {:.1} tok/s; stopped: {reason}",
        s.prompt_tokens,
        s.reused_tokens,
        s.prefilled_tokens,
        s.prefill_secs,
        s.prefill_tok_s,
        s.generated_tokens,
        s.decode_secs,
        s.decode_tok_s,
    );
    if args.speculative != SpeculativeMode::Off {
        eprintln!(
            "[speculative {}] {} passes, {} drafted, {} accepted: {:.2} tokens per pass",
            args.speculative.as_str(),
            s.decode_steps,
            s.drafted_tokens,
            s.accepted_tokens,
            s.tokens_per_pass()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the draft model (a store spec, verified; the pinned small model by default) with the target's options,
/// and checks it shares the target's vocabulary.
fn load_draft(
    spec: Option<&str>,
    options: &LoadOptions,
    target: &LoadedModel,
) -> anyhow::Result<LoadedModel> {
    let spec = ModelSpec::parse(spec.unwrap_or(DEFAULT_DRAFT_MODEL))?;
    let local = Store::from_env()
        .open(&spec, &TerminalProgress::new())
        .with_context(|| format!("finding the draft model {spec}"))?;
    let draft = LoadedModel::load(&local.path, options)
        .with_context(|| format!("loading the draft model {}", local.path.display()))?;
    check_draft_vocabulary(target, &draft).map_err(|reason| {
        anyhow::anyhow!(
            "cannot use {} as the draft model: {reason}",
            local.path.display()
        )
    })?;
    eprintln!("[draft] {}", local.path.display());
    Ok(draft)
}

/// One stderr line (two with quantization fallbacks) about what was loaded.
fn describe_load(report: &LoadReport) -> String {
    let mut line = format!("[model] {}", report.format);
    if !report.tensor_types.is_empty() {
        let types: Vec<String> = report
            .tensor_types
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        line.push_str(&format!(" ({})", types.join(", ")));
    }
    line.push_str(&format!("; tokenizer: {}", report.tokenizer));
    if let Some(q) = &report.quantize {
        line.push_str(&format!(
            "; quantized {} matrices, {} in a fallback type, {} left unquantized",
            q.quantized,
            q.fallbacks.len(),
            q.unquantized.len()
        ));
        for (name, why) in &q.fallbacks {
            line.push_str(&format!("\n[model]   {name}: {why}"));
        }
        for (name, why) in &q.unquantized {
            line.push_str(&format!("\n[model]   {name}: unquantized ({why})"));
        }
    }
    line
}
