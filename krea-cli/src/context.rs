//! From the global options to a client: the real API (token and base URL from flags or the
//! environment) or, with `--sim`, a simulator running inside this process.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use krea::{Krea, PollPolicy, StatePath};
use uuid::Uuid;

use crate::cli::Global;
use crate::exit::Usage;
use crate::output::Out;

/// How much faster than real time `--sim` runs (a 20 s image takes 0.4 s).
pub const SIM_SCALE: f64 = 0.02;

/// A connected client.
pub struct Ctx {
    pub krea: Krea,
    pub out: Out,
    /// The token in use, to scrub from anything shown (`None` for a dry run).
    pub secret: Option<String>,
    /// Keeps the in-process simulator alive.
    _sim: Option<krea_sim::Simulator>,
}

/// Jobs submitted by this process and not yet seen to end, for Ctrl-C.
pub fn pending() -> &'static Mutex<BTreeSet<Uuid>> {
    static PENDING: OnceLock<Mutex<BTreeSet<Uuid>>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

/// The client, for cancelling on Ctrl-C.
pub fn client() -> &'static OnceLock<Krea> {
    static CLIENT: OnceLock<Krea> = OnceLock::new();
    &CLIENT
}

/// A running batch: its output directory and the command that resumes it, for Ctrl-C.
pub fn batch_in_progress() -> &'static Mutex<Option<(std::path::PathBuf, String)>> {
    static BATCH: OnceLock<Mutex<Option<(std::path::PathBuf, String)>>> = OnceLock::new();
    BATCH.get_or_init(Mutex::default)
}

pub fn track(id: Uuid) {
    pending().lock().map(|mut p| p.insert(id)).ok();
}

pub fn untrack(id: Uuid) {
    pending().lock().map(|mut p| p.remove(&id)).ok();
}

/// The poll policy the options ask for (scaled for the simulator).
fn poll_policy(g: &Global, scale: f64) -> anyhow::Result<PollPolicy> {
    let policy = match g.poll.as_str() {
        "auto" => PollPolicy::default().scaled(scale),
        seconds => {
            let s: f64 = seconds
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    Usage(format!(
                        "--poll takes `auto` or a number of seconds, not {seconds:?}"
                    ))
                })?;
            PollPolicy::fixed(Duration::from_secs_f64(s))
        }
    };
    Ok(policy)
}

/// A positive number of seconds from an option.
pub fn seconds(flag: &str, value: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(t) if t.is_finite() && t > 0.0 => Ok(Some(Duration::from_secs_f64(t))),
        Some(t) => Err(Usage(format!("{flag} takes a number of seconds, not {t}")).into()),
    }
}

/// `--settle-grace` covers a late commit and the listing's lag, two thirds and one third (as
/// the library's defaults, 10 s and 5 s).
fn split_grace(total: Duration) -> (Duration, Duration) {
    let lag = total / 3;
    (total - lag, lag)
}

/// Where the token in use comes from.
pub enum TokenSource {
    Flag,
    Env,
    Stored {
        path: std::path::PathBuf,
        saved_at: chrono::DateTime<chrono::Utc>,
    },
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Flag => write!(f, "--token"),
            TokenSource::Env => write!(f, "{}", krea::TOKEN_ENV),
            TokenSource::Stored { path, saved_at } => write!(
                f,
                "{} (stored {})",
                crate::output::shown(path),
                saved_at.format("%Y-%m-%d")
            ),
        }
    }
}

/// The token to use and the base URL to use it with.
pub struct FoundToken {
    pub token: String,
    pub source: TokenSource,
    /// `--base-url`/KREA_BASE_URL, else the one stored with the token.
    pub base_url: Option<String>,
}

/// The token, by precedence: `--token`, then the library's ([`krea::credentials::find`]:
/// KREA_API_TOKEN, then the profile's stored one).
pub fn find_token(g: &Global) -> anyhow::Result<Option<FoundToken>> {
    if let Some(token) = g.token.clone().filter(|t| !t.trim().is_empty()) {
        return Ok(Some(FoundToken {
            token,
            source: TokenSource::Flag,
            base_url: g.base_url.clone(),
        }));
    }
    Ok(
        krea::credentials::find(&g.profile)?.map(|found| FoundToken {
            token: found.token().to_string(),
            source: match found.source {
                krea::credentials::TokenSource::Stored { path, saved_at } => {
                    TokenSource::Stored { path, saved_at }
                }
                _ => TokenSource::Env,
            },
            base_url: g.base_url.clone().or(found.base_url),
        }),
    )
}

/// A client that is never used to send (a dry run without a token): requests can be checked
/// and priced, nothing else.
pub fn offline(g: &Global) -> anyhow::Result<Ctx> {
    let out = Out {
        json: g.json,
        quiet: g.quiet,
        simulated: false,
        ask: !g.yes,
    };
    let mut b = Krea::builder().token("dry-run-no-token");
    if let Some(url) = &g.base_url {
        b = b.base_url(url.clone());
    }
    Ok(Ctx {
        krea: b.build()?,
        out,
        secret: None,
        _sim: None,
    })
}

/// The journal `--journal` (or `KREA_JOURNAL`) names: a PostgreSQL address or a file.
fn journal(b: krea::KreaBuilder, g: &Global) -> krea::KreaBuilder {
    match g.journal.as_deref().map(str::trim) {
        None | Some("") => b,
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            b.journal_postgres(url)
        }
        Some(path) => b.journal(StatePath::At(path.into())),
    }
}

/// Connects as the global options say.
pub async fn connect(g: &Global) -> anyhow::Result<Ctx> {
    connect_with(g, None).await
}

/// Connects as the global options say; with `--sim`, keeps a journal at `sim_journal` (a
/// long-lived process such as `krea mcp` can then resume within its own simulator's life).
pub async fn connect_with(
    g: &Global,
    sim_journal: Option<std::path::PathBuf>,
) -> anyhow::Result<Ctx> {
    let out = Out {
        json: g.json,
        quiet: g.quiet,
        simulated: g.sim,
        ask: !g.yes,
    };
    let timeout = seconds("--timeout", g.timeout)?;
    let request_timeout = seconds("--request-timeout", g.request_timeout)?;
    let settle_grace = seconds("--settle-grace", g.settle_grace)?;
    // Everything this command does (opening the journal, calls, retries, waits, downloads)
    // ends by then.
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let (krea, sim, secret) = if g.sim {
        let sim = krea_sim::Simulator::builder()
            .time_scale(SIM_SCALE)
            .start()
            .await?;
        let poll = poll_policy(g, SIM_SCALE)?;
        // The in-process simulator creates a job before it answers and lists it at once.
        let (commit, lag) = split_grace(settle_grace.unwrap_or(Duration::from_millis(700)));
        let mut b = Krea::builder()
            .token(sim.token())
            .base_url(sim.api_url())
            .poll_policy(poll)
            .settle_grace(commit)
            .listing_lag(lag);
        if let Some(t) = request_timeout {
            b = b.request_timeout(t);
        }
        if let Some(d) = deadline {
            b = b.deadline(d);
        }
        if let Some(cu) = g.assume_cu {
            b = b.assumed_price(cu);
        }
        if let Some(path) = sim_journal {
            b = b.journal(StatePath::At(path));
        }
        if g.journal.is_some() {
            b = journal(b, g);
        }
        let krea = b.build()?;
        // One short line: it is printed on every run, and must not wrap at 80 columns.
        let url = sim.api_url().to_string();
        out.note(format!(
            "(simulated: in-process Krea at {}, no account needed)",
            url.trim_start_matches("http://").trim_end_matches('/')
        ));
        let secret = sim.token().to_string();
        (krea, Some(sim), Some(secret))
    } else {
        let found = find_token(g)?.ok_or(krea::Error::MissingToken)?;
        let token = found.token;
        let secret = Some(token.clone());
        let poll = poll_policy(g, 1.0)?;
        // The CLI keeps a journal: an interrupted run is resumed without paying twice.
        let mut b = Krea::builder()
            .token(token)
            .poll_policy(poll)
            .journal(StatePath::Default)
            .timings(StatePath::Default)
            .catalog_cache(StatePath::Default);
        b = journal(b, g);
        if let Some(url) = found.base_url {
            b = b.base_url(url);
        }
        if let Some(t) = request_timeout {
            b = b.request_timeout(t);
        }
        if let Some(g) = settle_grace {
            let (commit, lag) = split_grace(g);
            b = b.settle_grace(commit).listing_lag(lag);
        }
        if let Some(d) = deadline {
            b = b.deadline(d);
        }
        if let Some(cu) = g.assume_cu {
            b = b.assumed_price(cu);
        }
        (b.build()?, None, secret)
    };
    let _ = client().set(krea.clone());
    Ok(Ctx {
        krea,
        out,
        secret,
        _sim: sim,
    })
}

/// How long a job of `model` usually takes here, in wall time (the simulator's time scale
/// applied), for progress rows.
pub fn expected(ctx: &Ctx, model: &krea::models::ModelSpec) -> Option<std::time::Duration> {
    let e = ctx.krea.expectation(model);
    let wall = e.seconds * ctx.krea.poll_policy().time_scale;
    (wall.is_finite() && wall > 0.0).then(|| std::time::Duration::from_secs_f64(wall))
}
