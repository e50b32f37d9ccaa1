//! Models installed by Ollama: `ollama:name:tag` is resolved through Ollama's manifest to the GGUF blob, which is
//! named by its own SHA-256 (so it is verifiable like any pinned file). qwen-ls only reads Ollama's store.
//!
//! ```text
//! $OLLAMA_MODELS (or ~/.ollama/models)
//! ├── manifests/{registry}/{namespace}/{name}/{tag}   JSON: layers[] { mediaType, digest "sha256:…", size }
//! └── blobs/sha256-{hex}
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::StoreError;
use super::spec::OllamaRef;

/// The media type of the layer holding the GGUF weights.
const MODEL_LAYER: &str = "application/vnd.ollama.image.model";

/// Ollama's model directory.
#[derive(Debug, Clone)]
pub struct OllamaStore {
    root: PathBuf,
}

/// The model blob an Ollama reference points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaModel {
    /// `blobs/sha256-…`.
    pub blob: PathBuf,
    /// SHA-256 from the manifest (and the blob's name).
    pub sha256: String,
    /// Size from the manifest.
    pub size: u64,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
}

impl OllamaStore {
    /// The store at `root` (the directory holding `manifests/` and `blobs/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        OllamaStore { root: root.into() }
    }

    /// `$OLLAMA_MODELS`, else `~/.ollama/models`.
    pub fn from_env() -> Self {
        let root = std::env::var_os("OLLAMA_MODELS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ollama").join("models"))
            })
            .unwrap_or_else(|| PathBuf::from(".ollama/models"));
        OllamaStore { root }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the manifest of `r` lives.
    pub fn manifest_path(&self, r: &OllamaRef) -> PathBuf {
        self.root
            .join("manifests")
            .join(&r.registry)
            .join(&r.namespace)
            .join(&r.name)
            .join(&r.tag)
    }

    /// Reads `r`'s manifest and returns its model layer.
    pub fn resolve(&self, r: &OllamaRef) -> Result<OllamaModel, StoreError> {
        let manifest = self.manifest_path(r);
        let text = match fs::read_to_string(&manifest) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::OllamaMissing {
                    reference: r.short(),
                    manifest,
                })
            }
            Err(e) => return Err(StoreError::io("reading", &manifest, e)),
        };
        self.model_layer(&manifest, &text)
    }

    fn model_layer(&self, manifest: &Path, text: &str) -> Result<OllamaModel, StoreError> {
        let bad = |reason: String| StoreError::OllamaManifest {
            path: manifest.to_path_buf(),
            reason,
        };
        let parsed: Manifest =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let layer = parsed
            .layers
            .iter()
            .find(|l| l.media_type == MODEL_LAYER)
            .ok_or_else(|| bad(format!("no layer of type {MODEL_LAYER}")))?;
        let sha = layer
            .digest
            .strip_prefix("sha256:")
            .filter(|h| super::hash::is_hex(h, 64))
            .ok_or_else(|| {
                bad(format!(
                    "model layer digest {:?} is not sha256:<hex>",
                    layer.digest
                ))
            })?
            .to_ascii_lowercase();
        Ok(OllamaModel {
            blob: self.root.join("blobs").join(format!("sha256-{sha}")),
            sha256: sha,
            size: layer.size,
        })
    }

    /// Every installed model (`registry/namespace/name/tag` manifests with a model layer).
    pub fn list(&self) -> Vec<(OllamaRef, OllamaModel)> {
        let mut out = Vec::new();
        let manifests = self.root.join("manifests");
        for registry in subdirs(&manifests) {
            for namespace in subdirs(&registry) {
                for name in subdirs(&namespace) {
                    for tag in fs::read_dir(&name).into_iter().flatten().flatten() {
                        let path = tag.path();
                        let Ok(text) = fs::read_to_string(&path) else {
                            continue;
                        };
                        let Ok(model) = self.model_layer(&path, &text) else {
                            continue;
                        };
                        let file_name = |p: &Path| {
                            p.file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        };
                        out.push((
                            OllamaRef {
                                registry: file_name(&registry),
                                namespace: file_name(&namespace),
                                name: file_name(&name),
                                tag: file_name(&path),
                            },
                            model,
                        ));
                    }
                }
            }
        }
        out.sort_by_key(|(r, _)| r.to_string());
        out
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_resolves_to_the_model_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = OllamaStore::new(dir.path());
        let r = OllamaRef::parse("qwen2.5-coder:1.5b").expect("ref");
        assert!(matches!(
            store.resolve(&r),
            Err(StoreError::OllamaMissing { .. })
        ));
        let sha = "c".repeat(64);
        let manifest = store.manifest_path(&r);
        fs::create_dir_all(manifest.parent().expect("parent")).expect("mkdir");
        fs::write(
            &manifest,
            format!(
                r#"{{"schemaVersion":2,"layers":[
                {{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:{}","size":3}},
                {{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:{sha}","size":42}}]}}"#,
                "d".repeat(64)
            ),
        )
        .expect("write");
        let m = store.resolve(&r).expect("resolves");
        assert_eq!(m.sha256, sha);
        assert_eq!(m.size, 42);
        assert_eq!(
            m.blob,
            dir.path().join("blobs").join(format!("sha256-{sha}"))
        );
        let listed = store.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0.to_string(), "ollama:qwen2.5-coder:1.5b");
        fs::write(&manifest, "{\"layers\":[]}").expect("write");
        let err = store.resolve(&r).expect_err("no model layer");
        assert!(err.to_string().contains("no layer"), "{err}");
    }
}
