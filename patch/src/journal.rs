//! The journal of a multi-file apply, so that a process killed between two renames leaves a tree the next run
//! can put right: `<root>/.qwen-ls-apply.journal`.
//!
//! It is written (and fsynced) before the first temporary file, in state `prepare`, naming every temporary
//! file, every directory the apply creates, and each target with the SHA-256 of its content before and after.
//! Right before the first rename it is replaced (atomically) by the same list in state `commit`; it is removed
//! after the last rename. The next apply in the root ([`recover`], also run by `qwen-ls patch` at start):
//!
//! - `prepare`: nothing was renamed — temporary files and created directories are removed (rolled back);
//! - `commit`: every temporary file is complete and was verified — the renames not done yet are done
//!   (completed), each only if its target still holds the content it had before the apply; a target someone
//!   changed since is left as it is and reported.
//!
//! A journal whose process is still alive belongs to an apply in progress: nothing is touched.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::protected::is_git_dir;
pub use super::protected::JOURNAL_NAME;

const HEADER: &str = "qwen-ls apply journal v1";

/// Where an apply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Temporary files are being written; nothing was renamed.
    Prepare,
    /// Renames have started; every temporary file is complete.
    Commit,
}

/// One file of the apply, root-relative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The target.
    pub target: String,
    /// Its temporary file (same directory).
    pub temp: String,
    /// SHA-256 of the target before (`None`: it did not exist).
    pub before: Option<String>,
    /// SHA-256 of the new content.
    pub after: String,
}

/// Everything the journal records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Journal {
    pub pid: u32,
    pub stage: Stage,
    /// Directories the apply creates, outermost first.
    pub dirs: Vec<String>,
    pub entries: Vec<Entry>,
}

/// What [`recover`] did about an interrupted apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// Interrupted before any rename: its temporary files were removed; no file had changed.
    RolledBack {
        /// The files the apply would have written.
        files: Vec<String>,
    },
    /// Interrupted between renames: the remaining renames were done.
    Completed {
        /// Every file of the apply.
        files: Vec<String>,
        /// Files changed by someone else since the interruption: left as they are, without the patch.
        conflicts: Vec<String>,
    },
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |files: &[String]| {
            files
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Recovered::RolledBack { files } => write!(
                f,
                "an interrupted apply (of {}) was rolled back: it had not changed any file",
                list(files)
            ),
            Recovered::Completed { files, conflicts } => {
                write!(
                    f,
                    "an interrupted apply was completed: {} now hold the patched content",
                    list(files)
                )?;
                if !conflicts.is_empty() {
                    write!(
                        f,
                        "; except {}, changed since the interruption and left as they were",
                        list(conflicts)
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Why the journal could not be written or an interrupted apply not put right.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process is applying a patch in this root.
    #[error("another qwen-ls (process {pid}) is applying a patch in this root; try again when it is done")]
    Busy {
        /// Its process id.
        pid: u32,
    },
    /// The journal cannot be read as one.
    #[error("{} is not a journal qwen-ls can read ({reason}); inspect the files it names and delete it", .path.display())]
    Corrupt {
        /// The journal.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The journal's path in `root`.
pub(crate) fn path(root: &Path) -> PathBuf {
    root.join(JOURNAL_NAME)
}

/// SHA-256 of `bytes`, lowercase hex.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

impl Journal {
    fn render(&self) -> String {
        let stage = match self.stage {
            Stage::Prepare => "prepare",
            Stage::Commit => "commit",
        };
        let mut out = format!("{HEADER}\npid {}\nstage {stage}\n", self.pid);
        for dir in &self.dirs {
            out.push_str(&format!("dir\t{dir}\n"));
        }
        for e in &self.entries {
            let before = e.before.as_deref().unwrap_or("-");
            out.push_str(&format!(
                "file\t{before}\t{}\t{}\t{}\n",
                e.after, e.temp, e.target
            ));
        }
        out
    }

    fn parse(text: &str) -> Result<Journal, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("unknown header".into());
        }
        let pid = lines
            .next()
            .and_then(|l| l.strip_prefix("pid "))
            .and_then(|p| p.parse().ok())
            .ok_or("no pid")?;
        let stage = match lines.next() {
            Some("stage prepare") => Stage::Prepare,
            Some("stage commit") => Stage::Commit,
            _ => return Err("no stage".into()),
        };
        let mut journal = Journal {
            pid,
            stage,
            dirs: Vec::new(),
            entries: Vec::new(),
        };
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            match fields.as_slice() {
                ["dir", dir] => journal.dirs.push(checked(dir)?),
                ["file", before, after, temp, target] => {
                    let (target, temp) = (checked(target)?, checked(temp)?);
                    // A temporary file of ours, next to its target: nothing else is ever renamed.
                    let dir = |p: &str| p.rsplit_once('/').map(|(d, _)| d.to_string());
                    if dir(&temp) != dir(&target) || !temp.ends_with(".qwen-ls-tmp") {
                        return Err(format!("{temp:?} is not a temporary file of {target:?}"));
                    }
                    journal.entries.push(Entry {
                        target,
                        temp,
                        before: (*before != "-").then(|| before.to_string()),
                        after: after.to_string(),
                    });
                }
                _ => return Err(format!("unreadable line {line:?}")),
            }
        }
        Ok(journal)
    }

    /// Writes the journal durably and whole: a temporary file, fsynced, then put in place and the root
    /// fsynced. The first write of an apply (`replace` false) fails if a journal exists — another apply got
    /// there first — because it is linked in place, never renamed over; later ones replace it.
    pub(crate) fn store(&self, root: &Path, replace: bool) -> Result<(), JournalError> {
        let target = path(root);
        let temp = root.join(format!("{JOURNAL_NAME}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)?;
            file.write_all(self.render().as_bytes())?;
            file.sync_all()?;
            if replace {
                fs::rename(&temp, &target)?;
            } else {
                fs::hard_link(&temp, &target)?;
                fs::remove_file(&temp)?;
            }
            sync_dir(root);
            Ok(())
        })();
        written.map_err(|source: io::Error| {
            let _ = fs::remove_file(&temp);
            if source.kind() == io::ErrorKind::AlreadyExists {
                let pid = fs::read_to_string(&target)
                    .ok()
                    .and_then(|t| Journal::parse(&t).ok())
                    .map_or(0, |j| j.pid);
                return JournalError::Busy { pid };
            }
            JournalError::Io {
                path: target,
                source,
            }
        })
    }
}

/// A root-relative path from the journal: no absolute path, no `..`, no empty component, nothing in `.git`.
fn checked(rel: &str) -> Result<String, String> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !is_git_dir(c));
    ok.then(|| rel.to_string())
        .ok_or_else(|| format!("path {rel:?} is not inside the root"))
}

/// Makes renames and removals in `dir` durable (best effort: some file systems refuse fsync on directories).
pub(crate) fn sync_dir(dir: &Path) {
    let _ = File::open(dir).and_then(|d| d.sync_all());
}

/// Removes the journal (after the last rename, or a rollback) durably.
pub(crate) fn remove(root: &Path) -> Result<(), JournalError> {
    let journal = path(root);
    match fs::remove_file(&journal) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(JournalError::Io {
                path: journal,
                source,
            })
        }
    }
    sync_dir(root);
    Ok(())
}

/// Whether process `pid` is alive (another apply in progress).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let result = unsafe { libc::kill(pid, 0) };
        result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Puts right an apply that was interrupted in `root` (see the module documentation); `None` when there was
/// none.
pub fn recover(root: &Path) -> Result<Option<Recovered>, JournalError> {
    let journal_path = path(root);
    let text = match fs::read_to_string(&journal_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JournalError::Io {
                path: journal_path,
                source,
            })
        }
    };
    let journal = Journal::parse(&text).map_err(|reason| JournalError::Corrupt {
        path: journal_path.clone(),
        reason,
    })?;
    if alive(journal.pid) {
        return Err(JournalError::Busy { pid: journal.pid });
    }
    let files: Vec<String> = journal.entries.iter().map(|e| e.target.clone()).collect();
    let recovered = match journal.stage {
        Stage::Prepare => {
            for entry in &journal.entries {
                let _ = fs::remove_file(root.join(&entry.temp));
            }
            for dir in journal.dirs.iter().rev() {
                let _ = fs::remove_dir(root.join(dir));
            }
            Recovered::RolledBack { files }
        }
        Stage::Commit => {
            let mut conflicts = Vec::new();
            for entry in &journal.entries {
                if !complete(root, entry)? {
                    conflicts.push(entry.target.clone());
                }
            }
            let mut dirs: Vec<PathBuf> = journal
                .entries
                .iter()
                .filter_map(|e| root.join(&e.target).parent().map(Path::to_path_buf))
                .collect();
            dirs.sort();
            dirs.dedup();
            for dir in dirs {
                sync_dir(&dir);
            }
            Recovered::Completed { files, conflicts }
        }
    };
    remove(root)?;
    tracing::warn!("{recovered}");
    Ok(Some(recovered))
}

/// Finishes one file of a committed apply; false when its target changed since (left as it is).
fn complete(root: &Path, entry: &Entry) -> Result<bool, JournalError> {
    let target = root.join(&entry.target);
    let temp = root.join(&entry.temp);
    let hash_of = |path: &Path| -> Result<Option<String>, JournalError> {
        match fs::read(path) {
            Ok(bytes) => Ok(Some(sha256(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(JournalError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    };
    match hash_of(&temp)? {
        // Already renamed: the target holds the new content, unless someone changed it since.
        None => Ok(hash_of(&target)?.as_deref() == Some(entry.after.as_str())),
        Some(temp_hash) => {
            let untouched = hash_of(&target)? == entry.before;
            if temp_hash == entry.after && untouched {
                fs::rename(&temp, &target).map_err(io_error(&target))?;
                Ok(true)
            } else {
                let _ = fs::remove_file(&temp);
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_reads_back_what_was_written() {
        let journal = Journal {
            pid: 42,
            stage: Stage::Commit,
            dirs: vec!["new".into(), "new/dir".into()],
            entries: vec![
                Entry {
                    target: "a b.txt".into(),
                    temp: ".a b.txt.42.0.qwen-ls-tmp".into(),
                    before: Some(sha256(b"old")),
                    after: sha256(b"new"),
                },
                Entry {
                    target: "new/dir/c.rs".into(),
                    temp: "new/dir/.c.rs.42.1.qwen-ls-tmp".into(),
                    before: None,
                    after: sha256(b""),
                },
            ],
        };
        assert_eq!(Journal::parse(&journal.render()), Ok(journal));
        for forged in [
            "dir\t../x",
            "file\t-\tff\t.git/hooks/.x.1.1.qwen-ls-tmp\t.git/hooks/pre-commit",
            "file\t-\tff\tsrc/evil.sh\tsrc/a.rs",
            "file\t-\tff\t.a.rs.1.1.qwen-ls-tmp\tsrc/a.rs",
        ] {
            let text = format!("qwen-ls apply journal v1\npid 1\nstage commit\n{forged}\n");
            assert!(Journal::parse(&text).is_err(), "{forged}");
        }
        assert!(Journal::parse("garbage").is_err());
    }
}
