//! The one gate every text passes before it can reach the index or a prompt: the walk, documents an editor
//! opens or edits, file events, and the files a command line names all ask the same [`Gate`].
//!
//! A workspace of several folders has one gate: each extra folder (mounted under `@name/`, `mounts.rs`) is
//! judged by a gate of its own — its root, its ignore files — which the workspace's gate asks for every path
//! in that folder (named `@name/…`, or absolute inside it as given or as the real file).
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
use super::mounts::{Mounts, MOUNT_MARK};
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
    /// The other workspace folders (`@name`, and the gate of that folder).
    mounts: Vec<(Arc<str>, Gate)>,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new(None, IndexConfig::default())
    }
}

impl Gate {
    /// The gate for the workspace at `root` (`None`: no workspace, nothing is indexed).
    pub fn new(root: Option<&Path>, config: IndexConfig) -> Gate {
        Gate::for_folders(root, &Mounts::default(), config)
    }

    /// The gate for a workspace of several folders: `root` and the `mounts`, each judged by its own rules.
    pub fn for_folders(root: Option<&Path>, mounts: &Mounts, config: IndexConfig) -> Gate {
        let mounts = mounts
            .iter()
            .map(|m| (m.prefix.clone(), Gate::new(Some(&m.root), config.clone())))
            .collect();
        let roots = root.map(|root| {
            let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
            (root.to_path_buf(), canonical)
        });
        let secrets = SecretMatcher::new(&config.secret_patterns);
        Gate(Arc::new(Inner {
            roots,
            config,
            secrets,
            mounts,
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

    /// Judges a path (absolute, or relative to the root: `@name/…` in a mounted folder) by name alone, before
    /// anything is read.
    pub fn check_path(&self, path: &Path) -> Admission {
        if let Some(reason) = self.refusal_where_it_leads(path) {
            return Admission::Refused(reason);
        }
        match self.mount_of(path) {
            Some((prefix, gate, inside)) => match gate.check_path(&inside) {
                Admission::Index(relative) => {
                    Admission::Index(Mounts::join(prefix, &relative).into())
                }
                other => other,
            },
            None => self.check_own_path(path),
        }
    }

    /// [`Gate::check_path`] for a path this folder's own gate judges.
    fn check_own_path(&self, path: &Path) -> Admission {
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
        let own = match self.mount_of(path) {
            Some((_, gate, inside)) => gate.refusal(&inside),
            None => self.refusal_of(&self.names(path)),
        };
        own.or_else(|| self.refusal_where_it_leads(path))
    }

    /// The mounted folder that judges `path`, with the path as that folder's gate sees it: the folder that
    /// `@name/…` names, or whose root holds the absolute path. `None`: this gate's own folder judges it.
    fn mount_of(&self, path: &Path) -> Option<(&str, &Gate, PathBuf)> {
        if self.0.mounts.is_empty() {
            return None;
        }
        if path.is_absolute() {
            let (prefix, gate) = self.0.mounts.iter().find(|(_, gate)| gate.holds(path))?;
            return Some((prefix, gate, path.to_path_buf()));
        }
        let text = path.to_str()?;
        if !text.starts_with(MOUNT_MARK) {
            return None;
        }
        let (head, rest) = text.split_once('/').unwrap_or((text, ""));
        let (prefix, gate) = self.0.mounts.iter().find(|(p, _)| **p == *head)?;
        Some((prefix, gate, PathBuf::from(rest)))
    }

    /// Whether the absolute `path` lies under this gate's root (either spelling).
    fn holds(&self, path: &Path) -> bool {
        self.0
            .roots
            .as_ref()
            .is_some_and(|(root, canonical)| path.starts_with(root) || path.starts_with(canonical))
    }

    /// When `path` leads through links into another folder of the workspace than the one that judges it, that
    /// folder's refusal of the real file (its `.qwenignore`): the rules of the place a file really is apply.
    fn refusal_where_it_leads(&self, path: &Path) -> Option<SkipReason> {
        if self.0.mounts.is_empty() {
            return None;
        }
        let (judge, absolute) = match self.mount_of(path) {
            Some((_, gate, inside)) => (Some(gate), gate.names(&inside).absolute),
            None => (None, self.names(path).absolute),
        };
        let real = real_path(&absolute);
        let real_judge = self.0.mounts.iter().find(|(_, gate)| gate.holds(&real));
        match (judge, real_judge) {
            (Some(judge), Some((_, there))) if Arc::ptr_eq(&judge.0, &there.0) => None,
            (_, Some((_, there))) => there.refusal(&real),
            (Some(_), None) => self.refusal_of(&self.names(&real)),
            (None, None) => None,
        }
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

    /// Reads a workspace file (`@name/…` in a mounted folder) through every check (path, then size, binary
    /// and minified content).
    pub fn read(&self, relative: &Arc<str>) -> Result<WalkedFile, SkipReason> {
        if let Some((prefix, gate, inside)) = self.mount_of(Path::new(&**relative)) {
            if let Some(reason) = self.refusal_where_it_leads(Path::new(&**relative)) {
                return Err(reason);
            }
            let inside: Arc<str> = inside.to_str().ok_or(SkipReason::NonUtf8Path)?.into();
            let mut file = gate.read(&inside)?;
            file.path = Mounts::join(prefix, &file.path).into();
            return Ok(file);
        }
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
    fn every_folder_is_judged_by_its_own_rules() {
        let dir = tempfile::tempdir().expect("tmp");
        let base = dir.path().canonicalize().expect("canonical");
        let (app, lib) = (base.join("app"), base.join("lib"));
        for d in ["app/src", "lib/src", "lib/private"] {
            std::fs::create_dir_all(base.join(d)).expect("mkdir");
        }
        std::fs::write(lib.join(".qwenignore"), "private/\n").expect("write");
        std::fs::write(lib.join(".gitignore"), "out/\n").expect("write");
        std::fs::write(lib.join("src/x.rs"), "fn x() {}").expect("write");
        std::fs::write(lib.join("private/k.rs"), "fn k() {}").expect("write");
        let mounts = Mounts::new(&app, std::slice::from_ref(&lib));
        let gate = Gate::for_folders(Some(&app), &mounts, IndexConfig::default());
        // By index path and by absolute path: the mount's own paths, ignore files and `.qwenignore`.
        assert_eq!(
            gate.check_path(Path::new("@lib/src/x.rs")),
            Admission::Index("@lib/src/x.rs".into())
        );
        assert_eq!(
            gate.check_path(&lib.join("src/x.rs")),
            Admission::Index("@lib/src/x.rs".into())
        );
        assert_eq!(
            gate.check_path(&lib.join("private/k.rs")),
            Admission::Refused(SkipReason::Private)
        );
        assert_eq!(
            gate.refusal(Path::new("@lib/private/k.rs")),
            Some(SkipReason::Private)
        );
        assert_eq!(
            gate.check_path(Path::new("@lib/out/y.rs")),
            Admission::Unindexed(SkipReason::Ignored)
        );
        assert_eq!(
            gate.check_path(Path::new("@lib/.env")),
            Admission::Refused(SkipReason::Secret)
        );
        // The root's rules are not the mount's: `private/` is not listed there.
        assert_eq!(
            gate.check_path(Path::new("private/k.rs")),
            Admission::Index("private/k.rs".into())
        );
        let read = gate.read(&Arc::from("@lib/src/x.rs")).expect("read");
        assert_eq!(
            (&*read.path, read.text.as_str()),
            ("@lib/src/x.rs", "fn x() {}")
        );
        assert_eq!(
            gate.read(&Arc::from("@lib/private/k.rs")).err(),
            Some(SkipReason::Private)
        );
        #[cfg(unix)]
        {
            // A link in the root to a file the mount's `.qwenignore` lists: the real file's folder decides.
            std::os::unix::fs::symlink(lib.join("private/k.rs"), app.join("src/k.rs")).expect("ln");
            assert_eq!(
                gate.check_path(Path::new("src/k.rs")),
                Admission::Refused(SkipReason::Private)
            );
            assert_eq!(
                gate.refusal(&app.join("src/k.rs")),
                Some(SkipReason::Private)
            );
        }
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
