//! Which edit format an answer is written in, and the blocks it describes. Tried in order, first match wins:
//!
//! 1. SEARCH/REPLACE blocks (the format the prompt asks for; [`super::parse`]);
//! 2. a unified diff ([`super::udiff`]);
//! 3. whole files in fences ([`super::whole`]): only for files the model was shown whole (never an excerpt,
//!    which would truncate the file), files that do not exist yet (created), and an unnamed fence when one
//!    file is in play. Each becomes one block whose SEARCH is the exact content the model saw, so the stale
//!    check and the matcher treat it like any other block; the truncation guard (`plausible.rs`) then judges
//!    whether the new content is plausibly the whole file.

use std::path::Path;

use super::parse::{parse_answer_for, EditBlock, ParseError};
use super::paths;
use super::udiff::parse_unified_diff;
use super::whole::{parse_whole_files, WholeFile};
use super::SeenFiles;

/// How an answer wrote its edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerFormat {
    /// SEARCH/REPLACE blocks.
    #[default]
    SearchReplace,
    /// A unified diff.
    UnifiedDiff,
    /// Complete files in fences.
    WholeFiles,
}

impl AnswerFormat {
    /// `search-replace`, `unified-diff` or `whole-files` (the words of the JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerFormat::SearchReplace => "search-replace",
            AnswerFormat::UnifiedDiff => "unified-diff",
            AnswerFormat::WholeFiles => "whole-files",
        }
    }
}

/// The blocks an answer describes and the format it used.
pub(super) struct Reading {
    pub blocks: Vec<EditBlock>,
    pub format: AnswerFormat,
}

/// Reads `answer` in the first format that finds edits in it. `default_path` is the one file in play, if any.
pub(super) fn read_answer(
    root: &Path,
    answer: &str,
    seen: Option<&SeenFiles>,
    default_path: Option<&str>,
) -> Result<Reading, ParseError> {
    match parse_answer_for(answer, default_path) {
        Err(ParseError::NoBlocks) => {}
        parsed => {
            return parsed.map(|blocks| Reading {
                blocks,
                format: AnswerFormat::SearchReplace,
            })
        }
    }
    match parse_unified_diff(answer, default_path) {
        Err(ParseError::NoBlocks) => {}
        parsed => {
            return parsed.map(|blocks| Reading {
                blocks,
                format: AnswerFormat::UnifiedDiff,
            })
        }
    }
    let blocks = whole_file_blocks(root, answer, seen, default_path);
    if blocks.is_empty() {
        return Err(ParseError::NoBlocks);
    }
    Ok(Reading {
        blocks,
        format: AnswerFormat::WholeFiles,
    })
}

/// The fences of an answer read as whole files (see the module documentation for which files qualify). When a
/// file is written twice, the last version counts (models show the old file, then the new one).
fn whole_file_blocks(
    root: &Path,
    answer: &str,
    seen: Option<&SeenFiles>,
    default_path: Option<&str>,
) -> Vec<EditBlock> {
    let Some(seen) = seen else {
        return Vec::new();
    };
    let fences = parse_whole_files(answer);
    let mut blocks: Vec<EditBlock> = Vec::new();
    for fence in fences.iter().filter(|f| f.path.is_some()) {
        if let Some(block) = fence
            .path
            .as_deref()
            .and_then(|p| whole_file(root, seen, p, fence))
        {
            blocks.retain(|b| b.path != block.path);
            blocks.push(block);
        }
    }
    if blocks.is_empty() {
        // One unnamed code fence and one file in play: that file, whole.
        let mut unnamed = fences.iter().filter(|f| f.path.is_none() && !f.not_code);
        if let (Some(fence), None, Some(path)) = (unnamed.next(), unnamed.next(), default_path) {
            blocks.extend(whole_file(root, seen, path, fence));
        }
    }
    blocks
}

/// One fence as a whole-file block for `written` (the path as the model or the caller wrote it), if the file
/// qualifies. A path that names no file but is the tail of exactly one file the model was shown
/// (`lib.rs` for `src/lib.rs`) means that file: creating a second `lib.rs` is never what the model meant.
fn whole_file(
    root: &Path,
    seen: &SeenFiles,
    written: &str,
    fence: &WholeFile,
) -> Option<EditBlock> {
    let mut resolved = paths::resolve(root, written).ok()?;
    if seen.get(&resolved.rel).is_none() && !resolved.abs.exists() {
        let suffix = format!("/{}", resolved.rel);
        let mut matches = seen.paths().filter(|p| p.ends_with(&suffix));
        match (matches.next(), matches.next()) {
            (Some(only), None) => resolved = paths::resolve(root, only).ok()?,
            (Some(_), Some(_)) => return None,
            (None, _) => {}
        }
    }
    let search = if seen.shown_whole(&resolved.rel) {
        let before = std::str::from_utf8(seen.get(&resolved.rel)?).ok()?;
        before.lines().map(str::to_string).collect()
    } else if seen.get(&resolved.rel).is_none() && !resolved.abs.exists() {
        // A new file: an empty SEARCH creates it.
        Vec::new()
    } else {
        return None;
    };
    Some(EditBlock {
        path: resolved.rel,
        search,
        replace: fence.lines.clone(),
        answer_line: fence.answer_line,
    })
}
