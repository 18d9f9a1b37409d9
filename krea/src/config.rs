//! Building a client: token, base URL, timeouts, user agent, HTTP clients, local state.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::poll::PollPolicy;
use crate::retry::RetryPolicy;

/// Where the API lives unless told otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.krea.ai";
/// Environment variable holding the token.
pub const TOKEN_ENV: &str = "KREA_API_TOKEN";
/// Environment variable overriding the base URL.
pub const BASE_URL_ENV: &str = "KREA_BASE_URL";
/// How long after a lost answer Krea may still create the job, unless configured: gateways
/// were measured giving up 0.5-2 s before the backend committed; five times that.
pub const DEFAULT_SETTLE_GRACE: Duration = Duration::from_secs(10);
/// How long a new job may take to show in the listing, unless configured: measured ~2 s;
/// two and a half times that.
pub const DEFAULT_LISTING_LAG: Duration = Duration::from_secs(5);

/// Where local state goes: the default location, a path of your choice, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatePath {
    /// Under the user's state (journal) or cache (timings, catalog) directory.
    Default,
    /// This file.
    At(PathBuf),
    /// Not kept (the default for every kind of state: a library writes nothing unasked).
    #[default]
    Disabled,
}

/// Configures a [`Krea`] client. Every setting has a default; the token has none.
#[derive(Clone)]
#[must_use]
pub struct KreaBuilder {
    pub(crate) token: Option<SecretString>,
    pub(crate) base_url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) user_agent: String,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) download_http: Option<reqwest::Client>,
    pub(crate) retry: RetryPolicy,
    pub(crate) poll: PollPolicy,
    pub(crate) journal: StatePath,
    /// A PostgreSQL journal's address (it may hold a password): replaces `journal`.
    #[cfg(feature = "postgres")]
    pub(crate) journal_postgres: Option<SecretString>,
    pub(crate) timings: StatePath,
    pub(crate) max_jobs_in_flight: usize,
    pub(crate) download_concurrency: usize,
    pub(crate) durable_downloads: bool,
    pub(crate) catalog_cache: StatePath,
    pub(crate) call_timeout: Duration,
    pub(crate) max_answer_bytes: u64,
    pub(crate) settle_grace: Duration,
    pub(crate) listing_lag: Duration,
    pub(crate) deadline: Option<tokio::time::Instant>,
    pub(crate) assumed_price: Option<f64>,
}

impl std::fmt::Debug for KreaBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KreaBuilder")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("poll", &self.poll)
            .field("journal", &self.journal)
            .field("journal_postgres", &self.postgres_shown())
            .field("timings", &self.timings)
            .field("max_jobs_in_flight", &self.max_jobs_in_flight)
            .field("catalog_cache", &self.catalog_cache)
            .finish_non_exhaustive()
    }
}

impl Default for KreaBuilder {
    fn default() -> Self {
        KreaBuilder {
            token: None,
            base_url: DEFAULT_BASE_URL.into(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            user_agent: format!("krea-rs/{}", env!("CARGO_PKG_VERSION")),
            http: None,
            download_http: None,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            journal: StatePath::Disabled,
            #[cfg(feature = "postgres")]
            journal_postgres: None,
            timings: StatePath::Disabled,
            max_jobs_in_flight: 64,
            download_concurrency: 4,
            durable_downloads: false,
            catalog_cache: StatePath::Disabled,
            call_timeout: Duration::from_secs(300),
            max_answer_bytes: 16 * 1024 * 1024,
            settle_grace: DEFAULT_SETTLE_GRACE,
            listing_lag: DEFAULT_LISTING_LAG,
            deadline: None,
            assumed_price: None,
        }
    }
}

impl KreaBuilder {
    /// The token and base URL by the usual precedence ([`crate::credentials::find`]):
    /// `KREA_API_TOKEN` and `KREA_BASE_URL` where set, else what `krea auth login` stored for
    /// `profile`. A token given to [`KreaBuilder::token`] afterwards replaces it.
    pub fn from_profile(mut self, profile: &str) -> Result<Self> {
        if let Some(found) = crate::credentials::find(profile)? {
            self.token = Some(SecretString::from(found.token().to_string()));
            if let Some(url) = found.base_url {
                self.base_url = url;
            }
        } else if let Some(url) = std::env::var(BASE_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            self.base_url = url;
        }
        Ok(self)
    }

    /// Reads `KREA_API_TOKEN` and `KREA_BASE_URL` where set, and nothing else (see
    /// [`KreaBuilder::from_profile`] for the stored token too).
    pub fn from_env(mut self) -> Self {
        if let Some(token) = std::env::var(TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            self.token = Some(SecretString::from(token));
        }
        if let Some(url) = std::env::var(BASE_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
        {
            self.base_url = url;
        }
        self
    }

    /// The API token (kept in a [`SecretString`]; sent only to the API origin).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// The API base URL (default `https://api.krea.ai`). `http://` is accepted for loopback
    /// hosts only (a local simulator), so the token never crosses a network in clear text.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// Time to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for one API request, answer included (default 60 s). Never infinite.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Time for one call, every retry and `Retry-After` wait included (default 5 min); see
    /// also [`Krea::until`] for a deadline over many calls and waits.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Largest API answer read, in bytes (default 16 MiB); a larger one is refused
    /// ([`Error::TooLarge`]) without being held in memory. Result files are streamed to disk
    /// and are not bound by it.
    pub fn max_answer_bytes(mut self, bytes: u64) -> Self {
        self.max_answer_bytes = bytes.max(1024);
        self
    }

    /// How long after a paid request's answer was lost Krea may still create its job (a
    /// gateway gave up while the backend went on; default 10 s). Settling declares a request
    /// not created only once this and the [listing lag](KreaBuilder::listing_lag) have passed
    /// with no job of it in sight, so it is never sent again while its job may still appear.
    pub fn settle_grace(mut self, grace: Duration) -> Self {
        self.settle_grace = grace;
        self
    }

    /// The price, in compute units, assumed for one job of a model Krea publishes no price
    /// for (the Topaz upscalers), where a budget must hold it (default
    /// [`crate::assumed_price`]: the dearest published price of the kind). Every
    /// estimate that uses it says so. Not finite or below zero: refused when building.
    pub fn assumed_price(mut self, compute_units: f64) -> Self {
        self.assumed_price = Some(compute_units);
        self
    }

    /// How long a new job may take to show in Krea's job listing (default 5 s).
    pub fn listing_lag(mut self, lag: Duration) -> Self {
        self.listing_lag = lag;
        self
    }

    /// Everything the built client does ends by `deadline`, building it included (reading
    /// the journal and waiting for its lock): as [`Krea::until`] on the built client, for a
    /// program whose whole run has a time limit.
    pub fn deadline(mut self, deadline: tokio::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The `User-Agent` sent with every request.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// Uses this reqwest client for API calls (bring your own proxy or TLS settings). Set its
    /// timeouts; the request timeout above is also applied per request. Never give it an
    /// `Authorization` default header: the token is added per request, to the API origin only.
    /// Build it with `redirect(reqwest::redirect::Policy::none())`: this crate follows the
    /// redirects of reads itself and never those of paid requests.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Uses this reqwest client for result downloads (it must carry no credentials).
    pub fn download_client(mut self, client: reqwest::Client) -> Self {
        self.download_http = Some(client);
        self
    }

    /// How failed requests are retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How [`crate::JobHandle::wait`] polls, unless a call passes its own.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// Keep a job journal (default: none). With one, every paid request is written down before
    /// it is sent and every job until it is handled, so an interrupted program resumes without
    /// paying twice ([`crate::Jobs::resume`], [`Krea::settle_all`]). [`StatePath::Default`] is
    /// `krea/journal.jsonl` under the user's state directory. One journal serves many programs
    /// and clients: entries are kept per API origin and account.
    pub fn journal(mut self, at: StatePath) -> Self {
        self.journal = at;
        self
    }

    /// Keep the job journal in PostgreSQL at `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`,
    /// any libpq-style key also allowed) instead of a file: several machines (the replicas of
    /// one service) then share one journal, so each settles the others' lost answers and none
    /// adopts a job another created. [`KreaBuilder::build`] connects, creates or migrates its
    /// tables (`krea_schema`, `krea_journal`, in the connection's schema) and fails, before
    /// anything is paid, when it cannot. TLS is rustls with the platform's certificates
    /// (`sslmode=require` to insist on it). Needs the `postgres` feature.
    ///
    /// ```no_run
    /// # async fn run() -> krea::Result<()> {
    /// let krea = krea::Krea::builder()
    ///     .token(std::env::var("KREA_API_TOKEN").unwrap_or_default())
    ///     .journal_postgres("postgres://krea:secret@db.internal:5432/jobs")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub fn journal_postgres(mut self, url: impl Into<String>) -> Self {
        self.journal_postgres = Some(SecretString::from(url.into()));
        self
    }

    fn postgres_shown(&self) -> Option<&'static str> {
        #[cfg(feature = "postgres")]
        if self.journal_postgres.is_some() {
            return Some("<redacted>");
        }
        None
    }

    /// Keep observed job durations in a file (default: in memory only; [`StatePath::Default`]
    /// is `krea/timings.json` under the user's cache directory). They make the first poll land
    /// near the completion in later runs too.
    pub fn timings(mut self, at: StatePath) -> Self {
        self.timings = at;
        self
    }

    /// Most jobs a [`crate::Batch`] keeps pending at once (the adaptive window's ceiling).
    pub fn max_jobs_in_flight(mut self, n: usize) -> Self {
        self.max_jobs_in_flight = n.max(1);
        self
    }

    /// Files downloaded at once per job (default 4).
    pub fn download_concurrency(mut self, n: usize) -> Self {
        self.download_concurrency = n.max(1);
        self
    }

    /// `fsync` downloaded files before reporting them (see [`crate::DownloadOptions::durable`]).
    pub fn durable_downloads(mut self, yes: bool) -> Self {
        self.durable_downloads = yes;
        self
    }

    /// Where [`Krea::refresh_catalog`] keeps the models it fetched, and where `build` loads
    /// them from (so models Krea added after this crate was built can be validated). Default:
    /// [`StatePath::Disabled`] (refreshed models live in memory only); [`StatePath::Default`] is
    /// `krea/catalog.json` under the user's cache directory.
    pub fn catalog_cache(mut self, at: StatePath) -> Self {
        self.catalog_cache = at;
        self
    }

    /// Builds the client. Fails without a token, or with a base URL that would expose it.
    pub fn build(self) -> Result<Krea> {
        let token = self.token.clone().ok_or(Error::MissingToken)?;
        let base = check_base_url(&self.base_url)?;
        let auth = krea_gen::ApiAuth::bearer(token.expose_secret())
            .map_err(|e| Error::Config(e.to_string()))?;
        Krea::new(self, base, auth)
    }
}

/// A URL with no trailing slash, https or loopback http.
pub(crate) fn check_base_url(url: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        Error::Config(format!(
            "base URL {url:?} is not a URL ({e}); use e.g. {DEFAULT_BASE_URL}"
        ))
    })?;
    let loopback = krea_gen::net::is_loopback_host(parsed.host_str());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(Error::Config(format!(
                "refusing the http:// base URL {url}: the token would travel unencrypted; use https:// (http:// is allowed for loopback hosts only)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "base URL scheme {other:?} is not supported; use https://"
            )));
        }
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL {url} must not have a query or fragment"
        )));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        assert_eq!(
            check_base_url("https://api.krea.ai/").ok().as_deref(),
            Some("https://api.krea.ai")
        );
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:1").is_ok());
        assert!(check_base_url("http://[::1]:9").is_ok());
    }

    #[test]
    fn plain_http_elsewhere_and_other_schemes_are_refused() {
        for url in [
            "http://api.krea.ai",
            "http://10.0.0.5",
            "ftp://api.krea.ai",
            "not a url",
        ] {
            let err = check_base_url(url).expect_err(url).to_string();
            assert!(err.contains("https://"), "{url}: {err}");
        }
    }

    #[test]
    fn a_builder_without_a_token_says_which_variable_to_set() {
        let err = KreaBuilder::default().build().expect_err("no token");
        assert!(err.to_string().contains("KREA_API_TOKEN"));
    }

    #[test]
    fn a_library_client_writes_nothing_to_disk_unless_asked() {
        let b = KreaBuilder::default();
        assert_eq!(b.journal, StatePath::Disabled);
        assert_eq!(b.timings, StatePath::Disabled);
        assert_eq!(b.catalog_cache, StatePath::Disabled);
        let krea = b
            .token("t")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("client");
        assert!(krea.journal().is_none());
    }

    #[test]
    fn debug_of_the_builder_hides_the_token() {
        let b = KreaBuilder::default().token("sentinel-secret-123");
        assert!(!format!("{b:?}").contains("sentinel-secret-123"));
    }
}
