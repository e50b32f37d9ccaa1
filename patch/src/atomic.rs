//! Writes a patch all-or-nothing, file by file through temporary files, so no file is ever left half written,
//! and a process killed between two renames leaves a journal the next run finishes from ([`journal`]).
//!
//! 0. Recover: an apply interrupted earlier in the same root is rolled back or completed first.
//! 1. Prepare: journal the plan (state `prepare`); for every file, create missing parent directories, write
//!    the new content to a temporary file in the same directory (so the rename cannot cross file systems),
//!    copy the old permissions, fsync.
//! 2. Verify, right before committing: every file must still hold exactly the bytes the patch was computed
//!    against (new files must still be absent). If any changed, temporary files are removed and nothing is
//!    written.
//! 3. Commit: journal state `commit`, rename each temporary file over its target, fsync the directories,
//!    remove the journal. If rename k fails, files 1..k-1 are restored from the old bytes held in memory (new
//!    files are removed), and the error says exactly what was and was not restored.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;

use super::journal::{self, Entry, Journal, JournalError, Stage};

/// One file to write.
#[derive(Debug, Clone)]
pub(crate) struct PlannedWrite {
    /// Root-relative path, for messages.
    pub rel: String,
    /// Where to write.
    pub abs: PathBuf,
    /// The bytes the patch was computed against; `None` for a file that did not exist.
    pub before: Option<Vec<u8>>,
    /// The new content.
    pub after: Vec<u8>,
}

/// Why a patch was not (fully) written.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// Files changed on disk after the patch was computed; nothing was written.
    #[error("nothing was written: {} changed on disk since the patch was computed", quoted_list(.paths))]
    Changed {
        /// Root-relative paths that changed.
        paths: Vec<String>,
    },
    /// A temporary file or directory could not be created; nothing was written.
    #[error("nothing was written: cannot prepare `{path}`: {source}")]
    Prepare {
        /// Root-relative path being prepared.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The journal could not be written, or an earlier interrupted apply could not be put right; nothing was
    /// written.
    #[error("nothing was written: {0}")]
    Journal(#[from] JournalError),
    /// A rename failed after earlier files were written; see `restored` and `not_restored`.
    #[error("{}", write_failure(.path, .source, .restored, .not_restored))]
    Commit {
        /// The file whose rename failed (it is unchanged).
        path: String,
        /// The underlying error.
        source: io::Error,
        /// Files written before the failure and restored to their old content (or removed, if new).
        restored: Vec<String>,
        /// Files written before the failure that could not be restored, with why.
        not_restored: Vec<(String, String)>,
    },
}

fn quoted_list(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_failure(
    path: &str,
    source: &io::Error,
    restored: &[String],
    not_restored: &[(String, String)],
) -> String {
    let mut message = format!("writing `{path}` failed: {source}; `{path}` is unchanged");
    if !restored.is_empty() {
        message.push_str(&format!("; restored {}", quoted_list(restored)));
    }
    if not_restored.is_empty() {
        message.push_str("; no file was left modified");
    } else {
        let failed: Vec<String> = not_restored
            .iter()
            .map(|(p, why)| format!("`{p}` ({why})"))
            .collect();
        message.push_str(&format!(
            "; COULD NOT RESTORE {}: these files hold the patched content",
            failed.join(", ")
        ));
    }
    message
}

struct Prepared {
    temp: PathBuf,
    permissions: Option<Permissions>,
}

/// Writes `writes` (every target inside `root`, the canonical root) atomically as described in the module
/// docs.
pub(crate) fn write_all(root: &Path, writes: &[PlannedWrite]) -> Result<(), ApplyError> {
    write_all_with(root, writes, &mut |_, _| Ok(()))
}

/// [`write_all`] with a hook called before each rename (index, target); tests use it to inject failures.
fn write_all_with(
    root: &Path,
    writes: &[PlannedWrite],
    before_rename: &mut dyn FnMut(usize, &Path) -> io::Result<()>,
) -> Result<(), ApplyError> {
    if let Some(recovered) = journal::recover(root)? {
        tracing::warn!("before applying: {recovered}");
    }
    let temps: Vec<PathBuf> = writes.iter().map(temp_path).collect();
    let mut plan = Journal {
        pid: std::process::id(),
        stage: Stage::Prepare,
        dirs: missing_dirs(writes)
            .iter()
            .filter_map(|d| root_relative(root, d))
            .collect(),
        entries: Vec::with_capacity(writes.len()),
    };
    for (write, temp) in writes.iter().zip(&temps) {
        let (Some(target), Some(temp)) =
            (root_relative(root, &write.abs), root_relative(root, temp))
        else {
            return Err(ApplyError::Prepare {
                path: write.rel.clone(),
                source: io::Error::other("the target is not a plain path inside the root"),
            });
        };
        plan.entries.push(Entry {
            target,
            temp,
            before: write.before.as_deref().map(journal::sha256),
            after: journal::sha256(&write.after),
        });
    }
    plan.store(root, false)?;

    let mut created_dirs = Vec::new();
    let mut prepared: Vec<Prepared> = Vec::with_capacity(writes.len());
    for (write, temp) in writes.iter().zip(temps) {
        match prepare(write, temp, &mut created_dirs) {
            Ok(p) => prepared.push(p),
            Err(source) => {
                abandon(root, &prepared, &created_dirs);
                return Err(ApplyError::Prepare {
                    path: write.rel.clone(),
                    source,
                });
            }
        }
    }

    let changed: Vec<String> = writes
        .iter()
        .filter(|w| !still_as_read(w))
        .map(|w| w.rel.clone())
        .collect();
    if !changed.is_empty() {
        abandon(root, &prepared, &created_dirs);
        return Err(ApplyError::Changed { paths: changed });
    }

    plan.stage = Stage::Commit;
    if let Err(e) = plan.store(root, true) {
        abandon(root, &prepared, &created_dirs);
        return Err(e.into());
    }
    for (index, (write, prep)) in writes.iter().zip(&prepared).enumerate() {
        let renamed =
            before_rename(index, &write.abs).and_then(|()| fs::rename(&prep.temp, &write.abs));
        if let Err(source) = renamed {
            let (restored, not_restored) = restore(&writes[..index], &prepared[..index]);
            abandon(root, &prepared[index..], &created_dirs);
            return Err(ApplyError::Commit {
                path: write.rel.clone(),
                source,
                restored,
                not_restored,
            });
        }
    }
    let mut dirs: Vec<&Path> = writes.iter().filter_map(|w| w.abs.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        journal::sync_dir(dir);
    }
    if let Err(e) = journal::remove(root) {
        // Every file is written; the next apply finds nothing left to do but removing it.
        tracing::warn!("the patch was applied, but {e}");
    }
    Ok(())
}

/// Gives up before (or, after a failed rename, instead of) finishing: temporary files, created directories
/// and the journal go.
fn abandon(root: &Path, prepared: &[Prepared], created_dirs: &[PathBuf]) {
    cleanup(prepared, created_dirs);
    if let Err(e) = journal::remove(root) {
        tracing::warn!("{e}");
    }
}

/// `path` relative to `root`, `/`-separated; `None` outside it or with a name a journal cannot hold.
fn root_relative(root: &Path, path: &Path) -> Option<String> {
    let rel = qwen_index::walk::relative_path(root, path)?;
    (!rel.contains(['\t', '\n', '\r'])).then(|| rel.to_string())
}

/// The directories missing above the targets, outermost first (created by [`prepare`]).
fn missing_dirs(writes: &[PlannedWrite]) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = Vec::new();
    for write in writes {
        let mut cursor = write.abs.parent();
        let mut chain = Vec::new();
        while let Some(dir) = cursor {
            if dir.exists() || missing.iter().any(|m| m == dir) {
                break;
            }
            chain.push(dir.to_path_buf());
            cursor = dir.parent();
        }
        missing.extend(chain.into_iter().rev());
    }
    missing
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The temporary file of `write`: hidden, next to its target, named after this process.
fn temp_path(write: &PlannedWrite) -> PathBuf {
    let name = write
        .abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = write.abs.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{name}.{}.{}.qwen-ls-tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

fn prepare(
    write: &PlannedWrite,
    temp: PathBuf,
    created_dirs: &mut Vec<PathBuf>,
) -> io::Result<Prepared> {
    let parent = write
        .abs
        .parent()
        .ok_or_else(|| io::Error::other("the target has no parent directory"))?;
    create_parents(parent, created_dirs)?;
    let permissions = match write.before {
        Some(_) => Some(fs::metadata(&write.abs)?.permissions()),
        None => None,
    };
    let written = write_temp(&temp, &write.after, permissions.as_ref());
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    Ok(Prepared { temp, permissions })
}

fn write_temp(temp: &Path, content: &[u8], permissions: Option<&Permissions>) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(content)?;
    if let Some(permissions) = permissions {
        file.set_permissions(permissions.clone())?;
    }
    file.sync_all()
}

/// Creates `dir` and missing ancestors, recording each one created (outermost first) for cleanup.
fn create_parents(dir: &Path, created: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor {
        if path.exists() {
            break;
        }
        missing.push(path.to_path_buf());
        cursor = path.parent();
    }
    for path in missing.into_iter().rev() {
        fs::create_dir(&path)?;
        created.push(path);
    }
    Ok(())
}

fn still_as_read(write: &PlannedWrite) -> bool {
    match &write.before {
        None => {
            matches!(fs::symlink_metadata(&write.abs), Err(err) if err.kind() == io::ErrorKind::NotFound)
        }
        Some(before) => {
            let is_file = fs::symlink_metadata(&write.abs).is_ok_and(|m| m.file_type().is_file());
            is_file && fs::read(&write.abs).is_ok_and(|now| now == *before)
        }
    }
}

/// Undoes committed writes: old content back through a temporary file (permissions kept), new files removed.
fn restore(
    written: &[PlannedWrite],
    prepared: &[Prepared],
) -> (Vec<String>, Vec<(String, String)>) {
    let mut restored = Vec::new();
    let mut not_restored = Vec::new();
    for (write, prep) in written.iter().zip(prepared) {
        let result = match &write.before {
            None => fs::remove_file(&write.abs),
            Some(before) => {
                let temp = prep.temp.with_extension("qwen-ls-restore");
                write_temp(&temp, before, prep.permissions.as_ref())
                    .and_then(|()| fs::rename(&temp, &write.abs))
                    .inspect_err(|_| {
                        let _ = fs::remove_file(&temp);
                    })
            }
        };
        match result {
            Ok(()) => restored.push(write.rel.clone()),
            Err(err) => not_restored.push((write.rel.clone(), err.to_string())),
        }
    }
    (restored, not_restored)
}

/// Removes temporary files and the directories this run created (innermost first, only if empty).
fn cleanup(prepared: &[Prepared], created_dirs: &[PathBuf]) {
    for prep in prepared {
        let _ = fs::remove_file(&prep.temp);
    }
    for dir in created_dirs.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(dir: &Path, rel: &str, before: Option<&str>, after: &str) -> PlannedWrite {
        PlannedWrite {
            rel: rel.to_string(),
            abs: dir.join(rel),
            before: before.map(|b| b.as_bytes().to_vec()),
            after: after.as_bytes().to_vec(),
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).expect("read_dir").flatten() {
                let path = entry.path();
                names.push(
                    path.strip_prefix(dir)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned(),
                );
                if path.is_dir() {
                    stack.push(path);
                }
            }
        }
        names.sort();
        names
    }

    #[test]
    fn rename_failure_restores_earlier_files_and_removes_new_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.txt"), "old a\n").expect("write");
        fs::write(dir.path().join("c.txt"), "old c\n").expect("write");
        let writes = [
            planned(dir.path(), "a.txt", Some("old a\n"), "new a\n"),
            planned(dir.path(), "sub/b.txt", None, "new b\n"),
            planned(dir.path(), "c.txt", Some("old c\n"), "new c\n"),
        ];
        let err = write_all_with(dir.path(), &writes, &mut |index, _| {
            if index == 2 {
                Err(io::Error::other("injected"))
            } else {
                Ok(())
            }
        })
        .expect_err("fails");
        let ApplyError::Commit {
            path,
            restored,
            not_restored,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(path, "c.txt");
        assert_eq!(restored, &["a.txt", "sub/b.txt"]);
        assert!(not_restored.is_empty());
        assert_eq!(
            fs::read_to_string(dir.path().join("a.txt")).expect("read"),
            "old a\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("c.txt")).expect("read"),
            "old c\n"
        );
        assert_eq!(
            listing(dir.path()),
            ["a.txt", "c.txt"],
            "no temp files, no created directory left"
        );
        assert!(
            err.to_string().contains("no file was left modified"),
            "{err}"
        );
    }

    #[test]
    fn changed_file_means_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.txt"), "edited meanwhile\n").expect("write");
        let writes = [
            planned(dir.path(), "new/x.txt", None, "x\n"),
            planned(dir.path(), "a.txt", Some("old\n"), "new\n"),
        ];
        let err = write_all(dir.path(), &writes).expect_err("stale");
        assert!(
            matches!(&err, ApplyError::Changed { paths } if paths == &["a.txt"]),
            "{err}"
        );
        assert_eq!(listing(dir.path()), ["a.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.sh");
        fs::write(&path, "echo old\n").expect("write");
        fs::set_permissions(&path, Permissions::from_mode(0o751)).expect("chmod");
        write_all(
            dir.path(),
            &[planned(
                dir.path(),
                "run.sh",
                Some("echo old\n"),
                "echo new\n",
            )],
        )
        .expect("writes");
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o7777,
            0o751
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), "echo new\n");
    }
}
