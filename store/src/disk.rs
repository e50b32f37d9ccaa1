//! Free-space check before a large download, so a full disk is a clear error up front instead of a failed write
//! half-way through a gigabyte.

use std::path::Path;

use super::error::StoreError;

/// Bytes available to this user on the filesystem holding `dir`; `None` when it cannot be told.
pub(crate) fn available_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(dir).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Fails with [`StoreError::InsufficientSpace`] when `dir`'s filesystem has less than `needed` bytes free.
pub(crate) fn ensure_space(dir: &Path, needed: u64) -> Result<(), StoreError> {
    check(dir, needed, available_space(dir))
}

fn check(dir: &Path, needed: u64, available: Option<u64>) -> Result<(), StoreError> {
    match available {
        Some(available) if available < needed => Err(StoreError::InsufficientSpace {
            path: dir.to_path_buf(),
            needed,
            available,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_space_is_a_clear_error() {
        let dir = Path::new("/models");
        assert!(check(dir, 10, Some(10)).is_ok());
        assert!(check(dir, 10, None).is_ok(), "unknown space does not block");
        let err = check(dir, 1_117_320_768, Some(500_000_000)).expect_err("too small");
        let msg = err.to_string();
        assert!(
            msg.contains("1.1 GB") && msg.contains("500.0 MB") && msg.contains("HF_HOME"),
            "{msg}"
        );
        assert!(available_space(&std::env::temp_dir()).is_some_and(|b| b > 0));
    }
}
