//! Turns a path written by the model into a path inside the root, or refuses it.
//!
//! Refused: empty, absolute (`/x`, `C:\x`, `\\server`), any `..`, backslashes and control characters, anything
//! under a `.git` directory at any depth and in any case ([`super::protected::is_git_dir`]), any existing prefix that is a symbolic link leading outside the root (or dangling), a target
//! that is itself a symbolic link, and a target that exists but is not a regular file. A path through a link
//! that stays inside the root is rewritten to the real path, because `git apply` refuses to patch "beyond a
//! symbolic link" and two spellings of one file must not become two edits.
//! Error messages carry only the model's path and root-relative names, never absolute paths of this machine.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::protected::{is_git_dir, is_reserved};

/// A path inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootPath {
    /// `/`-separated, relative to the root, no `.`/`..`, no symbolic link components.
    pub rel: String,
    /// `root.join(rel)` with the canonical root.
    pub abs: PathBuf,
    /// Whether the model's spelling went through a symbolic link (so `rel` differs from what it wrote).
    pub via_link: bool,
}

/// Why a path was refused.
#[derive(Debug, Error)]
pub enum PathError {
    /// The path is empty (or only `.` components).
    #[error("the path is empty")]
    Empty,
    /// Absolute paths are refused: edits are relative to the root.
    #[error("`{0}` is an absolute path; paths must be relative to the root")]
    Absolute(String),
    /// `..` could leave the root.
    #[error("`{0}` contains a `..` component; paths must stay inside the root")]
    ParentComponent(String),
    /// Backslashes and control characters are refused rather than guessed at.
    #[error("`{}` contains a backslash or control character; use `/`-separated relative paths", .0.escape_debug())]
    BadCharacter(String),
    /// Writing into `.git` could plant hooks.
    #[error("`{0}` is inside `.git`; edits to the repository's metadata are refused")]
    GitDir(String),
    /// qwen-ls's own apply journal and temporary files: a forged journal could steer the next apply.
    #[error("`{0}` is a name qwen-ls reserves for its own files")]
    Reserved(String),
    /// An existing component is a symbolic link to somewhere outside the root.
    #[error("`{path}` leads outside the root through the symbolic link `{link}`")]
    EscapesRoot {
        /// The model's path.
        path: String,
        /// The root-relative link.
        link: String,
    },
    /// An existing component is a symbolic link whose target does not exist.
    #[error("`{path}` goes through the dangling symbolic link `{link}`")]
    DanglingLink {
        /// The model's path.
        path: String,
        /// The root-relative link.
        link: String,
    },
    /// The target itself is a symbolic link: replacing it with a file would silently change its meaning.
    #[error("`{0}` is a symbolic link; edit the file it points to instead")]
    TargetIsLink(String),
    /// The target, or a directory on the way, exists but is the wrong kind of file.
    #[error("`{path}`: `{component}` exists but is not {expected}")]
    WrongKind {
        /// The model's path.
        path: String,
        /// The root-relative component.
        component: String,
        /// "a regular file" or "a directory".
        expected: &'static str,
    },
    /// The file system could not be inspected (an environment problem, not the model's).
    #[error("cannot inspect `{path}`: {source}")]
    Io {
        /// The root-relative path inspected.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// Resolves `raw` (as written by the model) against `root`, which must already be canonical.
pub(crate) fn resolve(root: &Path, raw: &str) -> Result<RootPath, PathError> {
    let components = lexical_components(raw)?;
    let mut real: Vec<String> = Vec::new();
    let mut via_link = false;
    let last = components.len() - 1;
    for (index, component) in components.iter().enumerate() {
        let here = join_rel(&real, component);
        let abs = root.join(&here);
        let meta = match std::fs::symlink_metadata(&abs) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Nothing exists from here on: the remaining components are created inside `real`.
                real.extend(components[index..].iter().cloned());
                break;
            }
            Err(source) => return Err(PathError::Io { path: here, source }),
        };
        if meta.file_type().is_symlink() {
            if index == last {
                return Err(PathError::TargetIsLink(raw.to_string()));
            }
            let target = match std::fs::canonicalize(&abs) {
                Ok(target) => target,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(PathError::DanglingLink {
                        path: raw.to_string(),
                        link: here,
                    })
                }
                Err(source) => return Err(PathError::Io { path: here, source }),
            };
            let Ok(inside) = target.strip_prefix(root) else {
                return Err(PathError::EscapesRoot {
                    path: raw.to_string(),
                    link: here,
                });
            };
            real = inside
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            via_link = true;
            if !root.join(join_rel(&real, "")).is_dir() {
                return Err(PathError::WrongKind {
                    path: raw.to_string(),
                    component: here,
                    expected: "a directory",
                });
            }
            continue;
        }
        let (ok, expected) = if index == last {
            (meta.is_file(), "a regular file")
        } else {
            (meta.is_dir(), "a directory")
        };
        if !ok {
            return Err(PathError::WrongKind {
                path: raw.to_string(),
                component: here,
                expected,
            });
        }
        real.push(component.clone());
    }
    if real.iter().any(|c| is_git_dir(c)) {
        return Err(PathError::GitDir(raw.to_string()));
    }
    if real.last().is_some_and(|name| is_reserved(name)) {
        return Err(PathError::Reserved(raw.to_string()));
    }
    let rel = real.join("/");
    Ok(RootPath {
        abs: root.join(&rel),
        rel,
        via_link,
    })
}

fn join_rel(prefix: &[String], component: &str) -> String {
    let mut parts: Vec<&str> = prefix.iter().map(String::as_str).collect();
    if !component.is_empty() {
        parts.push(component);
    }
    parts.join("/")
}

/// Checks the spelling alone, before touching the file system.
fn lexical_components(raw: &str) -> Result<Vec<String>, PathError> {
    if raw.starts_with('/')
        || raw.starts_with('\\')
        || (raw.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && raw.as_bytes().get(1) == Some(&b':'))
    {
        return Err(PathError::Absolute(raw.to_string()));
    }
    if raw.contains('\\') || raw.chars().any(char::is_control) {
        return Err(PathError::BadCharacter(raw.to_string()));
    }
    let mut components = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(PathError::ParentComponent(raw.to_string())),
            name => components.push(name.to_string()),
        }
    }
    if components.is_empty() {
        return Err(PathError::Empty);
    }
    if components.iter().any(|c| is_git_dir(c)) {
        return Err(PathError::GitDir(raw.to_string()));
    }
    if components.last().is_some_and(|name| is_reserved(name)) {
        return Err(PathError::Reserved(raw.to_string()));
    }
    Ok(components)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_refusals() {
        assert!(matches!(
            lexical_components("/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            lexical_components("C:/x"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            lexical_components("a/../../x"),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(
            lexical_components("a\\b"),
            Err(PathError::BadCharacter(_))
        ));
        assert!(matches!(lexical_components("./"), Err(PathError::Empty)));
        for git in [
            ".git/hooks/pre-commit",
            ".GIT/config",
            "sub/.git/hooks/post-checkout",
            "vendor/lib/.Git./config",
        ] {
            assert!(
                matches!(lexical_components(git), Err(PathError::GitDir(_))),
                "{git}"
            );
        }
        for reserved in [".qwen-ls-apply.journal", "src/.a.rs.1.2.qwen-ls-tmp"] {
            assert!(
                matches!(lexical_components(reserved), Err(PathError::Reserved(_))),
                "{reserved}"
            );
        }
        assert_eq!(
            lexical_components("./src//a.rs").expect("ok"),
            ["src", "a.rs"]
        );
    }
}
