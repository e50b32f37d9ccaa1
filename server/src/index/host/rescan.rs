//! Changes that touch many files at once: a deleted directory, and an ignore file that changed (files under
//! its directory become ignored or included again). Both end in exactly the state a fresh walk would give,
//! through the same per-file `set_entry` path as single changes.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::IndexHost;
use crate::index::file_index::{analyze, FileIndex};
use crate::index::ignore_rules;
use crate::index::walk::walk;
use crate::syntax::language_for_path;

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
        // `dir` may be in another workspace folder (`@name/…`): its rules are that folder's.
        let (folder, inside) = self.mounts.locate(&self.root, dir);
        let base = folder.join(inside);
        let found = Mutex::new(Vec::new());
        if base.is_dir() {
            // The walk applies the ignore files of `dir`'s ancestors too, as a walk from the root does.
            walk(&base, &self.config, &|file| {
                let within: String = if inside.is_empty() {
                    file.path.to_string()
                } else {
                    format!("{inside}/{}", file.path)
                };
                let path: Arc<str> = if dir.is_empty() {
                    file.path.clone()
                } else {
                    format!("{dir}/{}", file.path).into()
                };
                if !ignore_rules::is_ignored(folder, &within, &self.config) {
                    if let Ok(mut found) = found.lock() {
                        found.push((path, file));
                    }
                }
            });
        }
        let found = found.into_inner().unwrap_or_default();
        let included: BTreeSet<Arc<str>> = found.iter().map(|(path, _)| path.clone()).collect();
        for path in self.files_under(dir) {
            if !included.contains(&path) && !self.documents.contains_key(&path) {
                self.set_entry(&path, None);
                self.forget_recent(&path);
            }
        }
        for (path, file) in found {
            if self.files.contains_key(&path) {
                continue;
            }
            let language = language_for_path(Path::new(&*path));
            let (symbols, _tree, error) = analyze(language, &file.text);
            if let Some(error) = error {
                tracing::warn!("{path}: indexed as text only: {error}");
            }
            let entry = FileIndex::assemble(
                path.clone(),
                language,
                file.text.into(),
                file.lossy,
                symbols,
            );
            self.set_entry(&path, Some(entry));
        }
    }
}
