//! A small blocking HTTP client (ureq + rustls with the platform's certificate roots) for registries that are not
//! the Hugging Face Hub: JSON metadata, and resumable file downloads verified against a SHA-256.
//!
//! A download goes to `<dest>.incomplete`, resumes from that file's length with a `Range` request (after a dropped
//! connection within the same call, or in a later `pull`), is hashed, and only then renamed to `<dest>`. A file
//! that fails its hash is deleted; a file that keeps ending early is kept for the next attempt to resume.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};

use super::error::StoreError;
use super::hash::{self, ExpectedHash, IO_BUFFER};
use super::progress::Progress;

/// How often and how patiently failed requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in a row that may fail without any new byte arriving before the download gives up.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, capped at 8 s.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(5);
        (self.base_delay * factor).min(Duration::from_secs(8))
    }
}

/// The HTTP client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    agent: ureq::Agent,
    retry: RetryPolicy,
}

/// Outcome of one request attempt during a download.
enum Attempt {
    /// The body ended; the file now has this many bytes.
    Ended(u64),
    /// The transfer failed (transport error or dropped connection) after the file reached this many bytes.
    Failed(u64, String),
}

impl Http {
    pub(crate) fn new(retry: RetryPolicy) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("qwen-ls/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::PlatformVerifier)
                    .build(),
            )
            .build()
            .new_agent();
        Http { agent, retry }
    }

    /// GETs `url` and parses it as JSON; `Ok(None)` on 404. Transport errors and 5xx are retried.
    pub(crate) fn get_json(&self, url: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let mut failures = 0;
        loop {
            let result = self
                .agent
                .get(url)
                .header("Accept", "application/json")
                .call();
            let retryable = match result {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if status == 404 {
                        return Ok(None);
                    }
                    if status == 200 {
                        let text = resp
                            .body_mut()
                            .with_config()
                            .limit(64 << 20)
                            .read_to_string()
                            .map_err(|e| StoreError::Http {
                                url: url.to_string(),
                                message: e.to_string(),
                            })?;
                        return serde_json::from_str(&text).map(Some).map_err(|e| {
                            StoreError::PypiMetadata {
                                url: url.to_string(),
                                reason: format!("not valid JSON: {e}"),
                            }
                        });
                    }
                    let err = StoreError::HttpStatus {
                        url: url.to_string(),
                        status,
                    };
                    if status < 500 && status != 429 {
                        return Err(err);
                    }
                    err
                }
                Err(e) => StoreError::Http {
                    url: url.to_string(),
                    message: e.to_string(),
                },
            };
            failures += 1;
            if failures >= self.retry.attempts {
                return Err(retryable);
            }
            tracing::warn!("{retryable}; retrying");
            std::thread::sleep(self.retry.delay(failures));
        }
    }

    /// Downloads `url` to `dest` (through `dest.incomplete`, resuming it) and verifies it has `sha256` (and
    /// `size`, when known) before the rename. An existing `dest` that verifies is kept without any request.
    pub(crate) fn download(
        &self,
        url: &str,
        dest: &Path,
        sha256: &str,
        size: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<(), StoreError> {
        let expected = ExpectedHash::Sha256(sha256.to_ascii_lowercase());
        if dest.exists() {
            let ok_size = size.is_none_or(|s| fs::metadata(dest).is_ok_and(|m| m.len() == s));
            if ok_size && hash::check(dest, &expected, &super::NoProgress, "").is_ok() {
                progress.advance(size.unwrap_or(0));
                return Ok(());
            }
            fs::remove_file(dest).map_err(|e| StoreError::io("removing", dest, e))?;
        }
        let partial = incomplete_path(dest);
        if let Some(parent) = partial.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
        }
        let mut best = 0u64;
        let mut failures = 0u32;
        let mut first = true;
        loop {
            let have = match fs::metadata(&partial) {
                Ok(m) => m.len(),
                Err(_) => 0,
            };
            if first {
                progress.advance(have);
                first = false;
            }
            if size.is_some_and(|s| have == s) {
                break;
            }
            let (have, outcome) = if size.is_some_and(|s| have > s) {
                truncate(&partial, 0)?;
                (0, self.fetch_from(url, &partial, 0, progress)?)
            } else {
                (have, self.fetch_from(url, &partial, have, progress)?)
            };
            let now = match outcome {
                Attempt::Ended(now) if size.is_none_or(|s| now >= s) => break,
                Attempt::Ended(now) => {
                    tracing::warn!(url, got = now, "response ended early; resuming");
                    now
                }
                Attempt::Failed(now, message) => {
                    tracing::warn!(url, got = now, "download interrupted: {message}; resuming");
                    now
                }
            };
            if now > best.max(have) {
                failures = 0;
            } else {
                failures += 1;
            }
            best = best.max(now);
            if failures >= self.retry.attempts {
                return Err(StoreError::Truncated {
                    url: url.to_string(),
                    got: now,
                    expected: size.map_or_else(|| "unknown".to_string(), |s| s.to_string()),
                    attempts: failures,
                });
            }
            if failures > 0 {
                std::thread::sleep(self.retry.delay(failures));
            }
        }
        let actual_size = fs::metadata(&partial)
            .map_err(|e| StoreError::io("reading metadata of", &partial, e))?
            .len();
        if let Some(s) = size.filter(|s| *s != actual_size) {
            let _ = fs::remove_file(&partial);
            return Err(StoreError::SizeMismatch {
                path: partial,
                expected: s,
                actual: actual_size,
                hint: format!(" (downloaded from {url}; deleted)"),
            });
        }
        if let Err(e) = hash::check(
            &partial,
            &expected,
            &super::NoProgress,
            &format!(" (downloaded from {url}; deleted)"),
        ) {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        fs::rename(&partial, dest).map_err(|e| StoreError::io("renaming into", dest, e))
    }

    /// One GET from byte `have` on, appended to `partial`. Returns how the attempt ended; only errors that no
    /// retry can fix (HTTP 4xx, local I/O) are `Err`.
    fn fetch_from(
        &self,
        url: &str,
        partial: &Path,
        have: u64,
        progress: &dyn Progress,
    ) -> Result<Attempt, StoreError> {
        let mut req = self.agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Failed(have, e.to_string())),
        };
        let status = resp.status().as_u16();
        let mut start = have;
        match status {
            206 => {
                let content_range = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !content_range.starts_with(&format!("bytes {have}-")) {
                    tracing::warn!(url, content_range, "unexpected Content-Range; restarting");
                    truncate(partial, 0)?;
                    return Ok(Attempt::Failed(0, "unexpected Content-Range".into()));
                }
            }
            200 => {
                if have > 0 {
                    tracing::info!(url, "server ignored the Range request; starting over");
                    truncate(partial, 0)?;
                    start = 0;
                }
            }
            416 => {
                // Our partial file is longer than the resource: it cannot be a prefix of it.
                truncate(partial, 0)?;
                return Ok(Attempt::Failed(0, "HTTP 416 for the resume offset".into()));
            }
            s if s >= 500 || s == 429 => {
                return Ok(Attempt::Failed(have, format!("HTTP {s}")));
            }
            s => {
                return Err(StoreError::HttpStatus {
                    url: url.to_string(),
                    status: s,
                })
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(partial)
            .map_err(|e| StoreError::io("opening", partial, e))?;
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; IO_BUFFER];
        let mut now = start;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    file.write_all(&buf[..n])
                        .map_err(|e| StoreError::io("writing", partial, e))?;
                    now += n as u64;
                    progress.advance(n as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    file.flush()
                        .map_err(|e| StoreError::io("writing", partial, e))?;
                    return Ok(Attempt::Failed(now, e.to_string()));
                }
            }
        }
        file.sync_data()
            .map_err(|e| StoreError::io("writing", partial, e))?;
        Ok(Attempt::Ended(now))
    }
}

/// `<path>.incomplete`.
pub(crate) fn incomplete_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".incomplete");
    PathBuf::from(s)
}

fn truncate(path: &Path, len: u64) -> Result<(), StoreError> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::io("opening", path, e))?;
    f.set_len(len)
        .map_err(|e| StoreError::io("truncating", path, e))
}

/// Opens `path` for reading, with the path in the error.
pub(crate) fn open(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(|e| StoreError::io("opening", path, e))
}
