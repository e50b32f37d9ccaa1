//! `Store::list`: the models on disk (Hugging Face cache and Ollama), with sizes and verification state, without
//! hashing anything (the state comes from the verification cache).

use std::fs;
use std::path::{Path, PathBuf};

use super::hash::ExpectedHash;
use super::hf_cache::blob_name;
use super::{ModelFormat, Store};

/// Where a listed model lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSource {
    /// The Hugging Face cache.
    HfCache,
    /// Ollama's store.
    Ollama,
}

/// What is known about a listed model's integrity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    /// Verified against its hash, unchanged since.
    Verified,
    /// Has a known hash but has not been verified yet (it will be before first use).
    Unverified,
    /// No hash is known.
    Unpinned,
    /// The snapshot points to a blob that is missing.
    Missing,
    /// A download in progress or interrupted (`pull` resumes it).
    Incomplete,
}

impl ListState {
    /// A word for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ListState::Verified => "verified",
            ListState::Unverified => "unverified",
            ListState::Unpinned => "unpinned",
            ListState::Missing => "missing",
            ListState::Incomplete => "incomplete",
        }
    }
}

/// One row of `qwen-ls model list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// A spec that selects this model (`org/name:file@revision`, `org/name`, `ollama:name:tag`).
    pub spec: String,
    /// Where it is.
    pub source: ListSource,
    /// The GGUF file or safetensors directory.
    pub path: PathBuf,
    /// GGUF or safetensors.
    pub format: ModelFormat,
    /// Bytes on disk (for an incomplete download: bytes so far).
    pub size: u64,
    /// Integrity state.
    pub state: ListState,
}

impl Store {
    /// Every model in the Hugging Face cache and in Ollama's store.
    pub fn list(&self) -> Vec<ListedModel> {
        let mut out = Vec::new();
        for repo in self.hf.repos() {
            self.list_repo(&repo, &mut out);
        }
        for (r, m) in self.ollama.list() {
            let (size, state) = match fs::metadata(&m.blob) {
                Ok(meta) => (
                    meta.len(),
                    self.state_of(&m.blob, Some(&ExpectedHash::Sha256(m.sha256.clone()))),
                ),
                Err(_) => (m.size, ListState::Missing),
            };
            out.push(ListedModel {
                spec: r.to_string(),
                source: ListSource::Ollama,
                path: m.blob,
                format: ModelFormat::Gguf,
                size,
                state,
            });
        }
        out
    }

    fn list_repo(&self, repo: &str, out: &mut Vec<ListedModel>) {
        let main = self.hf.read_ref(repo, "main");
        for snap in self.hf.snapshots(repo) {
            let dir = self.hf.repo_dir(repo).join("snapshots").join(&snap);
            let at = if main.as_deref() == Some(snap.as_str()) {
                String::new()
            } else {
                format!("@{snap}")
            };
            let mut files = Vec::new();
            walk(&dir, &mut files);
            for path in files.iter().filter(|p| is_gguf_name(p)) {
                let rel = path
                    .strip_prefix(&dir)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                let expected = self.expected_in_snapshot(repo, &rel, path);
                let (size, state) = match fs::metadata(path) {
                    Ok(m) => (m.len(), self.state_of(path, expected.as_ref())),
                    Err(_) => (0, ListState::Missing),
                };
                out.push(ListedModel {
                    spec: format!("{repo}:{rel}{at}"),
                    source: ListSource::HfCache,
                    path: path.clone(),
                    format: ModelFormat::Gguf,
                    size,
                    state,
                });
            }
            if dir.join("config.json").exists()
                && files
                    .iter()
                    .any(|p| p.extension().is_some_and(|x| x == "safetensors"))
            {
                let mut size = 0;
                let mut state = ListState::Verified;
                for path in &files {
                    let expected = blob_name(path).and_then(|b| ExpectedHash::from_blob_name(&b));
                    let s = match fs::metadata(path) {
                        Ok(m) => {
                            size += m.len();
                            self.state_of(path, expected.as_ref())
                        }
                        Err(_) => ListState::Missing,
                    };
                    state = worse(state, s);
                }
                out.push(ListedModel {
                    spec: format!("{repo}{at}"),
                    source: ListSource::HfCache,
                    path: dir.clone(),
                    format: ModelFormat::Safetensors,
                    size,
                    state,
                });
            }
        }
        self.list_incomplete(repo, out);
    }

    /// Interrupted downloads: hub `blobs/*.incomplete` and PyPI work directories.
    fn list_incomplete(&self, repo: &str, out: &mut Vec<ListedModel>) {
        let repo_dir = self.hf.repo_dir(repo);
        let mut partials: Vec<(String, PathBuf, u64)> = Vec::new();
        for e in fs::read_dir(repo_dir.join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(hash) = name.strip_suffix(".incomplete") {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                partials.push((hash.to_string(), e.path(), size));
            }
        }
        for e in fs::read_dir(repo_dir.join(".qwen-ls-pypi"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let size = fs::metadata(e.path().join("assembled.incomplete"))
                .map(|m| m.len())
                .unwrap_or(0);
            partials.push((e.file_name().to_string_lossy().into_owned(), e.path(), size));
        }
        for (hash, path, size) in partials {
            let spec = match self.pinned.by_sha256(&hash) {
                Some(p) if p.repo == repo => format!("{repo}:{}", p.file),
                _ => repo.to_string(),
            };
            out.push(ListedModel {
                spec,
                source: ListSource::HfCache,
                path,
                format: ModelFormat::Gguf,
                size,
                state: ListState::Incomplete,
            });
        }
    }

    fn expected_in_snapshot(&self, repo: &str, file: &str, path: &Path) -> Option<ExpectedHash> {
        let from_blob = blob_name(path).and_then(|b| ExpectedHash::from_blob_name(&b));
        match (self.pinned.get(repo, file), from_blob) {
            (_, Some(h)) => Some(h),
            (Some(p), None) => Some(ExpectedHash::Sha256(p.sha256.clone())),
            (None, None) => None,
        }
    }

    fn state_of(&self, path: &Path, expected: Option<&ExpectedHash>) -> ListState {
        match expected {
            None => ListState::Unpinned,
            Some(x) if self.verified.is_verified(path, x) => ListState::Verified,
            Some(_) => ListState::Unverified,
        }
    }
}

fn is_gguf_name(p: &Path) -> bool {
    p.extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
}

fn worse(a: ListState, b: ListState) -> ListState {
    let rank = |s| match s {
        ListState::Verified => 0,
        ListState::Unpinned => 1,
        ListState::Unverified => 2,
        ListState::Incomplete => 3,
        ListState::Missing => 4,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Files (and dangling links) under `dir`, recursively, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
