//! The ranking signals, each an ordered list (best first): definitions of the current file's identifiers
//! (those near the cursor first), lexically similar windows, the files the current file imports, the files
//! defining the names it uses, the file graph's personalised PageRank, recent edits and directory distance.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::imports::{imported_files, imported_names};
use super::lexical::{query_terms, rank_windows, Excluded};
use super::pagerank::personalized_pagerank;
use super::{ContextRequest, PackConfig};
use qwen_index::{FileIndex, IndexSnapshot};

/// Definitions of a name with more definers than this are ambiguous and go to the end of the list.
const AMBIGUOUS_DEFINERS: usize = 5;
/// At most this many definitions are taken per name.
const DEFINITIONS_PER_NAME: usize = 5;
/// Names of the current file resolved to definition snippets, at most (those near the cursor come first).
const MAX_DEFINITION_NAMES: usize = 96;
/// Doc comments and attributes directly above a definition are included, up to this many lines.
const MAX_DOC_LINES: u32 = 12;

/// A run of whole lines of one file (0-based, inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Workspace-relative path.
    pub path: Arc<str>,
    /// First line.
    pub start_line: u32,
    /// Last line (inclusive).
    pub end_line: u32,
}

/// Every signal's ranked list for one request.
#[derive(Debug, Default)]
pub struct Signals {
    /// Definition snippets of identifiers near the cursor, closest identifier first.
    pub definitions: Vec<Span>,
    /// Windows similar to the text before the cursor (or the instruction), most similar first.
    pub similar: Vec<Span>,
    /// Files by personalised PageRank, highest first (files the walk cannot reach are absent).
    pub graph: Vec<Arc<str>>,
    /// Recently edited files, most recent first.
    pub recent: Vec<Arc<str>>,
    /// All files by directory distance from the current file, nearest first.
    pub nearby: Vec<Arc<str>>,
    /// Files the current file imports (resolved), in import order.
    pub imported: Vec<Arc<str>>,
    /// Files defining names the current file uses, most names (weighted as in the graph) first.
    pub uses: Vec<Arc<str>>,
    /// How the current file knows each name it mentions: imported by name, or only used.
    pub names: HashMap<Box<str>, NameUse>,
    /// Names referenced by the files nearest the current one in the graph (and the files it imports),
    /// weighted by their rank and scaled so the most used is 1: what code like this file calls.
    pub neighbour_uses: HashMap<Box<str>, f64>,
}

/// How the current file mentions a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameUse {
    /// Named in an import statement (`use a::B`, `from x import y`, `import {y}`): about to be used.
    Imported,
    /// Used in its text.
    Used,
}

/// Collects every signal. `current` is the current file's entry when it is indexed.
pub fn collect_signals(
    snapshot: &IndexSnapshot,
    request: &ContextRequest,
    config: &PackConfig,
    current: Option<&FileIndex>,
) -> Signals {
    let (window_start, window_end) = config.cursor_window(request);
    let mut names = current.map(current_names).unwrap_or_default();
    // An instruction's identifiers are what the request is about: as strong as an import.
    if let Some(instruction) = &request.instruction {
        for word in identifiers_in(instruction) {
            names.insert(word.into(), NameUse::Imported);
        }
    }
    let definitions = definition_spans(snapshot, request, config, current, &names);
    let query_text = lexical_query(request, config, current);
    let terms = query_terms(&query_text);
    let excluded = Excluded {
        path: &request.path,
        start_line: window_start,
        end_line: window_end,
    };
    let similar = rank_windows(snapshot, &terms, config.max_similar_windows, excluded)
        .into_iter()
        .map(|hit| Span {
            path: hit.file.path.clone(),
            start_line: hit.window.start_line,
            end_line: hit.window.end_line,
        })
        .collect();
    let recent: Vec<Arc<str>> = snapshot
        .recent_files()
        .iter()
        .filter(|p| ***p != *request.path)
        .cloned()
        .collect();
    let imported = current.map_or_else(Vec::new, |file| imported_files(snapshot, file));
    let graph = graph_ranking(snapshot, request, &imported);
    let neighbour_uses = neighbour_uses(snapshot, &imported, &graph);
    Signals {
        definitions,
        similar,
        graph,
        neighbour_uses,
        nearby: nearby_files(snapshot, &request.path),
        recent,
        uses: files_using(snapshot, &request.path, &names),
        imported,
        names,
    }
}

/// Neighbours whose references are counted.
const NEIGHBOURS: usize = 24;

/// Names referenced by the imported files and the top of the graph ranking, each file weighing
/// 1 / (rank + 4) spread over its distinct names; scaled so that the largest is 1.
fn neighbour_uses(
    snapshot: &IndexSnapshot,
    imported: &[Arc<str>],
    graph: &[Arc<str>],
) -> HashMap<Box<str>, f64> {
    let mut uses: HashMap<Box<str>, f64> = HashMap::new();
    let mut seen = HashSet::new();
    let neighbours = imported.iter().chain(graph).filter(|p| seen.insert(*p));
    for (rank, path) in neighbours.take(NEIGHBOURS).enumerate() {
        let Some(file) = snapshot.file(path) else {
            continue;
        };
        let names: HashSet<&str> = file.references.iter().map(|r| &*r.name).collect();
        let weight = 1.0 / ((rank + 4) as f64 * (names.len() as f64).sqrt().max(1.0));
        for name in names {
            match uses.get_mut(name) {
                Some(total) => *total += weight,
                None => {
                    uses.insert(name.into(), weight);
                }
            }
        }
    }
    let largest = uses.values().copied().fold(0.0, f64::max);
    if largest > 0.0 {
        for value in uses.values_mut() {
            *value /= largest;
        }
    }
    uses
}

/// Every identifier of the current file (at least 3 bytes), and whether an import statement names it.
fn current_names(file: &FileIndex) -> HashMap<Box<str>, NameUse> {
    let mut names: HashMap<Box<str>, NameUse> = HashMap::new();
    for word in identifiers_in(&file.text) {
        if !names.contains_key(word) {
            names.insert(word.into(), NameUse::Used);
        }
    }
    for name in imported_names(file) {
        names.insert(name.into(), NameUse::Imported);
    }
    names
}

/// Files defining the names of the current file, by the summed weight of those names (Aider's weights:
/// specific names count more, names defined in many files less; imported names three times).
fn files_using(
    snapshot: &IndexSnapshot,
    current: &str,
    names: &HashMap<Box<str>, NameUse>,
) -> Vec<Arc<str>> {
    let mut weights: HashMap<&Arc<str>, f64> = HashMap::new();
    for (name, how) in names {
        let definers = snapshot.definers(name);
        if definers.is_empty() || definers.len() > AMBIGUOUS_DEFINERS {
            continue;
        }
        let factor = if *how == NameUse::Imported { 3.0 } else { 1.0 };
        let weight = f64::from(qwen_index::graph::name_weight(name, definers.len())) * factor;
        for path in definers {
            if **path != *current {
                *weights.entry(path).or_default() += weight;
            }
        }
    }
    let mut ranked: Vec<(&Arc<str>, f64)> = weights.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked.into_iter().map(|(path, _)| path.clone()).collect()
}

/// Names near the cursor (or in the selection, or the instruction), closest first, resolved to definitions.
fn definition_spans(
    snapshot: &IndexSnapshot,
    request: &ContextRequest,
    config: &PackConfig,
    current: Option<&FileIndex>,
    file_names: &HashMap<Box<str>, NameUse>,
) -> Vec<Span> {
    let mut names: Vec<&str> = Vec::new();
    let mut instruction_names: Vec<String> = Vec::new();
    if let Some(instruction) = &request.instruction {
        instruction_names = identifiers_in(instruction).map(str::to_owned).collect();
    }
    names.extend(instruction_names.iter().map(String::as_str));
    if let Some(file) = current {
        let (from, to) = match request.selection {
            Some((start, end)) => (start, end),
            None => (
                request
                    .cursor_line
                    .saturating_sub(config.identifier_lines_before),
                request
                    .cursor_line
                    .saturating_add(config.identifier_lines_after),
            ),
        };
        let mut nearby: Vec<(u32, &str)> = file
            .references
            .iter()
            .filter(|r| from <= r.line && r.line <= to)
            .map(|r| (r.line.abs_diff(request.cursor_line), &*r.name))
            .collect();
        nearby.sort_by_key(|&(distance, _)| distance);
        names.extend(nearby.into_iter().map(|(_, name)| name));
        // Then every other reference of the file, nearest to the cursor first: the user is about to type a
        // name the file has used, just not near the cursor.
        if request.selection.is_none() {
            let mut rest: Vec<(u32, &str)> = file
                .references
                .iter()
                .map(|r| (r.line.abs_diff(request.cursor_line), &*r.name))
                .collect();
            rest.sort_by_key(|&(distance, _)| distance);
            names.extend(rest.into_iter().map(|(_, name)| name));
        }
    }
    // Names only imported (never called or typed yet) come right after those near the cursor's.
    let mut imported: Vec<&str> = file_names
        .iter()
        .filter(|(_, how)| **how == NameUse::Imported)
        .map(|(name, _)| &**name)
        .collect();
    imported.sort_unstable();
    let near = names.len().min(8);
    let tail = names.split_off(near);
    names.extend(imported);
    names.extend(tail);
    let mut seen = HashSet::new();
    let mut precise = Vec::new();
    let mut ambiguous = Vec::new();
    for name in names {
        if seen.len() >= MAX_DEFINITION_NAMES {
            break;
        }
        if !seen.insert(name) {
            continue;
        }
        let definers = snapshot.definers(name).len();
        if definers == 0 {
            continue;
        }
        let target = if definers > AMBIGUOUS_DEFINERS {
            &mut ambiguous
        } else {
            &mut precise
        };
        // A Python call of `area` means a Python `area`: prefer definitions in the current language family
        // whenever there are any.
        let family = current.and_then(|f| f.language).map(|spec| spec.family);
        let same_family = |f: &FileIndex| f.language.map(|spec| spec.family) == family;
        let any_same = snapshot.definitions_of(name).any(|(f, _)| same_family(f));
        // Nearest first: with several candidates, the definition in the current crate or package is the
        // likely one (and alphabetical order would favour whatever directory sorts first).
        let mut definitions: Vec<_> = snapshot
            .definitions_of(name)
            .filter(|(f, _)| !any_same || same_family(f))
            .map(|(f, d)| (directory_distance(&request.path, &f.path), f, d))
            .collect();
        definitions.sort_by(|a, b| {
            (a.0, &a.1.path, a.2.start_byte).cmp(&(b.0, &b.1.path, b.2.start_byte))
        });
        for (_, file, definition) in definitions.into_iter().take(DEFINITIONS_PER_NAME) {
            let start = doc_start(file, definition);
            let end = definition
                .end_line
                .min(definition.start_line + config.max_snippet_lines.saturating_sub(1));
            target.push(Span {
                path: file.path.clone(),
                start_line: start,
                end_line: end,
            });
        }
    }
    precise.extend(ambiguous);
    let mut unique = HashSet::new();
    precise.retain(|span| unique.insert(span.clone()));
    precise
}

/// Identifiers (at least 3 bytes) in free text, in order.
fn identifiers_in(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 3 && w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// The first line of the doc comments and attributes directly above `line`.
fn doc_start(file: &FileIndex, definition: &qwen_syntax::Definition) -> u32 {
    let is_doc = |l: &str| {
        let t = l.trim_start();
        [
            "///", "//!", "//", "#[", "#", "@", "/**", "/*", "*", "\"\"\"",
        ]
        .iter()
        .any(|p| t.starts_with(p))
    };
    // Walk back line by line from the definition's first byte: proportional to the comment, not the file.
    let text = &file.text[..(definition.start_byte as usize).min(file.text.len())];
    let mut end = text.rfind('\n').map_or(0, |i| i);
    let mut above = 0;
    while above < MAX_DOC_LINES.min(definition.start_line) {
        let start = text[..end].rfind('\n').map_or(0, |i| i + 1);
        if !is_doc(&text[start..end]) {
            break;
        }
        above += 1;
        if start == 0 {
            break;
        }
        end = start - 1;
    }
    definition.start_line - above
}

/// The lexical query: the instruction and selection when given, else the lines just before the cursor.
fn lexical_query(
    request: &ContextRequest,
    config: &PackConfig,
    current: Option<&FileIndex>,
) -> String {
    let mut query = request.instruction.clone().unwrap_or_default();
    let Some(file) = current else { return query };
    let (start, end) = match request.selection {
        Some(selection) => selection,
        None if request.instruction.is_some() => return query,
        None => (
            request.cursor_line.saturating_sub(config.query_lines),
            request.cursor_line,
        ),
    };
    query.push('\n');
    query.push_str(&file.lines(start, end));
    query
}

/// Files by PageRank seeded with the current file, the files it imports and the recently edited ones
/// (decaying weights).
fn graph_ranking(
    snapshot: &IndexSnapshot,
    request: &ContextRequest,
    imported: &[Arc<str>],
) -> Vec<Arc<str>> {
    let graph = snapshot.graph();
    let mut seeds = Vec::new();
    if let Some(node) = graph.node(&request.path) {
        seeds.push((node, 1.0));
    }
    let share = 0.5 / imported.len().max(1) as f64;
    for path in imported {
        if let Some(node) = graph.node(path) {
            seeds.push((node, share));
        }
    }
    for (i, path) in snapshot.recent_files().iter().enumerate() {
        if let Some(node) = graph.node(path) {
            seeds.push((node, 0.5 / (i + 1) as f64));
        }
    }
    if seeds.is_empty() {
        return Vec::new();
    }
    let key = seeds
        .iter()
        .flat_map(|&(node, weight)| [node as u64, f64::to_bits(weight)])
        .collect();
    let rank = snapshot.graph_scores(key, |graph| personalized_pagerank(graph, &seeds));
    let mut ranked: Vec<(usize, f64)> = rank
        .iter()
        .enumerate()
        .filter(|&(node, &score)| score > 1e-12 && *graph.paths[node] != *request.path)
        .map(|(node, &score)| (node, score))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .map(|(node, _)| graph.paths[node].clone())
        .collect()
}

/// Directory steps between the directories of two workspace-relative paths.
fn directory_distance(a: &str, b: &str) -> usize {
    let here = directories(a);
    let there = directories(b);
    let shared = here.iter().zip(&there).take_while(|(x, y)| x == y).count();
    here.len() - shared + there.len() - shared
}

/// Every other file by the number of directory steps from the current file's directory (ties by path).
fn nearby_files(snapshot: &IndexSnapshot, current: &str) -> Vec<Arc<str>> {
    let mut files: Vec<(usize, &Arc<str>)> = snapshot
        .files()
        .filter(|f| *f.path != *current)
        .map(|f| (directory_distance(current, &f.path), &f.path))
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p.clone()).collect()
}

fn directories(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    parts
}
