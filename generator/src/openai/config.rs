//! What the remote backend needs to know: the endpoint, the model, where the API key lives, how long to wait
//! and how often to retry. Built from [`OpenAiSettings`] with code defaults for the limits (tests shorten
//! them); the key is read from the environment once and never printed.

use std::time::Duration;

/// `openai.*`: the remote backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiSettings {
    /// `openai.endpoint`: base URL of the server.
    pub endpoint: String,
    /// `openai.model`: model name on the server (empty: the first from `/v1/models`).
    pub model: String,
    /// `openai.apiKeyEnv`: name of the environment variable holding the API key (`QWEN_LS_*` or
    /// `OPENAI_API_KEY`).
    pub api_key_env: String,
    /// Plain `http://` to another machine is allowed. Not a configuration key (a workspace must not grant it):
    /// only the CLI's `--allow-http` sets it, or `QWEN_LS_ALLOW_HTTP=1` in the environment.
    pub allow_http: bool,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        OpenAiSettings {
            endpoint: "http://127.0.0.1:8000/v1".to_string(),
            model: String::new(),
            api_key_env: "QWEN_LS_API_KEY".to_string(),
            allow_http: false,
        }
    }
}

/// Limits on every wait, so a request can never hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// From the request sent to the response headers (the server's queue and validation).
    pub response: Duration,
    /// Between two reads of the streamed body: the first one waits for the whole prefill of a long prompt,
    /// so this is generous.
    pub idle: Duration,
    /// A whole `/v1/models` call.
    pub discovery: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            response: Duration::from_secs(120),
            idle: Duration::from_secs(180),
            discovery: Duration::from_secs(20),
        }
    }
}

/// Retries of requests that failed before any answer text arrived: exponential back-off with jitter on
/// 429/502/503/504 (honouring `Retry-After`) and on connection failures; never on other 4xx answers, and never
/// once text has been streamed (it has reached the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after a busy answer (429/502/503/504).
    pub busy_retries: u32,
    /// Retries after a connection failure (refused, reset before the answer) — a restarting proxy or server.
    pub connect_retries: u32,
    /// The first back-off; doubled per retry.
    pub base_delay: Duration,
    /// Back-off never exceeds this (before jitter).
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the request fails at once with [`GenError::Busy`].
    ///
    /// [`GenError::Busy`]: crate::GenError::Busy
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            busy_retries: 4,
            connect_retries: 2,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            busy_retries: 0,
            connect_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (0-based): the server's `Retry-After` when it gave one (plus up to
    /// 10% jitter), else `base · 2^retry` capped at `max_delay`, with "equal jitter" (half fixed, half random)
    /// so that clients which failed together do not come back together.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let unit = jitter_unit();
        if let Some(after) = retry_after {
            return after + after.mul_f64(0.1 * unit);
        }
        let exp = self.base_delay.saturating_mul(1u32 << retry.min(16));
        let capped = exp.min(self.max_delay);
        capped / 2 + (capped / 2).mul_f64(unit)
    }
}

/// A random number in [0, 1) from the standard library's randomly keyed hasher (no RNG dependency).
fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The API key: kept out of `Debug`, logs and error messages.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApiKey(String);

impl ApiKey {
    /// The key from the environment variable `name`; `None` when unset or blank.
    pub(crate) fn from_env(name: &str) -> Option<ApiKey> {
        if name.trim().is_empty() {
            return None;
        }
        std::env::var(name)
            .ok()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .map(ApiKey)
    }

    /// The `Authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// `text` with every occurrence of the key replaced (servers sometimes echo a rejected key).
    pub(crate) fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "<redacted>")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Everything the remote backend is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Base URL, `…/v1` (a trailing slash is ignored).
    pub endpoint: String,
    /// Model name on the server; empty = the first one `/v1/models` lists.
    pub model: String,
    /// Name of the environment variable holding the API key ([`check_key_env`]).
    pub api_key_env: String,
    /// Whether plain `http://` to a host other than this machine is allowed ([`check_transport`]).
    pub allow_http: bool,
    /// Waits.
    pub timeouts: Timeouts,
    /// Retries.
    pub retry: RetryPolicy,
}

impl OpenAiConfig {
    /// The `openai.*` settings with the default limits.
    pub fn from_settings(settings: &OpenAiSettings) -> OpenAiConfig {
        OpenAiConfig {
            endpoint: settings.endpoint.clone(),
            model: settings.model.clone(),
            api_key_env: settings.api_key_env.clone(),
            allow_http: settings.allow_http || allow_http_from_env(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// The endpoint without trailing slashes, checked to be an http(s) URL with a host.
pub(crate) fn normalize_endpoint(endpoint: &str) -> Result<String, String> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            format!(
                "`openai.endpoint` must be an http:// or https:// URL such as http://127.0.0.1:8000/v1, got {:?}",
                redact_userinfo(trimmed)
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!(
            "`openai.endpoint` has no host: {:?}",
            redact_userinfo(trimmed)
        ));
    }
    Ok(trimmed.to_string())
}

/// The environment variable that allows plain `http://` to another machine (the CLI's `--allow-http`).
pub const ALLOW_HTTP_ENV: &str = "QWEN_LS_ALLOW_HTTP";

/// Whether [`ALLOW_HTTP_ENV`] is set (to anything but empty, `0` or `false`). An environment variable, not a
/// setting: a repository's editor configuration cannot grant it.
fn allow_http_from_env() -> bool {
    std::env::var(ALLOW_HTTP_ENV)
        .is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// Refuses a plain `http://` endpoint on another machine unless `allow_http`: code and the API key would cross
/// the network unencrypted. Loopback (`localhost`, `127.0.0.0/8`, `[::1]`) is this machine, so always allowed.
pub(crate) fn check_transport(endpoint: &str, allow_http: bool) -> Result<(), String> {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return Ok(());
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.split(':').next().unwrap_or(host_port),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_http {
        return Ok(());
    }
    Err(format!(
        "`openai.endpoint` {} would send your code unencrypted to another machine: use https://, tunnel the \
         server to 127.0.0.1 (ssh -L), or allow plain http explicitly with {ALLOW_HTTP_ENV}=1 in qwen-ls's \
         environment (CLI: --allow-http)",
        redact_userinfo(endpoint)
    ))
}

/// Refuses an `openai.apiKeyEnv` outside the documented names, `QWEN_LS_*` and `OPENAI_API_KEY`, so that a
/// setting cannot send another secret of the environment (`GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`…) to a server
/// as a bearer token.
pub(crate) fn check_key_env(name: &str) -> Result<(), String> {
    let valid_tail = |tail: &str| {
        !tail.is_empty()
            && tail
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    let ok = name == "OPENAI_API_KEY" || name.strip_prefix("QWEN_LS_").is_some_and(valid_tail);
    if ok {
        return Ok(());
    }
    Err(format!(
        "`openai.apiKeyEnv` {name:?} is not an accepted name: the API key must come from OPENAI_API_KEY or a \
         variable named QWEN_LS_… (upper case, digits, _), such as QWEN_LS_API_KEY"
    ))
}

/// `url` with any `user:password@` part replaced, for messages and logs.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => (&url[..at + 3], &url[at + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
impl ApiKey {
    /// A key for unit tests.
    pub(crate) fn from_test(key: &str) -> ApiKey {
        ApiKey(key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_leaves_this_machine_only_when_allowed() {
        for local in [
            "http://127.0.0.1:8000/v1",
            "http://127.3.4.5/v1",
            "http://localhost:8000/v1",
            "http://LOCALHOST/v1",
            "http://[::1]:8000/v1",
            "http://user:pw@127.0.0.1:8000/v1",
            "https://gpu-node:8000/v1",
        ] {
            assert_eq!(check_transport(local, false), Ok(()), "{local}");
        }
        for remote in [
            "http://gpu-node:8000/v1",
            "http://10.0.0.5:8000/v1",
            "http://127.0.0.1.attacker.example/v1",
            "http://localhost@attacker.example/v1",
            "http://[2001:db8::1]:8000/v1",
            "http://0.0.0.0:8000/v1",
        ] {
            let err = check_transport(remote, false).expect_err(remote);
            assert!(err.contains(ALLOW_HTTP_ENV), "{err}");
            assert_eq!(check_transport(remote, true), Ok(()), "{remote}");
        }
        let err = check_transport("http://u:secret@gpu-node/v1", false).unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn only_documented_names_may_hold_the_api_key() {
        for ok in ["QWEN_LS_API_KEY", "QWEN_LS_VLLM_2", "OPENAI_API_KEY"] {
            assert_eq!(check_key_env(ok), Ok(()), "{ok}");
        }
        for refused in [
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "QWEN_LS_",
            "qwen_ls_api_key",
            "QWEN_LS_KEY;rm",
            "OPENAI_API_KEY_2",
            "",
        ] {
            assert!(check_key_env(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn endpoints_are_checked_and_trimmed() {
        assert_eq!(
            normalize_endpoint(" http://h:8000/v1/ ").as_deref(),
            Ok("http://h:8000/v1")
        );
        assert!(normalize_endpoint("h:8000/v1").is_err());
        assert!(normalize_endpoint("http:///v1").is_err());
        let err = normalize_endpoint("ftp://u:secret@h/v1").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact_userinfo("https://u:pw@h:1/v1"),
            "https://<redacted>@h:1/v1"
        );
        assert_eq!(redact_userinfo("http://h:1/v1"), "http://h:1/v1");
        assert_eq!(redact_userinfo("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn back_off_doubles_with_jitter_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        for retry in 0..6 {
            let full = (policy.base_delay * (1 << retry)).min(policy.max_delay);
            let d = policy.delay(retry, None);
            assert!(d >= full / 2 && d <= full, "retry {retry}: {d:?}");
        }
        let d = policy.delay(0, Some(Duration::from_secs(2)));
        assert!(d >= Duration::from_secs(2) && d <= Duration::from_millis(2200));
    }

    #[test]
    fn the_key_never_shows() {
        let key = ApiKey("sk-very-secret".into());
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert_eq!(key.redact("bad key sk-very-secret!"), "bad key <redacted>!");
    }
}
