//! The Hugging Face cache layout, read and written exactly as `huggingface_hub` and `hf-hub` do, so files users
//! already have are found and files qwen-ls downloads are found by them:
//!
//! ```text
//! $HF_HUB_CACHE (or $HF_HOME/hub, or $XDG_CACHE_HOME/huggingface/hub, or ~/.cache/huggingface/hub)
//! ├── .locks/models--{org}--{name}/{blob}.lock      download locks (flock, as Python's filelock)
//! └── models--{org}--{name}/
//!     ├── blobs/{sha256 for LFS files | git sha1 for small files}
//!     ├── refs/{branch}                              holds the commit the branch pointed to
//!     └── snapshots/{commit}/{file} -> ../../blobs/{hash}
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::StoreError;

/// One Hugging Face hub cache directory.
#[derive(Debug, Clone)]
pub struct HfCache {
    root: PathBuf,
}

impl HfCache {
    /// The cache at `root` (the `hub` directory itself).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HfCache { root: root.into() }
    }

    /// The cache the Hugging Face tools use: `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`,
    /// `$XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`.
    pub fn from_env() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|x| x.join("huggingface").join("hub")))
            .or_else(|| var("HOME").map(|h| h.join(".cache").join("huggingface").join("hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        HfCache { root }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `models--{org}--{name}`.
    pub fn repo_folder(repo: &str) -> String {
        format!("models--{}", repo.replace('/', "--"))
    }

    /// The repository's directory.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join(Self::repo_folder(repo))
    }

    /// `blobs/{hash}`.
    pub fn blob_path(&self, repo: &str, hash: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(hash)
    }

    /// `snapshots/{revision}/{file}`.
    pub fn snapshot_path(&self, repo: &str, revision: &str, file: &str) -> PathBuf {
        self.repo_dir(repo)
            .join("snapshots")
            .join(revision)
            .join(file)
    }

    /// The lock file guarding downloads of `blob` (same place as `huggingface_hub`'s).
    pub fn lock_path(&self, repo: &str, blob: &str) -> PathBuf {
        self.root
            .join(".locks")
            .join(Self::repo_folder(repo))
            .join(format!("{blob}.lock"))
    }

    /// The commit a ref (branch or tag) points to, if recorded.
    pub fn read_ref(&self, repo: &str, name: &str) -> Option<String> {
        let s = fs::read_to_string(self.repo_dir(repo).join("refs").join(name)).ok()?;
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    /// Records that ref `name` points to `revision`. With `overwrite == false` an existing ref is left alone.
    pub fn write_ref(
        &self,
        repo: &str,
        name: &str,
        revision: &str,
        overwrite: bool,
    ) -> Result<(), StoreError> {
        let path = self.repo_dir(repo).join("refs").join(name);
        if !overwrite && path.exists() {
            return Ok(());
        }
        write_atomic(&path, revision.as_bytes())
    }

    /// Snapshot names, newest first.
    pub fn snapshots(&self, repo: &str) -> Vec<String> {
        let dir = self.repo_dir(repo).join("snapshots");
        let mut found: Vec<(SystemTime, String)> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let mtime = e.metadata().and_then(|m| m.modified()).ok()?;
                Some((mtime, name))
            })
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, n)| n).collect()
    }

    /// The snapshots to look in for `revision`: the named one only (a commit, a ref, or a snapshot name such as
    /// the PyPI revision); for `None`, the one `refs/main` points to, then all others, newest first.
    pub fn candidate_snapshots(&self, repo: &str, revision: Option<&str>) -> Vec<String> {
        match revision {
            Some(rev) => {
                let mut v = Vec::new();
                if let Some(commit) = self.read_ref(repo, rev) {
                    v.push(commit);
                }
                v.push(rev.to_string());
                v
            }
            None => {
                let mut v: Vec<String> = self.read_ref(repo, "main").into_iter().collect();
                for s in self.snapshots(repo) {
                    if !v.contains(&s) {
                        v.push(s);
                    }
                }
                v
            }
        }
    }

    /// Points `snapshots/{revision}/{file}` at `blobs/{blob}` (a relative symlink, replaced atomically).
    pub fn link_snapshot(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
        blob: &str,
    ) -> Result<PathBuf, StoreError> {
        let plain_revision = checked_repo_file(revision) && !revision.contains('/');
        let blob_is_hash = super::hash::ExpectedHash::from_blob_name(blob).is_some();
        if !plain_revision || !checked_repo_file(file) || !blob_is_hash {
            return Err(StoreError::io(
                "linking",
                self.repo_dir(repo).join("snapshots"),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("unsafe snapshot entry {revision:?}/{file:?} -> {blob:?}"),
                ),
            ));
        }
        let link = self.snapshot_path(repo, revision, file);
        let parent = link.parent().ok_or_else(|| {
            StoreError::io("linking", &link, std::io::ErrorKind::InvalidInput.into())
        })?;
        fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
        let depth = file.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(blob);
        let tmp = parent.join(format!(
            ".{}.qwen-ls-link",
            link.file_name().and_then(|n| n.to_str()).unwrap_or("file")
        ));
        let _ = fs::remove_file(&tmp);
        make_link(&target, &self.blob_path(repo, blob), &tmp)
            .map_err(|e| StoreError::io("linking", &tmp, e))?;
        fs::rename(&tmp, &link).map_err(|e| StoreError::io("renaming into", &link, e))?;
        Ok(link)
    }

    /// All `models--*` repositories in the cache, as `org/name`.
    pub fn repos(&self) -> Vec<String> {
        let mut repos: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name.strip_prefix("models--")?;
                let (org, model) = rest.split_once("--")?;
                Some(format!("{org}/{model}"))
            })
            .collect();
        repos.sort();
        repos
    }
}

/// A commit id from a server, lowercased, if it is one (40 hex digits): only then may it name a snapshot folder.
#[cfg_attr(not(feature = "hub"), allow(dead_code))] // the hub client's (feature `hub`)
pub fn checked_commit(commit: &str) -> Option<String> {
    let lower = commit.to_ascii_lowercase();
    super::hash::is_hex(&lower, 40).then_some(lower)
}

/// Whether a file name from a server (or a model spec) is a plain relative path inside a repository: `/`-separated
/// components, none empty, `.` or `..`, no backslash or control character, not absolute.
pub fn checked_repo_file(file: &str) -> bool {
    !file.is_empty()
        && !file.starts_with('/')
        && !file.chars().any(|c| c == '\\' || c.is_control())
        && file
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The blob name a snapshot entry points to (`None` when it is a regular file, not a link into `blobs/`).
pub fn blob_name(snapshot_file: &Path) -> Option<String> {
    let target = fs::read_link(snapshot_file).ok()?;
    let parent = target.parent()?.file_name()?;
    if parent != "blobs" {
        return None;
    }
    target.file_name()?.to_str().map(str::to_string)
}

/// Writes `bytes` to `path` through a temporary file and a rename, creating parent directories.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let parent = path
        .parent()
        .ok_or_else(|| StoreError::io("writing", path, std::io::ErrorKind::InvalidInput.into()))?;
    fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
    let tmp = parent.join(format!(
        ".{}.qwen-ls-tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    fs::write(&tmp, bytes).map_err(|e| StoreError::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io("renaming into", path, e))
}

#[cfg(unix)]
fn make_link(relative_target: &Path, _absolute_target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(relative_target, link)
}

#[cfg(not(unix))]
fn make_link(_relative_target: &Path, absolute_target: &Path, link: &Path) -> std::io::Result<()> {
    // Symlinks need privileges on Windows; `huggingface_hub` falls back to copies, a hard link is cheaper.
    fs::hard_link(absolute_target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_links_and_refs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = HfCache::new(dir.path());
        let repo = "Org/Model-GGUF";
        assert_eq!(HfCache::repo_folder(repo), "models--Org--Model-GGUF");
        let blob = "b".repeat(64);
        let blob_path = cache.blob_path(repo, &blob);
        fs::create_dir_all(blob_path.parent().expect("parent")).expect("mkdir");
        fs::write(&blob_path, b"data").expect("write");
        let link = cache
            .link_snapshot(repo, "rev1", "sub/m.gguf", &blob)
            .expect("link");
        assert_eq!(fs::read(&link).expect("read through link"), b"data");
        #[cfg(unix)]
        assert_eq!(blob_name(&link).as_deref(), Some(blob.as_str()));
        cache.write_ref(repo, "main", "rev1", false).expect("ref");
        cache
            .write_ref(repo, "main", "rev2", false)
            .expect("ref kept");
        assert_eq!(cache.read_ref(repo, "main").as_deref(), Some("rev1"));
        assert_eq!(
            cache.candidate_snapshots(repo, None),
            vec!["rev1".to_string()]
        );
        assert_eq!(cache.repos(), vec![repo.to_string()]);
        // Names from a server never leave the cache.
        for (revision, file, blob) in [
            ("../..", "m.gguf", blob.as_str()),
            ("rev1", "../../evil.gguf", blob.as_str()),
            ("rev1", "/etc/evil", blob.as_str()),
            ("rev1", "m.gguf", "../../x"),
        ] {
            assert!(
                cache.link_snapshot(repo, revision, file, blob).is_err(),
                "{revision} {file} {blob}"
            );
        }
        assert_eq!(checked_commit(&"A".repeat(40)), Some("a".repeat(40)));
        assert_eq!(checked_commit("../../x"), None);
        assert!(checked_repo_file("model-00001-of-00002.safetensors"));
        assert!(!checked_repo_file("../evil.safetensors"));
    }
}
