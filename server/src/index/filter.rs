//! Decisions about single files: secrets (by name, before reading), binary and minified content (after).

use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};

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

/// Matches the configured secret patterns.
#[derive(Clone, Debug)]
pub struct SecretMatcher {
    globs: GlobSet,
}

impl SecretMatcher {
    /// Compiles the patterns; an invalid pattern is logged and ignored (the others still protect).
    pub fn new(patterns: &[String]) -> Self {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            match Glob::new(pattern) {
                Ok(glob) => {
                    builder.add(glob);
                }
                Err(e) => tracing::warn!("ignoring invalid secret pattern {pattern:?}: {e}"),
            }
        }
        let globs = builder.build().unwrap_or_else(|e| {
            tracing::warn!("secret patterns failed to compile ({e}); using none");
            GlobSet::empty()
        });
        Self { globs }
    }

    /// Whether the file at this workspace-relative path must never be read.
    pub fn is_secret(&self, relative_path: &str) -> bool {
        let name = relative_path.rsplit('/').next().unwrap_or(relative_path);
        self.globs.is_match(name) || self.globs.is_match(relative_path)
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
        assert!(secrets.is_secret(".env"));
        assert!(secrets.is_secret("deploy/.env.production"));
        assert!(secrets.is_secret("keys/id_rsa"));
        assert!(secrets.is_secret("certs/server.pem"));
        assert!(!secrets.is_secret("src/environment.rs"));
        assert!(!secrets.is_secret("src/keyboard.ts"));
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
