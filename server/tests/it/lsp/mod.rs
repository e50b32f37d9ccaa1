//! Language server tests: an in-process server on a scripted model (deterministic edits, injected panics),
//! and the real binary on the fixture model (shapes, robustness, a keystroke burst).

pub mod binary;
pub mod harness;
mod scripted;
mod watch;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use qwen_ls::lsp::{serve, IndexHook, Loader, ServeOptions};
use qwen_ls::tasks::Generator;

pub use harness::Client;

/// A server running in this process (its own tokio runtime on a thread), serving `generator`.
pub struct InProcess {
    pub client: Client,
    server: Option<JoinHandle<bool>>,
}

impl InProcess {
    /// Starts a server whose model is `generator`; suggestions are logged to `log`; the index writer calls
    /// `index_hook` before each change.
    pub fn start(
        generator: Arc<dyn Generator>,
        log: Option<PathBuf>,
        index_hook: Option<IndexHook>,
    ) -> InProcess {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let loader: Loader =
            Arc::new(move |_settings, _progress| Ok((generator.clone(), "scripted".to_owned())));
        let server = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let clean = runtime.block_on(async move {
                theirs.set_nonblocking(true).expect("nonblocking");
                let stream = tokio::net::UnixStream::from_std(theirs).expect("tokio stream");
                let (read, write) = stream.into_split();
                serve(
                    read,
                    write,
                    ServeOptions {
                        loader,
                        suggestion_log: log,
                        index_hook,
                    },
                )
                .await
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
            clean
        });
        let reader = ours.try_clone().expect("clone socket");
        InProcess {
            client: Client::over(reader, ours),
            server: Some(server),
        }
    }

    /// Waits for the server to stop; whether it ended cleanly (`shutdown` before `exit`).
    pub fn join(mut self) -> bool {
        self.server
            .take()
            .map(|h| h.join().expect("server thread"))
            .unwrap_or(false)
    }
}

/// `file://` URI of a path.
pub fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}
