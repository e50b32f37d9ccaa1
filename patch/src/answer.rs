//! Which edit format an answer is written in, and the blocks it describes. Tried in order, first match wins:
//!
//! 1. SEARCH/REPLACE blocks (the format the prompt asks for; [`super::parse`]);
//! 2. a unified diff ([`super::udiff`]);
//! 3. whole files in fences ([`super::whole`]): only for files the model was shown whole (never an excerpt,
//!    which would truncate the file), files that do not exist yet (created), and an unnamed fence when one
//!    file is in play. Each becomes one block whose SEARCH is the exact content the model saw, so the stale
//!    check and the matcher treat it like any other block; the truncation guard (`plausible.rs`) then judges
//!    whether the new content is plausibly the whole file.
//!
//! Small models often misplace a file (`src/game.py` for `game.py`, `lib.rs` for `src/lib.rs`). A path that names
//! no existing file, in a block that edits (not one that creates), is taken as the only file of that name the
//! model was shown, if there is exactly one ([`Reading::guessed`] lists these, for a warning); a whole-file fence
//! is treated the same way before it may create a file. Never a guess between two files.

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
    /// Paths taken as another file the model saw: (as written, root-relative path used).
    pub guessed: Vec<(String, String)>,
}

/// Reads `answer` in the first format that finds edits in it. `default_path` is the one file in play, if any.
pub(super) fn read_answer(
    root: &Path,
    answer: &str,
    seen: Option<&SeenFiles>,
    default_path: Option<&str>,
) -> Result<Reading, ParseError> {
    let (blocks, format) = match parse_answer_for(answer, default_path) {
        Err(ParseError::NoBlocks) => match parse_unified_diff(answer, default_path) {
            Err(ParseError::NoBlocks) => {
                let (blocks, guessed) = whole_file_blocks(root, answer, seen, default_path);
                if blocks.is_empty() {
                    return Err(ParseError::NoBlocks);
                }
                return Ok(Reading {
                    blocks,
                    format: AnswerFormat::WholeFiles,
                    guessed,
                });
            }
            parsed => (parsed?, AnswerFormat::UnifiedDiff),
        },
        parsed => (parsed?, AnswerFormat::SearchReplace),
    };
    let mut reading = Reading {
        blocks,
        format,
        guessed: Vec::new(),
    };
    if let Some(seen) = seen {
        for block in reading.blocks.iter_mut().filter(|b| !b.creates_file()) {
            if let Some(rel) = only_seen_namesake(root, seen, &block.path) {
                reading
                    .guessed
                    .push((std::mem::replace(&mut block.path, rel.clone()), rel));
            }
        }
    }
    Ok(reading)
}

/// When `written` names no file in the tree nor one the model saw — a misplaced path, or one that does not
/// resolve inside the root at all (`/src/text.py`, as the default model wrote it in the check-loop benchmark):
/// the root-relative path of the only file the model saw with the same file name, if there is exactly one. The
/// result is always a file the model was shown, so a guess never leads outside the workspace.
fn only_seen_namesake(root: &Path, seen: &SeenFiles, written: &str) -> Option<String> {
    if let Ok(resolved) = paths::resolve(root, written) {
        if seen.get(&resolved.rel).is_some() || resolved.abs.exists() {
            return None;
        }
    }
    let name = written
        .rsplit(['/', '\\'])
        .next()
        .filter(|n| !n.is_empty())?;
    let mut namesakes = seen.paths().filter(|p| p.rsplit('/').next() == Some(name));
    match (namesakes.next(), namesakes.next()) {
        (Some(only), None) => Some(only.to_string()),
        _ => None,
    }
}

/// The fences of an answer read as whole files (see the module documentation for which files qualify), and the
/// misplaced paths taken as another file. When a file is written twice, the last version counts (models show
/// the old file, then the new one).
fn whole_file_blocks(
    root: &Path,
    answer: &str,
    seen: Option<&SeenFiles>,
    default_path: Option<&str>,
) -> (Vec<EditBlock>, Vec<(String, String)>) {
    let Some(seen) = seen else {
        return (Vec::new(), Vec::new());
    };
    let fences = parse_whole_files(answer);
    let mut blocks: Vec<EditBlock> = Vec::new();
    let mut guessed = Vec::new();
    for fence in &fences {
        let Some(written) = fence.path.as_deref() else {
            continue;
        };
        let Some(block) = whole_file(root, seen, written, fence) else {
            continue;
        };
        if block.path != written && paths::resolve(root, written).is_ok_and(|r| r.rel != block.path)
        {
            guessed.push((written.to_string(), block.path.clone()));
        }
        blocks.retain(|b| b.path != block.path);
        blocks.push(block);
    }
    if blocks.is_empty() {
        // One unnamed code fence and one file in play: that file, whole.
        let mut unnamed = fences.iter().filter(|f| f.path.is_none() && !f.not_code);
        if let (Some(fence), None, Some(path)) = (unnamed.next(), unnamed.next(), default_path) {
            blocks.extend(whole_file(root, seen, path, fence));
        }
    }
    (blocks, guessed)
}

/// One fence as a whole-file block for `written` (the path as the model or the caller wrote it), if the file
/// qualifies (see [`only_seen_namesake`] for a misplaced path).
fn whole_file(
    root: &Path,
    seen: &SeenFiles,
    written: &str,
    fence: &WholeFile,
) -> Option<EditBlock> {
    let rel = match only_seen_namesake(root, seen, written) {
        Some(rel) => rel,
        None => paths::resolve(root, written).ok()?.rel,
    };
    let resolved = paths::resolve(root, &rel).ok()?;
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
