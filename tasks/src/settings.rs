//! `Settings`: every configuration key of `docs/PROTOCOL.md`, as a plain struct with the documented defaults.
//!
//! Parsing (JSON from the editor, flags from the command line) happens at the edges — the LSP converts
//! `initializationOptions` by hand, the CLI maps its flags onto a `Settings::default()` — so this type carries
//! no serde and the defaults live here, once.

use std::path::PathBuf;
use std::time::Duration;

pub use qwen_engine::SpeculativeMode;

/// The draft model when `draftModel` is empty: the pinned Qwen2.5-Coder-0.5B-Instruct (same vocabulary as the
/// default model).
pub const DEFAULT_DRAFT_MODEL: &str = "qwen2.5-coder-0.5b";

/// Weight compute type for non-quantized weights (`dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DTypeSetting {
    /// Let qwen-ls choose (today: f32, the exact one).
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// 16-bit floats (half the memory; fast on CPU).
    F16,
    /// bfloat16 (slow on CPU: candle has no bf16 CPU GEMM).
    Bf16,
}

impl DTypeSetting {
    /// Parses `"auto" | "f32" | "f16" | "bf16"` (case-insensitive).
    pub fn parse(text: &str) -> Option<DTypeSetting> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Some(DTypeSetting::Auto),
            "f32" | "float32" => Some(DTypeSetting::F32),
            "f16" | "float16" | "half" => Some(DTypeSetting::F16),
            "bf16" | "bfloat16" => Some(DTypeSetting::Bf16),
            _ => None,
        }
    }

    /// The setting's value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DTypeSetting::Auto => "auto",
            DTypeSetting::F32 => "f32",
            DTypeSetting::F16 => "f16",
            DTypeSetting::Bf16 => "bf16",
        }
    }
}

/// Where generations run (`backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The in-process engine.
    #[default]
    Local,
    /// An OpenAI-compatible server (vLLM, SGLang, llama.cpp's server).
    OpenAi,
}

impl Backend {
    /// Parses `"local" | "openai"`.
    pub fn parse(text: &str) -> Option<Backend> {
        match text.trim().to_ascii_lowercase().as_str() {
            "local" | "" => Some(Backend::Local),
            "openai" => Some(Backend::OpenAi),
            _ => None,
        }
    }

    /// The setting's value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::OpenAi => "openai",
        }
    }
}

/// `openai.*`: the remote backend (defined with the backend that reads it).
pub use qwen_generator::OpenAiSettings;

/// `threads.*`: engine threads per phase (0 = automatic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadSettings {
    /// `threads.prefill`.
    pub prefill: usize,
    /// `threads.decode`.
    pub decode: usize,
}

/// `completion.*`: inline completions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompletionSettings {
    /// `completion.enabled`.
    pub enabled: bool,
    /// `completion.speculative`: speculative decoding for completions (off by default: see
    /// docs/BENCHMARKS.md, "Speculative decoding").
    pub speculative: SpeculativeMode,
    /// `completion.budget`: prompt tokens (repository context + prefix + suffix).
    pub budget: usize,
    /// `completion.maxTokens`.
    pub max_tokens: usize,
    /// `completion.temperature` (0 = greedy).
    pub temperature: f32,
    /// `completion.debounceMs`: base debounce.
    pub debounce_ms: u64,
    /// `completion.suffixTokens`: tokens of text after the cursor in the prompt at most. Each keystroke re-runs
    /// them (they follow the cursor), so they cost latency while the user types.
    pub suffix_tokens: usize,
    /// `completion.latencyMs`: how soon a suggestion should arrive. While the full prompt is not in the KV
    /// cache, a smaller one sized to the measured prefill speed runs instead; 0 turns this off (always the
    /// full prompt, however long it takes).
    pub latency_ms: u64,
}

impl Default for CompletionSettings {
    fn default() -> Self {
        CompletionSettings {
            enabled: true,
            speculative: SpeculativeMode::Off,
            budget: 2048,
            max_tokens: 128,
            temperature: 0.0,
            debounce_ms: 75,
            suffix_tokens: 48,
            latency_ms: 1000,
        }
    }
}

impl CompletionSettings {
    /// The latency target, `None` when off.
    pub fn latency_target(&self) -> Option<Duration> {
        (self.latency_ms > 0).then(|| Duration::from_millis(self.latency_ms))
    }

    /// `debounce_ms` as a duration.
    pub fn debounce(&self) -> Duration {
        Duration::from_millis(self.debounce_ms)
    }
}

/// `hover.*`: explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoverSettings {
    /// `hover.enabled`.
    pub enabled: bool,
    /// `hover.budget`: context tokens for an explanation.
    pub budget: usize,
    /// `hover.maxTokens`.
    pub max_tokens: usize,
    /// `hover.speculative`: speculative decoding for explanations (`off`, `lookup`, `draft`).
    pub speculative: SpeculativeMode,
}

impl Default for HoverSettings {
    fn default() -> Self {
        HoverSettings {
            enabled: true,
            budget: 4096,
            max_tokens: 256,
            speculative: SpeculativeMode::Lookup,
        }
    }
}

/// `codeActions.*`: refactors and patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeActionSettings {
    /// `codeActions.enabled`.
    pub enabled: bool,
    /// `codeActions.budget`: context tokens for a refactor or patch.
    pub budget: usize,
    /// `codeActions.maxTokens`.
    pub max_tokens: usize,
    /// `codeActions.speculative`: speculative decoding for refactors and patches (`off`, `lookup`, `draft`).
    pub speculative: SpeculativeMode,
    /// `codeActions.checkCommand`: shell commands (or `auto`) that "Fix diagnostics in range" runs on each
    /// candidate in a scratch copy, feeding failures back (empty: one answer, unchecked).
    pub check_commands: Vec<String>,
    /// `codeActions.maxRounds`: most answers of that loop.
    pub max_rounds: usize,
    /// `codeActions.checkTimeout`: seconds each check may run.
    pub check_timeout_secs: u64,
    /// `codeActions.fixTimeLimit`: seconds the whole loop may take.
    pub fix_time_limit_secs: u64,
    /// `codeActions.preview`: edits ask the editor to show them for review before they apply (LSP change
    /// annotations with `needsConfirmation`).
    pub preview: bool,
}

impl Default for CodeActionSettings {
    fn default() -> Self {
        CodeActionSettings {
            enabled: true,
            budget: 8192,
            max_tokens: 1024,
            speculative: SpeculativeMode::Lookup,
            check_commands: Vec::new(),
            max_rounds: 3,
            check_timeout_secs: 60,
            fix_time_limit_secs: 180,
            preview: true,
        }
    }
}

/// `debug.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DebugSettings {
    /// `debug.dumpPrompt`: write each request's exact prompt under the log directory.
    pub dump_prompt: bool,
}

/// The whole configuration (see `docs/PROTOCOL.md`). `Default` is the documented defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// `model`: a directory, a `.gguf` file or a Hugging Face id; empty = the default model.
    pub model: String,
    /// `dtype`.
    pub dtype: DTypeSetting,
    /// `backend`.
    pub backend: Backend,
    /// `openai.*`.
    pub openai: OpenAiSettings,
    /// `threads.*`.
    pub threads: ThreadSettings,
    /// `completion.*` (but `completion.model`).
    pub completion: CompletionSettings,
    /// `completion.model`: a model for inline completions only (e.g. the small `qwen2.5-coder-0.5b`), loaded
    /// next to `model`; empty: completions use `model`. (Kept out of [`CompletionSettings`], which is `Copy`.)
    pub completion_model: String,
    /// `hover.*`.
    pub hover: HoverSettings,
    /// `codeActions.*`.
    pub code_actions: CodeActionSettings,
    /// `debug.*`.
    pub debug: DebugSettings,
    /// `logFile`: also write logs to this file (`None` for the empty string).
    pub log_file: Option<PathBuf>,
    /// `draftModel`: the draft model of a `*.speculative = "draft"` setting; empty: [`DEFAULT_DRAFT_MODEL`].
    pub draft_model: String,
}

impl Settings {
    /// Whether two configurations need different generators (the models, dtype, backend or threads changed,
    /// or a draft model is needed now and was not before); the other keys take effect on the next request.
    pub fn needs_new_generator(&self, other: &Settings) -> bool {
        self.model != other.model
            || self.dtype != other.dtype
            || self.backend != other.backend
            || self.openai != other.openai
            || self.threads != other.threads
            || self.completion_model != other.completion_model
            || self.draft_model_spec() != other.draft_model_spec()
    }

    /// The draft model to load: `Some(spec)` when a speculative setting asks for one.
    pub fn draft_model_spec(&self) -> Option<&str> {
        let wanted = [
            self.completion.speculative,
            self.hover.speculative,
            self.code_actions.speculative,
        ]
        .contains(&SpeculativeMode::Draft);
        wanted.then(|| match self.draft_model.trim() {
            "" => DEFAULT_DRAFT_MODEL,
            spec => spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults are the table of `docs/PROTOCOL.md`, key by key.
    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::default();
        assert_eq!(s.model, "");
        assert_eq!(s.dtype.as_str(), "auto");
        assert_eq!(s.backend.as_str(), "local");
        assert_eq!(s.openai.endpoint, "http://127.0.0.1:8000/v1");
        assert_eq!(s.openai.model, "");
        assert_eq!(s.openai.api_key_env, "QWEN_LS_API_KEY");
        assert_eq!((s.threads.prefill, s.threads.decode), (0, 0));
        let c = s.completion;
        assert!(c.enabled);
        assert_eq!((c.budget, c.max_tokens, c.debounce_ms), (2048, 128, 75));
        assert_eq!((c.suffix_tokens, c.latency_ms), (48, 1000));
        assert_eq!(c.temperature, 0.0);
        assert_eq!(
            s.hover,
            HoverSettings {
                enabled: true,
                budget: 4096,
                max_tokens: 256,
                speculative: SpeculativeMode::Lookup,
            }
        );
        assert_eq!(
            s.code_actions,
            CodeActionSettings {
                enabled: true,
                budget: 8192,
                max_tokens: 1024,
                speculative: SpeculativeMode::Lookup,
                check_commands: Vec::new(),
                max_rounds: 3,
                check_timeout_secs: 60,
                fix_time_limit_secs: 180,
                preview: true,
            }
        );
        assert!(!s.debug.dump_prompt);
        assert_eq!(s.log_file, None);
        assert_eq!(
            (s.draft_model.as_str(), s.completion_model.as_str()),
            ("", "")
        );
        assert_eq!(s.completion.speculative, SpeculativeMode::Off);
        assert_eq!(s.draft_model_spec(), None);
    }

    #[test]
    fn a_draft_model_is_loaded_only_when_a_setting_asks_for_one() {
        let mut s = Settings::default();
        let before = s.clone();
        s.completion.speculative = SpeculativeMode::Draft;
        assert_eq!(s.draft_model_spec(), Some(DEFAULT_DRAFT_MODEL));
        assert!(s.needs_new_generator(&before));
        s.draft_model = "/models/small.gguf".into();
        assert_eq!(s.draft_model_spec(), Some("/models/small.gguf"));
        let mut off = before.clone();
        off.code_actions.speculative = SpeculativeMode::Off;
        assert!(!off.needs_new_generator(&before));
    }

    #[test]
    fn protocol_doc_lists_every_key_with_its_default() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        for (key, default) in [
            ("model", "`\"\"`"),
            ("dtype", "`\"auto\"`"),
            ("backend", "`\"local\"`"),
            ("openai.endpoint", "`\"http://127.0.0.1:8000/v1\"`"),
            ("openai.apiKeyEnv", "`\"QWEN_LS_API_KEY\"`"),
            ("completion.budget", "`2048`"),
            ("completion.maxTokens", "`128`"),
            ("completion.debounceMs", "`75`"),
            ("completion.suffixTokens", "`48`"),
            ("completion.latencyMs", "`1000`"),
            ("hover.budget", "`4096`"),
            ("hover.maxTokens", "`256`"),
            ("codeActions.budget", "`8192`"),
            ("codeActions.maxTokens", "`1024`"),
            ("debug.dumpPrompt", "`false`"),
            ("hover.speculative", "`\"lookup\"`"),
            ("codeActions.speculative", "`\"lookup\"`"),
            ("draftModel", "`\"\"`"),
            ("completion.model", "`\"\"`"),
            ("completion.speculative", "`\"off\"`"),
        ] {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{key}` |")))
                .unwrap_or_else(|| panic!("{key} missing from PROTOCOL.md"));
            assert!(row.contains(default), "{key}: {row}");
        }
    }

    #[test]
    fn enums_parse_their_documented_values() {
        for v in ["auto", "f32", "f16", "bf16"] {
            assert_eq!(DTypeSetting::parse(v).map(DTypeSetting::as_str), Some(v));
        }
        assert_eq!(Backend::parse("openai"), Some(Backend::OpenAi));
        assert_eq!(Backend::parse("cuda"), None);
    }
}
