//! The store's error type: every variant names what was wrong (path, URL, expected vs actual hash) and, where
//! there is one, what the user can do about it.

use std::path::PathBuf;

use super::human_bytes;

/// Everything that can go wrong while finding, downloading or verifying a model.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The model specification could not be parsed.
    #[error("invalid model {spec:?}: {reason}")]
    InvalidSpec {
        /// What the user typed.
        spec: String,
        /// Why it is not a model specification.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "creating", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The model is not present locally (and `resolve` never downloads).
    #[error("model {spec} is not downloaded ({detail}); fetch it with `{pull_command}`")]
    NotFound {
        /// The model, described for a person.
        spec: String,
        /// The command that fetches it.
        pull_command: String,
        /// What was looked for and where.
        detail: String,
    },
    /// A local path exists but is not something the engine can load.
    #[error("{path} is not a model: {reason}")]
    NotAModel {
        /// The path given.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// An Ollama model that is not installed in the Ollama store.
    #[error("Ollama model {reference} is not installed (no manifest at {manifest}); run `ollama pull {reference}`")]
    OllamaMissing {
        /// `name:tag`.
        reference: String,
        /// Where its manifest was looked for.
        manifest: PathBuf,
    },
    /// An Ollama manifest that cannot be used.
    #[error("Ollama manifest {path}: {reason}")]
    OllamaManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file's content does not have the hash it must have. The file is never used.
    #[error("{path}: {algorithm} mismatch: expected {expected}, got {actual}{hint}")]
    HashMismatch {
        /// The file that was hashed.
        path: PathBuf,
        /// `sha256` or `git-sha1`.
        algorithm: &'static str,
        /// The pinned hash.
        expected: String,
        /// The hash of the bytes on disk.
        actual: String,
        /// What happens now / what to do (may be empty).
        hint: String,
    },
    /// A file has the wrong size (checked before hashing: it is cheap).
    #[error("{path}: expected {expected} bytes, found {actual}{hint}")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Pinned or announced size.
        expected: u64,
        /// Size on disk.
        actual: u64,
        /// What happens now / what to do (may be empty).
        hint: String,
    },
    /// A request failed before a response arrived (DNS, TLS, connection refused, reset).
    #[error("request to {url} failed: {message}")]
    Http {
        /// The URL requested.
        url: String,
        /// The transport error.
        message: String,
    },
    /// A server answered with an unexpected status.
    #[error("{url} answered HTTP {status}")]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A download kept ending early.
    #[error("download of {url} kept ending early: {got} of {expected} bytes after {attempts} attempts; the partial file is kept for the next `pull` to resume")]
    Truncated {
        /// The URL requested.
        url: String,
        /// Bytes received so far.
        got: u64,
        /// Bytes announced.
        expected: String,
        /// Attempts made.
        attempts: u32,
    },
    /// PyPI's JSON API answered something unusable.
    #[error("PyPI metadata from {url}: {reason}")]
    PypiMetadata {
        /// The JSON API URL.
        url: String,
        /// What was missing or wrong.
        reason: String,
    },
    /// A wheel that does not contain what it should.
    #[error("wheel {path}: {reason}")]
    Wheel {
        /// The downloaded wheel.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Not enough free disk space for a download.
    #[error("not enough disk space in {path}: the download needs {}, only {} is free; free some space or point HF_HOME (or HF_HUB_CACHE) at a larger disk", human_bytes(*needed), human_bytes(*available))]
    InsufficientSpace {
        /// Directory that would receive the file.
        path: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The Hugging Face Hub could not deliver a file.
    #[error("Hugging Face Hub download of {repo} {file} failed: {message}")]
    Hub {
        /// `org/name`.
        repo: String,
        /// The file in the repository.
        file: String,
        /// The hub client's error.
        message: String,
    },
    /// The hub answered a name that cannot safely become part of a cache path; nothing was written.
    #[error("the Hugging Face Hub answered an unsafe {what} for {repo}: {value:?}; nothing was written (check HF_ENDPOINT)")]
    HubUnsafe {
        /// `org/name`.
        repo: String,
        /// What the value was ("commit for x.gguf", "shard name in …").
        what: String,
        /// The value.
        value: String,
    },
    /// The hub sent no hash for a file that qwen-ls does not pin, so it could not be verified.
    #[error("the Hugging Face Hub sent no hash for {repo} {file} (ETag {etag:?} is neither a SHA-256 nor a git blob id) and qwen-ls pins none, so the file cannot be verified; nothing was downloaded. Download it with another tool and pass its path with --model")]
    HubUnverified {
        /// `org/name`.
        repo: String,
        /// The file in the repository.
        file: String,
        /// The ETag the hub sent.
        etag: String,
    },
    /// A hub download was needed but this binary was built without the `hub` feature.
    #[error("{what} is not in the Hugging Face cache ({cache}), and this qwen-ls was built without the `hub` feature, so it cannot download it; rebuild with `--features hub` (see README, \"Models\"), or download it with another tool into that cache")]
    HubDisabled {
        /// The file or repository that is missing.
        what: String,
        /// The cache that was searched.
        cache: PathBuf,
    },
}

impl StoreError {
    /// Shorthand for [`StoreError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
