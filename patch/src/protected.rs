//! Paths a model's edit may not touch on its own: one table for the whole program.
//!
//! `.git` (any case, at any depth, also as `.git.` or `.git ` which some file systems read as `.git`) is
//! refused outright: a hook or a config written there runs on the next git command. Editor, CI, build-tool
//! and shell configuration ([`CONFIRM`]) can run programs too — VS Code settings choose the language server's
//! binary, `.envrc` is executed by direnv, a workflow runs with the repository's secrets — so edits there are
//! held for the user's confirmation: `qwen-ls patch --apply` writes them only with `--allow-config-edits`,
//! the language server marks them `needsConfirmation` (and refuses them where the editor cannot ask).
//! qwen-ls's own apply journal and temporary files ([`is_reserved`]) are refused too.

/// Configuration paths that need confirmation: `(pattern, what it configures)`. A pattern ending in `/` is a
/// directory at any depth (everything under it); any other pattern is a file name at any depth. Compared
/// case-insensitively.
pub const CONFIRM: &[(&str, &str)] = &[
    // Editors.
    (".vscode/", "VS Code settings and tasks"),
    (".idea/", "JetBrains IDE settings"),
    (".devcontainer/", "a dev container definition"),
    (".nvim.lua", "Neovim's local configuration"),
    (".nvimrc", "Neovim's local configuration"),
    (".exrc", "Vim's local configuration"),
    // CI.
    (".github/", "GitHub settings and Actions workflows"),
    (".gitlab-ci.yml", "GitLab CI"),
    (".gitlab/", "GitLab settings"),
    (".circleci/", "CircleCI"),
    (".buildkite/", "Buildkite"),
    (".travis.yml", "Travis CI"),
    (".drone.yml", "Drone CI"),
    ("azure-pipelines.yml", "Azure Pipelines"),
    ("bitbucket-pipelines.yml", "Bitbucket Pipelines"),
    ("jenkinsfile", "Jenkins"),
    // Build tools, package managers and git.
    (".cargo/", "Cargo configuration"),
    ("rust-toolchain", "the Rust toolchain"),
    ("rust-toolchain.toml", "the Rust toolchain"),
    (".npmrc", "npm configuration"),
    (".yarnrc", "Yarn configuration"),
    (".yarnrc.yml", "Yarn configuration"),
    (".mvn/", "the Maven wrapper"),
    ("gradle-wrapper.properties", "the Gradle wrapper"),
    (".bazelrc", "Bazel configuration"),
    (".pre-commit-config.yaml", "pre-commit hooks"),
    (".husky/", "git hooks (husky)"),
    ("lefthook.yml", "git hooks (lefthook)"),
    (".gitmodules", "git submodules"),
    (".gitattributes", "git attributes (filters, diff drivers)"),
    // Shells.
    (".envrc", "direnv (run by the shell)"),
    (".bashrc", "a shell start-up file"),
    (".bash_profile", "a shell start-up file"),
    (".profile", "a shell start-up file"),
    (".zshrc", "a shell start-up file"),
    (".zshenv", "a shell start-up file"),
    (".zprofile", "a shell start-up file"),
    // qwen-ls itself.
    (".qwenignore", "what qwen-ls keeps from models"),
];

/// Whether a path component names the git directory (`.git`, `.GIT`, `.git.`, `.git `).
pub fn is_git_dir(component: &str) -> bool {
    component
        .trim_end_matches(['.', ' '])
        .eq_ignore_ascii_case(".git")
}

/// The apply journal's file name, in the root (`journal.rs`); reserved here with the other names a model may
/// not write.
pub const JOURNAL_NAME: &str = ".qwen-ls-apply.journal";

/// Whether a file name is one qwen-ls writes for itself: the apply journal and temporary files (see
/// `journal.rs`). A model may not write them: a forged journal would steer the next apply.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with(JOURNAL_NAME)
        || lower.ends_with(".qwen-ls-tmp")
        || lower.ends_with(".qwen-ls-restore")
}

/// What the `/`-separated root-relative path configures, if it needs the user's confirmation.
pub fn needs_confirmation(rel: &str) -> Option<&'static str> {
    let components: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let (name, directories) = components.split_last()?;
    CONFIRM.iter().find_map(|(pattern, what)| {
        let hit = match pattern.strip_suffix('/') {
            Some(dir) => directories.iter().any(|d| d.eq_ignore_ascii_case(dir)),
            None => name.eq_ignore_ascii_case(pattern),
        };
        hit.then_some(*what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_git_directory_in_any_spelling() {
        for name in [".git", ".GIT", ".Git", ".git.", ".git ", ".git. "] {
            assert!(is_git_dir(name), "{name:?}");
        }
        for name in [".github", "git", ".gitignore", "x.git", ".gitx"] {
            assert!(!is_git_dir(name), "{name:?}");
        }
    }

    #[test]
    fn configuration_paths_at_any_depth_and_case() {
        for (path, what) in [
            (".vscode/settings.json", "VS Code settings and tasks"),
            ("sub/.VSCode/tasks.json", "VS Code settings and tasks"),
            (
                ".github/workflows/ci.yml",
                "GitHub settings and Actions workflows",
            ),
            (".gitlab-ci.yml", "GitLab CI"),
            (".cargo/config.toml", "Cargo configuration"),
            ("tools/.envrc", "direnv (run by the shell)"),
            ("Jenkinsfile", "Jenkins"),
        ] {
            assert_eq!(needs_confirmation(path), Some(what), "{path}");
        }
        for path in [
            "src/main.rs",
            "github/x.yml",
            "docs/vscode.md",
            "envrc",
            "Cargo.toml",
        ] {
            assert_eq!(needs_confirmation(path), None, "{path}");
        }
    }
}
