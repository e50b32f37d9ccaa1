//! What the indexer reads and what it refuses to read.

/// Indexer settings. `Default` is what the CLI and the language server use.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Files larger than this are skipped (default 1 MiB): they are data or generated code, and one of them
    /// would dominate both parse time and any context budget.
    pub max_file_bytes: u64,
    /// A file with a line longer than this is treated as minified or generated and skipped.
    pub max_line_bytes: usize,
    /// A file (over 1 KiB) whose average line is longer than this is treated as minified and skipped.
    pub max_average_line_bytes: usize,
    /// Globs for files that must never be read (secrets), matched case-insensitively. A pattern without `/`
    /// matches the file name or the path from its start (`*.pem`, `secrets.*`); one with a `/` matches at any
    /// depth (`.kube/config`); one ending in `/` matches everything under such a directory (`.ssh/`). Checked
    /// against the path as given and, through symbolic links, the real path. See [`DEFAULT_SECRET_PATTERNS`].
    pub secret_patterns: Vec<String>,
    /// Extra ignore-file name honoured like `.gitignore` in every directory.
    pub ignore_file_name: String,
    /// Whether to index hidden files and directories (names starting with `.`).
    pub include_hidden: bool,
    /// Walker threads; 0 means one per available core.
    pub threads: usize,
}

/// Secret-looking files never read into an index or a prompt (see [`IndexConfig::secret_patterns`]).
pub const DEFAULT_SECRET_PATTERNS: &[&str] = &[
    // Environment files and shell environments.
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    // Keys, certificates and key stores.
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.p8",
    "*.ppk",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "*.gpg",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    // Credential files of tools.
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".my.cnf",
    ".git-credentials",
    ".htpasswd",
    ".vault-token",
    ".s3cfg",
    ".boto",
    ".dockercfg",
    ".terraformrc",
    "terraform.rc",
    "credentials",
    "credentials*.json",
    "credentials.{yml,yaml,toml,ini,xml}",
    "secrets.*",
    // Terraform variables and state (state files hold every secret a deployment created).
    "*.tfvars",
    "*.tfvars.json",
    "*.tfstate",
    "*.tfstate.*",
    // Per-user credential directories, wherever they appear.
    ".ssh/",
    ".aws/",
    ".gnupg/",
    ".azure/",
    ".password-store/",
    ".config/gcloud/",
    ".kube/config",
    ".docker/config.json",
];

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 1024 * 1024,
            max_line_bytes: 4096,
            max_average_line_bytes: 300,
            secret_patterns: DEFAULT_SECRET_PATTERNS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            ignore_file_name: ".qwenignore".to_owned(),
            include_hidden: false,
            threads: 0,
        }
    }
}

impl IndexConfig {
    /// The number of walker threads to use.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(2, usize::from)
    }
}
