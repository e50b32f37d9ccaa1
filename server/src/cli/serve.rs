//! `qwen-ls serve` (and `qwen-ls` with no subcommand): the language server over stdio. This is where the
//! model store and the engine are wired into the server.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::load::load_generator;
use crate::lsp::{serve, Loader, ServeOptions};
use crate::store::Store;
use crate::tasks::measure::default_log_path;

/// Arguments of `qwen-ls serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Talk over stdin/stdout (the only transport; accepted because language clients pass it).
    #[arg(long)]
    pub stdio: bool,
}

/// The production loader: resolve (and on first use download) the model with the store, then load it.
pub fn store_loader(store: Store) -> Loader {
    Arc::new(move |settings, progress| {
        let loaded = load_generator(settings, &store, progress)?;
        Ok((loaded.generator, loaded.description))
    })
}

/// Serves one editor on stdin/stdout until `exit`; exit code 0 after a clean `shutdown`/`exit`, else 1.
pub fn run(_args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("qwen-ls")
        .build()
        .context("cannot start the async runtime")?;
    let options = ServeOptions {
        loader: store_loader(Store::from_env()),
        suggestion_log: default_log_path(),
        index_hook: None,
    };
    tracing::info!("qwen-ls {} serving on stdio", env!("CARGO_PKG_VERSION"));
    let clean = runtime.block_on(serve(tokio::io::stdin(), tokio::io::stdout(), options));
    // Blocking tasks (a generation being cancelled, stdin's reader thread) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
