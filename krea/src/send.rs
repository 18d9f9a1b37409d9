//! The one request path. Every request this crate makes (reads, deletes, generations, style
//! trainings, node app runs, uploads, downloads, the public OpenAPI document) goes through
//! [`Krea::execute`]: one retry loop over backon's backoff, one deadline bounding the whole call
//! (retries and `Retry-After` waits included), answers read with a size cap, and the failure
//! classified once ([`Fault`]). What may be retried depends only on the request's [`Class`].

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, DATE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, Response};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use crate::client::Krea;
use crate::error::{Error, chain};
use crate::redact::{LOG_CHARS, MESSAGE_CHARS, clean};
use crate::retry::{retry_after, status_error};

/// Largest error body read (the message is in the first few hundred bytes).
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Which retry rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// GET and DELETE on the API: safe to repeat.
    Read,
    /// A POST that creates something (a paid job, an asset): repeated only where nothing can
    /// have been created (the connection was never made; 429, Krea's concurrency refusal).
    Create,
    /// A result file on the file host: no token, safe to repeat.
    Download,
}

/// A request body, rebuilt for each attempt.
pub(crate) enum Body {
    Empty,
    Json(Value),
    Multipart(Box<dyn Fn() -> reqwest::multipart::Form + Send + Sync>),
}

/// One request, described once and sent as many times as its class allows.
pub(crate) struct Call {
    pub class: Class,
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Send the token (only ever to the API origin).
    pub auth: bool,
    pub body: Body,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What is being done, for errors and logs (`GET /jobs/{id}`, a model id).
    pub operation: String,
    /// When the last attempt was sent (a paid request's unknown outcome is dated by it).
    pub last_sent: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// A 429 is retried here (else handed back to the caller, a batch that waits for a slot).
    pub retry_rate_limited: bool,
}

impl Call {
    /// A call on the API origin with the token.
    pub fn api(krea: &Krea, class: Class, method: Method, path: &str, operation: &str) -> Call {
        Call {
            class,
            method,
            url: format!("{}{path}", krea.base_url()),
            auth: true,
            body: Body::Empty,
            headers: Vec::new(),
            operation: operation.to_string(),
            last_sent: Default::default(),
            retry_rate_limited: true,
        }
    }

    pub fn json(mut self, body: Value) -> Call {
        self.body = Body::Json(body);
        self
    }
}

/// What a failed attempt looked like, before it becomes an [`Error`].
#[derive(Debug)]
pub(crate) enum Fault {
    /// The connection could not be made: the request never reached the server.
    NotSent(reqwest::Error),
    /// The request may have reached the server, but no complete answer came back.
    NoAnswer {
        detail: String,
        source: Option<reqwest::Error>,
    },
    /// The server answered with an error status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    /// A success status whose body did not decode.
    Decode {
        /// Where in the JSON it failed, when it parsed.
        path: Option<String>,
        message: String,
        body: String,
        job_id: Option<Uuid>,
    },
    /// The answer is larger than allowed (with a success status, or not).
    TooLarge { limit: u64, success: bool },
    /// The call's deadline passed while an attempt was in flight.
    Deadline,
    /// The call's deadline passed between attempts: nothing was in flight (the last attempt,
    /// if any, ended in a fault that allowed another).
    Expired,
    /// A final error from handling the answer (e.g. writing a file): never retried.
    Fatal(Error),
    /// Not sent: the account's concurrency cap, as last measured, has no room for it.
    Held,
}

impl Fault {
    fn from_reqwest(e: reqwest::Error) -> Fault {
        if e.is_connect() {
            Fault::NotSent(e)
        } else {
            let detail = if e.is_timeout() {
                "timed out"
            } else {
                "the exchange broke off"
            }
            .to_string();
            Fault::NoAnswer {
                detail,
                source: Some(e),
            }
        }
    }

    /// Whether `class` allows another attempt after this fault.
    pub fn retryable(&self, class: Class) -> bool {
        match (class, self) {
            (_, Fault::Held) => false,
            (_, Fault::NotSent(_)) => true,
            (_, Fault::Status { status: 429, .. }) => true,
            (Class::Read | Class::Download, Fault::NoAnswer { .. }) => true,
            (Class::Read | Class::Download, Fault::Status { status, .. }) => {
                *status == 408 || *status >= 500
            }
            _ => false,
        }
    }

    /// Whether the request may have created something (for [`Class::Create`]): anything but
    /// a refused connection, a refusal (3xx: sent elsewhere, not followed; 4xx but 408), or a
    /// fault found before sending.
    pub fn may_have_created(&self) -> bool {
        match self {
            Fault::NotSent(_) | Fault::Fatal(_) | Fault::Expired | Fault::Held => false,
            Fault::Status { status, .. } => !(300..500).contains(status) || *status == 408,
            Fault::NoAnswer { .. } | Fault::Decode { .. } | Fault::TooLarge { .. } => true,
            // The deadline can pass while the request is in flight.
            Fault::Deadline => true,
        }
    }

    /// A success status came back (its body unusable): the request's job exists.
    pub fn answered_success(&self) -> bool {
        matches!(
            self,
            Fault::Decode { .. } | Fault::TooLarge { success: true, .. }
        )
    }

    /// A short description for logs and unknown outcomes (cleaned).
    pub fn detail(&self, secret: Option<&str>) -> String {
        match self {
            Fault::NotSent(e) => clean(&format!("not sent: {}", chain(e)), secret, MESSAGE_CHARS),
            Fault::NoAnswer {
                detail,
                source: Some(e),
            } => clean(&format!("{detail}: {}", chain(e)), secret, MESSAGE_CHARS),
            Fault::NoAnswer { detail, .. } => clean(detail, secret, MESSAGE_CHARS),
            Fault::Status { status, body, .. } => {
                format!("{status}: {}", clean(body, secret, MESSAGE_CHARS))
            }
            Fault::Decode { path, message, .. } => clean(
                &format!(
                    "undecodable answer: {}{message}",
                    path.as_ref().map_or(String::new(), |p| format!("at {p}: "))
                ),
                secret,
                MESSAGE_CHARS,
            ),
            Fault::TooLarge { limit, .. } => format!("answer larger than {limit} bytes"),
            Fault::Deadline => "the deadline passed while the request was in flight".into(),
            Fault::Expired => "the deadline passed before it could be sent".into(),
            Fault::Held => "held back: the account runs as many jobs as it may".into(),
            Fault::Fatal(e) => clean(&e.to_string(), secret, MESSAGE_CHARS),
        }
    }
}

/// The first `"job_id": "<uuid>"` in a body, however broken the rest is.
pub(crate) fn job_id_in(body: &str) -> Option<Uuid> {
    let at = body.find("\"job_id\"")?;
    let rest = &body[at + 8..];
    let start = rest.find('"')? + 1;
    let candidate = rest.get(start..start + 36)?;
    candidate.parse().ok()
}

/// Reads an answer's body, refusing more than `limit` bytes (before reading, when the length
/// is announced; else as soon as it is passed).
pub(crate) async fn read_capped(response: Response, limit: u64) -> Result<Bytes, Fault> {
    let success = response.status().is_success();
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(Fault::TooLarge { limit, success });
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Fault::NoAnswer {
            detail: "reading the answer failed".into(),
            source: Some(e),
        })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Fault::TooLarge { limit, success });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.into())
}

/// Decodes a JSON answer into `T`; a body that does not decode keeps its excerpt and any job
/// id it mentions.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Fault> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LOG_CHARS * 2)]).into_owned();
        // "." is the root: a body that is not JSON at all, or the wrong kind of value.
        let path = Some(e.path().to_string()).filter(|p| p != ".");
        Fault::Decode {
            path,
            message: e.into_inner().to_string(),
            job_id: job_id_in(&text),
            body: text,
        }
    })
}

impl Krea {
    /// The token, for removing it from any text shown.
    pub(crate) fn secret(&self) -> Option<&str> {
        use secrecy::ExposeSecret;
        Some(self.inner.token.expose_secret())
    }

    /// Sends `call`, retrying as its class allows, and hands each successful answer to
    /// `consume` (which may fail with a retryable fault, e.g. a truncated download). The
    /// returned fault is the last one; [`Krea::error`] turns it into an [`Error`].
    pub(crate) async fn execute<T, C, Fut>(&self, call: &Call, consume: C) -> Result<T, Fault>
    where
        C: FnMut(Response) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        self.execute_with(call, |_| async { Ok(()) }, consume).await
    }

    /// [`Krea::execute`], running `prepare(attempt)` (1-based) before each attempt goes out:
    /// paid requests are paced and journaled there. A fault from it ends the call.
    pub(crate) async fn execute_with<T, P, PFut, C, Fut>(
        &self,
        call: &Call,
        mut prepare: P,
        mut consume: C,
    ) -> Result<T, Fault>
    where
        P: FnMut(u32) -> PFut,
        PFut: Future<Output = Result<(), Fault>>,
        C: FnMut(Response) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let policy = &self.inner.retry;
        let mut backoff = policy.backoff(policy.max_retries);
        let mut rate_limited = policy.backoff(policy.max_rate_limited);
        let deadline = self.call_deadline();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let before = tokio::time::timeout_at(deadline, prepare(attempt)).await;
            match before {
                Ok(Ok(())) => {}
                Ok(Err(fault)) => return Err(fault),
                Err(_) => return Err(Fault::Expired),
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Fault::Expired);
            }
            let outcome = tokio::time::timeout(remaining, self.attempt(call, &mut consume)).await;
            let fault = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(fault)) => fault,
                Err(_) => Fault::Deadline,
            };
            tracing::debug!(
                operation = %call.operation,
                attempt,
                fault = %fault.detail(self.secret()),
                "attempt failed"
            );
            let refused = matches!(fault, Fault::Status { status: 429, .. });
            if call.class == Class::Create && refused {
                if !call.retry_rate_limited {
                    // The caller waits for a slot itself (a batch).
                    return Err(fault);
                }
                // Krea's concurrency cap: what this client runs is what the account may run.
                self.inner.limiter.rate_limited();
            }
            if !fault.retryable(call.class) {
                return Err(fault);
            }
            let next = match &fault {
                Fault::Status { status: 429, .. } => rate_limited.next(),
                _ => backoff.next(),
            };
            let Some(wait) = next.map(|d| policy.delay(&fault, d)) else {
                return Err(fault);
            };
            // A wait that would end past the deadline is not worth starting.
            if Instant::now() + wait >= deadline {
                return Err(fault);
            }
            tracing::debug!(operation = %call.operation, delay_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<T, C, Fut>(&self, call: &Call, consume: &mut C) -> Result<T, Fault>
    where
        C: FnMut(Response) -> Fut,
        Fut: Future<Output = Result<T, Fault>>,
    {
        let client = match call.class {
            Class::Download => &self.inner.downloads,
            Class::Read | Class::Create => &self.inner.http,
        };
        let mut request = client.request(call.method.clone(), &call.url);
        if call.class != Class::Download {
            request = request.timeout(self.inner.request_timeout);
        }
        if call.auth {
            // The token goes to the API origin only, whatever the URL says.
            if !call.url.starts_with(&format!("{}/", self.base_url())) {
                return Err(Fault::Fatal(Error::Config(format!(
                    "refusing to send the token outside the API origin ({})",
                    clean(&call.url, self.secret(), MESSAGE_CHARS)
                ))));
            }
            request = request.header(AUTHORIZATION, self.inner.auth.clone());
        }
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        request = match &call.body {
            Body::Empty => request,
            Body::Json(v) => request.json(v),
            Body::Multipart(form) => request.multipart(form()),
        };
        let sent = chrono::Utc::now();
        if let Ok(mut at) = call.last_sent.lock() {
            *at = Some(sent);
        }
        let mut response = request.send().await.map_err(Fault::from_reqwest)?;
        if call.class == Class::Read {
            response = self.follow_redirects(call, response).await?;
        }
        let status = response.status();
        tracing::debug!(operation = %call.operation, status = status.as_u16(), "answered");
        if call.class != Class::Download
            && let Some(date) = response.headers().get(DATE).and_then(|v| v.to_str().ok())
        {
            // Every answer of the API says what its clock reads (settling measures with it).
            self.inner.evidence.date(sent, chrono::Utc::now(), date);
        }
        self.note_deprecation(&call.operation, response.headers());
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            let location = status
                .is_redirection()
                .then(|| response.headers().get(LOCATION).cloned())
                .flatten();
            let mut body = read_capped(response, ERROR_BODY_LIMIT)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if let Some(to) = location {
                body = format!(
                    "redirected to {}",
                    clean(to.to_str().unwrap_or("?"), self.secret(), MESSAGE_CHARS)
                );
            }
            tracing::debug!(
                operation = %call.operation,
                body = %clean(&body, self.secret(), LOG_CHARS),
                "error answer"
            );
            return Err(Fault::Status {
                status: status.as_u16(),
                retry_after,
                body,
            });
        }
        consume(response).await
    }

    /// Follows up to 5 redirects of a read, sending the token only to the API origin. (The API
    /// client follows none itself: a paid request is never sent on to wherever a redirect
    /// points; its 3xx is a refusal.)
    async fn follow_redirects(
        &self,
        call: &Call,
        mut response: Response,
    ) -> Result<Response, Fault> {
        for _ in 0..5 {
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let Some(next) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
            else {
                return Ok(response);
            };
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), next.as_str())
                .timeout(self.inner.request_timeout);
            if call.auth && next.as_str().starts_with(&format!("{}/", self.base_url())) {
                request = request.header(AUTHORIZATION, self.inner.auth.clone());
            }
            for (name, value) in &call.headers {
                request = request.header(name, value);
            }
            response = request.send().await.map_err(Fault::from_reqwest)?;
        }
        Ok(response)
    }

    /// Krea announces a model's retirement with `Sunset`/`Deprecation` headers.
    fn note_deprecation(&self, operation: &str, headers: &HeaderMap) {
        if let Some(sunset) = headers.get("sunset").and_then(|v| v.to_str().ok()) {
            tracing::warn!(
                operation,
                sunset = %clean(sunset, self.secret(), 64),
                "Krea has scheduled this endpoint's retirement; see the model list for alternatives"
            );
        }
    }

    /// Sends a JSON call and decodes the answer (capped at the client's answer limit).
    pub(crate) async fn json_call<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call,
    ) -> Result<T, Fault> {
        let limit = self.inner.max_answer_bytes;
        self.execute(call, |response| async move {
            let bytes = read_capped(response, limit).await?;
            decode(&bytes)
        })
        .await
    }

    /// Sends a call whose answer carries nothing needed (read and dropped, capped).
    pub(crate) async fn ignore_answer(&self, call: &Call) -> Result<(), Fault> {
        let limit = self.inner.max_answer_bytes;
        self.execute(call, |response| async move {
            read_capped(response, limit).await.map(drop)
        })
        .await
    }

    /// A read (GET/DELETE) on the API decoded as `T`, with the error mapped.
    pub(crate) async fn read<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        operation: &str,
    ) -> crate::Result<T> {
        let call = Call::api(self, Class::Read, method, path, operation);
        self.json_call(&call)
            .await
            .map_err(|f| self.error(f, operation))
    }

    /// The error a caller sees for `fault` (for [`Class::Create`] calls, the submit layer turns
    /// faults that may have created something into [`Error::OutcomeUnknown`] first).
    pub(crate) fn error(&self, fault: Fault, operation: &str) -> Error {
        let secret = self.secret();
        match fault {
            Fault::Status {
                status,
                retry_after,
                body,
            } => status_error(status, retry_after, &body, operation, secret),
            Fault::NotSent(e) => Error::Transport {
                operation: operation.to_string(),
                detail: "not sent".into(),
                source: Some(e),
            },
            Fault::NoAnswer { detail, source } => Error::Transport {
                operation: operation.to_string(),
                detail: clean(&detail, secret, MESSAGE_CHARS),
                source,
            },
            Fault::Decode {
                path,
                message,
                body,
                ..
            } => Error::Decode {
                operation: operation.to_string(),
                path: path.map(|p| clean(&p, secret, MESSAGE_CHARS)),
                message: clean(&message, secret, MESSAGE_CHARS),
                body: clean(&body, secret, MESSAGE_CHARS),
            },
            Fault::TooLarge { limit, .. } => Error::TooLarge {
                operation: operation.to_string(),
                limit,
            },
            Fault::Deadline | Fault::Expired => Error::DeadlineExceeded {
                operation: operation.to_string(),
            },
            Fault::Held => Error::RateLimited {
                retry_after: None,
                message: "held back before sending: the account runs as many jobs as it may".into(),
            },
            Fault::Fatal(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_error_names_where_in_the_answer_it_failed() {
        #[derive(Debug, serde::Deserialize)]
        struct Listing {
            #[allow(dead_code)]
            items: Vec<Item>,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Item {
            #[allow(dead_code)]
            created_at: String,
        }
        let body = br#"{"items":[{"created_at":"x"},{"created_at":5,"job_id":"00000000-0000-0000-0000-000000000007"}]}"#;
        let Err(Fault::Decode { path, job_id, .. }) = decode::<Listing>(body) else {
            panic!("a number where a string belongs does not decode");
        };
        assert_eq!(path.as_deref(), Some("items[1].created_at"));
        assert_eq!(job_id, Some(Uuid::from_u128(7)), "the job it names is kept");
        let Err(Fault::Decode { path, .. }) = decode::<Listing>(b"<html>bad gateway</html>") else {
            panic!("HTML does not decode");
        };
        assert_eq!(path, None, "not JSON: there is no place in it to name");
        let e = Krea::builder().token("t").build().expect("client").error(
            decode::<Listing>(br#"{"items":[{"created_at":1}]}"#).expect_err("bad"),
            "GET /jobs",
        );
        assert!(
            e.to_string()
                .contains("at items[0].created_at: invalid type"),
            "{e}"
        );
    }

    fn status(code: u16) -> Fault {
        Fault::Status {
            status: code,
            retry_after: None,
            body: String::new(),
        }
    }

    fn no_answer() -> Fault {
        Fault::NoAnswer {
            detail: "reset".into(),
            source: None,
        }
    }

    #[test]
    fn reads_retry_on_server_trouble_but_not_on_client_errors() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code).retryable(Class::Read), "{code}");
            assert!(status(code).retryable(Class::Download), "{code}");
        }
        for code in [400, 401, 402, 403, 404, 410] {
            assert!(!status(code).retryable(Class::Read), "{code}");
        }
        assert!(no_answer().retryable(Class::Read));
    }

    #[test]
    fn creations_retry_only_when_nothing_can_have_been_created() {
        assert!(status(429).retryable(Class::Create));
        assert!(!no_answer().retryable(Class::Create));
        for code in [500, 502, 503, 504, 408] {
            assert!(!status(code).retryable(Class::Create), "{code}");
            assert!(status(code).may_have_created(), "{code}: the job may exist");
        }
        for code in [400, 401, 402, 403, 404, 410, 429] {
            assert!(!status(code).may_have_created(), "{code}");
        }
        assert!(no_answer().may_have_created());
        assert!(Fault::Deadline.may_have_created());
        assert!(!Fault::Expired.may_have_created(), "nothing was in flight");
        for code in [301, 302, 307, 308] {
            assert!(
                !status(code).may_have_created(),
                "{code}: not followed, a refusal"
            );
        }
    }

    #[test]
    fn a_job_id_is_found_in_a_body_that_does_not_decode() {
        let id = "4d0e5f97-9721-4422-b88c-73a9032d7de1";
        let body = format!(r#"{{"job_id": "{id}", "status": 7}}"#);
        assert_eq!(job_id_in(&body), Some(id.parse().expect("uuid")));
        let Err(Fault::Decode { job_id, .. }) = decode::<crate::types::Job>(body.as_bytes()) else {
            panic!("a status of 7 does not decode");
        };
        assert_eq!(job_id, Some(id.parse().expect("uuid")));
        assert_eq!(job_id_in(r#"{"job_id": 5}"#), None);
    }
}
