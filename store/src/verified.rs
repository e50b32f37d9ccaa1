//! The verification cache: hashing a 1 GB model takes seconds, so a successful check is remembered in a small
//! marker file and reused while the file is provably unchanged.
//!
//! A marker lives in the qwen-ls cache (`$XDG_CACHE_HOME/qwen-ls/verified/` or `~/.cache/qwen-ls/verified/`), not
//! next to the model (the Hugging Face and Ollama stores belong to other tools and may be read-only). Its name is
//! the SHA-256 of the file's canonical path; its content records the file's size, modification time, change time,
//! inode and device, and the hash it was verified against. It is trusted only when all of them still match: any
//! write to the file changes mtime/ctime (ctime cannot be set back by user tools), a replaced file has a new inode.
//! Anything unexpected (no marker, unreadable marker, different fingerprint) means "hash again". Markers are an
//! optimisation only: deleting the directory is always safe.

use std::fs;
use std::path::{Path, PathBuf};

use super::hash::{sha256_hex, ExpectedHash};

/// Remembers which files were verified against which hash.
#[derive(Debug, Clone)]
pub struct VerifyCache {
    dir: Option<PathBuf>,
}

impl VerifyCache {
    /// A cache whose markers live in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        VerifyCache {
            dir: Some(dir.into()),
        }
    }

    /// A cache that remembers nothing: every check hashes the file.
    pub fn disabled() -> Self {
        VerifyCache { dir: None }
    }

    /// `$XDG_CACHE_HOME/qwen-ls/verified`, else `~/.cache/qwen-ls/verified`, else disabled.
    pub fn from_env() -> Self {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
        match base {
            Some(base) => VerifyCache::new(base.join("qwen-ls").join("verified")),
            None => VerifyCache::disabled(),
        }
    }

    /// True when `path` was verified against `expected` and has not changed since.
    pub fn is_verified(&self, path: &Path, expected: &ExpectedHash) -> bool {
        let Some((marker, body)) = self.marker_and_body(path, expected) else {
            return false;
        };
        fs::read_to_string(marker).is_ok_and(|stored| stored == body)
    }

    /// Records that `path` (as it is now) has hash `expected`. Failures are logged, never fatal.
    pub fn record(&self, path: &Path, expected: &ExpectedHash) {
        let Some((marker, body)) = self.marker_and_body(path, expected) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(parent) = marker.parent() {
                fs::create_dir_all(parent)?;
            }
            let tmp = marker.with_extension("tmp");
            fs::write(&tmp, body.as_bytes())?;
            fs::rename(&tmp, &marker)
        };
        if let Err(err) = write() {
            tracing::warn!(marker = %marker.display(), "could not record verification: {err}");
        }
    }

    /// Drops any marker for `path` (after a failed check).
    pub fn forget(&self, path: &Path) {
        if let (Some(dir), Ok(canonical)) = (&self.dir, fs::canonicalize(path)) {
            let _ = fs::remove_file(marker_path(dir, &canonical));
        }
    }

    fn marker_and_body(&self, path: &Path, expected: &ExpectedHash) -> Option<(PathBuf, String)> {
        let dir = self.dir.as_ref()?;
        let canonical = fs::canonicalize(path).ok()?;
        let meta = fs::metadata(&canonical).ok()?;
        let body = format!(
            "qwen-ls verified v1\npath {}\n{}\n{}\n",
            canonical.display(),
            fingerprint(&meta)?,
            expected
        );
        Some((marker_path(dir, &canonical), body))
    }
}

fn marker_path(dir: &Path, canonical: &Path) -> PathBuf {
    dir.join(sha256_hex(canonical.as_os_str().as_encoded_bytes()))
}

#[cfg(unix)]
fn fingerprint(meta: &fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    Some(format!(
        "size {} mtime {}.{:09} ctime {}.{:09} inode {} dev {}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino(),
        meta.dev()
    ))
}

#[cfg(not(unix))]
fn fingerprint(meta: &fs::Metadata) -> Option<String> {
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("size {} mtime {}", meta.len(), mtime.as_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_invalidated_by_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = VerifyCache::new(dir.path().join("verified"));
        let file = dir.path().join("model.gguf");
        fs::write(&file, b"weights").expect("write");
        let hash = ExpectedHash::Sha256(sha256_hex(b"weights"));
        assert!(!cache.is_verified(&file, &hash));
        cache.record(&file, &hash);
        assert!(cache.is_verified(&file, &hash));
        let other = ExpectedHash::Sha256(sha256_hex(b"other"));
        assert!(
            !cache.is_verified(&file, &other),
            "a marker is for one hash"
        );
        fs::write(&file, b"weightz").expect("rewrite");
        assert!(!cache.is_verified(&file, &hash), "rewritten file");
        cache.record(&file, &hash);
        cache.forget(&file);
        assert!(!cache.is_verified(&file, &hash), "forgotten");
        assert!(!VerifyCache::disabled().is_verified(&file, &hash));
    }
}
