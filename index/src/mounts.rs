//! Several workspace folders in one index. The first folder is the workspace root and its files keep their
//! plain relative paths (so everything that works on one folder works unchanged on it); every other folder is
//! mounted under `@<its name>/` (`@lib/src/x.rs`). One index over all folders means one ranking: the packer's
//! directory-distance signal keeps context from the folder that holds the file first and ranks the other
//! folders' files lower, with no special case. Folders nested inside another folder are indexed once, as part
//! of the outer one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The mark that starts a mounted folder's paths (never the first character of a path the walk reports in
/// practice; a real top-level `@name` directory of the root would be shadowed by a mount of that name).
pub const MOUNT_MARK: char = '@';

/// One extra folder: its path prefix (`@name`) and its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `@name`, unique among the mounts.
    pub prefix: Arc<str>,
    /// The folder (as given; canonical when it could be resolved).
    pub root: Arc<Path>,
}

/// The extra folders of a workspace (none: a single folder).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    mounts: Vec<Mount>,
}

impl Mounts {
    /// Mounts for `folders` beside `primary`: nested folders (inside `primary` or an earlier folder) and
    /// missing ones are left out; names are the folders' file names, made unique with `-2`, `-3`, ….
    pub fn new(primary: &Path, folders: &[PathBuf]) -> Mounts {
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let mut kept: Vec<PathBuf> = vec![canonical(primary)];
        let mut mounts = Vec::new();
        for folder in folders {
            let folder = canonical(folder);
            if !folder.is_dir()
                || kept
                    .iter()
                    .any(|k| folder.starts_with(k) || k.starts_with(&folder))
            {
                continue;
            }
            let base = folder
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .unwrap_or("folder");
            let mut prefix = format!("{MOUNT_MARK}{base}");
            let mut n = 2;
            while mounts.iter().any(|m: &Mount| *m.prefix == *prefix) {
                prefix = format!("{MOUNT_MARK}{base}-{n}");
                n += 1;
            }
            kept.push(folder.clone());
            mounts.push(Mount {
                prefix: prefix.into(),
                root: folder.into(),
            });
        }
        Mounts { mounts }
    }

    /// No extra folder.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The extra folders.
    pub fn iter(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.iter()
    }

    /// The folder holding an index path and the path inside it: `(mount root, rest)` for `@name/…`, else
    /// `(primary, path)`.
    pub fn locate<'a>(&'a self, primary: &'a Path, path: &'a str) -> (&'a Path, &'a str) {
        if path.starts_with(MOUNT_MARK) {
            let (head, rest) = path.split_once('/').unwrap_or((path, ""));
            if let Some(mount) = self.mounts.iter().find(|m| *m.prefix == *head) {
                return (&mount.root, rest);
            }
        }
        (primary, path)
    }

    /// The index path of `absolute` when it lies in an extra folder (`@name/…`); `None` otherwise.
    pub fn index_path(&self, absolute: &Path) -> Option<String> {
        self.mounts.iter().find_map(|m| {
            let rest = absolute.strip_prefix(&m.root).ok()?;
            let mut path = m.prefix.to_string();
            for part in rest.components() {
                match part {
                    std::path::Component::Normal(part) => {
                        path.push('/');
                        path.push_str(part.to_str()?);
                    }
                    _ => return None,
                }
            }
            Some(path)
        })
    }

    /// Prefixes `path` (relative to the mount) with the mount's name.
    pub fn join(prefix: &str, path: &str) -> String {
        if path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}/{path}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_mount_under_unique_names_and_nested_ones_are_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().canonicalize().expect("canonical");
        for d in ["main", "main/inner", "a/lib", "b/lib", "c"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let mounts = Mounts::new(
            &root.join("main"),
            &[
                root.join("main/inner"),
                root.join("a/lib"),
                root.join("b/lib"),
                root.join("missing"),
                root.join("c"),
            ],
        );
        let prefixes: Vec<&str> = mounts.iter().map(|m| &*m.prefix).collect();
        assert_eq!(prefixes, ["@lib", "@lib-2", "@c"]);
        let primary = root.join("main");
        assert_eq!(
            mounts.locate(&primary, "@lib-2/src/x.rs"),
            (root.join("b/lib").as_path(), "src/x.rs")
        );
        assert_eq!(
            mounts.locate(&primary, "@c"),
            (root.join("c").as_path(), "")
        );
        assert_eq!(
            mounts.locate(&primary, "src/y.rs"),
            (primary.as_path(), "src/y.rs")
        );
        assert_eq!(
            mounts.locate(&primary, "@other/z"),
            (primary.as_path(), "@other/z")
        );
        assert_eq!(
            mounts.index_path(&root.join("a/lib/src/x.rs")).as_deref(),
            Some("@lib/src/x.rs")
        );
        assert_eq!(mounts.index_path(&root.join("main/src/x.rs")), None);
        assert_eq!(Mounts::join("@c", ""), "@c");
    }
}
