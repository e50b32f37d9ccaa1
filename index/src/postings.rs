//! The inverted index of window terms: term → every window whose bag holds it, plus the corpus totals BM25
//! needs (window count, summed bag length). Lexical ranking reads it instead of visiting every window.
//!
//! A pure function of the file map (lists sorted by path, then window index), maintained by the host on every
//! change: only the terms whose window lists differ between a file's old and new entry are touched. The map is
//! split into shards behind `Arc`s so that a change made while a snapshot is alive copies the few shards it
//! touches, not the whole index.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use super::file_index::FileMap;
use super::identifiers::TermId;
use super::{FileIndex, Window};

/// Number of shards (a power of two; a term's shard is its low bits: ids are hashes).
const SHARDS: usize = 256;

/// One window of one file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowRef {
    /// The file's workspace-relative path: one allocation per path across all lists of one `Postings`, so
    /// [`WindowRef::key`] identifies a window without comparing strings.
    pub path: Arc<str>,
    /// Index into the file's windows.
    pub window: u32,
}

impl WindowRef {
    /// (path allocation, window): equal exactly when the windows are, within one `Postings`.
    pub fn key(&self) -> (usize, u32) {
        (Arc::as_ptr(&self.path) as *const u8 as usize, self.window)
    }
}

type Shard = HashMap<TermId, Vec<WindowRef>>;

/// Term → windows, and corpus totals.
#[derive(Clone)]
pub struct Postings {
    shards: Vec<Arc<Shard>>,
    windows: usize,
    total_length: usize,
    /// The one path allocation every list uses for a file (see [`WindowRef::path`]).
    paths: HashMap<Arc<str>, Arc<str>>,
}

impl Default for Postings {
    fn default() -> Self {
        Postings {
            shards: (0..SHARDS).map(|_| Arc::default()).collect(),
            windows: 0,
            total_length: 0,
            paths: HashMap::new(),
        }
    }
}

impl Postings {
    /// The postings of every file (files are visited in path order, so every list comes out sorted).
    pub fn build(files: &FileMap) -> Postings {
        let mut postings = Postings::default();
        for (path, file) in files {
            postings.paths.insert(path.clone(), path.clone());
            postings.windows += file.windows.len();
            for (index, window) in file.windows.iter().enumerate() {
                postings.total_length += window.terms.len();
                for &term in window.terms.iter() {
                    Arc::make_mut(&mut postings.shards[shard_of(term)])
                        .entry(term)
                        .or_default()
                        .push(WindowRef {
                            path: path.clone(),
                            window: index as u32,
                        });
                }
            }
        }
        postings
    }

    /// Replaces `old`'s windows by `new`'s for `path` (either may be absent).
    pub fn update(&mut self, path: &Arc<str>, old: Option<&FileIndex>, new: Option<&FileIndex>) {
        let path = match new {
            Some(_) => self
                .paths
                .entry(path.clone())
                .or_insert_with(|| path.clone())
                .clone(),
            None => self.paths.remove(path).unwrap_or_else(|| path.clone()),
        };
        let path = &path;
        let old = old.map_or(&[][..], |f| &f.windows[..]);
        let new = new.map_or(&[][..], |f| &f.windows[..]);
        self.windows = self.windows + new.len() - old.len();
        self.total_length = self.total_length + bag_lengths(new) - bag_lengths(old);
        // Only windows that differ matter: a common prefix keeps its indices, and so does a common suffix
        // when the window count is unchanged.
        let prefix = old
            .iter()
            .zip(new)
            .take_while(|(a, b)| a.terms == b.terms)
            .count();
        let suffix = if old.len() == new.len() {
            old[prefix..]
                .iter()
                .rev()
                .zip(new[prefix..].iter().rev())
                .take_while(|(a, b)| a.terms == b.terms)
                .count()
        } else {
            0
        };
        let removed = pairs(&old[prefix..old.len() - suffix], prefix);
        let added = pairs(&new[prefix..new.len() - suffix], prefix);
        let (mut i, mut j) = (0, 0);
        while i < removed.len() || j < added.len() {
            let term = match (removed.get(i), added.get(j)) {
                (Some(a), Some(b)) => a.0.min(b.0),
                (Some(a), None) => a.0,
                (None, Some(b)) => b.0,
                (None, None) => break,
            };
            let i_end = i + removed[i..].iter().take_while(|p| p.0 == term).count();
            let j_end = j + added[j..].iter().take_while(|p| p.0 == term).count();
            let (gone, came) = (&removed[i..i_end], &added[j..j_end]);
            if gone != came {
                self.replace(term, path, gone, came);
            }
            (i, j) = (i_end, j_end);
        }
    }

    /// Replaces the entries `gone` of `path` in `term`'s list by `came` (both sorted by window index).
    fn replace(
        &mut self,
        term: TermId,
        path: &Arc<str>,
        gone: &[(TermId, u32)],
        came: &[(TermId, u32)],
    ) {
        let shard = Arc::make_mut(&mut self.shards[shard_of(term)]);
        let list = shard.entry(term).or_default();
        for &(_, window) in gone {
            let key = WindowRef {
                path: path.clone(),
                window,
            };
            if let Ok(at) = list.binary_search(&key) {
                list.remove(at);
            }
        }
        for &(_, window) in came {
            let key = WindowRef {
                path: path.clone(),
                window,
            };
            if let Err(at) = list.binary_search(&key) {
                list.insert(at, key);
            }
        }
        if list.is_empty() {
            shard.remove(&term);
        }
    }

    /// The windows whose bags hold `term`, sorted by path and window index.
    pub fn windows_with(&self, term: TermId) -> &[WindowRef] {
        self.shards[shard_of(term)]
            .get(&term)
            .map_or(&[], Vec::as_slice)
    }

    /// Number of windows in the index.
    pub fn window_count(&self) -> usize {
        self.windows
    }

    /// Sum of every window's bag length.
    pub fn total_length(&self) -> usize {
        self.total_length
    }

    /// A deterministic dump (terms in order), for the incremental == full comparison.
    pub fn dump(&self) -> String {
        let mut terms: Vec<(&TermId, &Vec<WindowRef>)> =
            self.shards.iter().flat_map(|s| s.iter()).collect();
        terms.sort_unstable_by_key(|&(t, _)| *t);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "postings: {} windows, total length {}",
            self.windows, self.total_length
        );
        for (term, list) in terms {
            let _ = write!(out, "{term:08x}:");
            for r in list {
                let _ = write!(out, " {}#{}", r.path, r.window);
            }
            out.push('\n');
        }
        out
    }
}

fn shard_of(term: TermId) -> usize {
    term as usize & (SHARDS - 1)
}

fn bag_lengths(windows: &[Window]) -> usize {
    windows.iter().map(|w| w.terms.len()).sum()
}

/// (term, window index) of every term of `windows` (the first at index `first`), sorted.
fn pairs(windows: &[Window], first: usize) -> Vec<(TermId, u32)> {
    let mut pairs: Vec<(TermId, u32)> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, w)| w.terms.iter().map(move |&t| (t, (first + i) as u32)))
        .collect();
    pairs.sort_unstable();
    pairs
}
