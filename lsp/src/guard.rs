//! Failure boundaries: a request that panics answers an `InternalError` and the server lives on; a request
//! future that is dropped (superseded, `$/cancelRequest`, shutdown) cancels the generation it started.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard};

use futures::FutureExt;
use qwen_engine::CancelToken;
use tower_lsp_server::jsonrpc::{Error, Result};

/// Runs a request handler; a panic inside it (or inside a blocking task it awaited and re-raised) becomes an
/// `InternalError` response naming the method. Nothing the panic touched is shared mutable state without a
/// poison-tolerant lock, so the server can keep serving.
pub async fn catch_panics<T>(
    method: &'static str,
    handler: impl Future<Output = Result<T>>,
) -> Result<T> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::error!("{method} panicked: {what}");
            let mut error = Error::internal_error();
            error.message = format!("qwen-ls: {method} failed (internal error: {what})").into();
            Err(error)
        }
    }
}

/// Runs blocking work (generation, packing) on tokio's blocking pool; a panic in it is re-raised here so that
/// [`catch_panics`] turns it into an error response.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down: nobody will read the answer.
        Err(e) => std::panic::panic_any(format!("blocking task did not finish: {e}")),
    }
}

/// Runs cancellable blocking work (a generation) on the blocking pool: `work` gets a fresh [`CancelToken`] that
/// fires if this future is dropped before the work finished (superseded request, `$/cancelRequest`).
pub async fn cancellable<T: Send + 'static>(
    work: impl FnOnce(&CancelToken) -> T + Send + 'static,
) -> T {
    let cancel = CancelToken::new();
    let guard = CancelOnDrop::new(cancel.clone());
    let value = blocking(move || work(&cancel)).await;
    guard.disarm();
    value
}

/// Fires a [`CancelToken`] when dropped, unless disarmed: tie it to a request future so that dropping the
/// future (tower-lsp does on `$/cancelRequest`) stops the generation at its next token.
#[derive(Debug)]
pub struct CancelOnDrop {
    token: CancelToken,
    armed: bool,
}

impl CancelOnDrop {
    /// A guard for `token`.
    pub fn new(token: CancelToken) -> CancelOnDrop {
        CancelOnDrop { token, armed: true }
    }

    /// The request finished normally: dropping the guard no longer cancels.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.token.cancel();
        }
    }
}

/// Locks `mutex`, recovering it when a holder panicked: every lock in the server guards data that is
/// consistent between statements, and one failed request must not take the others down.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_errors() {
        let result: Result<()> = catch_panics("test/method", async { panic!("boom") }).await;
        let error = result.expect_err("an error");
        assert!(error.message.contains("boom"), "{}", error.message);
        let result: Result<u8> = catch_panics("test/method", async {
            Ok(blocking(|| -> u8 { panic!("deep") }).await)
        })
        .await;
        assert!(result.expect_err("an error").message.contains("deep"));
        assert_eq!(catch_panics("ok", async { Ok(3) }).await.ok(), Some(3));
    }

    #[test]
    fn dropping_an_armed_guard_cancels() {
        let token = CancelToken::new();
        drop(CancelOnDrop::new(token.clone()));
        assert!(token.is_cancelled());
        let token = CancelToken::new();
        CancelOnDrop::new(token.clone()).disarm();
        assert!(!token.is_cancelled());
    }
}
