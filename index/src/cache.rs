//! The persistent cache: per workspace, the symbols and windows of every file keyed by content hash, so that a
//! restart on an unchanged repository reads and hashes files but parses none.
//!
//! Location: `$QWEN_LS_CACHE_DIR`, else `$XDG_CACHE_HOME/qwen-ls`, else `~/.cache/qwen-ls`; one file per
//! workspace named by a hash of its absolute path. Layout: magic, format version, schema fingerprint (the tag
//! queries and window sizes the symbols were made with), payload length, xxh3 checksum, payload. Anything
//! that does not check out is logged, discarded and rebuilt. Writes go to a temporary file that is renamed
//! over the old one, so a crash never leaves a half-written cache.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::codec::{DecodeError, Reader, Writer};
use super::windows::{MAX_WINDOW_LINES, MIN_WINDOW_LINES, TARGET_WINDOW_LINES};
use super::{FileIndex, FileSymbols};
use qwen_syntax::{language_for_name, LanguageSpec, LANGUAGES};

const MAGIC: &[u8; 8] = b"QWLSIDX\n";
/// Bump when the encoding changes, or when code that shapes cached symbols changes in a way the schema
/// fingerprint cannot see (the tagger's canonical order, identifier splitting, window cutting).
const FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 8 + 8 + 8;

/// Environment variable overriding the cache directory (tests, CI, sandboxes).
pub const CACHE_DIR_ENV: &str = "QWEN_LS_CACHE_DIR";

/// What happened to the cache when loading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CacheStatus {
    /// No cache store was configured.
    #[default]
    Disabled,
    /// No cache file yet.
    Missing,
    /// Loaded, with this many entries.
    Loaded(usize),
    /// Present but unusable (corrupt, old format, other workspace); it will be rebuilt.
    Discarded(String),
}

/// A cache write failure (reads never fail: they fall back to a full index).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// I/O on the cache file or directory.
    #[error("cannot write index cache {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// One file's cached symbols.
pub struct CachedFile {
    hash: u64,
    lossy: bool,
    language: Option<&'static LanguageSpec>,
    /// The symbols and windows.
    pub symbols: FileSymbols,
}

impl CachedFile {
    /// Whether this entry was made from the same content with the same language.
    pub fn matches(&self, hash: u64, language: Option<&'static LanguageSpec>, lossy: bool) -> bool {
        self.hash == hash && self.language == language && self.lossy == lossy
    }
}

/// Where one workspace's cache lives.
#[derive(Clone, Debug)]
pub struct CacheStore {
    file: PathBuf,
}

impl CacheStore {
    /// The per-user cache directory (see the module docs); `None` when no home directory is known.
    pub fn default_dir() -> Option<PathBuf> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        from_env(CACHE_DIR_ENV)
            .or_else(|| from_env("XDG_CACHE_HOME").map(|d| d.join("qwen-ls")))
            .or_else(|| from_env("HOME").map(|d| d.join(".cache").join("qwen-ls")))
    }

    /// The cache of `root` in the default directory.
    pub fn for_workspace(root: &Path) -> Option<Self> {
        Self::default_dir().map(|dir| Self::in_dir(&dir, root))
    }

    /// The cache of `root` inside `dir`.
    pub fn in_dir(dir: &Path, root: &Path) -> Self {
        let key = xxh3_64(root.as_os_str().as_encoded_bytes());
        let name = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("root")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>();
        Self {
            file: dir.join(format!("{name}-{key:016x}.idx")),
        }
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Loads the entries for `root`. A missing cache is normal; a bad one is logged and discarded.
    pub fn load(&self, root: &Path) -> (HashMap<String, CachedFile>, CacheStatus) {
        let bytes = match std::fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return (HashMap::new(), CacheStatus::Missing)
            }
            Err(e) => return self.discard(&format!("unreadable: {e}")),
        };
        match decode(&bytes, root) {
            Ok(entries) => {
                let count = entries.len();
                (entries, CacheStatus::Loaded(count))
            }
            Err(reason) => self.discard(&reason),
        }
    }

    fn discard(&self, reason: &str) -> (HashMap<String, CachedFile>, CacheStatus) {
        tracing::warn!(
            "discarding index cache {} ({reason}); rebuilding",
            self.file.display()
        );
        let _ = std::fs::remove_file(&self.file);
        (HashMap::new(), CacheStatus::Discarded(reason.to_owned()))
    }

    /// Writes the cache for `root` atomically (temporary file + rename).
    pub fn save<'a>(
        &self,
        root: &Path,
        files: impl Iterator<Item = &'a Arc<FileIndex>>,
    ) -> Result<(), CacheError> {
        let bytes = encode(root, files);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CacheError::Io { path, source }
        };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(io(dir))?;
        let temporary = self
            .file
            .with_extension(format!("tmp{}", std::process::id()));
        let mut out = std::fs::File::create(&temporary).map_err(io(&temporary))?;
        out.write_all(&bytes).map_err(io(&temporary))?;
        out.sync_all().map_err(io(&temporary))?;
        drop(out);
        std::fs::rename(&temporary, &self.file).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            CacheError::Io {
                path: self.file.clone(),
                source: e,
            }
        })
    }
}

/// Creates `dir` and its missing parents readable only by the user (0700 on Unix), and narrows an existing
/// `dir` to 0700 when this user owns it and it is not a shared sticky directory such as `/tmp`: for everything
/// that holds code or model answers (the index cache, saved answers, dumped prompts, the suggestion log).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let meta = std::fs::metadata(dir)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let mine = meta.uid() == unsafe { libc::geteuid() };
        let sticky = meta.mode() & 0o1000 != 0;
        if mine && !sticky && meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

#[cfg(all(test, unix))]
mod private_dir_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::create_private_dir;

    #[test]
    fn private_directories_are_0700_and_shared_ones_are_left_alone() {
        let dir = tempfile::tempdir().expect("tmp");
        let answers = dir.path().join("cache/qwen-ls/answers");
        create_private_dir(&answers).expect("create");
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode(&answers), 0o700);
        assert_eq!(mode(&dir.path().join("cache/qwen-ls")), 0o700);
        // An existing directory of ours, created before with the umask: narrowed.
        let old = dir.path().join("old");
        std::fs::create_dir(&old).expect("mkdir");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(&old).expect("narrow");
        assert_eq!(mode(&old), 0o700);
        // A shared sticky directory is never narrowed.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        create_private_dir(&shared).expect("ok");
        assert_eq!(mode(&shared), 0o1777);
    }
}

/// Identifies everything that shapes cached symbols besides file content: a changed query or window size
/// makes old caches "old format".
fn schema_fingerprint() -> u64 {
    let mut hasher = Xxh3::new();
    for spec in &LANGUAGES {
        hasher.update(spec.name.as_bytes());
        hasher.update(spec.tags_source().as_bytes());
    }
    for n in [MIN_WINDOW_LINES, TARGET_WINDOW_LINES, MAX_WINDOW_LINES] {
        hasher.update(&n.to_le_bytes());
    }
    hasher.digest()
}

fn encode<'a>(root: &Path, files: impl Iterator<Item = &'a Arc<FileIndex>>) -> Vec<u8> {
    let mut payload = Writer::default();
    payload.str(&root.to_string_lossy());
    let files: Vec<&Arc<FileIndex>> = files.collect();
    payload.u64(files.len() as u64);
    for file in files {
        payload.str(&file.path);
        payload.fixed64(file.hash);
        payload.u32(u32::from(file.lossy));
        payload.str(file.language.map_or("", |l| l.name));
        payload.symbols(
            &file.definitions,
            &file.references,
            &file.imports,
            &file.windows,
        );
    }
    let payload = payload.bytes;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&schema_fingerprint().to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode(bytes: &[u8], root: &Path) -> Result<HashMap<String, CachedFile>, String> {
    if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
        return Err("not a qwen-ls index cache".into());
    }
    let field = |at: usize, len: usize| -> u64 {
        let mut array = [0u8; 8];
        array[..len].copy_from_slice(&bytes[at..at + len]);
        u64::from_le_bytes(array)
    };
    let version = field(8, 4) as u32;
    if version != FORMAT_VERSION || field(12, 8) != schema_fingerprint() {
        return Err(format!(
            "old format (version {version}, or different tag queries)"
        ));
    }
    let length = field(20, 8);
    let checksum = field(28, 8);
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() as u64 != length || xxh3_64(payload) != checksum {
        return Err("corrupt (length or checksum mismatch)".into());
    }
    decode_payload(payload, root).map_err(|DecodeError(what)| format!("corrupt ({what})"))
}

fn decode_payload(payload: &[u8], root: &Path) -> Result<HashMap<String, CachedFile>, DecodeError> {
    let mut reader = Reader::new(payload);
    if reader.str()? != root.to_string_lossy() {
        return Err(DecodeError("made for another workspace"));
    }
    let count = reader.count(12)?;
    let mut entries = HashMap::with_capacity(count);
    for _ in 0..count {
        let path = reader.str()?.to_owned();
        let hash = reader.fixed64()?;
        let lossy = reader.u32()? != 0;
        let language_name = reader.str()?;
        let language = if language_name.is_empty() {
            None
        } else {
            Some(language_for_name(language_name).ok_or(DecodeError("unknown language"))?)
        };
        let symbols = reader.symbols()?;
        entries.insert(
            path,
            CachedFile {
                hash,
                lossy,
                language,
                symbols,
            },
        );
    }
    if !reader.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(entries)
}
