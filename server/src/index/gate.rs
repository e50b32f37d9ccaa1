//! The one gate every text passes before it can reach the index or a prompt: the walk, documents an editor
//! opens or edits, file events, and the files a command line names all ask the same [`Gate`].
//!
//! A path is judged twice: as given and, after resolving symbolic links, as the real file. Secret patterns
//! (case-insensitive) and the workspace's `.qwenignore` make a file *refused*: it is never read, never
//! indexed, and a task asked to work on it answers an error — not even its own text goes into a prompt.
//! Everything else that the walk would skip (ignore files, hidden names, links, paths outside the workspace,
//! oversized, binary or minified text) is *unindexed*: never packed into the prompt of another file, while a
//! document the user is editing may still be completed as its own prompt.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::filter::{check_content, SecretMatcher, SkipReason};
use super::ignore_rules::{ignored_by, listed_in_own_ignore_file};
use super::walk::{read_file, relative_path, WalkedFile};
use super::IndexConfig;

/// What the gate says about one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// May be indexed (and so packed into other files' prompts), at this workspace-relative path.
    Index(Arc<str>),
    /// Not indexed; a document open in an editor may still be its own prompt.
    Unindexed(SkipReason),
    /// Never read, never indexed, never part of any prompt ([`SkipReason::Secret`] or [`SkipReason::Private`]).
    Refused(SkipReason),
}

/// The gate of one workspace (or of none: secret patterns still apply). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Gate(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The root as given (an editor may name files through it) and its canonical form.
    roots: Option<(PathBuf, PathBuf)>,
    config: IndexConfig,
    secrets: SecretMatcher,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new(None, IndexConfig::default())
    }
}

impl Gate {
    /// The gate for the workspace at `root` (`None`: no workspace, nothing is indexed).
    pub fn new(root: Option<&Path>, config: IndexConfig) -> Gate {
        let roots = root.map(|root| {
            let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
            (root.to_path_buf(), canonical)
        });
        let secrets = SecretMatcher::new(&config.secret_patterns);
        Gate(Arc::new(Inner {
            roots,
            config,
            secrets,
        }))
    }

    /// The limits and rules the gate applies.
    pub fn config(&self) -> &IndexConfig {
        &self.0.config
    }

    /// The compiled secret patterns (the walk checks names with them before it opens a file).
    pub fn secrets(&self) -> &SecretMatcher {
        &self.0.secrets
    }

    /// Judges a path (absolute, or relative to the root) by name alone, before anything is read.
    pub fn check_path(&self, path: &Path) -> Admission {
        let names = self.names(path);
        if let Some(reason) = self.refusal_of(&names) {
            return Admission::Refused(reason);
        }
        let (Some((_, canonical_root)), Some(relative)) = (&self.0.roots, names.real_relative)
        else {
            return Admission::Unindexed(SkipReason::Outside);
        };
        if names.given_relative.as_deref() != Some(relative.as_str()) {
            // Through a link: the walk indexes the file at its real path, if at all.
            return Admission::Unindexed(SkipReason::Link);
        }
        match ignored_by(canonical_root, &relative, &self.0.config) {
            Some(reason) => Admission::Unindexed(reason),
            None => Admission::Index(relative.into()),
        }
    }

    /// Why the file at `path` (absolute, or relative to the root) may never be read or sent, if it may not:
    /// the refusal half of [`Gate::check_path`], cheap enough for every request (no `.gitignore` is read).
    pub fn refusal(&self, path: &Path) -> Option<SkipReason> {
        self.refusal_of(&self.names(path))
    }

    fn refusal_of(&self, names: &Names) -> Option<SkipReason> {
        let candidates = [
            names.given_relative.as_deref(),
            names.real_relative.as_deref(),
            names.absolute.to_str(),
            names.real.to_str(),
        ];
        if candidates
            .into_iter()
            .flatten()
            .any(|p| self.0.secrets.is_secret(p))
        {
            return Some(SkipReason::Secret);
        }
        let (Some((_, root)), Some(relative)) = (&self.0.roots, &names.real_relative) else {
            return None;
        };
        listed_in_own_ignore_file(root, relative, &self.0.config).then_some(SkipReason::Private)
    }

    /// The spellings of `path` the gate judges.
    fn names(&self, path: &Path) -> Names {
        let absolute = match (&self.0.roots, path.is_absolute()) {
            (Some((root, _)), false) => root.join(path),
            _ => path.to_path_buf(),
        };
        let real = real_path(&absolute);
        Names {
            given_relative: self.relative(&absolute),
            real_relative: self.relative(&real),
            absolute,
            real,
        }
    }

    /// Judges text an editor sent for an indexable path: size, binary and minified, as the walk does.
    pub fn check_text(&self, text: &str) -> Result<(), SkipReason> {
        if text.len() as u64 > self.0.config.max_file_bytes {
            return Err(SkipReason::TooLarge(text.len() as u64));
        }
        check_content(text.as_bytes(), &self.0.config)
    }

    /// Judges an edit of an indexed document cheaply (every keystroke): the new length and the inserted text.
    pub fn check_edit<'a>(
        &self,
        new_len: usize,
        inserted: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), SkipReason> {
        if new_len as u64 > self.0.config.max_file_bytes {
            return Err(SkipReason::TooLarge(new_len as u64));
        }
        if inserted.into_iter().any(|t| t.contains('\0')) {
            return Err(SkipReason::Binary);
        }
        Ok(())
    }

    /// Reads a workspace file through every check (path, then size, binary and minified content).
    pub fn read(&self, relative: &Arc<str>) -> Result<WalkedFile, SkipReason> {
        match self.check_path(Path::new(&**relative)) {
            Admission::Index(real) if real == *relative => {}
            Admission::Index(_) => return Err(SkipReason::Link),
            Admission::Unindexed(reason) | Admission::Refused(reason) => return Err(reason),
        }
        let Some((_, root)) = &self.0.roots else {
            return Err(SkipReason::Outside);
        };
        read_file(
            &root.join(&**relative),
            relative,
            &self.0.config,
            &self.0.secrets,
        )
    }

    /// The workspace-relative, `/`-separated form of an absolute path (lexically, against either spelling of
    /// the root); `None` outside the root or for a non-UTF-8 path.
    fn relative(&self, path: &Path) -> Option<String> {
        let (root, canonical) = self.0.roots.as_ref()?;
        relative_path(canonical, path)
            .or_else(|| relative_path(root, path))
            .map(|r| r.to_string())
    }
}

/// A path as given and as it really is.
struct Names {
    absolute: PathBuf,
    real: PathBuf,
    given_relative: Option<String>,
    real_relative: Option<String>,
}

/// The path with every symbolic link resolved: the file itself, or its parent directory for a file that does
/// not exist (yet); the path unchanged when neither resolves.
fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    match (path.parent().map(Path::canonicalize), path.file_name()) {
        (Some(Ok(parent)), Some(name)) => parent.join(name),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(root: &Path) -> Gate {
        Gate::new(Some(root), IndexConfig::default())
    }

    #[test]
    fn secrets_are_refused_by_name_and_by_real_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("ws");
        let home = dir.path().join("home");
        std::fs::create_dir_all(root.join("src")).expect("mkdir");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::write(root.join(".ENV"), "TOKEN=1").expect("write");
        std::fs::write(root.join("src/lib.rs"), "fn a() {}").expect("write");
        std::fs::write(home.join(".ssh/config"), "Host x").expect("write");
        let gate = gate(&root);
        assert_eq!(
            gate.check_path(&root.join(".ENV")),
            Admission::Refused(SkipReason::Secret)
        );
        assert_eq!(
            gate.check_path(Path::new("src/lib.rs")),
            Admission::Index("src/lib.rs".into())
        );
        #[cfg(unix)]
        {
            // A harmless name that is a link to a secret, and a directory link into `~/.ssh`.
            std::os::unix::fs::symlink(root.join(".ENV"), root.join("src/notes.txt")).expect("ln");
            std::os::unix::fs::symlink(home.join(".ssh"), root.join("keys")).expect("ln");
            assert_eq!(
                gate.check_path(&root.join("src/notes.txt")),
                Admission::Refused(SkipReason::Secret)
            );
            assert_eq!(
                gate.check_path(&root.join("keys/config")),
                Admission::Refused(SkipReason::Secret)
            );
            // A link to an ordinary file is not indexed under the link's name.
            std::os::unix::fs::symlink(root.join("src/lib.rs"), root.join("alias.rs")).expect("ln");
            assert_eq!(
                gate.check_path(&root.join("alias.rs")),
                Admission::Unindexed(SkipReason::Link)
            );
            assert_eq!(
                gate.read(&Arc::from("keys/config")).err(),
                Some(SkipReason::Secret)
            );
        }
        // Without a workspace, secrets are still refused and everything else is outside.
        let none = Gate::default();
        assert_eq!(
            none.check_path(&home.join(".ssh/config")),
            Admission::Refused(SkipReason::Secret)
        );
        assert_eq!(
            none.check_path(&root.join("src/lib.rs")),
            Admission::Unindexed(SkipReason::Outside)
        );
    }

    #[test]
    fn ignore_files_hidden_names_and_qwenignore() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "target/\n").expect("write");
        std::fs::write(root.join(".qwenignore"), "private/\n").expect("write");
        let gate = gate(root);
        assert_eq!(
            gate.check_path(Path::new("target/debug/x.rs")),
            Admission::Unindexed(SkipReason::Ignored)
        );
        assert_eq!(
            gate.check_path(Path::new(".github/workflows/ci.yml")),
            Admission::Unindexed(SkipReason::Hidden)
        );
        assert_eq!(
            gate.check_path(Path::new("private/notes.md")),
            Admission::Refused(SkipReason::Private)
        );
        assert_eq!(
            gate.check_path(Path::new("/elsewhere/x.rs")),
            Admission::Unindexed(SkipReason::Outside)
        );
    }

    #[test]
    fn editor_text_is_checked_like_a_file() {
        let gate = Gate::default();
        assert_eq!(gate.check_text("fn main() {}\n"), Ok(()));
        assert_eq!(gate.check_text("a\0b"), Err(SkipReason::Binary));
        let big = "x\n".repeat(600 * 1024);
        assert_eq!(
            gate.check_text(&big),
            Err(SkipReason::TooLarge(big.len() as u64))
        );
        assert_eq!(gate.check_edit(10, ["abc"]), Ok(()));
        assert_eq!(gate.check_edit(10, ["a\0"]), Err(SkipReason::Binary));
        assert!(gate.check_edit(2 << 20, [""]).is_err());
    }
}
