//! Command-line front end: one clap subcommand per file. This is the composition root that wires the engine
//! into `tasks`; the only module (with `lsp`) allowed to know about clap or terminals.
// Results go through `out!`/`outln!` (stdout.rs), which stop quietly when the reader closes the pipe.
#![deny(clippy::print_stdout)]

#[macro_use]
mod stdout;
mod agent;
mod bench;
mod bench_context;
pub mod bench_engine;
mod bench_lsp;
mod bench_spec;
mod bench_typing;
mod complete_cmd;
mod context_cmd;
mod explain_cmd;
mod index_cmd;
mod isa_cmd;
mod lsp_client;
pub mod memory;
pub mod serve;
mod stats;
pub mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod generate;
pub mod model;
mod patch;
pub mod patch_json;
mod patch_loop;

/// Exit code for a usage or environment error (bad arguments, missing model, unreadable files).
pub const EXIT_USAGE_OR_ENVIRONMENT: u8 = 3;

/// A repository-aware coding agent: a language server (no subcommand) and a headless CLI.
#[derive(Debug, Parser)]
#[command(name = "qwen-ls", version, about)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `qwen_ls=debug`. Logs go to stderr. Default:
    /// `info` for the language server (its log is the editor's server log), `warn` for the other commands.
    #[arg(long, global = true, env = "QWEN_LS_LOG")]
    pub log: Option<String>,
    /// Cap the engine's CPU kernels at this instruction-set level (`scalar`, `avx2`, `avx512-vnni`, `amx`),
    /// e.g. to measure on an AMX machine what a laptop without AMX runs. Default: the best this CPU has. An
    /// error if the CPU lacks the level.
    #[arg(long, global = true, env = qwen_engine::kernels::ISA_ENV, value_name = "LEVEL")]
    pub isa: Option<qwen_engine::kernels::Isa>,
    /// Accepted for language clients that pass it; stdio is the only transport.
    #[arg(long, hide = true)]
    pub stdio: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The language server over stdio (also what `qwen-ls` with no subcommand runs).
    Serve(serve::ServeArgs),
    /// Summarise the local suggestion log: counts, acceptance rate, latency and overhead percentiles.
    Stats(stats::StatsArgs),
    /// Run one prompt (raw text or fill-in-the-middle) through a local model; text to stdout, stats to stderr.
    Generate(generate::GenerateArgs),
    /// Find, download and verify models: `pull`, `list`, `path`, `verify`.
    Model(model::ModelArgs),
    /// Index a workspace and print files, languages, symbols, time and peak memory.
    Index(index_cmd::IndexArgs),
    /// Show the context that would be packed for a cursor position.
    Context(context_cmd::ContextArgs),
    /// Benchmarks with ratios to a baseline.
    Bench(bench::BenchArgs),
    /// Ask the model for edits and print them as a unified diff (or apply them). Exit 0 patch, 1 no change,
    /// 2 invalid answer (saved), 3 usage or environment error, 4 checks still failing (`--test-cmd`).
    Patch(patch::PatchArgs),
    /// Print the inline completion the language server would show at FILE:LINE:COL.
    Complete(complete_cmd::CompleteArgs),
    /// Print the explanation the hover would show for the function at FILE:LINE or FILE:SYMBOL.
    Explain(explain_cmd::ExplainArgs),
    /// Print the CPU instruction-set levels the kernels can run here and the one in use (see `--isa`).
    Isa(isa_cmd::IsaArgs),
}

/// Sends `tracing` output to stderr (never stdout: in server mode stdout is the LSP stream), and to the
/// language server's `logFile` once it is set.
pub fn init_logging(cli: &Cli) {
    let serving = matches!(cli.command, None | Some(Command::Serve(_)));
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_new(cli.log.as_deref().unwrap_or(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(crate::logging::Tee)
        .init();
}

/// Runs the selected mode and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(isa) = cli.isa {
        qwen_engine::kernels::Isa::force(isa)?;
    }
    match cli.command {
        None => serve::run(&serve::ServeArgs::default()),
        Some(Command::Serve(args)) => serve::run(&args),
        Some(Command::Stats(args)) => stats::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Generate(args)) => generate::run(args),
        Some(Command::Model(args)) => model::run(args),
        Some(Command::Index(args)) => index_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Context(args)) => context_cmd::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Patch(args)) => patch::run(&args),
        Some(Command::Complete(args)) => complete_cmd::run(&args),
        Some(Command::Explain(args)) => explain_cmd::run(&args),
        Some(Command::Isa(args)) => isa_cmd::run(&args).map(|()| ExitCode::SUCCESS),
    }
}
