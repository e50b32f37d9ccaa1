//! The scratch tree the check loop edits and tests: a copy of the workspace in a private temporary directory
//! (0700, removed when dropped). It holds the files a build needs — every file the ignore rules keep
//! (`.gitignore`, `.ignore`; hidden files included; `.git` left out), symbolic links as links — with the
//! editor's unsaved text of open documents written over them. Ignored build outputs (`target/`) are not copied;
//! a top-level `node_modules` is linked, not copied, so type checkers find their dependencies.
//!
//! The user's tree is only read here: it changes only with the final atomic apply of the loop's result.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ignore::WalkBuilder;

use crate::patch::SeenFiles;

/// More files than this is not a project a check loop should copy: refused with a clear error.
pub const MAX_FILES: usize = 100_000;
/// More bytes than this likewise.
pub const MAX_BYTES: u64 = 1 << 30;

/// Why the scratch tree could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// Copying failed.
    #[error("cannot copy `{}` to the scratch tree: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The workspace is too large to copy.
    #[error("the workspace has more than {files} files or {} MiB (not counting ignored files); the check loop copies \
             it for every run, so it is refused — run the loop on a smaller root (`--root`)", .bytes >> 20)]
    TooLarge {
        /// The file limit.
        files: usize,
        /// The byte limit.
        bytes: u64,
    },
}

/// A copy of the workspace; dropped = deleted.
#[derive(Debug)]
pub struct ScratchTree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// Files copied.
    pub files: usize,
    /// Bytes copied.
    pub bytes: u64,
    /// Time the copy took.
    pub copy_time: Duration,
}

impl ScratchTree {
    /// Copies the workspace at `source` and writes `overlay` (root-relative paths) over the copies.
    pub fn copy(source: &Path, overlay: Option<&SeenFiles>) -> Result<ScratchTree, ScratchError> {
        let started = Instant::now();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source: std::io::Error| ScratchError::Io { path, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("qwen-ls-check-")
            .tempdir()
            .map_err(io(&std::env::temp_dir()))?;
        let name = source.file_name().unwrap_or_else(|| "workspace".as_ref());
        let root = dir.path().join(name);
        std::fs::create_dir(&root).map_err(io(&root))?;
        let (mut files, mut bytes) = (0usize, 0u64);
        let walk = WalkBuilder::new(source)
            .hidden(false)
            .follow_links(false)
            .require_git(false)
            .git_global(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .build();
        for entry in walk {
            let Ok(entry) = entry else { continue };
            let Ok(rel) = entry.path().strip_prefix(source) else {
                continue;
            };
            if rel.as_os_str().is_empty() {
                continue;
            }
            let target = root.join(rel);
            let Some(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                std::fs::create_dir_all(&target).map_err(io(&target))?;
            } else if kind.is_symlink() {
                let link = std::fs::read_link(entry.path()).map_err(io(entry.path()))?;
                symlink(&link, &target).map_err(io(&target))?;
            } else if kind.is_file() {
                bytes += std::fs::copy(entry.path(), &target).map_err(io(entry.path()))?;
                files += 1;
            }
            if files > MAX_FILES || bytes > MAX_BYTES {
                return Err(ScratchError::TooLarge {
                    files: MAX_FILES,
                    bytes: MAX_BYTES,
                });
            }
        }
        let modules = source.join("node_modules");
        if modules.is_dir() && !root.join("node_modules").exists() {
            symlink(&modules, &root.join("node_modules")).map_err(io(&modules))?;
        }
        if let Some(overlay) = overlay {
            for rel in overlay.paths() {
                if let Some(text) = overlay.get(rel) {
                    let path = root.join(rel);
                    std::fs::write(&path, text).map_err(io(&path))?;
                }
            }
        }
        Ok(ScratchTree {
            _dir: dir,
            root,
            files,
            bytes,
            copy_time: started.elapsed(),
        })
    }

    /// The copy's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current bytes of a root-relative file in the copy (`None`: absent or unreadable).
    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.join(rel)).ok()
    }
}

#[cfg(unix)]
fn symlink(original: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(original, link)
}

#[cfg(not(unix))]
fn symlink(_original: &Path, _link: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_what_git_would_keep_and_the_editor_overlay() {
        let source = tempfile::tempdir().expect("temp");
        let root = source.path().join("proj");
        for (path, text) in [
            ("src/lib.rs", "fn a() {}\n"),
            (".gitignore", "target/\nnode_modules/\n"),
            ("target/debug/big", "built\n"),
            (".git/HEAD", "ref\n"),
            (".cargo/config.toml", "[build]\n"),
            ("node_modules/x/index.js", "1\n"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            std::fs::write(path, text).expect("write");
        }
        let mut overlay = SeenFiles::default();
        overlay.record("src/lib.rs", "fn unsaved() {}\n");
        let tree = ScratchTree::copy(&root, Some(&overlay)).expect("copies");
        assert!(tree.root().ends_with("proj"));
        assert_eq!(
            tree.read("src/lib.rs").as_deref(),
            Some(&b"fn unsaved() {}\n"[..])
        );
        assert!(tree.read(".cargo/config.toml").is_some());
        assert!(tree.read("target/debug/big").is_none());
        assert!(tree.read(".git/HEAD").is_none());
        assert!(tree.root().join("node_modules").is_symlink());
        assert_eq!(tree.files, 3);
        // The user's file is untouched.
        assert_eq!(
            std::fs::read_to_string(root.join("src/lib.rs")).expect("read"),
            "fn a() {}\n"
        );
        let scratch = tree.root().to_path_buf();
        drop(tree);
        assert!(!scratch.exists(), "dropped = deleted");
    }
}
