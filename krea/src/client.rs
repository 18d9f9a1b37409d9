//! The client handle: configuration, connections and local state, shared by its clones.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::config::{KreaBuilder, StatePath};
use crate::error::{Error, Result};
use crate::evidence::Evidence;
use crate::journal::{Journal, Scope};
use crate::limiter::Limiter;
use crate::models::ModelSpec;
use crate::pacer::Pacer;
use crate::poll::{Expectation, PollPolicy};
use crate::retry::RetryPolicy;
use crate::timings::Timings;

/// A Krea API client. Cheap to clone; clones share connections, journal and timings.
///
/// ```no_run
/// # async fn run() -> krea::Result<()> {
/// let krea = krea::Krea::from_env()?; // KREA_API_TOKEN, KREA_BASE_URL
/// let job = krea.image("flux").prompt("a lighthouse at dusk").submit().await?;
/// let done = job.wait().await?;
/// let files = done.download_to("out/").await?;
/// println!("{} made {files:?}", done.model_id().unwrap_or("an unknown model"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Krea {
    pub(crate) inner: Arc<Inner>,
    /// Every call and wait made through this handle ends by then ([`Krea::until`]).
    pub(crate) deadline: Option<Instant>,
    /// Where this handle writes down what it pays for (the builder's, or a batch's own).
    pub(crate) journal: Option<Arc<Journal>>,
}

pub(crate) struct Inner {
    pub raw: krea_gen::Client,
    pub http: reqwest::Client,
    pub downloads: reqwest::Client,
    pub base: String,
    pub auth: HeaderValue,
    pub token: SecretString,
    pub scope: Scope,
    pub request_timeout: Duration,
    pub call_timeout: Duration,
    pub max_answer_bytes: u64,
    pub settle_grace: Duration,
    pub listing_lag: Duration,
    pub assumed_price: Option<f64>,
    pub retry: RetryPolicy,
    pub poll: PollPolicy,
    pub limiter: Limiter,
    /// What is known of Krea's clock (see [`crate::evidence`]).
    pub evidence: Evidence,
    /// Paid sends go out a measured spacing apart (see [`crate::pacer`]).
    pub pacer: Pacer,
    /// What settling remembers between passes.
    pub settling: crate::settle::Memory,
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
            .field("journal", &self.journal.as_ref().map(|j| j.location()))
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

fn state_path(
    at: &StatePath,
    default: impl FnOnce() -> Option<std::path::PathBuf>,
) -> Option<std::path::PathBuf> {
    match at {
        StatePath::Default => default(),
        StatePath::At(p) => Some(p.clone()),
        StatePath::Disabled => None,
    }
}

/// The journal the builder asks for: PostgreSQL, a file, or none.
fn open_journal(b: &KreaBuilder, scope: &Scope) -> Result<Option<Arc<Journal>>> {
    #[cfg(feature = "postgres")]
    if let Some(url) = &b.journal_postgres {
        use secrecy::ExposeSecret;
        let journal = Journal::open_postgres_until(url.expose_secret(), scope.clone(), b.deadline)?;
        return Ok(Some(Arc::new(journal)));
    }
    state_path(&b.journal, crate::journal::default_path)
        .map(|p| Journal::open_until(p, scope.clone(), b.deadline).map(Arc::new))
        .transpose()
}

impl Krea {
    /// A client with the token a program run by this user should use: `KREA_API_TOKEN` (and
    /// `KREA_BASE_URL`) where set, else the one `krea auth login` stored for the default
    /// profile ([`KreaBuilder::from_profile`]); every other setting at its default (no
    /// journal, nothing written to disk).
    pub fn from_env() -> Result<Krea> {
        KreaBuilder::default()
            .from_profile(crate::credentials::DEFAULT_PROFILE)?
            .build()
    }

    /// A builder with every default and no token.
    pub fn builder() -> KreaBuilder {
        KreaBuilder::default()
    }

    pub(crate) fn new(b: KreaBuilder, base: String, auth: krea_gen::ApiAuth) -> Result<Krea> {
        let token: SecretString = b.token.clone().ok_or(Error::MissingToken)?;
        if let Some(p) = b.assumed_price.filter(|p| !p.is_finite() || *p < 0.0) {
            return Err(Error::Config(format!(
                "the assumed price {p} is not a number of compute units (0 or more)"
            )));
        }
        let mut header = HeaderValue::try_from(format!("Bearer {}", token.expose_secret().trim()))
            .map_err(|_| {
                Error::Config("the token holds characters a header cannot carry".into())
            })?;
        header.set_sensitive(true);
        let http = match b.http.clone() {
            Some(c) => c,
            // No redirect is followed by the client itself: a paid request is never sent on to
            // another address, and reads follow theirs in the one request path.
            None => krea_gen::net::client_builder()
                .connect_timeout(b.connect_timeout)
                .timeout(b.request_timeout)
                .user_agent(b.user_agent.clone())
                .redirect(reqwest::redirect::Policy::none())
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
        let scope = Scope {
            origin: base.clone(),
            account: crate::journal::fingerprint(token.expose_secret().trim().as_bytes()),
        };
        let journal = open_journal(&b, &scope)?;
        let timings = state_path(&b.timings, || {
            dirs::cache_dir().map(|d| d.join("krea").join("timings.json"))
        });
        let catalog_cache = state_path(&b.catalog_cache, crate::catalog::default_cache_path);
        if let Some(path) = &catalog_cache
            && let Err(e) = crate::catalog::load_cache(path)
        {
            tracing::warn!(error = %e, "the cached model list could not be read; refresh it");
        }
        let inner = Inner {
            raw: krea_gen::Client::new_with_client(&base, http.clone(), auth),
            http,
            downloads,
            auth: header,
            token,
            scope,
            base,
            request_timeout: b.request_timeout,
            call_timeout: b.call_timeout,
            max_answer_bytes: b.max_answer_bytes,
            settle_grace: b.settle_grace,
            listing_lag: b.listing_lag,
            assumed_price: b.assumed_price,
            retry: b.retry,
            poll: b.poll,
            limiter: Limiter::new(16, b.max_jobs_in_flight),
            evidence: Evidence::default(),
            pacer: Pacer::default(),
            settling: Default::default(),
            timings: Timings::load(timings),
            download_concurrency: b.download_concurrency,
            durable_downloads: b.durable_downloads,
            catalog_cache,
        };
        // What earlier runs measured of Krea's clock holds until newer answers say otherwise.
        if let Some(j) = &journal {
            j.exchanges()
                .into_iter()
                .for_each(|e| inner.evidence.exchange(e));
        }
        Ok(Krea {
            inner: Arc::new(inner),
            deadline: b.deadline,
            journal,
        })
    }

    /// The same client, with every call and wait made through the returned handle ending by
    /// `deadline` (an earlier deadline already set stays). A wait cut short ends in
    /// [`Error::Timeout`] naming the job; a paid request cut short in
    /// [`Error::OutcomeUnknown`]; anything else in [`Error::DeadlineExceeded`].
    ///
    /// ```no_run
    /// # async fn run(krea: krea::Krea) -> krea::Result<()> {
    /// let quick = krea.until(tokio::time::Instant::now() + std::time::Duration::from_secs(30));
    /// let job = quick.image("flux").prompt("a fox").submit().await?;
    /// job.wait().await?; // Timeout (with the job id) if not done within the 30 s
    /// # Ok(()) }
    /// ```
    pub fn until(&self, deadline: Instant) -> Krea {
        Krea {
            deadline: Some(self.deadline.map_or(deadline, |d| d.min(deadline))),
            ..self.clone()
        }
    }

    /// The same client, writing what it pays for into `journal` (a batch keeps one in its
    /// directory when the client has none).
    pub(crate) fn with_journal(&self, journal: Arc<Journal>) -> Krea {
        journal
            .exchanges()
            .into_iter()
            .for_each(|e| self.inner.evidence.exchange(e));
        Krea {
            journal: Some(journal),
            ..self.clone()
        }
    }

    /// The API origin and account fingerprint this client's journal entries carry.
    pub(crate) fn scope(&self) -> &Scope {
        &self.inner.scope
    }

    /// The deadline set with [`Krea::until`], if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// When the call starting now must end: the call timeout, or the handle's deadline.
    pub(crate) fn call_deadline(&self) -> Instant {
        let own = Instant::now() + self.inner.call_timeout;
        self.deadline.map_or(own, |d| d.min(own))
    }

    /// The generated client, for anything this crate does not wrap. It carries the token (to
    /// the API origin only); calls through it bypass this crate's retries and journal.
    pub fn raw(&self) -> &krea_gen::Client {
        &self.inner.raw
    }

    /// The API base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The journal, if one was asked for.
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_deref()
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
        self.inner.timings.observe(&model.id, seconds);
    }
}
