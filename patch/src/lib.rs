//! `patch`: turns a model's answer into a safe, `git apply`-able diff, and optionally writes it atomically.
//! Model-independent: the caller builds the prompt (embedding [`format::EDIT_FORMAT_INSTRUCTIONS`]), runs the
//! model and passes the raw answer here.
//!
//! Pipeline: read the answer in the first format that has edits ([`answer`]: SEARCH/REPLACE blocks
//! ([`parse`]), a unified diff ([`udiff`]), or whole files ([`whole`])) → resolve each path inside the root
//! ([`paths`]) → read the file and refuse binary/non-UTF-8 ones ([`source`]) → place every block
//! ([`matching`]) → refuse whole-file readings that are not plausibly whole ([`plausible`]) → render the diff
//! ([`diff`]) → report syntax errors the patch introduced ([`syntax_check`]) → on request, write atomically
//! ([`atomic`], journalled by [`journal`]), refusing `.git` and holding configuration edits for confirmation
//! ([`protected`]). Every problem in the answer is collected and reported at once, so one retry can fix them
//! all.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod answer;
pub mod atomic;
pub mod diff;
pub mod format;
pub mod journal;
pub(crate) mod lines;
mod markdown;
pub mod matching;
pub mod outcome;
pub mod parse;
pub mod paths;
pub mod plausible;
pub mod protected;
pub mod source;
pub mod syntax_check;
pub mod udiff;
pub mod whole;

use std::collections::{HashMap, HashSet};
use std::path::Path;

pub use answer::AnswerFormat;
pub use atomic::ApplyError;
pub use format::{render_block, EDIT_FORMAT_EXAMPLE, EDIT_FORMAT_INSTRUCTIONS};
pub use journal::{recover, JournalError, Recovered};
pub use matching::{IndentShift, MatchFailure, MatchKind};
pub use outcome::{
    exit_status, EditError, EditErrorKind, FileChange, FileStatus, PatchError, PatchExit,
    PatchOutcome, PatchStats, PatchWarning,
};
pub use parse::{parse_answer, parse_answer_for, EditBlock, ParseError};
pub use paths::PathError;
pub use plausible::NotWhole;
pub use source::SourceError;
pub use syntax_check::{NoSyntaxCheck, SyntaxChecker, TopLevelItem};
pub use udiff::parse_unified_diff;
pub use whole::{parse_whole_files, WholeFile};

use atomic::PlannedWrite;
use lines::LineText;
use matching::BlockEdit;
use source::Original;

/// The content of files as the model saw them (root-relative path → bytes), captured when the prompt was
/// built. A patch touching one of these files is refused if the file no longer holds those bytes. Files shown
/// whole (not as excerpts) are marked: only those may be rewritten by an answer that repeats the whole file.
#[derive(Debug, Clone, Default)]
pub struct SeenFiles {
    content: HashMap<String, Vec<u8>>,
    whole: HashSet<String>,
}

impl SeenFiles {
    /// Records what the model was shown of `rel` (`/`-separated, relative to the root): part of it.
    pub fn record(&mut self, rel: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let rel = rel.into();
        self.whole.remove(&rel);
        self.content.insert(rel, bytes.into());
    }

    /// Records that the model was shown all of `rel`, which holds `bytes`.
    pub fn record_whole(&mut self, rel: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let rel = rel.into();
        self.whole.insert(rel.clone());
        self.content.insert(rel, bytes.into());
    }

    /// The recorded content of `rel`.
    pub fn get(&self, rel: &str) -> Option<&[u8]> {
        self.content.get(rel).map(Vec::as_slice)
    }

    /// Whether the model was shown all of `rel`.
    pub fn shown_whole(&self, rel: &str) -> bool {
        self.whole.contains(rel)
    }

    /// Every recorded path.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.content.keys().map(String::as_str)
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty()
    }
}

/// Knobs for [`prepare`].
#[derive(Clone, Copy)]
pub struct PatchOptions<'a> {
    /// Reports syntax errors the patch introduces; [`NoSyntaxCheck`] to skip.
    pub checker: &'a dyn SyntaxChecker,
    /// What the model saw, if the caller captured it.
    pub seen: Option<&'a SeenFiles>,
    /// The current content of files open in an editor (unsaved changes): read instead of the disk. A patch
    /// computed against an overlay is for the editor to apply; [`PreparedPatch::apply`] refuses it unless the
    /// disk holds the same bytes.
    pub overlay: Option<&'a SeenFiles>,
    /// The one file in play (root-relative), if there is exactly one: blocks, hunks and a fence without a path
    /// edit it.
    pub default_path: Option<&'a str>,
    /// The user's instruction: top-level items it names may disappear from a whole-file answer.
    pub instruction: &'a str,
}

impl<'a> PatchOptions<'a> {
    /// Options with a syntax checker and no captured content.
    pub fn new(checker: &'a dyn SyntaxChecker) -> Self {
        PatchOptions {
            checker,
            seen: None,
            overlay: None,
            default_path: None,
            instruction: "",
        }
    }
}

/// A computed patch: the outcome to show, plus what `--apply` would write.
#[derive(Debug)]
pub struct PreparedPatch {
    outcome: PatchOutcome,
    writes: Vec<PlannedWrite>,
    /// The canonical root (where the apply's journal lives).
    root: std::path::PathBuf,
}

impl PreparedPatch {
    /// The diff and its summary.
    pub fn outcome(&self) -> &PatchOutcome {
        &self.outcome
    }

    /// Consumes the patch, keeping the outcome.
    pub fn into_outcome(self) -> PatchOutcome {
        self.outcome
    }

    /// Every changed file with its content before and after (sorted by path), for front ends that apply
    /// edits themselves (the LSP turns them into minimal text edits).
    pub fn files(&self) -> Vec<PatchedFile> {
        self.writes
            .iter()
            .map(|w| PatchedFile {
                path: w.rel.clone(),
                abs: w.abs.clone(),
                // Both sides were decoded or produced as UTF-8: the lossy conversion never replaces anything.
                before: w
                    .before
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
                after: String::from_utf8_lossy(&w.after).into_owned(),
            })
            .collect()
    }

    /// Writes every changed file atomically, and only if each still holds the content the patch was computed
    /// against; otherwise nothing is written. See [`atomic`] for the guarantees on failure. Refuses (writing
    /// nothing) a patch that edits configuration ([`protected::CONFIRM`]) or introduces syntax errors: see
    /// [`PreparedPatch::apply_with`].
    pub fn apply(&self) -> Result<(), PatchError> {
        self.apply_with(ApplyPolicy::default())
    }

    /// [`PreparedPatch::apply`], writing what `policy` allows.
    pub fn apply_with(&self, policy: ApplyPolicy) -> Result<(), PatchError> {
        let confirm = self.needs_confirmation();
        if !policy.allow_config_edits && !confirm.is_empty() {
            return Err(PatchError::NeedsConfirmation { paths: confirm });
        }
        let broken: Vec<String> = self
            .outcome
            .warnings
            .iter()
            .filter_map(|w| match w {
                PatchWarning::SyntaxErrors { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        if !policy.allow_syntax_errors && !broken.is_empty() {
            return Err(PatchError::SyntaxErrors { paths: broken });
        }
        atomic::write_all(&self.root, &self.writes).map_err(PatchError::from)
    }

    /// The changed files that configure an editor, CI, a build tool or a shell, with what each configures.
    pub fn needs_confirmation(&self) -> Vec<(String, &'static str)> {
        self.writes
            .iter()
            .filter_map(|w| Some((w.rel.clone(), protected::needs_confirmation(&w.rel)?)))
            .collect()
    }
}

/// What [`PreparedPatch::apply_with`] may write beyond the default (the user asked for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyPolicy {
    /// Write editor, CI, build-tool and shell configuration ([`protected::CONFIRM`]).
    pub allow_config_edits: bool,
    /// Write files the patch leaves with syntax errors they did not have.
    pub allow_syntax_errors: bool,
}

/// One changed file of a [`PreparedPatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedFile {
    /// `/`-separated path relative to the root (the real path).
    pub path: String,
    /// Absolute path.
    pub abs: std::path::PathBuf,
    /// The content the patch was computed against; `None` for a new file.
    pub before: Option<String>,
    /// The new content.
    pub after: String,
}

/// One file the answer edits, with the blocks (indices into the parsed blocks) that target it.
struct Target {
    rel: String,
    abs: std::path::PathBuf,
    written: String,
    via_link: bool,
    blocks: Vec<usize>,
}

/// One file's result before rendering.
struct Change {
    rel: String,
    abs: std::path::PathBuf,
    before: Option<Original>,
    after: String,
}

/// Computes the patch an answer describes for the tree under `root`. Reads files; writes nothing.
pub fn prepare(
    root: &Path,
    answer: &str,
    options: &PatchOptions<'_>,
) -> Result<PreparedPatch, PatchError> {
    let root_canonical = std::fs::canonicalize(root).map_err(|source| PatchError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    if !root_canonical.is_dir() {
        let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
        return Err(PatchError::Root {
            path: root.to_path_buf(),
            source,
        });
    }
    let mut warnings = Vec::new();
    let reading = answer::read_answer(&root_canonical, answer, options.seen, options.default_path)?;
    let blocks = reading.blocks;
    for (written, path) in reading.guessed {
        warnings.push(PatchWarning::GuessedPath { written, path });
    }
    if reading.format == AnswerFormat::WholeFiles {
        for block in &blocks {
            warnings.push(PatchWarning::WholeFile {
                path: block.path.clone(),
            });
        }
    }
    let _span = tracing::debug_span!("patch_prepare", blocks = blocks.len()).entered();

    let mut errors = Vec::new();
    let targets = resolve_targets(&root_canonical, &blocks, &mut errors);
    let mut fuzzy_matches = 0;
    let mut changes = Vec::new();
    let mut stale = Vec::new();
    for target in &targets {
        if target.via_link {
            warnings.push(PatchWarning::ThroughLink {
                written: target.written.clone(),
                path: target.rel.clone(),
            });
        }
        let from_overlay = options
            .overlay
            .and_then(|overlay| overlay.get(&target.rel))
            .map(|bytes| source::decode(bytes.to_vec(), &target.rel).map(Some));
        let read = from_overlay.unwrap_or_else(|| source::read_original(&target.abs, &target.rel));
        let original = match read {
            Ok(original) => original,
            Err(err) => {
                errors.push(block_error(
                    &blocks,
                    target.blocks.first().copied().unwrap_or(0),
                    err.into(),
                ));
                continue;
            }
        };
        if let Some(seen) = options.seen.and_then(|seen| seen.get(&target.rel)) {
            if original.as_ref().is_none_or(|o| o.bytes != seen) {
                stale.push(target.rel.clone());
            }
        }
        match edit_file(target, original.as_ref(), &blocks) {
            Ok((after, _)) if reading.format == AnswerFormat::WholeFiles && original.is_some() => {
                let before = original.as_ref().map_or("", |o| o.text.as_str());
                match plausible::check_whole(
                    options.checker,
                    &target.rel,
                    before,
                    &after,
                    options.instruction,
                ) {
                    Ok(()) => changes.push(Change {
                        rel: target.rel.clone(),
                        abs: target.abs.clone(),
                        before: original,
                        after,
                    }),
                    Err(not_whole) => errors.push(block_error(
                        &blocks,
                        target.blocks.first().copied().unwrap_or(0),
                        EditErrorKind::NotWhole(not_whole),
                    )),
                }
            }
            Ok((after, fuzzy)) => {
                for placement in fuzzy {
                    fuzzy_matches += 1;
                    let answer_line = blocks.get(placement.block - 1).map_or(0, |b| b.answer_line);
                    warnings.push(PatchWarning::FuzzyMatch {
                        path: target.rel.clone(),
                        block: placement.block,
                        answer_line,
                        lines: placement.lines,
                        kind: placement.kind,
                    });
                }
                changes.push(Change {
                    rel: target.rel.clone(),
                    abs: target.abs.clone(),
                    before: original,
                    after,
                });
            }
            Err(mut file_errors) => errors.append(&mut file_errors),
        }
    }
    // Stale files come first: errors computed against content the model never saw would mislead.
    if !stale.is_empty() {
        return Err(PatchError::Stale { paths: stale });
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.block);
        return Err(PatchError::Edits(errors));
    }
    let mut patch = render(
        root_canonical,
        changes,
        blocks.len(),
        fuzzy_matches,
        warnings,
        options.checker,
    );
    patch.outcome.format = reading.format;
    Ok(patch)
}

/// One file's content before and after, for [`prepare_contents`].
#[derive(Debug, Clone)]
pub struct FileContents {
    /// Root-relative path.
    pub rel: String,
    /// The content the change is computed against; `None` for a new file.
    pub before: Option<Vec<u8>>,
    /// The new content.
    pub after: String,
}

/// A patch from contents already known (the check loop's cumulative result): every path is resolved and
/// confined like an answer's, and the diff, warnings and atomic write are those of [`prepare`]. Writes nothing.
pub fn prepare_contents(
    root: &Path,
    files: Vec<FileContents>,
    checker: &dyn SyntaxChecker,
) -> Result<PreparedPatch, PatchError> {
    let root_canonical = std::fs::canonicalize(root).map_err(|source| PatchError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for (index, file) in files.into_iter().enumerate() {
        let error = |kind: EditErrorKind| EditError {
            block: index + 1,
            answer_line: 0,
            kind,
        };
        let resolved = match paths::resolve(&root_canonical, &file.rel) {
            Ok(resolved) => resolved,
            Err(err) => {
                errors.push(error(err.into()));
                continue;
            }
        };
        let before = match file
            .before
            .map(|bytes| source::decode(bytes, &resolved.rel))
        {
            Some(Ok(original)) => Some(original),
            Some(Err(err)) => {
                errors.push(error(err.into()));
                continue;
            }
            None => None,
        };
        changes.push(Change {
            rel: resolved.rel,
            abs: resolved.abs,
            before,
            after: file.after,
        });
    }
    if !errors.is_empty() {
        return Err(PatchError::Edits(errors));
    }
    Ok(render(root_canonical, changes, 0, 0, Vec::new(), checker))
}

/// Resolves each distinct path once, grouping blocks by the real root-relative path (first appearance order).
fn resolve_targets(root: &Path, blocks: &[EditBlock], errors: &mut Vec<EditError>) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let mut by_written: HashMap<&str, Option<usize>> = HashMap::new();
    for (index, block) in blocks.iter().enumerate() {
        let slot = match by_written.get(block.path.as_str()) {
            Some(slot) => *slot,
            None => {
                let slot = match paths::resolve(root, &block.path) {
                    Ok(resolved) => {
                        Some(match targets.iter().position(|t| t.rel == resolved.rel) {
                            Some(existing) => existing,
                            None => {
                                targets.push(Target {
                                    rel: resolved.rel,
                                    abs: resolved.abs,
                                    written: block.path.clone(),
                                    via_link: resolved.via_link,
                                    blocks: Vec::new(),
                                });
                                targets.len() - 1
                            }
                        })
                    }
                    Err(err) => {
                        errors.push(block_error(blocks, index, err.into()));
                        None
                    }
                };
                by_written.insert(&block.path, slot);
                slot
            }
        };
        if let Some(target) = slot.and_then(|slot| targets.get_mut(slot)) {
            target.blocks.push(index);
        }
    }
    targets
}

fn block_error(blocks: &[EditBlock], index: usize, kind: EditErrorKind) -> EditError {
    EditError {
        block: index + 1,
        answer_line: blocks.get(index).map_or(0, |b| b.answer_line),
        kind,
    }
}

/// Applies a target's blocks to its original content (`None`: the file does not exist).
fn edit_file(
    target: &Target,
    original: Option<&Original>,
    blocks: &[EditBlock],
) -> Result<(String, Vec<matching::FuzzyPlacement>), Vec<EditError>> {
    let mine: Vec<(usize, &EditBlock)> = target
        .blocks
        .iter()
        .filter_map(|&i| blocks.get(i).map(|b| (i, b)))
        .collect();
    let empty = original.is_none_or(|o| o.text.is_empty());
    let mut errors = Vec::new();
    if empty {
        // A missing or empty file: creating blocks supply its content, in answer order.
        let mut content = String::new();
        for &(index, block) in &mine {
            if block.creates_file() {
                for line in &block.replace {
                    content.push_str(line);
                    content.push('\n');
                }
            } else if original.is_none() {
                errors.push(block_error(
                    blocks,
                    index,
                    EditErrorKind::FileNotFound(target.rel.clone()),
                ));
            } else {
                let failure = MatchFailure::NoMatch { closest: None };
                errors.push(block_error(
                    blocks,
                    index,
                    EditErrorKind::Match {
                        path: target.rel.clone(),
                        failure,
                    },
                ));
            }
        }
        return if errors.is_empty() {
            Ok((content, Vec::new()))
        } else {
            Err(errors)
        };
    }
    let text = original.map_or("", |o| o.text.as_str());
    let mut edits = Vec::new();
    for &(index, block) in &mine {
        if block.creates_file() {
            errors.push(block_error(
                blocks,
                index,
                EditErrorKind::FileExists(target.rel.clone()),
            ));
        } else {
            edits.push(BlockEdit {
                block: index + 1,
                search: &block.search,
                replace: &block.replace,
            });
        }
    }
    let line_text = LineText::parse(text);
    match matching::apply_edits(&line_text, &edits) {
        Ok((edited, fuzzy)) if errors.is_empty() => {
            Ok((edited.render(edited.final_newline()), fuzzy))
        }
        Ok(_) => Err(errors),
        Err(failures) => {
            for (block, failure) in failures {
                let kind = EditErrorKind::Match {
                    path: target.rel.clone(),
                    failure,
                };
                errors.push(block_error(blocks, block - 1, kind));
            }
            Err(errors)
        }
    }
}

fn render(
    root: std::path::PathBuf,
    mut changes: Vec<Change>,
    block_count: usize,
    fuzzy_matches: usize,
    mut warnings: Vec<PatchWarning>,
    checker: &dyn SyntaxChecker,
) -> PreparedPatch {
    changes.sort_by(|a, b| a.rel.cmp(&b.rel));
    let mut stats = PatchStats {
        blocks: block_count,
        fuzzy_matches,
        ..PatchStats::default()
    };
    let mut diff_text = String::new();
    let mut files = Vec::new();
    let mut writes = Vec::new();
    for change in changes {
        let before_text = change.before.as_ref().map(|o| o.text.as_str());
        if before_text == Some(change.after.as_str()) {
            warnings.push(PatchWarning::Unchanged { path: change.rel });
            continue;
        }
        let file_diff = diff::render_file(&change.rel, before_text, &change.after);
        diff_text.push_str(&file_diff.text);
        stats.files += 1;
        stats.lines_added += file_diff.added;
        stats.lines_removed += file_diff.removed;
        let introduced = syntax_check::introduced_errors(
            checker,
            Path::new(&change.rel),
            before_text,
            &change.after,
        );
        if !introduced.is_empty() {
            warnings.push(PatchWarning::SyntaxErrors {
                path: change.rel.clone(),
                lines: introduced,
            });
        }
        let status = if change.before.is_some() {
            FileStatus::Modified
        } else {
            FileStatus::Added
        };
        files.push(FileChange {
            path: change.rel.clone(),
            status,
        });
        writes.push(PlannedWrite {
            rel: change.rel,
            abs: change.abs,
            before: change.before.map(|o| o.bytes),
            after: change.after.into_bytes(),
        });
    }
    PreparedPatch {
        outcome: PatchOutcome {
            diff: diff_text,
            files,
            warnings,
            stats,
            format: AnswerFormat::default(),
        },
        writes,
        root,
    }
}
