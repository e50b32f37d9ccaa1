//! Configuration from the wire (`initializationOptions`, `workspace/didChangeConfiguration`) into
//! [`Settings`], by hand: the keys of `docs/PROTOCOL.md`, nested (`{"completion": {"maxTokens": 8}}`) or dotted
//! (`{"completion.maxTokens": 8}`).
//!
//! Each message carries the whole configuration: parsing starts from `Settings::default()`, so a key the
//! client no longer sends is back at its default. Unknown keys and values of the wrong type are returned
//! for the caller to report (once per key) and otherwise ignored.

use std::path::PathBuf;

use serde_json::{Map, Value};

use qwen_tasks::{Backend, DTypeSetting, Settings, SpeculativeMode};

/// The configuration section name.
pub const SECTION: &str = "qwen-ls";

/// The result of parsing one configuration object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    /// The settings (defaults where a key is absent or invalid).
    pub settings: Settings,
    /// Keys that are not configuration keys (dotted).
    pub unknown: Vec<String>,
    /// `key: what was wrong` for values of the wrong type or out of range.
    pub invalid: Vec<String>,
}

/// Unwraps what clients send to `workspace/didChangeConfiguration`: `{"settings": {"qwen-ls": {…}}}`,
/// `{"settings": {…}}` (a bare object), or the object itself.
pub fn from_did_change(params_settings: &Value) -> Parsed {
    let section = params_settings
        .get(SECTION)
        .filter(|v| v.is_object())
        .unwrap_or(params_settings);
    parse(section)
}

/// Parses `initializationOptions` (or an unwrapped configuration section). `null` means all defaults.
pub fn parse(value: &Value) -> Parsed {
    let mut parsed = Parsed::default();
    let Some(object) = value.as_object() else {
        if !value.is_null() {
            parsed
                .invalid
                .push(format!("(configuration): expected an object, got {value}"));
        }
        return parsed;
    };
    // A client that nests the section once more (`{"qwen-ls": {…}}`) is understood too.
    let object = match object.get(SECTION).and_then(Value::as_object) {
        Some(inner) if object.len() == 1 => inner,
        _ => object,
    };
    let mut flat = Vec::new();
    flatten("", object, &mut flat);
    for (key, value) in flat {
        if let Err(problem) = set(&mut parsed.settings, &key, value) {
            match problem {
                Problem::Unknown => parsed.unknown.push(key),
                Problem::Invalid(what) => parsed.invalid.push(format!("{key}: {what}")),
            }
        }
    }
    parsed
}

fn flatten<'a>(prefix: &str, object: &'a Map<String, Value>, out: &mut Vec<(String, &'a Value)>) {
    for (key, value) in object {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if !inner.is_empty() => flatten(&key, inner, out),
            // An empty table (Lua sends `{}` for a section with nothing set) sets nothing.
            Value::Object(_) => {}
            _ => out.push((key, value)),
        }
    }
}

enum Problem {
    Unknown,
    Invalid(String),
}

fn string(value: &Value) -> Result<String, Problem> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(Problem::Invalid(format!("expected a string, got {other}"))),
    }
}

/// A string or a list of strings (blank ones dropped).
fn strings(value: &Value) -> Result<Vec<String>, Problem> {
    let list = match value {
        Value::Array(items) => items.iter().map(string).collect::<Result<Vec<_>, _>>()?,
        other => vec![string(other)?],
    };
    Ok(list.into_iter().filter(|s| !s.trim().is_empty()).collect())
}

fn boolean(value: &Value) -> Result<bool, Problem> {
    value
        .as_bool()
        .ok_or_else(|| Problem::Invalid(format!("expected true or false, got {value}")))
}

fn count(value: &Value) -> Result<usize, Problem> {
    let n = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
                .map(|f| f as u64)
        }),
        _ => None,
    };
    n.and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Problem::Invalid(format!("expected a non-negative integer, got {value}")))
}

fn positive(value: &Value) -> Result<usize, Problem> {
    match count(value)? {
        0 => Err(Problem::Invalid("must be at least 1".to_owned())),
        n => Ok(n),
    }
}

fn speculative(value: &Value) -> Result<SpeculativeMode, Problem> {
    match value {
        Value::String(mode) => mode.parse().map_err(Problem::Invalid),
        other => Err(Problem::Invalid(format!(
            "expected \"off\", \"lookup\" or \"draft\", got {other}"
        ))),
    }
}

fn set(s: &mut Settings, key: &str, value: &Value) -> Result<(), Problem> {
    match key {
        "model" => s.model = string(value)?,
        "dtype" => {
            s.dtype = DTypeSetting::parse(&string(value)?).ok_or_else(|| {
                Problem::Invalid(format!("expected auto, f32, f16 or bf16, got {value}"))
            })?;
        }
        "backend" => {
            s.backend = Backend::parse(&string(value)?).ok_or_else(|| {
                Problem::Invalid(format!("expected local or openai, got {value}"))
            })?;
        }
        "openai.endpoint" => s.openai.endpoint = string(value)?,
        "openai.model" => s.openai.model = string(value)?,
        "openai.apiKeyEnv" => s.openai.api_key_env = string(value)?,
        "threads.prefill" => s.threads.prefill = count(value)?,
        "threads.decode" => s.threads.decode = count(value)?,
        "draftModel" => s.draft_model = string(value)?,
        "completion.enabled" => s.completion.enabled = boolean(value)?,
        "completion.model" => s.completion_model = string(value)?,
        "completion.speculative" => s.completion.speculative = speculative(value)?,
        "completion.budget" => s.completion.budget = positive(value)?,
        "completion.maxTokens" => s.completion.max_tokens = positive(value)?,
        "completion.temperature" => {
            s.completion.temperature = value
                .as_f64()
                .filter(|t| t.is_finite() && *t >= 0.0)
                .ok_or_else(|| Problem::Invalid(format!("expected a number >= 0, got {value}")))?
                as f32;
        }
        "completion.debounceMs" => s.completion.debounce_ms = count(value)? as u64,
        "completion.suffixTokens" => s.completion.suffix_tokens = count(value)?,
        "completion.latencyMs" => s.completion.latency_ms = count(value)? as u64,
        "hover.enabled" => s.hover.enabled = boolean(value)?,
        "hover.budget" => s.hover.budget = positive(value)?,
        "hover.maxTokens" => s.hover.max_tokens = positive(value)?,
        "hover.speculative" => s.hover.speculative = speculative(value)?,
        "codeActions.enabled" => s.code_actions.enabled = boolean(value)?,
        "codeActions.budget" => s.code_actions.budget = positive(value)?,
        "codeActions.maxTokens" => s.code_actions.max_tokens = positive(value)?,
        "codeActions.speculative" => s.code_actions.speculative = speculative(value)?,
        "codeActions.checkCommand" => s.code_actions.check_commands = strings(value)?,
        "codeActions.maxRounds" => s.code_actions.max_rounds = positive(value)?,
        "codeActions.checkTimeout" => s.code_actions.check_timeout_secs = positive(value)? as u64,
        "codeActions.fixTimeLimit" => s.code_actions.fix_time_limit_secs = positive(value)? as u64,
        "codeActions.preview" => s.code_actions.preview = boolean(value)?,
        "debug.dumpPrompt" => s.debug.dump_prompt = boolean(value)?,
        "logFile" => {
            let path = string(value)?;
            s.log_file = (!path.trim().is_empty()).then(|| PathBuf::from(path));
        }
        _ => return Err(Problem::Unknown),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_and_dotted_keys() {
        let parsed = parse(&json!({
            "model": "/models/x",
            "dtype": "f16",
            "openai": { "endpoint": "http://h:1/v1", "apiKeyEnv": "K" },
            "completion": { "maxTokens": 12, "debounceMs": 0, "temperature": 0.2, "enabled": false },
            "hover.maxTokens": 24,
            "codeActions": { "budget": 100.0, "checkCommand": ["cargo check", " "], "maxRounds": 2 },
            "codeActions.fixTimeLimit": 30,
            "debug": { "dumpPrompt": true },
            "logFile": "/tmp/q.log",
            "threads": {},
            "codeActions.speculative": "draft",
            "draftModel": "qwen2.5-coder-0.5b",
            "completion.model": "qwen2.5-coder-0.5b",
            "completion.speculative": "lookup",
        }));
        assert!(
            parsed.unknown.is_empty() && parsed.invalid.is_empty(),
            "{parsed:?}"
        );
        let s = parsed.settings;
        assert_eq!(s.model, "/models/x");
        assert_eq!(s.dtype, DTypeSetting::F16);
        assert_eq!(s.openai.endpoint, "http://h:1/v1");
        assert_eq!(s.openai.api_key_env, "K");
        assert_eq!((s.completion.max_tokens, s.completion.debounce_ms), (12, 0));
        assert!(!s.completion.enabled);
        assert!((s.completion.temperature - 0.2).abs() < 1e-6);
        assert_eq!(s.hover.max_tokens, 24);
        assert_eq!(s.code_actions.budget, 100);
        assert_eq!(s.code_actions.speculative, SpeculativeMode::Draft);
        assert_eq!(s.hover.speculative, SpeculativeMode::Lookup);
        assert_eq!(s.draft_model, "qwen2.5-coder-0.5b");
        assert_eq!(s.completion_model, "qwen2.5-coder-0.5b");
        assert_eq!(s.completion.speculative, SpeculativeMode::Lookup);
        assert_eq!(s.code_actions.check_commands, ["cargo check"]);
        assert_eq!(
            (
                s.code_actions.max_rounds,
                s.code_actions.fix_time_limit_secs
            ),
            (2, 30)
        );
        assert!(s.debug.dump_prompt);
        assert_eq!(s.log_file, Some(PathBuf::from("/tmp/q.log")));
    }

    #[test]
    fn whole_object_semantics_unknown_and_invalid_keys() {
        // A key absent from the message is at its default, whatever an earlier message said.
        let parsed = from_did_change(&json!({ "qwen-ls": { "completion": { "budget": 7 } } }));
        assert_eq!(parsed.settings.completion.budget, 7);
        assert_eq!(
            parsed.settings.completion.max_tokens,
            Settings::default().completion.max_tokens
        );
        assert_eq!(from_did_change(&json!({})).settings, Settings::default());
        assert_eq!(parse(&Value::Null).settings, Settings::default());
        let parsed = parse(&json!({
            "modle": "x",
            "completion": { "maxTokens": "many", "budget": -1, "colour": 1 },
            "dtype": "f8",
        }));
        assert_eq!(
            parsed.unknown,
            vec!["completion.colour".to_owned(), "modle".to_owned()]
        );
        assert_eq!(parsed.invalid.len(), 3, "{:?}", parsed.invalid);
        assert_eq!(parsed.settings, Settings::default());
        // A bare section without the wrapper, and one wrapped in the section name.
        assert!(
            !from_did_change(&json!({ "hover": { "enabled": false } }))
                .settings
                .hover
                .enabled
        );
        assert_eq!(
            parse(&json!({ "qwen-ls": { "model": "m" } }))
                .settings
                .model,
            "m"
        );
        assert!(!parse(&json!([1])).invalid.is_empty());
    }

    /// Every key of `docs/PROTOCOL.md`'s configuration table (the list the editor clients check theirs
    /// against), set to its documented default: the parser knows each one and it yields the defaults.
    #[test]
    fn every_documented_key_is_parsed_at_its_documented_default() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let table = doc
            .split("## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("PROTOCOL.md has a Configuration section");
        let mut object = Map::new();
        for row in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let default = cells[3].split('`').nth(1).expect("a backticked default");
            let value: Value = serde_json::from_str(default)
                .unwrap_or_else(|e| panic!("default {default} of `{}`: {e}", cells[1]));
            for key in cells[1].split('`').skip(1).step_by(2) {
                object.insert(key.to_owned(), value.clone());
            }
        }
        for key in ["draftModel", "completion.model", "completion.speculative"] {
            assert!(object.contains_key(key), "{key} missing from PROTOCOL.md");
        }
        let parsed = parse(&Value::Object(object));
        assert!(
            parsed.unknown.is_empty() && parsed.invalid.is_empty(),
            "{parsed:?}"
        );
        assert_eq!(parsed.settings, Settings::default());
    }

    #[test]
    fn speculative_settings_refuse_bad_values_and_keep_their_defaults() {
        // Every documented spelling of each mode, on each of the three keys, dotted and nested.
        for (written, mode) in [
            ("off", SpeculativeMode::Off),
            ("lookup", SpeculativeMode::Lookup),
            ("draft", SpeculativeMode::Draft),
        ] {
            let parsed = parse(&json!({
                "completion.speculative": written,
                "hover": { "speculative": written },
                "codeActions": { "speculative": written },
            }));
            assert!(parsed.invalid.is_empty(), "{written}: {:?}", parsed.invalid);
            let s = parsed.settings;
            assert_eq!(
                [
                    s.completion.speculative,
                    s.hover.speculative,
                    s.code_actions.speculative
                ],
                [mode; 3],
                "{written}"
            );
        }
        // A misspelt mode, a number and a boolean: each refused with the key and the accepted values named,
        // and the setting stays at its default (lookup for edits and explanations, off for completions).
        let parsed = parse(&json!({
            "completion": { "speculative": "drafts" },
            "hover.speculative": 2,
            "codeActions.speculative": true,
            "draftModel": 5,
            "completion.model": ["qwen2.5-coder-0.5b"],
        }));
        assert!(parsed.unknown.is_empty(), "{:?}", parsed.unknown);
        let mut invalid = parsed.invalid.clone();
        invalid.sort();
        assert_eq!(invalid.len(), 5, "{invalid:?}");
        for (problem, key) in invalid.iter().zip([
            "codeActions.speculative: ",
            "completion.model: ",
            "completion.speculative: ",
            "draftModel: ",
            "hover.speculative: ",
        ]) {
            assert!(problem.starts_with(key), "{problem} should name {key}");
        }
        assert!(
            invalid[2].contains("\"drafts\"")
                && invalid[2].contains("expected off, lookup or draft"),
            "{}",
            invalid[2]
        );
        for (problem, got) in [(&invalid[0], "got true"), (&invalid[4], "got 2")] {
            assert!(
                problem.contains(r#"expected "off", "lookup" or "draft""#)
                    && problem.ends_with(got),
                "{problem}"
            );
        }
        assert!(invalid[1].contains("expected a string"), "{}", invalid[1]);
        assert_eq!(parsed.settings, Settings::default());
        assert_eq!(parsed.settings.draft_model_spec(), None);
    }
}
