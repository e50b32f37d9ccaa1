//! Downloads from the Hugging Face Hub (feature `hub`) through the `hf-hub` crate's blocking client, into the
//! Hugging Face cache layout.
//!
//! `hf-hub` 1.0's own cache download restarts from zero after an interruption, so this module drives the cache
//! itself: it asks the hub for the file's metadata (ETag = SHA-256 for LFS files, commit, size), fetches the file
//! in ranged chunks appended to `blobs/<etag>.incomplete` (a later `pull` resumes from that file's length), checks
//! the hash, renames to `blobs/<etag>`, then links `snapshots/<commit>/<file>` and updates `refs/<revision>`,
//! exactly as `hf-hub` and `huggingface_hub` would. Endpoint, token and retries come from hf-hub (`HF_ENDPOINT`,
//! `HF_TOKEN`, `~/.cache/huggingface/token`).
//!
//! Everything the server says is untrusted before it becomes a path: the commit must be 40 hex digits, the ETag
//! a SHA-256 or git blob id (the blob's name *and* the hash it is verified against), shard names of an index
//! plain file names ([`super::hf_cache::checked_repo_file`]). A file without such a hash is downloaded only when
//! qwen-ls pins its SHA-256; otherwise it is refused as unverifiable, never stored unverified. hf-hub's own cache
//! download, which joins the server's ETag into a path unchecked, is never used.

use std::fs::{self, OpenOptions};
use std::io::Write;

use hf_hub::{HFClient, HFError, HFRepositorySync};

use super::error::StoreError;
use super::hash::{self, ExpectedHash};
use super::hf_cache::{checked_commit, checked_repo_file};
use super::http::incomplete_path;
use super::progress::{Phase, Progress};
use super::spec::HubRef;
use super::{disk, human_bytes, Store};

/// Bytes fetched per ranged request: bounds memory (hf-hub's blocking API buffers a range) and the work lost when
/// a connection drops.
const CHUNK: u64 = 32 << 20;

/// Failed chunks in a row before giving up.
const CHUNK_ATTEMPTS: u32 = 4;

/// Downloads what `r` names: one file, or (no file) a safetensors model's config, tokenizer and weights.
pub(crate) fn pull(store: &Store, r: &HubRef, progress: &dyn Progress) -> Result<(), StoreError> {
    let hub_err = |file: &str, e: &dyn std::fmt::Display| StoreError::Hub {
        repo: r.repo.clone(),
        file: file.to_string(),
        message: e.to_string(),
    };
    let client = HFClient::builder()
        .cache_dir(store.hf_cache().root())
        .retry_max_attempts(2)
        .build_sync()
        .map_err(|e| hub_err("", &e))?;
    let repo = client.model(r.org(), r.name());
    let rev = r.revision.as_deref();
    if let Some(file) = &r.file {
        return download_file(store, r, &repo, file, rev, progress);
    }
    for small in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        match download_file(store, r, &repo, small, rev, progress) {
            Ok(()) => {}
            Err(StoreError::Hub { .. }) if small != "config.json" && small != "tokenizer.json" => {
                tracing::info!(repo = %r.repo, file = small, "optional file not downloaded");
            }
            Err(e) => return Err(e),
        }
    }
    let index = "model.safetensors.index.json";
    match download_file(store, r, &repo, index, rev, progress) {
        Ok(()) => {
            let commit = store
                .hf_cache()
                .read_ref(&r.repo, rev.unwrap_or("main"))
                .unwrap_or_else(|| rev.unwrap_or("main").to_string());
            let path = store.hf_cache().snapshot_path(&r.repo, &commit, index);
            let text =
                fs::read_to_string(&path).map_err(|e| StoreError::io("reading", &path, e))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| hub_err(index, &e))?;
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
            if let Some(bad) = shards
                .iter()
                .find(|s| s.contains('/') || !checked_repo_file(s) || !s.ends_with(".safetensors"))
            {
                return Err(StoreError::HubUnsafe {
                    repo: r.repo.clone(),
                    what: format!("shard name in {index}"),
                    value: bad.clone(),
                });
            }
            for shard in shards {
                download_file(store, r, &repo, &shard, rev, progress)?;
            }
            Ok(())
        }
        Err(StoreError::Hub { .. }) => {
            download_file(store, r, &repo, "model.safetensors", rev, progress)
        }
        Err(e) => Err(e),
    }
}

fn download_file(
    store: &Store,
    r: &HubRef,
    repo: &HFRepositorySync<hf_hub::repository::RepoTypeModel>,
    file: &str,
    revision: Option<&str>,
    progress: &dyn Progress,
) -> Result<(), StoreError> {
    let hub_err = |e: HFError| StoreError::Hub {
        repo: r.repo.clone(),
        file: file.to_string(),
        message: e.to_string(),
    };
    let cache = store.hf_cache();
    let meta = repo
        .get_file_metadata()
        .filepath(file)
        .maybe_revision(revision)
        .send()
        .map_err(hub_err)?;
    let commit = checked_commit(&meta.commit_hash).ok_or_else(|| StoreError::HubUnsafe {
        repo: r.repo.clone(),
        what: format!("commit for {file}"),
        value: meta.commit_hash.clone(),
    })?;
    let raw_etag = meta.etag.strip_prefix("W/").unwrap_or(&meta.etag);
    let pinned = store
        .pinned()
        .get(&r.repo, file)
        .filter(|_| revision.is_none());
    let expected = match (
        ExpectedHash::from_blob_name(raw_etag.trim_matches('"')),
        pinned,
    ) {
        (Some(ExpectedHash::Sha256(h)), Some(pinned))
            if !pinned.sha256.eq_ignore_ascii_case(&h) =>
        {
            return Err(StoreError::HashMismatch {
                path: cache.blob_path(&r.repo, &h),
                algorithm: "sha256",
                expected: pinned.sha256.clone(),
                actual: h,
                hint: format!(
                    " (the hub now serves a different {file} than the one qwen-ls pins; name a revision with @<commit> to use it)"
                ),
            });
        }
        (Some(hash), _) => hash,
        (None, Some(pinned)) => ExpectedHash::Sha256(pinned.sha256.to_ascii_lowercase()),
        (None, None) => {
            return Err(StoreError::HubUnverified {
                repo: r.repo.clone(),
                file: file.to_string(),
                etag: meta.etag.clone(),
            })
        }
    };
    // The blob's name is the verified hash: 40 or 64 hex digits, never a path.
    let etag = expected.hex().to_string();
    let blob = cache.blob_path(&r.repo, &etag);
    let _lock = store.lock(&r.repo, &etag, progress)?;
    let already = blob.is_file()
        && (store.verify_cache().is_verified(&blob, &expected)
            || hash::check(&blob, &expected, progress, "").is_ok());
    if !already {
        fetch_blob(
            repo,
            file,
            &commit,
            meta.file_size,
            &blob,
            &expected,
            progress,
        )
        .map_err(|e| match e {
            FetchError::Hub(e) => hub_err(e),
            FetchError::Store(e) => e,
        })?;
    }
    store.verify_cache().record(&blob, &expected);
    cache.link_snapshot(&r.repo, &commit, file, &etag)?;
    let ref_name = revision.unwrap_or("main");
    if ref_name != commit {
        cache.write_ref(&r.repo, ref_name, &commit, true)?;
    }
    Ok(())
}

enum FetchError {
    Hub(HFError),
    Store(StoreError),
}

impl From<StoreError> for FetchError {
    fn from(e: StoreError) -> Self {
        FetchError::Store(e)
    }
}

fn fetch_blob(
    repo: &HFRepositorySync<hf_hub::repository::RepoTypeModel>,
    file: &str,
    commit: &str,
    size: u64,
    blob: &std::path::Path,
    expected: &ExpectedHash,
    progress: &dyn Progress,
) -> Result<(), FetchError> {
    let partial = incomplete_path(blob);
    if let Some(parent) = partial.parent() {
        fs::create_dir_all(parent).map_err(|e| StoreError::io("creating", parent, e))?;
    }
    let mut have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    if have > size {
        have = 0;
    }
    if let Some(parent) = partial.parent() {
        disk::ensure_space(parent, size.saturating_sub(have) + (64 << 20))?;
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&partial)
        .map_err(|e| StoreError::io("opening", &partial, e))?
        .set_len(have)
        .map_err(|e| StoreError::io("truncating", &partial, e))?;
    let mut out = OpenOptions::new()
        .append(true)
        .open(&partial)
        .map_err(|e| StoreError::io("opening", &partial, e))?;
    {
        let _phase = Phase::start(
            progress,
            size,
            &format!(
                "downloading {file} from the Hugging Face Hub ({})",
                human_bytes(size)
            ),
        );
        progress.advance(have);
        let mut failures = 0;
        while have < size || size == 0 {
            let end = if size == 0 {
                None
            } else {
                Some((have + CHUNK).min(size))
            };
            let req = repo
                .download_file_to_bytes()
                .filename(file)
                .revision(commit);
            let result = match end {
                Some(end) => req.range(have..end).send(),
                None => req.send(),
            };
            match result {
                Ok(bytes) => {
                    out.write_all(&bytes)
                        .map_err(|e| StoreError::io("writing", &partial, e))?;
                    have += bytes.len() as u64;
                    progress.advance(bytes.len() as u64);
                    failures = 0;
                    if size == 0 || bytes.is_empty() {
                        break;
                    }
                }
                Err(e) => {
                    failures += 1;
                    if failures >= CHUNK_ATTEMPTS {
                        out.sync_data()
                            .map_err(|e| StoreError::io("writing", &partial, e))?;
                        return Err(FetchError::Hub(e));
                    }
                    tracing::warn!(file, offset = have, "hub chunk failed: {e}; retrying");
                }
            }
        }
        out.sync_data()
            .map_err(|e| StoreError::io("writing", &partial, e))?;
    }
    let actual = fs::metadata(&partial)
        .map_err(|e| StoreError::io("reading metadata of", &partial, e))?
        .len();
    if size > 0 && actual != size {
        let _ = fs::remove_file(&partial);
        return Err(StoreError::SizeMismatch {
            path: partial,
            expected: size,
            actual,
            hint: " (hub download; deleted)".into(),
        }
        .into());
    }
    {
        let _phase = Phase::start(
            progress,
            actual,
            &format!("verifying {} of {file}", expected.algorithm()),
        );
        if let Err(e) = hash::check(&partial, expected, progress, " (hub download; deleted)") {
            let _ = fs::remove_file(&partial);
            return Err(e.into());
        }
    }
    fs::rename(&partial, blob).map_err(|e| StoreError::io("renaming into", blob, e))?;
    Ok(())
}
