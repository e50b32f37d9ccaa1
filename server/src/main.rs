//! The `qwen-ls` binary: parse the command line, run one mode, print an error once.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = qwen_ls::cli::Cli::parse();
    qwen_ls::cli::init_logging(&cli);
    match qwen_ls::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(qwen_ls::cli::EXIT_USAGE_OR_ENVIRONMENT)
        }
    }
}
