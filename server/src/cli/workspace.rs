//! Locating the workspace of a file and parsing `FILE:LINE:COL`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// A position as compilers print it: 1-based line and column.
#[derive(Debug, PartialEq, Eq)]
pub struct Location {
    /// The file as given (relative to the current directory or absolute).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (bytes).
    pub column: u32,
}

/// Parses `FILE:LINE:COL` (a path may itself contain colons: the last two fields are the position).
pub fn parse_location(text: &str) -> anyhow::Result<Location> {
    let mut parts = text.rsplitn(3, ':');
    let (Some(column), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected FILE:LINE:COL, got {text:?}");
    };
    let line: u32 = line
        .parse()
        .with_context(|| format!("bad line in {text:?}"))?;
    let column: u32 = column
        .parse()
        .with_context(|| format!("bad column in {text:?}"))?;
    if line == 0 || column == 0 || file.is_empty() {
        bail!("FILE:LINE:COL has 1-based line and column, got {text:?}");
    }
    Ok(Location {
        file: PathBuf::from(file),
        line,
        column,
    })
}

/// The workspace root of a file: the nearest ancestor directory containing `.git`, else the file's directory.
pub fn workspace_root(file: &Path) -> PathBuf {
    let directory = file.parent().unwrap_or(Path::new("/"));
    directory
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(directory)
        .to_path_buf()
}

/// The workspace of `file` (canonical): `--root` when given (it must be a directory containing the file), else
/// [`workspace_root`].
pub fn root_for_file(root: Option<&Path>, file: &Path) -> anyhow::Result<PathBuf> {
    let Some(root) = root else {
        return Ok(workspace_root(file));
    };
    let root = root
        .canonicalize()
        .with_context(|| format!("--root {} is not a directory", root.display()))?;
    if !root.is_dir() {
        bail!("--root {} is not a directory", root.display());
    }
    if !file.starts_with(&root) {
        bail!(
            "{} is not inside --root {}: pass a root that contains the file",
            file.display(),
            root.display()
        );
    }
    Ok(root)
}

/// Where exact token counts of the built-in Qwen tokenizer are memoized between runs.
pub fn token_memo_path() -> Option<PathBuf> {
    crate::index::CacheStore::default_dir().map(|dir| dir.join("token-counts-qwen.bin"))
}

/// Loads (and, when it changed, saves the cache of) a workspace with the default configuration.
pub fn load_index(
    root: &Path,
    use_cache: bool,
) -> anyhow::Result<(crate::index::IndexHost, crate::index::LoadReport)> {
    use crate::index::{CacheStore, IndexConfig, IndexHost};
    let cache = if use_cache {
        CacheStore::for_workspace(&root.canonicalize().unwrap_or_else(|_| root.to_path_buf()))
    } else {
        None
    };
    let (host, report) = IndexHost::load(root, IndexConfig::default(), cache)
        .with_context(|| format!("cannot index {}", root.display()))?;
    if report.cache_outdated {
        if let Err(e) = host.save_cache() {
            tracing::warn!("{e}");
        }
    }
    Ok((host, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_from_the_right() {
        let location = parse_location("src/a:b.rs:12:5").expect("parses");
        assert_eq!(location.file, PathBuf::from("src/a:b.rs"));
        assert_eq!((location.line, location.column), (12, 5));
        assert!(parse_location("src/a.rs:12").is_err());
        assert!(parse_location("src/a.rs:0:1").is_err());
    }
}
