//! Ignore rules for single paths (a file created or changed after the walk), consistent with the walk:
//! hidden components, `.gitignore` / `.ignore` / the configured ignore file in every ancestor directory
//! (deeper files take precedence), and `.git/info/exclude`.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::{IndexConfig, SkipReason};

/// Why the walk would have skipped this workspace-relative file by its rules, if it would: [`SkipReason::Ignored`]
/// for an ignore file (`.gitignore`, `.ignore`, the configured one, `.git/info/exclude`), [`SkipReason::Hidden`]
/// for a hidden component.
pub fn ignored_by(root: &Path, relative: &str, config: &IndexConfig) -> Option<SkipReason> {
    let components: Vec<&str> = relative.split('/').collect();
    let absolute = root.join(relative);
    // Deepest directory first: the first one with an opinion decides (a deeper `!pattern` re-includes).
    for directory in ancestors(root, &components).iter().rev() {
        let matcher = matcher_for(directory, root, config);
        match matcher.matched_path_or_any_parents(&absolute, false) {
            Match::Ignore(_) => return Some(SkipReason::Ignored),
            Match::Whitelist(_) => return None,
            Match::None => {}
        }
    }
    let hidden = !config.include_hidden && components.iter().any(|c| c.starts_with('.'));
    hidden.then_some(SkipReason::Hidden)
}

/// Whether the configured ignore file (`.qwenignore`) of an ancestor directory lists this workspace-relative
/// file (the deepest one with an opinion decides). Only that file is read: cheap enough for every request.
pub fn listed_in_own_ignore_file(root: &Path, relative: &str, config: &IndexConfig) -> bool {
    let components: Vec<&str> = relative.split('/').collect();
    let absolute = root.join(relative);
    for directory in ancestors(root, &components).iter().rev() {
        let file = directory.join(&config.ignore_file_name);
        if !file.is_file() {
            continue;
        }
        let mut builder = GitignoreBuilder::new(directory);
        if let Some(e) = builder.add(&file) {
            tracing::debug!("{}: {e}", file.display());
        }
        let matcher = builder.build().unwrap_or_else(|_| Gitignore::empty());
        match matcher.matched_path_or_any_parents(&absolute, false) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}

/// The root and every directory between it and the file.
fn ancestors(root: &Path, components: &[&str]) -> Vec<std::path::PathBuf> {
    let mut directories = vec![root.to_path_buf()];
    for component in &components[..components.len().saturating_sub(1)] {
        let next = directories[directories.len() - 1].join(component);
        directories.push(next);
    }
    directories
}

fn matcher_for(directory: &Path, root: &Path, config: &IndexConfig) -> Gitignore {
    let mut builder = GitignoreBuilder::new(directory);
    let mut names = vec![".gitignore", ".ignore", config.ignore_file_name.as_str()];
    names.dedup();
    for name in names {
        let file = directory.join(name);
        if file.is_file() {
            if let Some(e) = builder.add(&file) {
                tracing::debug!("{}: {e}", file.display());
            }
        }
    }
    if directory == root {
        let exclude = root.join(".git/info/exclude");
        if exclude.is_file() {
            let _ = builder.add(exclude);
        }
    }
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}
