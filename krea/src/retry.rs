//! How failed requests are retried, as data: the backoff schedule, how many tries, how long a
//! `Retry-After` may impose; and how an error status becomes an [`Error`]. Which failures may
//! be retried at all is decided by the request's class (see [`crate::send`]):
//!
//! - Reads, deletes and downloads retry on connection errors, timeouts, 408, 429 and 5xx.
//! - A request that creates something (a generation, a style training, a node app run, an
//!   upload) retries only when nothing can have been created: on 429 (Krea's concurrency cap
//!   refuses before creating) and when the connection could not be opened. Once the request
//!   may have reached Krea, a failure is [`Error::OutcomeUnknown`]: never repeated blindly.
//! - 400, 401, 402, 403, 404 and 410 never retry.
//! - `retry-after-ms` or `Retry-After` (seconds or an HTTP date) set the wait, capped, and no
//!   wait may end past the call's deadline.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::Error;
use crate::redact::{MESSAGE_CHARS, clean};
use crate::send::Fault;

/// How failed requests are retried. Built from [`RetryPolicy::default`] or
/// [`RetryPolicy::none`] and the `with_` setters (fields may be added).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retries).
    pub max_retries: usize,
    /// First backoff delay; it doubles (with jitter) up to `max_delay`.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest wait a `Retry-After` header can impose.
    pub retry_after_cap: Duration,
    /// Retries of a request refused with 429 (which creates nothing).
    pub max_rate_limited: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
            max_rate_limited: 20,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            max_rate_limited: 0,
            ..RetryPolicy::default()
        }
    }

    /// The same policy with these delays (tests and simulators use short ones).
    pub fn with_delays(mut self, base: Duration, max: Duration) -> RetryPolicy {
        self.base_delay = base;
        self.max_delay = max;
        self
    }

    /// The same policy with at most `n` retries after the first attempt.
    pub fn with_max_retries(mut self, n: usize) -> RetryPolicy {
        self.max_retries = n;
        self
    }

    /// The same policy waiting at most `cap` where a `Retry-After` header asks for longer.
    pub fn with_retry_after_cap(mut self, cap: Duration) -> RetryPolicy {
        self.retry_after_cap = cap;
        self
    }

    /// The same policy retrying a request refused with 429 at most `n` times.
    pub fn with_max_rate_limited(mut self, n: usize) -> RetryPolicy {
        self.max_rate_limited = n;
        self
    }

    /// The backoff schedule (backon's exponential, with jitter).
    pub(crate) fn backoff(&self, times: usize) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(times)
            .with_jitter()
            .build()
    }

    /// The wait before retrying `fault`: its `Retry-After` (capped), else `backoff`.
    pub(crate) fn delay(&self, fault: &Fault, backoff: Duration) -> Duration {
        match fault {
            Fault::Status {
                retry_after: Some(wait),
                ..
            } => (*wait).min(self.retry_after_cap),
            _ => backoff,
        }
    }
}

/// The `error` (or `message`) field of a JSON body, else the body; cleaned for display.
fn message_of(body: &str, secret: Option<&str>) -> String {
    let text = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| body.to_string());
    clean(&text, secret, MESSAGE_CHARS)
}

/// The error for an answer with an error `status` to `operation`.
pub(crate) fn status_error(
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
    operation: &str,
    secret: Option<&str>,
) -> Error {
    let message = message_of(body, secret);
    match status {
        401 => Error::Unauthorized { message },
        402 => Error::InsufficientCredits { message },
        429 => Error::RateLimited {
            retry_after,
            message,
        },
        410 => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let text = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .map(|s| clean(s, secret, MESSAGE_CHARS))
            };
            match text("replacement") {
                Some(replacement) => Error::ModelRetired {
                    model: operation.into(),
                    replacement,
                    sunset: text("sunset").map(|s| s.chars().take(10).collect()),
                },
                None => Error::Api {
                    status,
                    operation: operation.into(),
                    message,
                },
            }
        }
        300..=399 => Error::Api {
            status,
            operation: operation.into(),
            message: format!(
                "{message}; not followed: a paid request is never sent on to another address (check the base URL)"
            ),
        },
        _ => Error::Api {
            status,
            operation: operation.into(),
            message,
        },
    }
}

/// `retry-after-ms` (milliseconds), else `Retry-After` (seconds or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_become_typed_errors() {
        let e = |code, body: &str| status_error(code, None, body, "m", None);
        assert!(matches!(
            e(401, r#"{"error":"x"}"#),
            Error::Unauthorized { .. }
        ));
        assert!(matches!(
            e(402, r#"{"error":"x"}"#),
            Error::InsufficientCredits { .. }
        ));
        match e(
            410,
            r#"{"error":"model_unavailable","replacement":"bytedance/seedream-4","sunset":"2026-05-13T00:00:00Z"}"#,
        ) {
            Error::ModelRetired {
                replacement,
                sunset,
                ..
            } => {
                assert_eq!(replacement, "bytedance/seedream-4");
                assert_eq!(sunset.as_deref(), Some("2026-05-13"));
            }
            other => panic!("{other:?}"),
        }
        match e(404, r#"{"error":"No such job"}"#) {
            Error::Api {
                status: 404,
                message,
                ..
            } => assert_eq!(message, "No such job"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_echoed_in_an_error_body_is_redacted() {
        let body = r#"{"error":"bad header Authorization: Bearer sk-123456789\u001b[31m"}"#;
        let e = status_error(400, None, body, "m", Some("sk-123456789"));
        let shown = e.to_string();
        assert!(!shown.contains("sk-123456789"), "{shown}");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }

    #[test]
    fn retry_after_prefers_milliseconds_then_seconds_then_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = HeaderMap::new();
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        d.insert("retry-after", HeaderValue::try_from(later).expect("header"));
        let wait = retry_after(&d).expect("a date");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
    }

    #[test]
    fn retry_after_is_capped() {
        let p = RetryPolicy::default();
        let f = Fault::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(3600)),
            body: String::new(),
        };
        assert_eq!(p.delay(&f, Duration::from_millis(1)), p.retry_after_cap);
    }
}
