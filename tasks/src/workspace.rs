//! `Workspace`: one repository as the tasks see it — its root, the index behind one writer lock, the token
//! counter and its memo, and which documents an editor has open.
//!
//! The index host applies changes in arrival order (LSP notifications, file events) under the lock;
//! requests take an [`IndexSnapshot`] (a few `Arc`s) and never hold the lock while they work. No snapshot
//! is kept here between requests: the host copies its maps on write only while a snapshot is alive, so a
//! cached "latest snapshot" would make every keystroke copy the symbol table.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use qwen_context::token_count::QwenTokenCounter;
use qwen_context::{TokenCountCache, TokenCounter};
use qwen_index::{
    CacheStore, Change, ChangeError, Gate, IndexCheck, IndexConfig, IndexHost, IndexSnapshot,
    LoadReport, Mounts,
};

use super::TaskError;

/// How to load a workspace.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceOptions {
    /// Index limits and ignore rules.
    pub index: IndexConfig,
    /// The other workspace folders, indexed beside the root under `@name/` (context ranks them below the
    /// folder that holds the file; the persistent index cache is used only for a single folder).
    pub folders: Vec<PathBuf>,
    /// Use (and update) the persistent index cache and token-count memo in the user's cache directory.
    pub persistent_cache: bool,
}

/// The index and token accounting of one workspace; see the module documentation. `Send + Sync`.
pub struct Workspace {
    root: PathBuf,
    mounts: Mounts,
    gate: Gate,
    host: Mutex<IndexHost>,
    open: Mutex<BTreeSet<String>>,
    counter: &'static QwenTokenCounter,
    token_cache: TokenCountCache,
    memo_path: Option<PathBuf>,
    memo_len_at_load: usize,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// Walks and indexes `root` (blocking; seconds on large repositories).
    pub fn load(
        root: &Path,
        options: &WorkspaceOptions,
    ) -> Result<(Workspace, LoadReport), TaskError> {
        let canonical = root.canonicalize().map_err(|source| TaskError::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let cache = options
            .persistent_cache
            .then(|| CacheStore::for_workspace(&canonical))
            .flatten();
        let mounts = Mounts::new(&canonical, &options.folders);
        let (host, report) =
            IndexHost::load_folders(&canonical, mounts, options.index.clone(), cache)?;
        if report.cache_outdated {
            if let Err(e) = host.save_cache() {
                tracing::warn!("{e}");
            }
        }
        let mut workspace = Workspace::from_host(host)?;
        if options.persistent_cache {
            workspace.memo_path =
                CacheStore::default_dir().map(|dir| dir.join("token-counts-qwen.bin"));
            if let Some(path) = &workspace.memo_path {
                workspace.token_cache = TokenCountCache::load(path);
                workspace.memo_len_at_load = workspace.token_cache.len();
            }
        }
        Ok((workspace, report))
    }

    /// Wraps an already loaded index (no persistent token memo).
    pub fn from_host(host: IndexHost) -> Result<Workspace, TaskError> {
        let counter = QwenTokenCounter::builtin().map_err(TaskError::Tokenizer)?;
        Ok(Workspace {
            root: host.root().to_path_buf(),
            mounts: host.mounts().clone(),
            gate: host.gate().clone(),
            host: Mutex::new(host),
            open: Mutex::new(BTreeSet::new()),
            counter,
            token_cache: TokenCountCache::new(),
            memo_path: None,
            memo_len_at_load: 0,
        })
    }

    fn lock_host(&self) -> MutexGuard<'_, IndexHost> {
        // A failed change leaves the index untouched (IndexHost's contract), so a panic mid-change is the only
        // poisoning and the host stays usable.
        self.host.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_open(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workspace root (absolute, canonical): the first folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The other folders.
    pub fn mounts(&self) -> &Mounts {
        &self.mounts
    }

    /// Applies one change (in arrival order; document edits must carry a newer version).
    pub fn apply_change(&self, change: Change) -> Result<(), ChangeError> {
        let mut host = self.lock_host();
        let tracked = change.clone();
        host.apply_change(change)?;
        let mut open = self.lock_open();
        match tracked {
            Change::Open { path, .. } => {
                open.insert(path);
            }
            Change::Close { path } | Change::Delete { path } => {
                open.remove(&path);
            }
            Change::Rename { from, to } => {
                if open.remove(&from) {
                    open.insert(to);
                }
            }
            Change::Edit { .. } | Change::Write { .. } | Change::IgnoreRules { .. } => {}
        }
        Ok(())
    }

    /// Compares the index with a fresh walk of the disk (plus the open documents); blocking, a full index.
    pub fn verify_index(&self) -> Result<IndexCheck, TaskError> {
        Ok(self.lock_host().verify()?)
    }

    /// A consistent view of the index including every change applied so far.
    pub fn snapshot(&self) -> IndexSnapshot {
        self.lock_host().snapshot()
    }

    /// The version of an open document.
    pub fn document_version(&self, path: &str) -> Option<i32> {
        self.lock_host().document_version(path)
    }

    /// Workspace-relative paths of the documents an editor has open (their text overrides the disk).
    pub fn open_documents(&self) -> Vec<String> {
        self.lock_open().iter().cloned().collect()
    }

    /// The workspace-relative, `/`-separated form of `path` (absolute, or relative to the root). `None` for
    /// a path outside the root or with `..`.
    pub fn relative_path(&self, path: &Path) -> Option<String> {
        if path.is_absolute() && !path.starts_with(&self.root) {
            let canonical = || Some(path.parent()?.canonicalize().ok()?.join(path.file_name()?));
            if let Some(mounted) = self
                .mounts
                .index_path(path)
                .or_else(|| self.mounts.index_path(&canonical()?))
            {
                return Some(mounted);
            }
        }
        let relative = if path.is_absolute() {
            match path.strip_prefix(&self.root) {
                Ok(rest) => rest.to_path_buf(),
                // The root is canonical; the path may not be (a symlinked checkout, `/tmp` vs `/private/tmp`).
                Err(_) => {
                    let canonical = path
                        .parent()
                        .and_then(|p| p.canonicalize().ok())?
                        .join(path.file_name()?);
                    canonical.strip_prefix(&self.root).ok()?.to_path_buf()
                }
            }
        } else {
            path.to_path_buf()
        };
        let mut out = String::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => {
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str(part.to_str()?);
                }
                Component::CurDir => {}
                _ => return None,
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Refuses a file the gate never lets into a prompt (secret patterns, `.qwenignore`), by its name and its
    /// real path; `path` is absolute (inside the workspace or not) or relative to the root. Every task calls
    /// this for the document it works on before reading it.
    pub fn admit(&self, path: &Path) -> Result<(), TaskError> {
        match self.gate.refusal(path) {
            Some(reason) => Err(TaskError::Refused {
                path: path.to_path_buf(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The gate of this workspace.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The absolute path of a workspace-relative path.
    pub fn absolute_path(&self, relative: &str) -> PathBuf {
        let (folder, inside) = self.mounts.locate(&self.root, relative);
        folder.join(inside)
    }

    /// The current text of a document: an open document's editor text, else the indexed text, else the file
    /// on disk (files the index skips — too large, ignored — can still be completed in). Refused files
    /// ([`Workspace::admit`]) are an error.
    pub fn read_document(&self, relative: &str) -> Result<Arc<str>, TaskError> {
        self.admit(Path::new(relative))?;
        if let Some(file) = self.snapshot().file(relative) {
            if !file.lossy {
                return Ok(file.text.clone());
            }
        }
        let path = self.absolute_path(relative);
        let bytes = std::fs::read(&path).map_err(|source| TaskError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(String::from_utf8_lossy(&bytes).into())
    }

    /// The text a task works on: `text` when the front end sent it (an editor's buffer), else the workspace's
    /// current text, else the file on disk (a file outside the workspace). Refused files are an error
    /// whichever way the text came. Also returns the workspace-relative path (`None` outside the workspace).
    pub fn task_document(
        &self,
        path: &Path,
        text: Option<&Arc<str>>,
    ) -> Result<(Option<String>, Arc<str>), TaskError> {
        self.admit(path)?;
        let relative = self.relative_path(path);
        let text = match (text, &relative) {
            (Some(text), _) => text.clone(),
            (None, Some(relative)) => self.read_document(relative)?,
            (None, None) => {
                let bytes = std::fs::read(path).map_err(|source| TaskError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                String::from_utf8_lossy(&bytes).into()
            }
        };
        Ok((relative, text))
    }

    /// The token counter budgets are measured with (the built-in Qwen tokenizer).
    pub fn token_counter(&self) -> &dyn TokenCounter {
        self.counter
    }

    /// The memo of exact token counts shared by every request.
    pub fn token_cache(&self) -> &TokenCountCache {
        &self.token_cache
    }

    /// Exact tokens of `text` (memoized).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.token_cache.count(self.counter, text)
    }

    /// Saves the persistent caches (index and token memo) when they are enabled and changed.
    pub fn save_caches(&self) {
        if let Err(e) = self.lock_host().save_cache() {
            tracing::warn!("{e}");
        }
        if let Some(path) = &self.memo_path {
            if self.token_cache.len() != self.memo_len_at_load {
                if let Err(e) = self.token_cache.save(path) {
                    tracing::warn!("cannot save token-count memo {}: {e}", path.display());
                }
            }
        }
    }
}
