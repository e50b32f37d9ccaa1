//! The index host: loads a workspace (walk + cache), applies changes one at a time in arrival order, and hands
//! out cheap immutable snapshots.
//!
//! Shared maps live behind `Arc`s and are mutated with `Arc::make_mut`: while no snapshot is alive a change
//! updates them in place; a snapshot held by a running request costs one copy on the next change, never a
//! lock or an inconsistent read.

use std::collections::HashMap;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::{CacheStatus, CacheStore};
use super::document::{Document, TextEdit};
use super::file_index::{analyze, content_hash, FileIndex};
use super::gate::{Admission, Gate};
use super::mounts::Mounts;
use super::postings::Postings;
use super::snapshot::{FileMap, GraphCell, IndexSnapshot, SymbolMap};
use super::walk::{walk, SkippedFile};
use super::{ChangeError, IndexConfig, IndexError};
use qwen_syntax::language_for_path;

mod rescan;
mod verify;

pub use verify::IndexCheck;

/// How many recently edited files are remembered for ranking.
const RECENT_FILES: usize = 16;

/// One change to the workspace, applied in arrival order. Paths are workspace-relative, `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// An editor opened a document; its text overrides the file on disk until it is closed.
    Open {
        /// Path.
        path: String,
        /// The editor's version.
        version: i32,
        /// Full text.
        text: String,
    },
    /// Edits to an open document, applied in order; `version` must be newer than the document's.
    Edit {
        /// Path.
        path: String,
        /// The editor's version after these edits.
        version: i32,
        /// Replacements, each in the coordinates of the text left by the previous one.
        edits: Vec<TextEdit>,
    },
    /// The editor closed the document; the file on disk is read again.
    Close {
        /// Path.
        path: String,
    },
    /// A file was created or modified on disk.
    Write {
        /// Path.
        path: String,
    },
    /// A file was deleted.
    Delete {
        /// Path.
        path: String,
    },
    /// An ignore file (`.gitignore`, `.ignore` or the configured one) in `dir` was created, changed or
    /// deleted: every file under `dir` (`""`: the whole workspace) is decided again, as the walk would.
    IgnoreRules {
        /// Workspace-relative directory holding the ignore file; `""` for the root.
        dir: String,
    },
    /// A file was renamed on disk.
    Rename {
        /// Old path.
        from: String,
        /// New path.
        to: String,
    },
}

/// What loading a workspace did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Files indexed.
    pub files: usize,
    /// Bytes of text indexed.
    pub bytes: u64,
    /// Files parsed and tagged now.
    pub parsed: usize,
    /// Files whose symbols came from the persistent cache.
    pub reused: usize,
    /// Files seen but not indexed, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// What happened with the persistent cache.
    pub cache: CacheStatus,
    /// Whether the cache should be written (something was parsed or a cached file disappeared).
    pub cache_outdated: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// The single writer of the index.
pub struct IndexHost {
    root: Arc<Path>,
    /// The other workspace folders, indexed under `@name/` (`mounts.rs`).
    mounts: Mounts,
    /// Every folder's gate: what may be indexed, read or sent.
    gate: Gate,
    cache: Option<CacheStore>,
    version: u64,
    files: Arc<FileMap>,
    definers: Arc<SymbolMap>,
    postings: Arc<Postings>,
    graph: Arc<GraphCell>,
    recent: Arc<Vec<Arc<str>>>,
    documents: HashMap<Arc<str>, Document>,
}

impl IndexHost {
    /// Walks and indexes `root`, reusing the symbols of unchanged files from `cache` when given.
    /// Never fails because of a file: bad files are logged and listed in the report.
    pub fn load(
        root: &Path,
        config: IndexConfig,
        cache: Option<CacheStore>,
    ) -> Result<(Self, LoadReport), IndexError> {
        Self::load_folders(root, Mounts::default(), config, cache)
    }

    /// [`IndexHost::load`] for a workspace of several folders: `root` and the `mounts` (indexed under
    /// `@name/`). The persistent cache belongs to a single root: it is used only without mounts.
    pub fn load_folders(
        root: &Path,
        mounts: Mounts,
        config: IndexConfig,
        cache: Option<CacheStore>,
    ) -> Result<(Self, LoadReport), IndexError> {
        let cache = cache.filter(|_| mounts.is_empty());
        let started = Instant::now();
        let root = root.canonicalize().map_err(|source| IndexError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(IndexError::NotADirectory { path: root });
        }
        let _span = tracing::info_span!("index_load", root = %root.display()).entered();
        let (cached, cache_status) = match &cache {
            Some(store) => store.load(&root),
            None => (HashMap::new(), CacheStatus::Disabled),
        };
        let cached_count = cached.len();
        // Entries are moved out (not cloned) as files are matched; the lock is held only for the removal.
        let cached = Mutex::new(cached);
        let results = Mutex::new(Vec::new());
        let parsed = AtomicUsize::new(0);
        let mut skipped = Vec::new();
        let folders = std::iter::once((None, root.as_path()))
            .chain(mounts.iter().map(|m| (Some(&*m.prefix), &*m.root)));
        for (prefix, folder) in folders {
            let before = skipped.len();
            skipped.extend(walk(folder, &config, &|mut file| {
                if let Some(prefix) = prefix {
                    file.path = Mounts::join(prefix, &file.path).into();
                }
                let language = language_for_path(Path::new(&*file.path));
                let hash = content_hash(&file.text);
                let hit = cached.lock().ok().and_then(|mut c| c.remove(&*file.path));
                let symbols = match hit {
                    Some(hit) if hit.matches(hash, language, file.lossy) => hit.symbols,
                    _ => {
                        parsed.fetch_add(1, Ordering::Relaxed);
                        let (symbols, _tree, error) = analyze(language, &file.text);
                        if let Some(error) = error {
                            tracing::warn!("{}: indexed as text only: {error}", file.path);
                        }
                        symbols
                    }
                };
                let entry =
                    FileIndex::assemble(file.path, language, file.text.into(), file.lossy, symbols);
                if let Ok(mut list) = results.lock() {
                    list.push(entry);
                }
            }));
            if let Some(prefix) = prefix {
                for file in &mut skipped[before..] {
                    file.path = Mounts::join(prefix, &file.path);
                }
            }
        }
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        let entries = results.into_inner().unwrap_or_default();
        let parsed = parsed.into_inner();
        let mut report = LoadReport {
            files: entries.len(),
            bytes: entries.iter().map(|e| e.text.len() as u64).sum(),
            parsed,
            reused: entries.len() - parsed,
            skipped,
            cache: cache_status,
            ..LoadReport::default()
        };
        report.cache_outdated = cache.is_some() && (parsed > 0 || cached_count != entries.len());
        let files: FileMap = entries
            .into_iter()
            .map(|e| (e.path.clone(), Arc::new(e)))
            .collect();
        let definers = build_definers(&files);
        let postings = Postings::build(&files);
        let host = Self {
            gate: Gate::for_folders(Some(&root), &mounts, config),
            root: root.into(),
            mounts,
            cache,
            version: 0,
            files: Arc::new(files),
            definers: Arc::new(definers),
            postings: Arc::new(postings),
            graph: Arc::new(GraphCell::default()),
            recent: Arc::new(Vec::new()),
            documents: HashMap::new(),
        };
        report.elapsed = started.elapsed();
        tracing::info!(
            files = report.files,
            parsed = report.parsed,
            reused = report.reused,
            skipped = report.skipped.len(),
            "indexed in {:?}",
            report.elapsed
        );
        Ok((host, report))
    }

    /// Writes the persistent cache (atomically). A no-op without a cache store.
    pub fn save_cache(&self) -> Result<(), super::CacheError> {
        match &self.cache {
            Some(store) => store.save(&self.root, self.files.values()),
            None => Ok(()),
        }
    }

    /// A consistent read-only view of the current state.
    pub fn snapshot(&self) -> IndexSnapshot {
        IndexSnapshot {
            root: self.root.clone(),
            version: self.version,
            files: self.files.clone(),
            definers: self.definers.clone(),
            postings: self.postings.clone(),
            graph: self.graph.clone(),
            recent: self.recent.clone(),
        }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The other workspace folders (indexed under `@name/`).
    pub fn mounts(&self) -> &Mounts {
        &self.mounts
    }

    /// The gate every text passes before it reaches this index (shared with the tasks, which ask it too).
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The version of an open document.
    pub fn document_version(&self, path: &str) -> Option<i32> {
        self.documents.get(path).map(|d| d.version)
    }

    /// Applies one change. On error the index is unchanged.
    pub fn apply_change(&mut self, change: Change) -> Result<(), ChangeError> {
        match change {
            Change::Open {
                path,
                version,
                text,
            } => {
                let path = checked_path(&path)?;
                let admitted = match self.gate.check_path(Path::new(&*path)) {
                    Admission::Index(real) if real == path => self.gate.check_text(&text),
                    Admission::Index(_) => Err(super::SkipReason::Link),
                    Admission::Unindexed(reason) | Admission::Refused(reason) => Err(reason),
                };
                if let Err(reason) = admitted {
                    return Err(ChangeError::Refused {
                        path: path.to_string(),
                        reason,
                    });
                }
                let language = language_for_path(Path::new(&*path));
                let (document, entry) = Document::open(path.clone(), language, text, version);
                self.documents.insert(path.clone(), document);
                self.set_entry(&path, Some(entry));
            }
            Change::Edit {
                path,
                version,
                edits,
            } => self.edit(&path, version, &edits)?,
            Change::Close { path } => {
                let path = checked_path(&path)?;
                self.documents.remove(&path);
                self.reload_from_disk(&path);
            }
            Change::Write { path } => {
                let path = checked_path(&path)?;
                if let Some(dir) = self.new_directory_of(&path) {
                    self.reapply_ignore_rules(&dir);
                } else if !self.documents.contains_key(&path) {
                    self.reload_from_disk(&path);
                }
            }
            Change::Delete { path } => {
                let path = checked_path(&path)?;
                if self.files.contains_key(&path) || self.documents.contains_key(&path) {
                    self.documents.remove(&path);
                    self.set_entry(&path, None);
                    self.forget_recent(&path);
                } else {
                    // A deleted directory is reported once, not per file.
                    for file in self.files_under(&path) {
                        self.documents.remove(&file);
                        self.set_entry(&file, None);
                        self.forget_recent(&file);
                    }
                }
            }
            Change::IgnoreRules { dir } => {
                let dir = if dir.is_empty() {
                    dir.into()
                } else {
                    checked_path(&dir)?
                };
                self.reapply_ignore_rules(&dir);
            }
            Change::Rename { from, to } => {
                let from = checked_path(&from)?;
                let to = checked_path(&to)?;
                self.documents.remove(&from);
                self.set_entry(&from, None);
                self.forget_recent(&from);
                self.reload_from_disk(&to);
            }
        }
        Ok(())
    }

    fn edit(&mut self, path: &str, version: i32, edits: &[TextEdit]) -> Result<(), ChangeError> {
        let path = checked_path(path)?;
        let current = self.files.get(&path).cloned();
        let not_open = || ChangeError::NotOpen {
            path: path.to_string(),
        };
        let (Some(have), Some(mut entry)) = (self.document_version(&path), current) else {
            return Err(not_open());
        };
        if version <= have {
            return Err(ChangeError::StaleVersion {
                path: path.to_string(),
                have,
                got: version,
            });
        }
        let new_len = edits.iter().try_fold(entry.text.len(), |len, e| {
            len.checked_sub(e.range.len())?
                .checked_add(e.new_text.len())
        });
        // (An invalid range is reported by `apply_edit` below.)
        let grown = new_len.map_or(Ok(()), |len| {
            self.gate
                .check_edit(len, edits.iter().map(|e| e.new_text.as_str()))
        });
        if let Err(reason) = grown {
            // The editor's text no longer passes the gate: the index falls back to the file on disk.
            tracing::info!("{path}: no longer indexing the open document: {reason}");
            self.documents.remove(&path);
            self.reload_from_disk(&path);
            return Ok(());
        }
        let document = self.documents.get_mut(&path).ok_or_else(not_open)?;
        let backup = (edits.len() > 1).then(|| document.clone_state());
        for edit in edits {
            match document.apply_edit(edit, &entry) {
                Ok(next) => entry = Arc::new(next),
                Err(e) => {
                    if let Some(backup) = backup {
                        document.restore_state(backup);
                    }
                    return Err(e);
                }
            }
        }
        document.version = version;
        self.set_entry(&path, Some(Arc::unwrap_or_clone(entry)));
        self.touch_recent(&path);
        Ok(())
    }

    /// Reads a file from disk through the same filters as the walk; removes it from the index if it is
    /// gone, ignored or rejected.
    fn reload_from_disk(&mut self, path: &Arc<str>) {
        let entry = match self.gate.read(path) {
            Ok(file) => {
                let language = language_for_path(Path::new(&**path));
                let (symbols, _tree, error) = analyze(language, &file.text);
                if let Some(error) = error {
                    tracing::warn!("{path}: indexed as text only: {error}");
                }
                Some(FileIndex::assemble(
                    path.clone(),
                    language,
                    file.text.into(),
                    file.lossy,
                    symbols,
                ))
            }
            Err(reason) => {
                tracing::info!("not indexing {path}: {reason}");
                None
            }
        };
        self.set_entry(path, entry);
    }

    fn set_entry(&mut self, path: &Arc<str>, entry: Option<FileIndex>) {
        let files = Arc::make_mut(&mut self.files);
        let entry = entry.map(Arc::new);
        let new_names = entry.as_deref().map(definition_names).unwrap_or_default();
        let new_summary = entry.as_ref().map(|e| e.symbol_summary);
        let old = match &entry {
            Some(entry) => files.insert(path.clone(), entry.clone()),
            None => files.remove(path),
        };
        Arc::make_mut(&mut self.postings).update(path, old.as_deref(), entry.as_deref());
        let old_names = old.as_deref().map(definition_names).unwrap_or_default();
        if old_names != new_names {
            let definers = Arc::make_mut(&mut self.definers);
            for name in &old_names {
                if let Some(paths) = definers.get_mut(*name) {
                    paths.retain(|p| p != path);
                    if paths.is_empty() {
                        definers.remove(*name);
                    }
                }
            }
            for name in &new_names {
                let paths = definers.entry((*name).into()).or_default();
                if let Err(at) = paths.binary_search(path) {
                    paths.insert(at, path.clone());
                }
            }
        }
        if old.map(|e| e.symbol_summary) != new_summary {
            self.graph = Arc::new(GraphCell::default());
        }
        self.version += 1;
    }

    fn touch_recent(&mut self, path: &Arc<str>) {
        let recent = Arc::make_mut(&mut self.recent);
        recent.retain(|p| p != path);
        recent.insert(0, path.clone());
        recent.truncate(RECENT_FILES);
    }

    fn forget_recent(&mut self, path: &Arc<str>) {
        if self.recent.contains(path) {
            Arc::make_mut(&mut self.recent).retain(|p| p != path);
        }
    }
}

fn definition_names(entry: &FileIndex) -> Vec<&str> {
    let mut names: Vec<&str> = entry.definitions.iter().map(|d| &*d.name).collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn build_definers(files: &FileMap) -> SymbolMap {
    let mut definers = SymbolMap::new();
    for (path, file) in files {
        for name in definition_names(file) {
            // Files are visited in path order, so every list is already sorted.
            let paths: &mut Vec<Arc<str>> = definers.entry(name.into()).or_default();
            if paths.last() != Some(path) {
                paths.push(path.clone());
            }
        }
    }
    definers
}

/// Accepts only plain relative paths (no `..`, no root, no empty components).
fn checked_path(path: &str) -> Result<Arc<str>, ChangeError> {
    let bad = || ChangeError::BadPath {
        path: path.to_owned(),
    };
    if path.is_empty() || path.contains('\\') || path.split('/').any(str::is_empty) {
        return Err(bad());
    }
    if !Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(bad());
    }
    Ok(path.into())
}
