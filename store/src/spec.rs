//! `ModelSpec`: what the user asked for, parsed from one string (a command-line argument or a setting).
//!
//! | input                                   | meaning                                                     |
//! |-----------------------------------------|-------------------------------------------------------------|
//! | empty, `default`                         | the default model (see [`super::PinnedTable::builtin`])     |
//! | `path/to/model.gguf`                    | a local GGUF file                                           |
//! | `path/to/dir`                           | a local safetensors directory (config.json + *.safetensors) |
//! | `~/.ollama/models/blobs/sha256-…`       | an Ollama blob (a GGUF file named by its SHA-256)           |
//! | `ollama:qwen2.5-coder:1.5b`             | an installed Ollama model, via its manifest                 |
//! | `org/name`, `org/name:file`, `…@rev`    | a Hugging Face repository, file and revision                |
//! | `qwen2.5-coder-0.5b`, `qwen2.5-coder-1.5b` | a pinned model by short name ([`super::pinned::SHORT_NAMES`]) |
//!
//! Something that looks like a path (absolute, `./`, `../`, `~/`, or ending in `.gguf` without a `:`) is always a
//! path; a short name is the pinned model (write `./name` for a directory of that name); anything else is a path
//! only if it exists, else a Hugging Face id.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::StoreError;

/// A model the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// The default model.
    Default,
    /// A local GGUF file.
    GgufFile(PathBuf),
    /// A local directory with config.json, tokenizer.json and safetensors weights.
    SafetensorsDir(PathBuf),
    /// A file in Ollama's blob store (`…/blobs/sha256-<hex>`), named by its own SHA-256.
    OllamaBlob(PathBuf),
    /// An Ollama model reference, resolved through its manifest.
    Ollama(OllamaRef),
    /// A Hugging Face repository (and optionally a file and revision in it).
    Hub(HubRef),
}

/// `org/name[:file][@revision]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HubRef {
    /// `org/name`.
    pub repo: String,
    /// A file in the repository (a `.gguf`); `None` means the default file of a known repository, or the whole
    /// safetensors model.
    pub file: Option<String>,
    /// A branch, tag or commit; `None` means `main`.
    pub revision: Option<String>,
}

/// `ollama:[registry/][namespace/]name[:tag]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OllamaRef {
    /// Registry host, `registry.ollama.ai` by default.
    pub registry: String,
    /// Namespace, `library` by default.
    pub namespace: String,
    /// Model name.
    pub name: String,
    /// Tag, `latest` by default.
    pub tag: String,
}

const OLLAMA_REGISTRY: &str = "registry.ollama.ai";
const OLLAMA_NAMESPACE: &str = "library";

impl ModelSpec {
    /// Parses user input. Local paths are checked for existence (a missing path is an error that says so).
    pub fn parse(input: &str) -> Result<ModelSpec, StoreError> {
        let s = input.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("default") {
            return Ok(ModelSpec::Default);
        }
        if let Some(rest) = s.strip_prefix("ollama:") {
            return OllamaRef::parse(rest)
                .map(ModelSpec::Ollama)
                .map_err(|reason| invalid(s, reason));
        }
        let explicit_path = s.starts_with('/')
            || s.starts_with("./")
            || s.starts_with("../")
            || s.starts_with("~/")
            || s.starts_with('\\')
            || s.contains('\\')
            || (s.to_ascii_lowercase().ends_with(".gguf") && !s.contains(':'))
            || s == "."
            || s == "..";
        if !explicit_path {
            let short = super::pinned::SHORT_NAMES
                .iter()
                .find(|(name, _, _)| name.eq_ignore_ascii_case(s));
            if let Some((_, repo, file)) = short {
                return Ok(ModelSpec::Hub(HubRef {
                    repo: repo.to_string(),
                    file: Some(file.to_string()),
                    revision: None,
                }));
            }
        }
        let path = expand_tilde(s);
        if explicit_path || path.exists() {
            return ModelSpec::from_path(s, path);
        }
        HubRef::parse(s).map(ModelSpec::Hub).map_err(|reason| {
            invalid(
                s,
                format!("{reason} (expected a local path, `ollama:name:tag`, `org/name[:file][@revision]` or `default`)"),
            )
        })
    }

    fn from_path(input: &str, path: PathBuf) -> Result<ModelSpec, StoreError> {
        let meta = std::fs::metadata(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                invalid(
                    input,
                    format!("no such file or directory: {}", path.display()),
                )
            } else {
                StoreError::io("reading", &path, e)
            }
        })?;
        if meta.is_dir() {
            return Ok(ModelSpec::SafetensorsDir(path));
        }
        let is_ollama_blob = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("sha256-"))
            .is_some_and(|h| super::hash::is_hex(h, 64));
        Ok(if is_ollama_blob {
            ModelSpec::OllamaBlob(path)
        } else {
            ModelSpec::GgufFile(path)
        })
    }
}

impl fmt::Display for ModelSpec {
    /// The spelling that [`ModelSpec::parse`] reads back (used in messages such as "run `qwen-ls model pull X`").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Default => f.write_str("default"),
            ModelSpec::GgufFile(p) | ModelSpec::SafetensorsDir(p) | ModelSpec::OllamaBlob(p) => {
                write!(f, "{}", p.display())
            }
            ModelSpec::Ollama(r) => write!(f, "{r}"),
            ModelSpec::Hub(r) => write!(f, "{r}"),
        }
    }
}

impl HubRef {
    /// Parses `org/name[:file][@revision]` (the `:file` and `@revision` parts may come in either order).
    pub fn parse(s: &str) -> Result<HubRef, String> {
        let repo_end = s.find([':', '@']).unwrap_or(s.len());
        let repo = &s[..repo_end];
        let mut file = None;
        let mut revision = None;
        let mut rest = &s[repo_end..];
        while let Some(sep) = rest.chars().next() {
            let body = &rest[1..];
            let end = match sep {
                ':' => body.find('@'),
                _ => body.find(':'),
            }
            .unwrap_or(body.len());
            let value = &body[..end];
            if value.is_empty() {
                return Err(format!("empty value after `{sep}`"));
            }
            let slot = if sep == ':' { &mut file } else { &mut revision };
            if slot.replace(value.to_string()).is_some() {
                return Err(format!("`{sep}` given twice"));
            }
            rest = &body[end..];
        }
        let mut parts = repo.split('/');
        let (Some(org), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{repo}` is not a Hugging Face id of the form org/name"
            ));
        };
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !p.starts_with(['.', '-'])
        };
        if !valid(org) || !valid(name) {
            return Err(format!("`{repo}` is not a valid Hugging Face id"));
        }
        if let Some(f) = &file {
            if f.starts_with('/') || f.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(format!("`{f}` is not a file path inside a repository"));
            }
        }
        if let Some(r) = &revision {
            if r.contains("..") || r.contains('@') || r.starts_with('/') {
                return Err(format!("`{r}` is not a revision"));
            }
        }
        Ok(HubRef {
            repo: repo.to_string(),
            file,
            revision,
        })
    }

    /// `org`.
    pub fn org(&self) -> &str {
        self.repo.split('/').next().unwrap_or_default()
    }

    /// `name`.
    pub fn name(&self) -> &str {
        self.repo.split('/').nth(1).unwrap_or_default()
    }
}

impl fmt::Display for HubRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repo)?;
        if let Some(file) = &self.file {
            write!(f, ":{file}")?;
        }
        if let Some(rev) = &self.revision {
            write!(f, "@{rev}")?;
        }
        Ok(())
    }
}

impl OllamaRef {
    /// Parses `[registry/][namespace/]name[:tag]` (without the `ollama:` prefix).
    pub fn parse(s: &str) -> Result<OllamaRef, String> {
        let (path, tag) = match s.rsplit_once(':') {
            // A `:` inside the registry part (host:port) is not a tag separator.
            Some((p, t)) if !t.contains('/') => (p, t),
            _ => (s, "latest"),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (registry, namespace, name) = match parts.as_slice() {
            [name] => (OLLAMA_REGISTRY, OLLAMA_NAMESPACE, *name),
            [ns, name] => (OLLAMA_REGISTRY, *ns, *name),
            [reg, ns, name] => (*reg, *ns, *name),
            _ => return Err(format!("`{s}` is not an Ollama model reference (name:tag)")),
        };
        let ok = |p: &str| {
            !p.is_empty()
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        };
        if ![registry, namespace, name, tag].iter().all(|p| ok(p)) || tag.contains(':') {
            return Err(format!("`{s}` is not an Ollama model reference (name:tag)"));
        }
        Ok(OllamaRef {
            registry: registry.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            tag: tag.to_string(),
        })
    }

    /// How `ollama pull` spells it: `name:tag`, with namespace/registry only when not the defaults.
    pub fn short(&self) -> String {
        let mut s = String::new();
        if self.registry != OLLAMA_REGISTRY {
            s.push_str(&self.registry);
            s.push('/');
        }
        if self.registry != OLLAMA_REGISTRY || self.namespace != OLLAMA_NAMESPACE {
            s.push_str(&self.namespace);
            s.push('/');
        }
        s.push_str(&self.name);
        s.push(':');
        s.push_str(&self.tag);
        s
    }
}

impl fmt::Display for OllamaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ollama:{}", self.short())
    }
}

fn invalid(spec: &str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

fn expand_tilde(s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest);
        }
    }
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(s: &str) -> HubRef {
        match ModelSpec::parse(s) {
            Ok(ModelSpec::Hub(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn default_and_hub_ids() {
        assert_eq!(ModelSpec::parse("").ok(), Some(ModelSpec::Default));
        assert_eq!(ModelSpec::parse(" default ").ok(), Some(ModelSpec::Default));
        let r = hub("Qwen/Qwen3-Coder-30B-A3B-Instruct");
        assert_eq!(
            (r.org(), r.name()),
            ("Qwen", "Qwen3-Coder-30B-A3B-Instruct")
        );
        assert_eq!((r.file, r.revision), (None, None));
        let r = hub("Qwen/X-GGUF:sub/x-q4_k_m.gguf@v1.0");
        assert_eq!(r.file.as_deref(), Some("sub/x-q4_k_m.gguf"));
        assert_eq!(r.revision.as_deref(), Some("v1.0"));
        let r = hub("Qwen/X-GGUF@abc:x.gguf");
        assert_eq!(r.file.as_deref(), Some("x.gguf"));
        assert_eq!(r.revision.as_deref(), Some("abc"));
        assert_eq!(r.to_string(), "Qwen/X-GGUF:x.gguf@abc");
        let r = hub("Qwen2.5-Coder-0.5B");
        assert_eq!(
            r.to_string(),
            "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF:qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
        );
        for bad in [
            "Qwen",
            "a/b/c",
            "Qwen/X:",
            "Qwen/X@",
            "Qwen/X:../etc",
            "Qwen/X@a@b",
            "qwen2.5-coder-7b",
        ] {
            assert!(ModelSpec::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn ollama_references() {
        let parse = |s: &str| match ModelSpec::parse(s) {
            Ok(ModelSpec::Ollama(r)) => r,
            other => panic!("{s}: {other:?}"),
        };
        let r = parse("ollama:qwen2.5-coder:1.5b");
        assert_eq!(
            (
                r.registry.as_str(),
                r.namespace.as_str(),
                r.name.as_str(),
                r.tag.as_str()
            ),
            ("registry.ollama.ai", "library", "qwen2.5-coder", "1.5b")
        );
        assert_eq!(r.to_string(), "ollama:qwen2.5-coder:1.5b");
        assert_eq!(parse("ollama:qwen3-coder").tag, "latest");
        let r = parse("ollama:hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M");
        assert_eq!(
            (r.registry.as_str(), r.namespace.as_str()),
            ("hf.co", "Qwen")
        );
        assert_eq!(
            r.short(),
            "hf.co/Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF:Q4_K_M"
        );
        assert!(ModelSpec::parse("ollama:../x").is_err());
    }

    #[test]
    fn local_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gguf = dir.path().join("m.gguf");
        std::fs::write(&gguf, b"GGUF").expect("write");
        let blob = dir.path().join(format!("sha256-{}", "a".repeat(64)));
        std::fs::write(&blob, b"GGUF").expect("write");
        let p = |p: &Path| ModelSpec::parse(p.to_str().expect("utf-8")).expect("parses");
        assert_eq!(p(&gguf), ModelSpec::GgufFile(gguf.clone()));
        assert_eq!(p(&blob), ModelSpec::OllamaBlob(blob.clone()));
        assert_eq!(
            p(dir.path()),
            ModelSpec::SafetensorsDir(dir.path().to_path_buf())
        );
        let missing = dir.path().join("missing.gguf");
        let err = ModelSpec::parse(missing.to_str().expect("utf-8")).expect_err("missing");
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
