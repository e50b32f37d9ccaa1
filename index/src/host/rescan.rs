//! Changes that touch many files at once: a deleted directory, and an ignore file that changed (files under
//! its directory become ignored or included again). Both end in exactly the state a fresh walk would give,
//! through the same per-file `set_entry` path as single changes, and every file found passes the gate of the
//! folder that holds it (judged at its real path: a directory reached through a link is never walked).

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use super::IndexHost;
use crate::walk::{relative_path, walk_builder};
use crate::Admission;

impl IndexHost {
    /// Indexed files strictly under the directory `dir` (workspace-relative; `""` is the root).
    pub(super) fn files_under(&self, dir: &str) -> Vec<Arc<str>> {
        let prefix: Arc<str> = if dir.is_empty() {
            "".into()
        } else {
            format!("{dir}/").into()
        };
        self.files
            .range(prefix.clone()..)
            .map(|(path, _)| path)
            .take_while(|path| path.starts_with(&*prefix))
            .cloned()
            .collect()
    }

    /// The outermost directory above `path` that holds no indexed file yet (a directory that appeared with
    /// this file), if any. File watchers can miss the first files of a new directory (inotify watches a
    /// directory only once it has seen it created), so such a directory is walked as a whole.
    pub(super) fn new_directory_of(&self, path: &str) -> Option<Arc<str>> {
        let mut found = None;
        let mut dir = path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            let prefix = format!("{parent}/");
            let known = self
                .files
                .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                .next()
                .is_some_and(|(p, _)| p.starts_with(&prefix));
            if known {
                break;
            }
            found = Some(parent);
            dir = parent;
        }
        found.map(Arc::from)
    }

    /// Decides every file under `dir` again after one of its ignore files changed: indexed files the rules
    /// now exclude are dropped, files they now include are read (open documents keep the editor's text).
    pub(super) fn reapply_ignore_rules(&mut self, dir: &Arc<str>) {
        let included = self.admitted_files_under(dir);
        for path in self.files_under(dir) {
            if !included.contains(&path) && !self.documents.contains_key(&path) {
                self.set_entry(&path, None);
                self.forget_recent(&path);
            }
        }
        for path in &included {
            if !self.files.contains_key(path) {
                self.reload_from_disk(path);
            }
        }
    }

    /// The files under `dir` that a walk lists and the gate admits, by name only: nothing is read before the
    /// gate has judged it (`reload_from_disk` then reads each new one through the gate).
    fn admitted_files_under(&self, dir: &Arc<str>) -> BTreeSet<Arc<str>> {
        // `dir` may be in another workspace folder (`@name/…`): its files are that folder's.
        let (folder, inside) = self.mounts.locate(&self.root, dir);
        let base = folder.join(inside);
        // The folders' roots are canonical: a directory whose real path differs is reached through a link,
        // which the walk never follows (it may lead anywhere, such as `~/.ssh`).
        if !base.is_dir() || base.canonicalize().map_or(true, |real| real != base) {
            return BTreeSet::new();
        }
        let mut admitted = BTreeSet::new();
        // The walker applies the ignore files of `dir`'s ancestors too, as a walk from the root does.
        for entry in walk_builder(&base, self.gate.config()).build() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!("rescan of {dir:?}: {e} (continuing)");
                    continue;
                }
            };
            // Links are not followed (nor indexed under their own name), as in the walk.
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let Some(within) = relative_path(&base, entry.path()) else {
                continue;
            };
            let path: Arc<str> = if dir.is_empty() {
                within
            } else {
                format!("{dir}/{within}").into()
            };
            if matches!(self.gate.check_path(Path::new(&*path)), Admission::Index(ref real) if *real == path)
            {
                admitted.insert(path);
            }
        }
        admitted
    }
}
