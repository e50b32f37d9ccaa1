//! The file graph: an edge from file A to file B for every name A references that B defines, weighted as in
//! Aider's repository map (long compound identifiers count more, names defined in many files and private
//! names count less, repeated references count as the square root of their number).

use std::collections::HashMap;
use std::sync::Arc;

use super::file_index::{FileMap, SymbolMap};

/// Names defined in more files than this are ambiguous and weigh less.
const AMBIGUOUS_DEFINERS: usize = 5;
/// Names defined in more files than this (`new`, `from`, `default`…) add no edges: they carry no signal and
/// would connect every file to every other (tens of millions of edges on a large repository).
const MAX_DEFINERS_FOR_EDGES: usize = 32;
/// Compound identifiers at least this long are specific and weigh more.
const SPECIFIC_NAME_BYTES: usize = 8;

/// A weighted directed graph over the indexed files (nodes are paths in sorted order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileGraph {
    /// Node paths, sorted.
    pub paths: Vec<Arc<str>>,
    /// Out-edges of every node: (target node, weight), sorted by target. No self-edges.
    pub out_edges: Vec<Vec<(u32, f32)>>,
    /// For every defined name: how many files reference it (a name's popularity).
    pub referencing_files: HashMap<Box<str>, u32>,
}

impl FileGraph {
    /// Builds the graph from every file's references and the symbol table. Deterministic: names are visited
    /// in sorted order so that floating-point sums never depend on hash-map order.
    pub fn build(files: &FileMap, definers: &SymbolMap) -> Self {
        let paths: Vec<Arc<str>> = files.keys().cloned().collect();
        let node_of: HashMap<&str, u32> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (&**p, i as u32))
            .collect();
        let mut out_edges = Vec::with_capacity(paths.len());
        let mut referencing_files: HashMap<Box<str>, u32> = HashMap::new();
        let mut counts: HashMap<&str, u32> = HashMap::new();
        let mut weights: HashMap<u32, f32> = HashMap::new();
        for (from, file) in files.values().enumerate() {
            counts.clear();
            weights.clear();
            for reference in &file.references {
                *counts.entry(&reference.name).or_default() += 1;
            }
            let mut names: Vec<(&str, u32)> = counts.iter().map(|(n, c)| (*n, *c)).collect();
            names.sort_unstable();
            for (name, count) in names {
                let Some(targets) = definers.get(name) else {
                    continue;
                };
                match referencing_files.get_mut(name) {
                    Some(count) => *count += 1,
                    None => {
                        referencing_files.insert(name.into(), 1);
                    }
                }
                if targets.len() > MAX_DEFINERS_FOR_EDGES {
                    continue;
                }
                let weight = name_weight(name, targets.len()) * (count as f32).sqrt();
                for target in targets {
                    let Some(&to) = node_of.get(&**target) else {
                        continue;
                    };
                    if to as usize != from {
                        *weights.entry(to).or_default() += weight;
                    }
                }
            }
            let mut edges: Vec<(u32, f32)> = weights.iter().map(|(t, w)| (*t, *w)).collect();
            edges.sort_unstable_by_key(|(t, _)| *t);
            out_edges.push(edges);
        }
        Self {
            paths,
            out_edges,
            referencing_files,
        }
    }

    /// How many files reference `name` (0 for names nothing defines).
    pub fn reference_files(&self, name: &str) -> u32 {
        self.referencing_files.get(name).copied().unwrap_or(0)
    }

    /// The node of a path.
    pub fn node(&self, path: &str) -> Option<usize> {
        self.paths.binary_search_by(|p| (**p).cmp(path)).ok()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.out_edges.iter().map(Vec::len).sum()
    }
}

/// Aider's identifier multiplier (without the query-dependent "mentioned" and "chat file" factors, which the
/// ranker applies through personalisation instead).
pub fn name_weight(name: &str, definer_count: usize) -> f32 {
    let has_alpha = name.bytes().any(|b| b.is_ascii_alphabetic());
    let snake = name.contains('_') && has_alpha;
    let camel = name.bytes().any(|b| b.is_ascii_uppercase())
        && name.bytes().any(|b| b.is_ascii_lowercase());
    let mut weight = 1.0;
    if (snake || camel) && name.len() >= SPECIFIC_NAME_BYTES {
        weight *= 10.0;
    }
    if name.starts_with('_') {
        weight *= 0.1;
    }
    if definer_count > AMBIGUOUS_DEFINERS {
        weight *= 0.1;
    }
    weight
}
