//! The client handle and its two request paths: the generated operations (with retries for
//! reads and deletes), and the generation POST (with the stricter rules of a paid request).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use krea_gen::types;
use progenitor_client::ResponseValue;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::Instrument;

use crate::config::{KreaBuilder, StatePath};
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::limiter::{Limiter, Permit};
use crate::models::ModelSpec;
use crate::poll::{Expectation, PollPolicy};
use crate::retry::{Class, Fault, RetryPolicy, retry_after};
use crate::timings::Timings;

/// A Krea API client. Cheap to clone; clones share connections, limiter, journal and timings.
///
/// ```no_run
/// # async fn run() -> krea::Result<()> {
/// let krea = krea::Krea::from_env()?; // KREA_API_TOKEN, KREA_BASE_URL
/// let job = krea.image("flux").prompt("a lighthouse at dusk").width(1024).submit().await?;
/// let done = job.wait().await?;
/// let files = done.download_to("out/").await?;
/// println!("{} made {files:?}", done.model_id());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Krea {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub raw: krea_gen::Client,
    pub http: reqwest::Client,
    pub downloads: reqwest::Client,
    pub base: String,
    pub auth: HeaderValue,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub poll: PollPolicy,
    pub limiter: Limiter,
    pub journal: Option<Journal>,
    pub timings: Timings,
    pub download_concurrency: usize,
    pub durable_downloads: bool,
    pub catalog_cache: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Krea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Krea")
            .field("base_url", &self.inner.base)
            .field("token", &"<redacted>")
            .field("request_timeout", &self.inner.request_timeout)
            .field("journal", &self.inner.journal.as_ref().map(Journal::path))
            .finish_non_exhaustive()
    }
}

impl Krea {
    /// A client configured from `KREA_API_TOKEN` and `KREA_BASE_URL`.
    pub fn from_env() -> Result<Krea> {
        KreaBuilder::default().from_env().build()
    }

    /// A builder with every default and no token.
    pub fn builder() -> KreaBuilder {
        KreaBuilder::default()
    }

    pub(crate) fn new(b: KreaBuilder, base: String, auth: krea_gen::ApiAuth) -> Result<Krea> {
        let token: &SecretString = b.token.as_ref().ok_or(Error::MissingToken)?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.expose_secret().trim()))
            .map_err(|_| {
                Error::Config(
                    "the token contains characters that cannot be sent in a header".into(),
                )
            })?;
        header.set_sensitive(true);
        let http = match b.http.clone() {
            Some(c) => c,
            None => krea_gen::net::client_builder()
                .connect_timeout(b.connect_timeout)
                .timeout(b.request_timeout)
                .user_agent(b.user_agent.clone())
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        // Downloads: no credentials ever, no total timeout (files can be large), but a read
        // timeout so a stalled transfer fails.
        let downloads = match b.download_http.clone() {
            Some(c) => c,
            None => krea_gen::net::client_builder()
                .connect_timeout(b.connect_timeout)
                .read_timeout(b.request_timeout)
                .user_agent(b.user_agent.clone())
                .build()
                .map_err(|e| Error::Config(format!("cannot build the download client: {e}")))?,
        };
        let journal = match &b.journal {
            StatePath::Default => Journal::default_path().map(Journal::at),
            StatePath::At(p) => Some(Journal::at(p.clone())),
            StatePath::Disabled => None,
        };
        let timings_path = match &b.timings {
            StatePath::Default => dirs::cache_dir().map(|d| d.join("krea").join("timings.json")),
            StatePath::At(p) => Some(p.clone()),
            StatePath::Disabled => None,
        };
        let catalog_cache = match &b.catalog_cache {
            StatePath::Default => crate::catalog::default_cache_path(),
            StatePath::At(p) => Some(p.clone()),
            StatePath::Disabled => None,
        };
        if let Some(path) = &catalog_cache
            && let Err(e) = crate::catalog::load_cache(path)
        {
            tracing::warn!(error = %e, "the cached model catalog could not be read; refresh it");
        }
        let inner = Inner {
            raw: krea_gen::Client::new_with_client(&base, http.clone(), auth),
            http,
            downloads,
            auth: header,
            base,
            request_timeout: b.request_timeout,
            retry: b.retry,
            poll: b.poll,
            limiter: Limiter::new(4, b.max_jobs_in_flight),
            journal,
            timings: Timings::load(timings_path),
            download_concurrency: b.download_concurrency,
            durable_downloads: b.durable_downloads,
            catalog_cache,
        };
        Ok(Krea {
            inner: Arc::new(inner),
        })
    }

    /// The generated client, for anything this crate does not wrap. It carries the token (to
    /// the API origin only) like every call made through `Krea`.
    pub fn raw(&self) -> &krea_gen::Client {
        &self.inner.raw
    }

    /// The API base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The journal, if enabled.
    pub fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    /// The default poll policy.
    pub fn poll_policy(&self) -> &PollPolicy {
        &self.inner.poll
    }

    /// What this client expects a job of `model` to take.
    pub fn expectation(&self, model: &ModelSpec) -> Expectation {
        self.inner.timings.expect(model, self.inner.poll.time_scale)
    }

    pub(crate) fn observe_duration(&self, model: &ModelSpec, seconds: f64) {
        self.inner.timings.observe(model.id, seconds);
    }

    /// Runs a generated read or delete, retrying by the idempotent rules.
    pub(crate) async fn call<T, F, Fut>(&self, op: &'static str, mut send: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<
            Output = std::result::Result<ResponseValue<T>, progenitor_client::Error<types::Error>>,
        >,
    {
        let policy = &self.inner.retry;
        let attempt = || {
            let sent = send();
            async move {
                match sent.await {
                    Ok(v) => {
                        tracing::debug!(op, status = v.status().as_u16(), "answered");
                        Ok(v.into_inner())
                    }
                    Err(e) => {
                        let fault = fault_of(e).await;
                        tracing::debug!(op, fault = ?fault, "failed");
                        Err(fault)
                    }
                }
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.base_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter();
        attempt
            .retry(backoff)
            .when(|f: &Fault| f.retryable(Class::Idempotent))
            .adjust(|f: &Fault, d| d.map(|d| policy.delay(f, d)))
            .notify(|f: &Fault, d| tracing::debug!(op, fault = ?f, delay_ms = d.as_millis() as u64, "retrying"))
            .instrument(tracing::debug_span!("krea.api", op))
            .await
            .map_err(|f| f.into_error(Class::Idempotent, op))
    }

    /// `POST {path}` with a JSON body and the token, for the generation endpoints.
    async fn post_once<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        webhook: Option<&str>,
    ) -> std::result::Result<T, Fault> {
        let mut req = self
            .inner
            .http
            .post(format!("{}{path}", self.inner.base))
            .header(AUTHORIZATION, self.inner.auth.clone())
            .timeout(self.inner.request_timeout)
            .json(body);
        if let Some(url) = webhook {
            req = req.header("X-Webhook-URL", url);
        }
        let response = req.send().await.map_err(|e| Fault::from_reqwest(&e))?;
        let status = response.status();
        tracing::debug!(path, status = status.as_u16(), "answered");
        let headers = response.headers().clone();
        if let Some(sunset) = headers.get("sunset").and_then(|v| v.to_str().ok()) {
            tracing::warn!(
                path,
                sunset,
                "Krea has scheduled this model's retirement; see `krea models` for alternatives"
            );
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Fault::NoAnswer(format!("reading the answer failed: {e}")))?;
        if !status.is_success() {
            return Err(Fault::Status {
                status: status.as_u16(),
                retry_after: retry_after(&headers),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Fault::Decode {
            message: e.to_string(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Creates a paid job (a generation, a style training, a node app run): waits for a slot of
    /// the adaptive limiter, POSTs, retries only when no job can have been created (429,
    /// connection refused), and returns the answer with the slot. `label` names what was asked
    /// for in errors (the model id).
    pub(crate) async fn create_job<T: serde::de::DeserializeOwned>(
        &self,
        label: &str,
        path: &str,
        body: &Value,
        webhook: Option<&str>,
    ) -> Result<(T, Permit)> {
        let span = tracing::info_span!("krea.submit", what = label);
        async {
            let policy = &self.inner.retry;
            let mut rate_limited = policy.backoff(policy.max_rate_limited_submits);
            let mut not_sent = policy.backoff(policy.max_retries);
            loop {
                let permit = self.inner.limiter.acquire().await;
                let fault = match self.post_once(path, body, webhook).await {
                    Ok(answer) => {
                        self.inner.limiter.accepted();
                        tracing::info!("job created");
                        return Ok((answer, permit));
                    }
                    Err(fault) => fault,
                };
                let backoff = match &fault {
                    Fault::Status { status: 429, .. } => {
                        self.inner.limiter.rate_limited();
                        rate_limited.next()
                    }
                    Fault::NotSent(_) => not_sent.next(),
                    // The job exists but its answer did not decode: it must not be repeated.
                    Fault::Decode { message, .. } => {
                        return Err(Error::OutcomeUnknown { model: label.into(), detail: format!("the answer did not decode: {message}") });
                    }
                    _ => None,
                };
                drop(permit);
                match backoff.filter(|_| fault.retryable(Class::Generation)) {
                    Some(wait) => {
                        let wait = policy.delay(&fault, wait);
                        tracing::debug!(fault = ?fault, delay_ms = wait.as_millis() as u64, "no job was created; retrying");
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(fault.into_error(Class::Generation, label)),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// `GET url` without the token (a public document), its body capped at `max` bytes.
    pub(crate) async fn get_public(&self, url: &str, max: usize) -> Result<Vec<u8>> {
        use futures_util::StreamExt;
        let response = self
            .inner
            .http
            .get(url)
            .timeout(self.inner.request_timeout)
            .send()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            return Err(Error::Api {
                status,
                message: format!("GET {url} answered {status}"),
            });
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Error::Transport(e.to_string()))?;
            if body.len() + chunk.len() > max {
                return Err(Error::Decode {
                    message: format!("GET {url}: the answer is larger than {max} bytes"),
                    body: String::new(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// An authenticated request to the API origin (for the hand-written operations).
    pub(crate) fn api_request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.inner
            .http
            .request(method, format!("{}{path}", self.inner.base))
            .header(AUTHORIZATION, self.inner.auth.clone())
            .timeout(self.inner.request_timeout)
    }
}

/// A generated operation's error as a [`Fault`].
pub(crate) async fn fault_of(e: progenitor_client::Error<types::Error>) -> Fault {
    use progenitor_client::Error as E;
    match e {
        E::ErrorResponse(rv) => Fault::Status {
            status: rv.status().as_u16(),
            retry_after: retry_after(rv.headers()),
            body: serde_json::json!({ "error": rv.into_inner().error }).to_string(),
        },
        E::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let retry = retry_after(response.headers());
            let body = response.text().await.unwrap_or_default();
            Fault::Status {
                status,
                retry_after: retry,
                body,
            }
        }
        E::CommunicationError(e) => Fault::from_reqwest(&e),
        E::ResponseBodyError(e) => Fault::NoAnswer(format!("reading the answer failed: {e}")),
        E::InvalidResponsePayload(bytes, e) => Fault::Decode {
            message: e.to_string(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        },
        E::InvalidRequest(message) | E::Custom(message) => Fault::Local(message),
        E::InvalidUpgrade(e) => Fault::Local(e.to_string()),
    }
}
