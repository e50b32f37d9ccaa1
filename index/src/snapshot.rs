//! Immutable snapshots of the index: cheap to clone (a handful of `Arc`s), safe to read from any thread while
//! the host applies the next change.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use super::graph::FileGraph;
use super::postings::Postings;
use super::FileIndex;
use qwen_syntax::Definition;

pub use super::file_index::{FileMap, SymbolMap};

/// A consistent, read-only view of the index at one version.
#[derive(Clone)]
pub struct IndexSnapshot {
    pub(super) root: Arc<Path>,
    pub(super) version: u64,
    pub(super) files: Arc<FileMap>,
    pub(super) definers: Arc<SymbolMap>,
    pub(super) postings: Arc<Postings>,
    pub(super) graph: Arc<GraphCell>,
    pub(super) recent: Arc<Vec<Arc<str>>>,
}

/// A memoized score vector and the key it was computed for.
type ScoreMemo = Option<(Vec<u64>, Arc<Vec<f64>>)>;

/// The lazily built file graph, shared by snapshots until a change alters some file's names, plus one
/// memoized score vector over it (consecutive requests from one file ask for the same scores).
#[derive(Default)]
pub struct GraphCell {
    graph: OnceLock<FileGraph>,
    scores: Mutex<ScoreMemo>,
}

impl IndexSnapshot {
    /// The workspace root (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Increases with every applied change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// All files, in path order.
    pub fn files(&self) -> impl Iterator<Item = &Arc<FileIndex>> {
        self.files.values()
    }

    /// Number of indexed files.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// One file by workspace-relative path.
    pub fn file(&self, path: &str) -> Option<&Arc<FileIndex>> {
        self.files.get(path)
    }

    /// The files directly inside `directory` (workspace-relative, `""` for the root), in path order.
    pub fn files_in_directory<'a>(
        &'a self,
        directory: &'a str,
    ) -> impl Iterator<Item = &'a Arc<FileIndex>> + 'a {
        let prefix: Arc<str> = if directory.is_empty() {
            Arc::from("")
        } else {
            Arc::from(format!("{directory}/"))
        };
        let start = prefix.clone();
        self.files
            .range(start..)
            .take_while(move |(path, _)| path.starts_with(&*prefix))
            .filter(move |(path, _)| {
                !path[directory.len()..]
                    .trim_start_matches('/')
                    .contains('/')
            })
            .map(|(_, file)| file)
    }

    /// Paths of the files defining `name`, sorted.
    pub fn definers(&self, name: &str) -> &[Arc<str>] {
        self.definers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Every definition of `name`, in path order.
    pub fn definitions_of<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Arc<FileIndex>, &'a Definition)> + 'a {
        self.definers(name).iter().flat_map(move |path| {
            self.file(path)
                .into_iter()
                .flat_map(move |file| file.definitions.iter().map(move |d| (file, d)))
                .filter(move |(_, d)| &*d.name == name)
        })
    }

    /// The inverted index of window terms.
    pub fn postings(&self) -> &Postings {
        &self.postings
    }

    /// The file graph, built on first use and shared by later snapshots until a change alters any file's
    /// names.
    pub fn graph(&self) -> &FileGraph {
        self.graph
            .graph
            .get_or_init(|| FileGraph::build(&self.files, &self.definers))
    }

    /// Scores over the graph's nodes for a caller-defined `key` (e.g. PageRank seeds), computed once per
    /// graph and key: the index does not know what the scores mean, only that they depend on nothing else.
    pub fn graph_scores(
        &self,
        key: Vec<u64>,
        compute: impl FnOnce(&FileGraph) -> Vec<f64>,
    ) -> Arc<Vec<f64>> {
        if let Ok(memo) = self.graph.scores.lock() {
            if let Some((memo_key, scores)) = memo.as_ref() {
                if *memo_key == key {
                    return scores.clone();
                }
            }
        }
        let scores = Arc::new(compute(self.graph()));
        if let Ok(mut memo) = self.graph.scores.lock() {
            *memo = Some((key, scores.clone()));
        }
        scores
    }

    /// Recently edited files, most recent first.
    pub fn recent_files(&self) -> &[Arc<str>] {
        &self.recent
    }

    /// A deterministic dump of the whole index state (files with every symbol and window, and the symbol
    /// table and the postings), used to prove that incremental updates equal a full re-index. Recency is excluded: it is
    /// history, not content.
    pub fn state_dump(&self) -> String {
        let mut out = String::new();
        for file in self.files.values() {
            let _ = writeln!(out, "{file:#?}");
        }
        let sorted: BTreeMap<_, _> = self.definers.iter().collect();
        let _ = writeln!(out, "{sorted:#?}");
        out.push_str(&self.postings.dump());
        out
    }
}
