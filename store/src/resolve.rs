//! `Store::resolve`: from a [`ModelSpec`] to the files on disk, without any download and without hashing (that is
//! `Store::check`). Each file carries the hash it must have: from the pinned table, from the Hugging Face blob name
//! it links to, or from the Ollama digest.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::hash::ExpectedHash;
use super::hf_cache::blob_name;
use super::spec::{HubRef, ModelSpec};
use super::{has_gguf_magic, LocalModel, ModelFile, ModelFormat, PinnedFile, Store};

/// Small files of a safetensors model that are used when present.
const SAFETENSORS_EXTRAS: [&str; 4] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
];

impl Store {
    /// Finds `spec` on disk. Never downloads. A model that is not there is [`StoreError::NotFound`] (whose
    /// message names the `qwen-ls model pull` command that fetches it).
    pub fn resolve(&self, spec: &ModelSpec) -> Result<LocalModel, StoreError> {
        match spec {
            ModelSpec::Default => {
                let d = self.pinned.default_file();
                let r = HubRef {
                    repo: d.repo.clone(),
                    file: Some(d.file.clone()),
                    revision: None,
                };
                self.resolve_hub(spec, &r)
            }
            ModelSpec::Hub(r) => self.resolve_hub(spec, r),
            ModelSpec::GgufFile(path) => self.resolve_gguf_path(spec, path),
            ModelSpec::OllamaBlob(path) => self.resolve_gguf_path(spec, path),
            ModelSpec::Ollama(r) => {
                let m = self.ollama.resolve(r)?;
                if !m.blob.is_file() {
                    return Err(StoreError::OllamaManifest {
                        path: self.ollama.manifest_path(r),
                        reason: format!(
                            "its model blob {} is missing; run `ollama pull {}`",
                            m.blob.display(),
                            r.short()
                        ),
                    });
                }
                require_gguf(&m.blob)?;
                Ok(LocalModel {
                    spec: spec.clone(),
                    path: m.blob.clone(),
                    format: ModelFormat::Gguf,
                    files: vec![ModelFile {
                        path: m.blob,
                        expected: Some(ExpectedHash::Sha256(m.sha256.clone())),
                        expected_size: (m.size > 0).then_some(m.size),
                    }],
                    pinned: self.pinned.by_sha256(&m.sha256).cloned(),
                })
            }
            ModelSpec::SafetensorsDir(dir) => {
                let files = safetensors_files(dir)?;
                Ok(LocalModel {
                    spec: spec.clone(),
                    path: dir.clone(),
                    format: ModelFormat::Safetensors,
                    files: files.into_iter().map(|p| self.file_from_path(p)).collect(),
                    pinned: None,
                })
            }
        }
    }

    fn resolve_gguf_path(&self, spec: &ModelSpec, path: &Path) -> Result<LocalModel, StoreError> {
        if !path.is_file() {
            return Err(StoreError::NotAModel {
                path: path.to_path_buf(),
                reason: "not a file".into(),
            });
        }
        require_gguf(path)?;
        let file = self.file_from_path(path.to_path_buf());
        let pinned = match &file.expected {
            Some(ExpectedHash::Sha256(h)) => self.pinned.by_sha256(h).cloned(),
            _ => None,
        };
        Ok(LocalModel {
            spec: spec.clone(),
            path: path.to_path_buf(),
            format: ModelFormat::Gguf,
            files: vec![file],
            pinned,
        })
    }

    /// The hash a local file must have: from the blob store it lives in (Hugging Face `blobs/<hash>`, Ollama
    /// `blobs/sha256-<hex>`), else from the pinned table when name and size match a pinned file.
    fn file_from_path(&self, path: PathBuf) -> ModelFile {
        let canonical = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let name = canonical
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let in_blobs = canonical
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "blobs");
        let from_blob = if in_blobs {
            name.strip_prefix("sha256-")
                .filter(|h| super::hash::is_hex(h, 64))
                .map(|h| ExpectedHash::Sha256(h.to_ascii_lowercase()))
                .or_else(|| ExpectedHash::from_blob_name(&name))
        } else {
            None
        };
        if let Some(expected) = from_blob {
            let expected_size = match &expected {
                ExpectedHash::Sha256(h) => self.pinned.by_sha256(h).map(|p| p.size),
                ExpectedHash::GitSha1(_) => None,
            };
            return ModelFile {
                path,
                expected: Some(expected),
                expected_size,
            };
        }
        let size = fs::metadata(&path).map(|m| m.len()).ok();
        let user_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let pinned = self
            .pinned
            .files()
            .iter()
            .find(|p| p.file == user_name && Some(p.size) == size);
        ModelFile {
            path,
            expected: pinned.map(|p| ExpectedHash::Sha256(p.sha256.clone())),
            expected_size: pinned.map(|p| p.size),
        }
    }

    fn resolve_hub(&self, spec: &ModelSpec, r: &HubRef) -> Result<LocalModel, StoreError> {
        let pinned = self.pinned_for(spec).cloned();
        let file = r
            .file
            .clone()
            .or_else(|| pinned.as_ref().map(|p| p.file.clone()));
        let candidates = self.hf.candidate_snapshots(&r.repo, r.revision.as_deref());
        let not_found = |detail: String| StoreError::NotFound {
            spec: self.describe(spec),
            pull_command: match spec {
                ModelSpec::Default => "qwen-ls model pull".to_string(),
                other => format!("qwen-ls model pull {other}"),
            },
            detail,
        };
        let Some(file) = file else {
            // No file named: the whole (safetensors) model in a snapshot.
            for snap in &candidates {
                let dir = self.hf.repo_dir(&r.repo).join("snapshots").join(snap);
                if let Ok(files) = safetensors_files(&dir) {
                    return Ok(LocalModel {
                        spec: spec.clone(),
                        path: dir,
                        format: ModelFormat::Safetensors,
                        files: files.into_iter().map(|p| self.file_from_path(p)).collect(),
                        pinned: None,
                    });
                }
            }
            return Err(not_found(format!(
                "no complete safetensors snapshot under {}",
                self.hf.repo_dir(&r.repo).display()
            )));
        };
        if !file.to_ascii_lowercase().ends_with(".gguf") {
            return Err(StoreError::InvalidSpec {
                spec: spec.to_string(),
                reason: format!(
                    "{file} is not a .gguf file; name the repository alone ({}) to use a safetensors model",
                    r.repo
                ),
            });
        }
        // For a pinned file only the pinned content will do: a snapshot of another revision (its blob named by a
        // different SHA-256) is not the model that was asked for.
        let mut found: Option<(PathBuf, Option<String>)> = None;
        for snap in &candidates {
            let path = self.hf.snapshot_path(&r.repo, snap, &file);
            if !path.is_file() {
                continue;
            }
            let blob = blob_name(&path);
            let other_content = match (
                &pinned,
                blob.as_deref().and_then(ExpectedHash::from_blob_name),
            ) {
                (Some(p), Some(ExpectedHash::Sha256(h))) => !p.sha256.eq_ignore_ascii_case(&h),
                _ => false,
            };
            if !other_content {
                found = Some((path, blob));
                break;
            }
        }
        let Some((path, blob)) = found else {
            return Err(not_found(format!(
                "no {file} in {}",
                self.hf.repo_dir(&r.repo).join("snapshots").display()
            )));
        };
        require_gguf(&path)?;
        let model_file = self.hub_file(path.clone(), blob.as_deref(), pinned.as_ref());
        Ok(LocalModel {
            spec: spec.clone(),
            path,
            format: ModelFormat::Gguf,
            files: vec![model_file],
            pinned,
        })
    }

    /// A snapshot file's expected hash: the pinned one for a pinned file, else the hash its blob is named by.
    fn hub_file(
        &self,
        path: PathBuf,
        blob: Option<&str>,
        pinned: Option<&PinnedFile>,
    ) -> ModelFile {
        match (pinned, blob.and_then(ExpectedHash::from_blob_name)) {
            (Some(p), _) => ModelFile {
                path,
                expected: Some(ExpectedHash::Sha256(p.sha256.clone())),
                expected_size: Some(p.size),
            },
            (None, Some(expected)) => ModelFile {
                path,
                expected: Some(expected),
                expected_size: None,
            },
            (None, None) => self.file_from_path(path),
        }
    }
}

fn require_gguf(path: &Path) -> Result<(), StoreError> {
    if has_gguf_magic(path) {
        Ok(())
    } else {
        Err(StoreError::NotAModel {
            path: path.to_path_buf(),
            reason: "it does not start with the GGUF magic bytes".into(),
        })
    }
}

/// The files of a safetensors model directory: the small JSON files that exist, and every weight file (all
/// shards named by `model.safetensors.index.json`, else `*.safetensors`). Errors say what is missing.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let not_model = |reason: String| StoreError::NotAModel {
        path: dir.to_path_buf(),
        reason,
    };
    if !dir.join("config.json").is_file() {
        return Err(not_model("no config.json (a model directory needs config.json, tokenizer.json and *.safetensors)".into()));
    }
    let mut files: Vec<PathBuf> = SAFETENSORS_EXTRAS
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = fs::read_to_string(&index).map_err(|e| StoreError::io("reading", &index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| not_model(format!("{} is not valid JSON: {e}", index.display())))?;
        let mut shards: Vec<String> = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.values()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        shards.sort();
        shards.dedup();
        if shards.is_empty() {
            return Err(not_model(format!("{} has no weight_map", index.display())));
        }
        files.push(index);
        for shard in shards {
            if shard.contains("..") || shard.starts_with('/') {
                return Err(not_model(format!("suspicious shard name {shard:?}")));
            }
            let p = dir.join(&shard);
            if !p.is_file() {
                return Err(not_model(format!("shard {shard} is missing")));
            }
            files.push(p);
        }
    } else {
        let mut weights: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| StoreError::io("reading", dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors") && p.is_file())
            .collect();
        if weights.is_empty() {
            return Err(not_model("no *.safetensors weights".into()));
        }
        weights.sort();
        files.extend(weights);
    }
    Ok(files)
}
