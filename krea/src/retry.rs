//! When to retry, as data, and one function that classifies a failure.
//!
//! - Reads and deletes (`GET`, `DELETE`) retry on connection errors, timeouts, 408, 429 and 5xx.
//! - A generation `POST` retries only when no job can have been created: on 429 (Krea's
//!   concurrency cap refuses before creating) and when the connection could not be opened.
//!   Once the request may have reached Krea, a failure is [`Error::OutcomeUnknown`]: it may have
//!   created a paid job, so it is never repeated automatically.
//! - 400, 401, 402, 403, 404 and 410 never retry.
//! - `retry-after-ms` or `Retry-After` (seconds or an HTTP date) set the wait, capped.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::Error;

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retries).
    pub max_retries: usize,
    /// First backoff delay; it doubles (with jitter) up to `max_delay`.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest wait a `Retry-After` header can impose.
    pub retry_after_cap: Duration,
    /// Retries of a generation refused with 429 (the concurrency cap), which create nothing.
    pub max_rate_limited_submits: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(60),
            max_rate_limited_submits: 20,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            max_rate_limited_submits: 0,
            ..RetryPolicy::default()
        }
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

/// What a failed attempt looked like, before it becomes an [`Error`].
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// The API answered with an error status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    /// The connection could not be opened: the request was never sent.
    NotSent(String),
    /// The request may have been sent, but no (complete) answer came back.
    NoAnswer(String),
    /// The answer did not decode.
    Decode { message: String, body: String },
    /// The request could not be built (a bug or bad input).
    Local(String),
}

/// Which retry rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// GET, DELETE: safe to repeat.
    Idempotent,
    /// A POST that creates a paid job.
    Generation,
}

impl Fault {
    /// Whether `class` allows another attempt after this fault.
    pub fn retryable(&self, class: Class) -> bool {
        match (class, self) {
            (_, Fault::NotSent(_)) => true,
            (_, Fault::Status { status: 429, .. }) => true,
            (Class::Idempotent, Fault::NoAnswer(_)) => true,
            (Class::Idempotent, Fault::Status { status, .. }) => *status == 408 || *status >= 500,
            _ => false,
        }
    }

    /// From a reqwest error on sending a request or reading its answer.
    pub fn from_reqwest(e: &reqwest::Error) -> Fault {
        if e.is_connect() {
            Fault::NotSent(e.to_string())
        } else if e.is_builder() {
            Fault::Local(e.to_string())
        } else if e.is_timeout() {
            Fault::NoAnswer("timed out".into())
        } else {
            Fault::NoAnswer(e.to_string())
        }
    }

    /// The error the caller sees once retries are over. `model` names a generation's model
    /// (its failures after sending are [`Error::OutcomeUnknown`]).
    pub fn into_error(self, class: Class, model: &str) -> Error {
        match self {
            Fault::Status {
                status,
                retry_after,
                body,
            } => status_error(status, retry_after, &body, model),
            Fault::NoAnswer(detail) if class == Class::Generation => Error::OutcomeUnknown {
                model: model.into(),
                detail,
            },
            Fault::NotSent(detail) | Fault::NoAnswer(detail) => Error::Transport(detail),
            Fault::Decode { message, body } => Error::Decode { message, body },
            Fault::Local(message) => Error::InvalidRequest {
                model: model.into(),
                problems: vec![message],
            },
        }
    }
}

/// The `error` field of a `{error}` body, else the body.
fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error"))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| body.chars().take(300).collect())
}

fn status_error(status: u16, retry_after: Option<Duration>, body: &str, model: &str) -> Error {
    let message = message_of(body);
    match status {
        401 => Error::Unauthorized { message },
        402 => Error::InsufficientCredits { message },
        429 => Error::RateLimited {
            retry_after,
            message,
        },
        410 => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let text = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
            match text("replacement") {
                Some(replacement) => Error::ModelRetired {
                    model: model.into(),
                    replacement,
                    sunset: text("sunset").map(|s| s.chars().take(10).collect()),
                },
                None => Error::Api { status, message },
            }
        }
        _ => Error::Api { status, message },
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

    fn status(code: u16) -> Fault {
        Fault::Status {
            status: code,
            retry_after: None,
            body: String::new(),
        }
    }

    #[test]
    fn reads_retry_on_server_trouble_but_not_on_client_errors() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).retryable(Class::Idempotent), "{code}");
        }
        for code in [400, 401, 402, 403, 404, 410] {
            assert!(!status(code).retryable(Class::Idempotent), "{code}");
        }
        assert!(Fault::NoAnswer("reset".into()).retryable(Class::Idempotent));
    }

    #[test]
    fn generations_retry_only_when_nothing_can_have_been_created() {
        assert!(status(429).retryable(Class::Generation));
        assert!(Fault::NotSent("refused".into()).retryable(Class::Generation));
        assert!(!Fault::NoAnswer("reset".into()).retryable(Class::Generation));
        for code in [500, 502, 503, 504, 408] {
            assert!(
                !status(code).retryable(Class::Generation),
                "{code}: the job may exist"
            );
        }
        let e = Fault::NoAnswer("connection closed".into())
            .into_error(Class::Generation, "bfl/flux-1-dev");
        assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
    }

    #[test]
    fn statuses_become_typed_errors() {
        let e = |code, body: &str| {
            Fault::Status {
                status: code,
                retry_after: None,
                body: body.into(),
            }
            .into_error(Class::Idempotent, "m")
        };
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
        match e(404, r#"{"error":"Job not found"}"#) {
            Error::Api {
                status: 404,
                message,
            } => assert_eq!(message, "Job not found"),
            other => panic!("{other:?}"),
        }
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
