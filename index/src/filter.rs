//! Decisions about single files: secrets (by name, before reading), binary and minified content (after).

use std::fmt;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::IndexConfig;

/// Why a file was not indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Larger than `max_file_bytes`.
    TooLarge(u64),
    /// Contains NUL bytes near the start.
    Binary,
    /// Line-length heuristics say minified or generated.
    Minified,
    /// Matches a secret pattern; never read.
    Secret,
    /// Listed in the workspace's `.qwenignore` (the configured ignore file): never read, like a secret.
    Private,
    /// Matched by `.gitignore`, `.ignore` or `.git/info/exclude`.
    Ignored,
    /// A hidden file or directory (name starting with `.`).
    Hidden,
    /// Not inside the workspace root.
    Outside,
    /// A symbolic link (never followed: targets inside the workspace are indexed at their real path).
    Link,
    /// The path is not valid UTF-8.
    NonUtf8Path,
    /// An I/O error (unreadable, deleted during the walk…).
    Io(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge(bytes) => write!(f, "too large ({bytes} bytes)"),
            Self::Binary => f.write_str("binary"),
            Self::Minified => f.write_str("minified or generated (line lengths)"),
            Self::Secret => f.write_str("matches a secret pattern"),
            Self::Private => f.write_str("is listed in .qwenignore"),
            Self::Ignored => f.write_str("ignored (.gitignore, .ignore)"),
            Self::Hidden => f.write_str("hidden"),
            Self::Outside => f.write_str("outside the workspace"),
            Self::Link => f.write_str("symbolic link (not followed)"),
            Self::NonUtf8Path => f.write_str("path is not UTF-8"),
            Self::Io(message) => write!(f, "unreadable: {message}"),
        }
    }
}

/// How far into a file to look for NUL bytes (git's heuristic looks at 8000 bytes).
const BINARY_SNIFF_BYTES: usize = 8192;
/// Files smaller than this are never called minified by their average line length.
const MINIFIED_MIN_BYTES: usize = 1024;

/// Matches the configured secret patterns, case-insensitively (see `IndexConfig::secret_patterns`).
#[derive(Clone, Debug)]
pub struct SecretMatcher {
    /// Patterns without `/`: matched against the file name and the whole path.
    names: GlobSet,
    /// Patterns with `/`, as `**/pattern` (`**/dir/**` for `dir/`): matched against the whole path.
    anywhere: GlobSet,
}

impl SecretMatcher {
    /// Compiles the patterns; an invalid pattern is logged and ignored (the others still protect).
    pub fn new(patterns: &[String]) -> Self {
        let mut names = GlobSetBuilder::new();
        let mut anywhere = GlobSetBuilder::new();
        for pattern in patterns {
            let (builder, glob) = match pattern.strip_suffix('/') {
                Some(dir) => (
                    &mut anywhere,
                    format!("**/{}/**", dir.trim_start_matches('/')),
                ),
                None if pattern.contains('/') => (
                    &mut anywhere,
                    format!("**/{}", pattern.trim_start_matches('/')),
                ),
                None => (&mut names, pattern.clone()),
            };
            match GlobBuilder::new(&glob).case_insensitive(true).build() {
                Ok(glob) => {
                    builder.add(glob);
                }
                Err(e) => tracing::warn!("ignoring invalid secret pattern {pattern:?}: {e}"),
            }
        }
        let build = |builder: GlobSetBuilder| {
            builder.build().unwrap_or_else(|e| {
                tracing::warn!("secret patterns failed to compile ({e}); using none");
                GlobSet::empty()
            })
        };
        Self {
            names: build(names),
            anywhere: build(anywhere),
        }
    }

    /// Whether the file at this `/`-separated path (workspace-relative or absolute) must never be read.
    pub fn is_secret(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.names.is_match(name) || self.names.is_match(path) || self.anywhere.is_match(path)
    }
}

/// Checks content that was read: binary or minified files are skipped.
pub fn check_content(bytes: &[u8], config: &IndexConfig) -> Result<(), SkipReason> {
    let sniff = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    if sniff.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let mut longest = 0;
    let mut lines = 0usize;
    for line in bytes.split(|&b| b == b'\n') {
        longest = longest.max(line.len());
        lines += 1;
    }
    let average = bytes.len() / lines.max(1);
    if longest > config.max_line_bytes
        || (bytes.len() >= MINIFIED_MIN_BYTES && average > config.max_average_line_bytes)
    {
        return Err(SkipReason::Minified);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_by_name_anywhere() {
        let config = IndexConfig::default();
        let secrets = SecretMatcher::new(&config.secret_patterns);
        for secret in [
            ".env",
            "deploy/.env.production",
            "keys/id_rsa",
            "certs/server.pem",
            // Case does not protect a secret.
            ".ENV",
            "keys/ID_RSA",
            "Certs/Server.PEM",
            // Terraform, database and tool credentials.
            "infra/prod.tfvars",
            "infra/terraform.tfstate",
            "infra/terraform.tfstate.backup",
            ".pgpass",
            "putty/me.ppk",
            "home/.aws/credentials",
            "credentials",
            "config/credentials.yml",
            // Credential directories at any depth, relative or absolute.
            ".ssh/config",
            "home/me/.ssh/known_hosts",
            "/home/me/.ssh/config",
            "/home/me/.AWS/config",
            "/home/me/.kube/config",
            "dotfiles/.kube/config",
            "/home/me/.docker/config.json",
        ] {
            assert!(secrets.is_secret(secret), "{secret} must be secret");
        }
        for ordinary in [
            "src/environment.rs",
            "src/keyboard.ts",
            "src/credentials.rs",
            "src/ssh/config.rs",
            "kube/config.go",
            "/home/me/project/src/main.rs",
            "docker/config.json",
        ] {
            assert!(!secrets.is_secret(ordinary), "{ordinary} is not a secret");
        }
    }

    #[test]
    fn binary_and_minified_content_is_rejected() {
        let config = IndexConfig::default();
        assert_eq!(check_content(b"abc\0def", &config), Err(SkipReason::Binary));
        let minified = format!("var a={};\n", "x".repeat(5000));
        assert_eq!(
            check_content(minified.as_bytes(), &config),
            Err(SkipReason::Minified)
        );
        let wide = "y".repeat(400) + "\n";
        let wide_file = wide.repeat(10);
        assert_eq!(
            check_content(wide_file.as_bytes(), &config),
            Err(SkipReason::Minified)
        );
        assert_eq!(check_content(b"fn main() {}\n", &config), Ok(()));
    }
}
