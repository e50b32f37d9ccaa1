//! How long-running store operations (downloads, hashing) report progress to a front end. The CLI draws a bar on
//! a terminal (or prints lines when stderr is not one), the language server sends `$/progress`; the store itself
//! never prints.

/// Receives progress of one operation at a time: `start`, any number of `advance`, then `finish`.
///
/// Implementations take `&self` (use interior mutability) so one reporter can be shared with worker threads.
pub trait Progress: Sync {
    /// A new phase begins: `total` bytes (0 when unknown) of work described by `label`.
    fn start(&self, total: u64, label: &str);
    /// `bytes` more bytes of the current phase are done.
    fn advance(&self, bytes: u64);
    /// The current phase is over (successfully or not).
    fn finish(&self);
    /// A one-line message for the user about what the store is doing (e.g. "hub unreachable, using PyPI").
    fn note(&self, message: &str) {
        tracing::info!("{message}");
    }
}

/// Reports nothing (notes still go to the log).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64, _label: &str) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// Calls `finish` when dropped, so an early `?` return still closes the phase.
pub(crate) struct Phase<'a>(&'a dyn Progress);

impl<'a> Phase<'a> {
    /// Starts a phase on `progress`.
    pub(crate) fn start(progress: &'a dyn Progress, total: u64, label: &str) -> Self {
        progress.start(total, label);
        Phase(progress)
    }
}

impl Drop for Phase<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}
