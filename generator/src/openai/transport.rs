//! HTTP: agents with every timeout set, requests with the API key, and the translation of transport errors and
//! HTTP error answers into [`GenError`]s that say what to do — plus whether (and after how long) a failure is
//! worth retrying.
//!
//! Each generation gets its own agent so that cancelling it can shut that agent's connection down
//! (`ureq::Agent::shutdown` interrupts a read blocked on the socket): the server sees the client go away at once
//! and stops generating. Keep-alive across generations is given up for that; a cancelled stream's connection
//! could not be reused anyway.

use std::io::Read;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};

use super::config::{redact_userinfo, ApiKey, Timeouts};
use super::sse::excerpt;
use super::wire;
use crate::GenError;

/// Bytes of an error answer read at most.
const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// Whether a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryKind {
    /// Never (a client error, a broken stream, a timeout after the request was accepted).
    Never,
    /// 429/502/503/504, with the server's `Retry-After` if it gave one.
    Busy {
        /// The status.
        status: u16,
        /// `Retry-After`, in seconds form.
        retry_after: Option<Duration>,
    },
    /// The connection failed before any answer.
    Connect,
}

/// A failed attempt.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What to report if it is not retried.
    pub(crate) error: GenError,
    /// Whether it may be retried.
    pub(crate) retry: RetryKind,
}

impl Failure {
    fn never(error: GenError) -> Failure {
        Failure {
            error,
            retry: RetryKind::Never,
        }
    }
}

/// Who is asking and with which key: everything needed to turn answers into errors.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// The endpoint, for messages (credentials in the URL redacted).
    pub(crate) endpoint_display: String,
    /// The API key, if the environment has one.
    pub(crate) key: Option<ApiKey>,
    /// The environment variable the key comes from (for messages).
    pub(crate) key_env: String,
    /// Waits.
    pub(crate) timeouts: Timeouts,
}

impl Client {
    /// A fresh agent for one generation (no total limit: `max_tokens` bounds the stream; every wait inside it
    /// is bounded by the idle timeout).
    pub(crate) fn stream_agent(&self) -> ureq::Agent {
        self.agent(None)
    }

    /// An agent for `/v1/models` (one total limit).
    pub(crate) fn discovery_agent(&self) -> ureq::Agent {
        self.agent(Some(self.timeouts.discovery))
    }

    fn agent(&self, global: Option<Duration>) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.timeouts.connect))
            .timeout_recv_response(Some(self.timeouts.response))
            .timeout_per_read(Some(self.timeouts.idle))
            .timeout_global(global)
            .user_agent(concat!("qwen-ls/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::PlatformVerifier)
                    .build(),
            )
            .build()
            .new_agent()
    }

    /// POSTs a JSON body asking for an event stream; `Ok` only for a 2xx answer.
    pub(crate) fn post_stream(
        &self,
        agent: &ureq::Agent,
        url: &str,
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut req = agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream");
        if let Some(key) = &self.key {
            req = req.header("Authorization", key.bearer());
        }
        let response = req.send(body).map_err(|e| self.transport_failure(url, e))?;
        self.check_status(url, response)
    }

    /// GETs `url` and parses JSON of type `T`.
    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        agent: &ureq::Agent,
        url: &str,
    ) -> Result<T, Failure> {
        let mut req = agent.get(url).header("Accept", "application/json");
        if let Some(key) = &self.key {
            req = req.header("Authorization", key.bearer());
        }
        let response = req.call().map_err(|e| self.transport_failure(url, e))?;
        let mut response = self.check_status(url, response)?;
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| self.transport_failure(url, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Failure::never(GenError::MalformedStream {
                url: redact_userinfo(url),
                reason: format!(
                    "the answer is not the expected JSON ({e}): {}",
                    excerpt(&text)
                ),
            })
        })
    }

    /// A 2xx response as is; anything else read (bounded) and turned into a [`Failure`].
    fn check_status(
        &self,
        url: &str,
        response: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut raw = String::new();
        let (_, body) = response.into_parts();
        // A failure to read the error body leaves the status to speak for itself.
        let _ = body
            .into_with_config()
            .limit(ERROR_BODY_LIMIT)
            .lossy_utf8(true)
            .reader()
            .take(ERROR_BODY_LIMIT)
            .read_to_string(&mut raw);
        Err(self.status_failure(url, status, &raw, retry_after))
    }

    /// The failure for an HTTP error answer.
    pub(crate) fn status_failure(
        &self,
        url: &str,
        status: u16,
        raw_body: &str,
        retry_after: Option<Duration>,
    ) -> Failure {
        let url = redact_userinfo(url);
        let message = self.redact(&wire::error_message(raw_body));
        let body = excerpt(&message);
        match status {
            401 | 403 => Failure::never(GenError::Unauthorized {
                url,
                status,
                env_var: self.key_env.clone(),
                body,
            }),
            429 | 502 | 503 | 504 => Failure {
                error: GenError::Busy {
                    url,
                    status,
                    attempts: 1,
                    body,
                },
                retry: RetryKind::Busy {
                    status,
                    retry_after,
                },
            },
            400 | 413 | 422 if wire::is_context_length_error(&message) => {
                Failure::never(GenError::ContextLength {
                    window: wire::stated_window(&message),
                    message: excerpt(&message),
                })
            }
            404 if wire::is_model_not_found(&message) => Failure::never(GenError::ModelNotFound {
                endpoint: self.endpoint_display.clone(),
                model: String::new(),
                available: Vec::new(),
            }),
            _ => Failure::never(GenError::Http { url, status, body }),
        }
    }

    /// The failure for a transport error before any answer.
    pub(crate) fn transport_failure(&self, url: &str, error: ureq::Error) -> Failure {
        let url = redact_userinfo(url);
        match error {
            ureq::Error::Timeout(kind) => Failure::never(self.timeout_error(url, kind)),
            ureq::Error::Io(e) => {
                let retry = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe => RetryKind::Connect,
                    _ => RetryKind::Never,
                };
                if e.kind() == std::io::ErrorKind::TimedOut {
                    return Failure::never(GenError::Timeout {
                        url,
                        phase: "read",
                        secs: self.timeouts.idle.as_secs(),
                    });
                }
                Failure {
                    error: GenError::Unreachable {
                        url,
                        reason: self.redact(&e.to_string()),
                    },
                    retry,
                }
            }
            ureq::Error::ConnectionFailed => Failure {
                error: GenError::Unreachable {
                    url,
                    reason: "the connection failed".into(),
                },
                retry: RetryKind::Connect,
            },
            ureq::Error::HostNotFound => Failure::never(GenError::Unreachable {
                url,
                reason: "unknown host".into(),
            }),
            other => Failure::never(GenError::Unreachable {
                url,
                reason: self.redact(&other.to_string()),
            }),
        }
    }

    /// The error for a timeout of `kind`.
    pub(crate) fn timeout_error(&self, url: String, kind: ureq::Timeout) -> GenError {
        let t = &self.timeouts;
        let (phase, limit) = match kind {
            ureq::Timeout::Connect | ureq::Timeout::Resolve => ("connect", t.connect),
            ureq::Timeout::RecvResponse => ("response headers", t.response),
            ureq::Timeout::Global => ("whole request", t.discovery),
            _ => ("next chunk of the answer", t.idle),
        };
        GenError::Timeout {
            url,
            phase,
            secs: limit.as_secs().max(1),
        }
    }

    /// `text` with the API key (if any) redacted.
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => key.redact(text),
            None => text.to_string(),
        }
    }
}

/// `Retry-After` in its delay-seconds form (an HTTP date is ignored: back-off applies).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            endpoint_display: "http://h/v1".into(),
            key: None,
            key_env: "K".into(),
            timeouts: Timeouts::default(),
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn statuses_become_the_right_errors() {
        let c = client();
        let f = c.status_failure(
            "http://h/v1/completions",
            429,
            "slow down",
            Some(Duration::from_secs(1)),
        );
        assert!(matches!(f.error, GenError::Busy { status: 429, .. }));
        assert_eq!(
            f.retry,
            RetryKind::Busy {
                status: 429,
                retry_after: Some(Duration::from_secs(1))
            }
        );
        let f = c.status_failure("u", 401, r#"{"error":{"message":"bad key"}}"#, None);
        assert!(matches!(
            f.error,
            GenError::Unauthorized { status: 401, .. }
        ));
        assert!(f.error.to_string().contains("K"), "{}", f.error);
        let f = c.status_failure(
            "u",
            400,
            r#"{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 3000 tokens"}"#,
            None,
        );
        assert!(matches!(
            f.error,
            GenError::ContextLength {
                window: Some(2048),
                ..
            }
        ));
        assert_eq!(f.retry, RetryKind::Never);
        let f = c.status_failure("u", 400, r#"{"message":"bad temperature"}"#, None);
        assert!(matches!(f.error, GenError::Http { status: 400, .. }));
        assert!(f.error.to_string().contains("bad temperature"));
        let f = c.status_failure(
            "u",
            404,
            r#"{"message":"The model `x` does not exist."}"#,
            None,
        );
        assert!(matches!(f.error, GenError::ModelNotFound { .. }));
    }

    #[test]
    fn an_echoed_key_is_redacted() {
        let mut c = client();
        c.key = Some(ApiKey::from_test("sk-abcdef"));
        let f = c.status_failure("u", 401, r#"{"error":"invalid key sk-abcdef"}"#, None);
        let text = f.error.to_string();
        assert!(
            !text.contains("sk-abcdef") && text.contains("<redacted>"),
            "{text}"
        );
    }
}
