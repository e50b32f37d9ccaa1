//! Content hashes: SHA-256 (model files, wheels, Ollama blobs, Hugging Face LFS blobs) and git's blob SHA-1
//! (small non-LFS files in the Hugging Face cache, whose blob name is the git object id).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::progress::Progress;

/// Buffer size for hashing and copying: large enough to stream at disk speed.
pub(crate) const IO_BUFFER: usize = 1 << 20;

/// The hash a file must have before it is used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExpectedHash {
    /// SHA-256 of the content, lowercase hex.
    Sha256(String),
    /// Git blob object id (SHA-1 of `blob <len>\0` + content), lowercase hex: what the Hugging Face cache names
    /// non-LFS files (config.json, tokenizer.json) by.
    GitSha1(String),
}

impl ExpectedHash {
    /// The hash a Hugging Face cache blob must have, read from its file name: 64 hex digits are an LFS SHA-256,
    /// 40 are a git object id. Anything else carries no hash.
    pub fn from_blob_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if is_hex(&lower, 64) {
            Some(ExpectedHash::Sha256(lower))
        } else if is_hex(&lower, 40) {
            Some(ExpectedHash::GitSha1(lower))
        } else {
            None
        }
    }

    /// `sha256` or `git-sha1`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            ExpectedHash::Sha256(_) => "sha256",
            ExpectedHash::GitSha1(_) => "git-sha1",
        }
    }

    /// The hex digest.
    pub fn hex(&self) -> &str {
        match self {
            ExpectedHash::Sha256(h) | ExpectedHash::GitSha1(h) => h,
        }
    }
}

impl fmt::Display for ExpectedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.hex())
    }
}

/// True when `s` is exactly `len` lowercase or uppercase hex digits.
pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// SHA-256 of a byte string, hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Hashes `path` with the algorithm of `expected` (reporting bytes to `progress`) and returns the hex digest. Does
/// not compare: see [`check`].
pub(crate) fn hash_file(
    path: &Path,
    expected: &ExpectedHash,
    progress: &dyn Progress,
) -> Result<String, StoreError> {
    let mut file = File::open(path).map_err(|e| StoreError::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| StoreError::io("reading metadata of", path, e))?
        .len();
    let mut buf = vec![0u8; IO_BUFFER];
    let mut read_all = |update: &mut dyn FnMut(&[u8])| -> Result<(), StoreError> {
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| StoreError::io("reading", path, e))?;
            if n == 0 {
                return Ok(());
            }
            update(&buf[..n]);
            progress.advance(n as u64);
        }
    };
    match expected {
        ExpectedHash::Sha256(_) => {
            let mut h = Sha256::new();
            read_all(&mut |b| h.update(b))?;
            Ok(to_hex(&h.finalize()))
        }
        ExpectedHash::GitSha1(_) => {
            let mut h = Sha1::new();
            h.update(format!("blob {len}\0").as_bytes());
            read_all(&mut |b| h.update(b))?;
            Ok(to_hex(&h.finalize()))
        }
    }
}

/// Hashes `path` and fails with [`StoreError::HashMismatch`] (naming both hashes) unless it matches.
pub(crate) fn check(
    path: &Path,
    expected: &ExpectedHash,
    progress: &dyn Progress,
    hint: &str,
) -> Result<(), StoreError> {
    let actual = hash_file(path, expected, progress)?;
    if actual.eq_ignore_ascii_case(expected.hex()) {
        Ok(())
    } else {
        Err(StoreError::HashMismatch {
            path: path.to_path_buf(),
            algorithm: expected.algorithm(),
            expected: expected.hex().to_string(),
            actual,
            hint: hint.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;

    #[test]
    fn blob_names_carry_their_hash() {
        let sha = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046";
        assert_eq!(
            ExpectedHash::from_blob_name(sha),
            Some(ExpectedHash::Sha256(sha.into()))
        );
        let git = "a4b7a5dbd2d3b4a0f4a3e1c2b6f3b0f3b8e1c2d3";
        assert_eq!(
            ExpectedHash::from_blob_name(git),
            Some(ExpectedHash::GitSha1(git.into()))
        );
        assert_eq!(ExpectedHash::from_blob_name("model.gguf"), None);
    }

    #[test]
    fn git_blob_hash_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").expect("write");
        let expected = ExpectedHash::GitSha1("ce013625030ba8dba906f756967f9e9ca394464a".into());
        check(&path, &expected, &NoProgress, "").expect("git hash");
        let sha = ExpectedHash::Sha256(sha256_hex(b"hello\n"));
        check(&path, &sha, &NoProgress, "").expect("sha256");
        let wrong = ExpectedHash::Sha256(sha256_hex(b"other"));
        let err = check(&path, &wrong, &NoProgress, "").expect_err("mismatch");
        assert!(err.to_string().contains("sha256 mismatch"), "{err}");
    }
}
