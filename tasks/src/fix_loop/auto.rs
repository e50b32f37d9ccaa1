//! `--test-cmd auto`: the usual fast check of each kind of project found at the root, each only if its tool
//! is installed. Type checks and compiles, not test suites: they say quickly whether an edit is coherent, and
//! never depend on what the tests assume about the machine.
//!
//! | found at the root                         | tool on `PATH`           | command                            |
//! |-------------------------------------------|--------------------------|------------------------------------|
//! | `Cargo.toml`                              | `cargo`                  | `cargo check --all-targets`        |
//! | `pyproject.toml`, `setup.py`, `setup.cfg`, `requirements.txt`, or a `*.py` file | `python3` | `python3 -m compileall -q .` |
//! | the same                                  | `ruff`                   | `ruff check --select E9,F63,F7,F82 .` (syntax errors, undefined names) |
//! | `tsconfig.json`                           | `node_modules/.bin/tsc` or `tsc` | `tsc --noEmit`             |
//! | `go.mod`                                  | `go`                     | `go vet ./...`                     |

use std::path::{Path, PathBuf};

/// One detected check and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoCheck {
    /// The shell command.
    pub command: String,
    /// What it was detected from (`Cargo.toml`…), for the user.
    pub reason: &'static str,
}

/// Files whose presence at the root marks a Python project.
const PYTHON_MARKERS: [&str; 4] = [
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
];

/// The checks for the project at `root`, given how to find a tool (`which`: a name → its path on `PATH`).
pub fn detect(root: &Path, which: &dyn Fn(&str) -> Option<PathBuf>) -> Vec<AutoCheck> {
    let has = |name: &str| root.join(name).exists();
    let mut checks = Vec::new();
    if has("Cargo.toml") && which("cargo").is_some() {
        checks.push(AutoCheck {
            command: "cargo check --all-targets".into(),
            reason: "Cargo.toml",
        });
    }
    let python_files = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().extension().is_some_and(|e| e == "py"));
    if PYTHON_MARKERS.iter().any(|m| has(m)) || python_files {
        if which("python3").is_some() {
            checks.push(AutoCheck {
                command: "python3 -m compileall -q .".into(),
                reason: "a Python project",
            });
        }
        if which("ruff").is_some() {
            checks.push(AutoCheck {
                command: "ruff check --select E9,F63,F7,F82 .".into(),
                reason: "a Python project",
            });
        }
    }
    if has("tsconfig.json") {
        let local = root.join("node_modules/.bin/tsc");
        if local.is_file() {
            checks.push(AutoCheck {
                command: "node_modules/.bin/tsc --noEmit".into(),
                reason: "tsconfig.json",
            });
        } else if which("tsc").is_some() {
            checks.push(AutoCheck {
                command: "tsc --noEmit".into(),
                reason: "tsconfig.json",
            });
        }
    }
    if has("go.mod") && which("go").is_some() {
        checks.push(AutoCheck {
            command: "go vet ./...".into(),
            reason: "go.mod",
        });
    }
    checks
}

/// `commands` with each `auto` replaced by the checks detected at `root` (their `reason` says where from;
/// commands given as they are have the reason `given`). An error names what `auto` looked for when it
/// found nothing.
pub fn expand(commands: &[String], root: &Path) -> Result<Vec<AutoCheck>, String> {
    let mut out = Vec::new();
    for command in commands {
        if command.trim() != "auto" {
            out.push(AutoCheck {
                command: command.clone(),
                reason: "given",
            });
            continue;
        }
        let found = detect(root, &which);
        if found.is_empty() {
            return Err(format!(
                "`auto` found no check for {}: it looks for Cargo.toml (cargo), a Python project (python3, ruff), \
                 tsconfig.json (tsc) and go.mod (go), each with its tool on PATH; name the command instead",
                root.display()
            ));
        }
        out.extend(found);
    }
    Ok(out)
}

/// The executable `name` on `PATH`, like the shell would find it.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(files: &[&str], tools: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("temp");
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            std::fs::write(path, "").expect("write");
        }
        let which = |name: &str| tools.contains(&name).then(|| PathBuf::from(name));
        detect(dir.path(), &which)
            .into_iter()
            .map(|c| c.command)
            .collect()
    }

    #[test]
    fn one_check_per_project_kind_when_its_tool_exists() {
        assert_eq!(
            commands(&["Cargo.toml"], &["cargo"]),
            ["cargo check --all-targets"]
        );
        assert!(commands(&["Cargo.toml"], &[]).is_empty());
        assert_eq!(
            commands(&["main.py"], &["python3", "ruff"]),
            [
                "python3 -m compileall -q .",
                "ruff check --select E9,F63,F7,F82 ."
            ]
        );
        assert_eq!(
            commands(&["pyproject.toml"], &["python3"]),
            ["python3 -m compileall -q ."]
        );
        assert_eq!(commands(&["tsconfig.json"], &["tsc"]), ["tsc --noEmit"]);
        assert_eq!(
            commands(&["tsconfig.json", "node_modules/.bin/tsc"], &[]),
            ["node_modules/.bin/tsc --noEmit"]
        );
        assert_eq!(commands(&["go.mod"], &["go"]), ["go vet ./..."]);
        assert!(commands(&["README.md"], &["cargo", "python3", "go", "tsc"]).is_empty());
    }

    #[test]
    fn auto_expands_in_place_and_says_when_it_finds_nothing() {
        let dir = tempfile::tempdir().expect("temp");
        let given = vec!["make lint".to_string()];
        let expanded = expand(&given, dir.path()).expect("given commands stay");
        assert_eq!(
            (expanded[0].command.as_str(), expanded[0].reason),
            ("make lint", "given")
        );
        let err = expand(&["auto".to_string()], dir.path()).expect_err("nothing to detect");
        assert!(err.contains("Cargo.toml"), "{err}");
    }

    #[test]
    fn which_finds_executables_on_path() {
        assert!(which("sh").is_some());
        assert!(which("no-such-tool-qwen-ls").is_none());
    }
}
