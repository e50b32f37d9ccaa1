//! The parallel walk: which files of a workspace are read, and their text.
//!
//! Uses the `ignore` crate (the walker behind ripgrep): `.gitignore`, `.ignore` and the configured
//! `.qwenignore` are honoured in every directory, even outside a git repository. Symbolic links are never
//! followed — a link can only lead out of the workspace or to something already walked at its real path —
//! so link loops cannot occur. Every per-file failure is logged and recorded; the walk always finishes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ignore::{WalkBuilder, WalkState};

use super::filter::{check_content, SecretMatcher, SkipReason};
use super::IndexConfig;

/// A file that passed every filter, with its text.
pub struct WalkedFile {
    /// Workspace-relative, `/`-separated path.
    pub path: Arc<str>,
    /// The content; invalid UTF-8 is replaced by U+FFFD (`lossy` is then true).
    pub text: String,
    /// Whether the content was converted lossily.
    pub lossy: bool,
}

/// A file the walk saw but did not index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFile {
    /// Workspace-relative path (lossy if not UTF-8).
    pub path: String,
    /// Why.
    pub reason: SkipReason,
}

/// Builds the walker with the workspace's ignore rules. Shared with single-file checks of the host.
pub fn walk_builder(root: &Path, config: &IndexConfig) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(!config.include_hidden)
        .follow_links(false)
        .require_git(false)
        .git_global(false)
        .add_custom_ignore_filename(&config.ignore_file_name)
        .threads(config.effective_threads());
    builder
}

/// Walks `root` in parallel, calling `visit` (from several threads) for every indexable file.
/// Returns the files that were skipped, sorted by path.
pub fn walk(
    root: &Path,
    config: &IndexConfig,
    visit: &(dyn Fn(WalkedFile) + Sync),
) -> Vec<SkippedFile> {
    let secrets = SecretMatcher::new(&config.secret_patterns);
    let skipped = Mutex::new(Vec::new());
    walk_builder(root, config).build_parallel().run(|| {
        Box::new(|entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!("walk error (continuing): {e}");
                    return WalkState::Continue;
                }
            };
            let is_file = entry.file_type().is_some_and(|t| t.is_file());
            let is_link = entry.path_is_symlink();
            if !is_file && !is_link {
                return WalkState::Continue;
            }
            let relative = relative_path(root, entry.path());
            let outcome = match (&relative, is_link) {
                (None, _) => Err(SkipReason::NonUtf8Path),
                (Some(_), true) => Err(SkipReason::Link),
                (Some(path), false) => read_file(entry.path(), path, config, &secrets),
            };
            match outcome {
                Ok(file) => visit(file),
                Err(reason) => {
                    let path = relative.map_or_else(
                        || entry.path().to_string_lossy().into_owned(),
                        |p| p.to_string(),
                    );
                    log_skip(&path, &reason);
                    if let Ok(mut list) = skipped.lock() {
                        list.push(SkippedFile { path, reason });
                    }
                }
            }
            WalkState::Continue
        })
    });
    let mut skipped = skipped.into_inner().unwrap_or_default();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    skipped
}

/// Reads one file through every filter (secret name, size, binary, minified); used by the walk and by the
/// host when a single file is created or changed.
pub fn read_file(
    absolute: &Path,
    relative: &Arc<str>,
    config: &IndexConfig,
    secrets: &SecretMatcher,
) -> Result<WalkedFile, SkipReason> {
    if secrets.is_secret(relative) {
        return Err(SkipReason::Secret);
    }
    let metadata =
        std::fs::symlink_metadata(absolute).map_err(|e| SkipReason::Io(e.to_string()))?;
    if metadata.file_type().is_symlink() {
        return Err(SkipReason::Link);
    }
    if metadata.len() > config.max_file_bytes {
        return Err(SkipReason::TooLarge(metadata.len()));
    }
    let bytes = std::fs::read(absolute).map_err(|e| SkipReason::Io(e.to_string()))?;
    // The file may have grown between stat and read.
    if bytes.len() as u64 > config.max_file_bytes {
        return Err(SkipReason::TooLarge(bytes.len() as u64));
    }
    check_content(&bytes, config)?;
    let (text, lossy) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(e) => {
            tracing::info!("{relative}: invalid UTF-8, indexed with replacement characters");
            (String::from_utf8_lossy(e.as_bytes()).into_owned(), true)
        }
    };
    Ok(WalkedFile {
        path: relative.clone(),
        text,
        lossy,
    })
}

/// The workspace-relative, `/`-separated form of `path`; `None` when it is outside `root` (lexically: a `..`
/// or `.` component is refused, not resolved) or not UTF-8.
pub fn relative_path(root: &Path, path: &Path) -> Option<Arc<str>> {
    let relative = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for component in relative.components() {
        let std::path::Component::Normal(part) = component else {
            return None;
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(part.to_str()?);
    }
    (!out.is_empty()).then(|| out.into())
}

fn log_skip(path: &str, reason: &SkipReason) {
    match reason {
        SkipReason::Io(_) | SkipReason::NonUtf8Path => tracing::warn!("skipping {path}: {reason}"),
        _ => tracing::info!("skipping {path}: {reason}"),
    }
}
