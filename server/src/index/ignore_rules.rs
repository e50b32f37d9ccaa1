//! Ignore rules for single paths (a file created or changed after the walk), consistent with the walk:
//! hidden components, `.gitignore` / `.ignore` / the configured ignore file in every ancestor directory
//! (deeper files take precedence), and `.git/info/exclude`.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use super::{IndexConfig, SkipReason};

/// Why the walk would have skipped this workspace-relative file by its rules, if it would:
/// [`SkipReason::Private`] when the deciding rule comes from the configured ignore file (`.qwenignore`),
/// [`SkipReason::Ignored`] for the other ignore files, [`SkipReason::Hidden`] for a hidden component.
pub fn ignored_by(root: &Path, relative: &str, config: &IndexConfig) -> Option<SkipReason> {
    let components: Vec<&str> = relative.split('/').collect();
    let absolute = root.join(relative);
    let mut directories = vec![root.to_path_buf()];
    for component in &components[..components.len().saturating_sub(1)] {
        let next = directories[directories.len() - 1].join(component);
        directories.push(next);
    }
    // Deepest directory first: the first one with an opinion decides (a deeper `!pattern` re-includes).
    for directory in directories.iter().rev() {
        let matcher = matcher_for(directory, root, config);
        match matcher.matched_path_or_any_parents(&absolute, false) {
            Match::Ignore(glob) => {
                let from_own_file = glob
                    .from()
                    .and_then(Path::file_name)
                    .is_some_and(|name| name == config.ignore_file_name.as_str());
                return Some(if from_own_file {
                    SkipReason::Private
                } else {
                    SkipReason::Ignored
                });
            }
            Match::Whitelist(_) => return None,
            Match::None => {}
        }
    }
    let hidden = !config.include_hidden && components.iter().any(|c| c.starts_with('.'));
    hidden.then_some(SkipReason::Hidden)
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
