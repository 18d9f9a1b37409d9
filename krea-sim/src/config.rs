//! How a simulator behaves: timing, capacity, credits, retirements and injected faults.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

/// What happens to a generation beyond the concurrency cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Accept it as `backlogged`; it starts when a running job ends.
    Backlog,
    /// Refuse it with 429 `{error}` (no job is created, nothing is charged).
    Reject,
}

/// A fault the simulator injects, at a seeded rate, on the routes a [`FaultRule`] names.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status and `{"error": "simulated <status>"}` instead of handling.
    Status(u16),
    /// Answer 429 to this request and the next `burst - 1` on the same rule, with `Retry-After`.
    RateLimitBurst {
        /// Requests answered 429 in a row.
        burst: u32,
        /// Sent as `retry-after-ms` and (rounded up) `Retry-After`.
        retry_after: Duration,
    },
    /// Close the connection before reading the request body; nothing is processed.
    ResetBeforeBody,
    /// Read the body and process the request (a generation creates, and charges, its job), then
    /// close the connection without answering: the client cannot know the outcome.
    ResetAfterBody,
    /// Process the request (a generation creates, and charges, its job), then answer with this
    /// status instead (a gateway's 502 after the backend acted).
    StatusAfterProcessing(u16),
    /// Wait this long before handling.
    Slow(Duration),
    /// Answer 307 to the same path on the file origin (another host), which serves it too.
    RedirectToOtherHost,
    /// (File origin) Send `Content-Length` in full but stop halfway through the body.
    TruncateBody,
    /// (Generations) The job ends `failed`, and is not charged.
    FailJob,
    /// (Generations) The job never leaves `processing`.
    StuckJob,
    /// (Generations) The job's result URLs try to escape a download directory: encoded `../`,
    /// `%2e%2e` segments, backslashes, absolute-looking paths. The file origin serves the ones
    /// that reach it.
    HostileUrls,
    /// A gateway that gives up while the backend goes on: answer `status` at once (or, with
    /// `None`, drop the connection without a word), and process the request `delay` later (a
    /// generation then creates, and charges, its job, stamped at that later time).
    CommitAfter {
        /// The status answered (`None`: the connection is closed instead).
        status: Option<u16>,
        /// How long after the answer the request is processed.
        delay: Duration,
    },
    /// Process the request (a generation creates, and charges, its job), then answer 200 with
    /// a body that is not the job: what a proxy or a broken serializer sends.
    UnreadableSuccess(Unreadable),
    /// (`GET /jobs`) The account's oldest job heads the first page, out of order, as a listing
    /// served from a lagging index or a merge of shards can show.
    OutOfOrderListing,
    /// (Generations) Another program on the same account creates a job of the same model at
    /// (nearly) the same instant: stamped `offset_ms` from this request's job. It is not this
    /// request's, and counts as foreign ([`crate::Counters::foreign_jobs_created`]).
    ForeignTwin {
        /// Milliseconds from this request's job's stamp (negative: before it).
        offset_ms: i64,
    },
}

/// The body of an [`Fault::UnreadableSuccess`] answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// A proxy's HTML page (`text/html`).
    Html,
    /// Nothing at all.
    Empty,
    /// The job's JSON cut off halfway.
    TruncatedJson,
}

/// Inject `fault` on requests matching `route` with probability `rate`.
///
/// `route` is `"METHOD /template"` as the router names it (`"GET /jobs/{id}"`), a prefix ending
/// in `*` (`"POST /generate/*"`), or `"*"` for every route. File-origin routes are
/// `"GET /files/*"` and `"GET /assets/*"`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Which requests.
    pub route: String,
    /// What to do to them.
    pub fault: Fault,
    /// Probability per request, 0.0..=1.0.
    pub rate: f64,
    /// Only requests whose body contains this text (one line of a batch, say).
    pub body_contains: Option<String>,
}

impl FaultRule {
    /// Whether this rule may hit a request with `body` (rules without a body condition hit
    /// any).
    pub fn takes_body(&self, body: Option<&[u8]>) -> bool {
        match &self.body_contains {
            None => true,
            Some(text) => {
                body.is_some_and(|b| b.windows(text.len().max(1)).any(|w| w == text.as_bytes()))
            }
        }
    }

    /// Whether `route` (`"GET /jobs/{id}"`) is one this rule targets.
    pub fn matches(&self, route: &str) -> bool {
        match self.route.strip_suffix('*') {
            Some(prefix) => route.starts_with(prefix),
            None => self.route == route,
        }
    }
}

impl std::str::FromStr for FaultRule {
    type Err = String;

    /// `ROUTE=KIND[:ARG...][@RATE][~TEXT]`, e.g. `POST /generate/*=commit-after:504:2000@0.1`;
    /// `~TEXT` limits the rule to requests whose body contains TEXT.
    /// Kinds: `status:CODE`, `rate-limit:BURST:MS`, `reset-before-body`, `reset-after-body`,
    /// `status-after:CODE`, `slow:MS`, `redirect`, `truncate`, `fail`, `stuck`,
    /// `hostile-urls`, `commit-after:CODE|reset:MS`, `unreadable:html|empty|truncated`,
    /// `out-of-order`, `foreign-twin:MS`. The rate defaults to 1.
    fn from_str(text: &str) -> Result<FaultRule, String> {
        let usage = || {
            format!(
                "{text:?} is not a fault: write ROUTE=KIND[:ARG...][@RATE], e.g. 'POST /generate/*=commit-after:504:2000@0.1'"
            )
        };
        let (route, spec) = text.split_once('=').ok_or_else(usage)?;
        let (spec, body_contains) = match spec.split_once('~') {
            Some((spec, body)) => (spec, Some(body.to_string())),
            None => (spec, None),
        };
        let (spec, rate) = match spec.rsplit_once('@') {
            Some((spec, rate)) => (spec, rate.parse::<f64>().map_err(|_| usage())?),
            None => (spec, 1.0),
        };
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("{text:?}: the rate must be from 0 to 1"));
        }
        let parts: Vec<&str> = spec.split(':').collect();
        let num = |i: usize| -> Result<u64, String> {
            parts.get(i).and_then(|p| p.parse().ok()).ok_or_else(usage)
        };
        let code = |i: usize| -> Result<u16, String> {
            parts
                .get(i)
                .and_then(|p| p.parse().ok())
                .filter(|c| (100..600).contains(c))
                .ok_or_else(usage)
        };
        let ms = |i: usize| num(i).map(Duration::from_millis);
        let fault = match parts[0] {
            "status" => Fault::Status(code(1)?),
            "rate-limit" => Fault::RateLimitBurst {
                burst: u32::try_from(num(1)?).map_err(|_| usage())?,
                retry_after: ms(2)?,
            },
            "reset-before-body" => Fault::ResetBeforeBody,
            "reset-after-body" => Fault::ResetAfterBody,
            "status-after" => Fault::StatusAfterProcessing(code(1)?),
            "slow" => Fault::Slow(ms(1)?),
            "redirect" => Fault::RedirectToOtherHost,
            "truncate" => Fault::TruncateBody,
            "fail" => Fault::FailJob,
            "stuck" => Fault::StuckJob,
            "hostile-urls" => Fault::HostileUrls,
            "commit-after" => Fault::CommitAfter {
                status: match parts.get(1) {
                    Some(&"reset") => None,
                    _ => Some(code(1)?),
                },
                delay: ms(2)?,
            },
            "unreadable" => Fault::UnreadableSuccess(match parts.get(1) {
                Some(&"html") => Unreadable::Html,
                Some(&"empty") => Unreadable::Empty,
                Some(&"truncated") => Unreadable::TruncatedJson,
                _ => return Err(usage()),
            }),
            "out-of-order" => Fault::OutOfOrderListing,
            "foreign-twin" => Fault::ForeignTwin {
                offset_ms: parts
                    .get(1)
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(usage)?,
            },
            _ => return Err(usage()),
        };
        Ok(FaultRule {
            route: route.trim().to_string(),
            fault,
            rate,
            body_contains,
        })
    }
}

/// A model Krea retired (or will retire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    /// The generation path (`/generate/image/bytedance/seedream-3`); it need not be in the catalog.
    pub path: String,
    /// After this instant the route answers 410; before it, `Deprecation`/`Sunset` headers.
    pub sunset: DateTime<Utc>,
    /// The model id to use instead.
    pub replacement: String,
}

/// Everything configurable. Build one with [`crate::Simulator::builder`].
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds every random choice: durations, fault draws, image pixels, and ids when `seeded`.
    pub seed: u64,
    /// The seed was chosen ([`crate::SimBuilder::seed`]): ids repeat from run to run. Otherwise
    /// each simulator draws its ids from a random seed, so two runs never share a job id.
    pub seeded: bool,
    /// Multiplies every job duration (0.01 in tests: a 20 s image takes 0.2 s; 0 finishes at once).
    pub time_scale: f64,
    /// Most jobs running at once; `None` for no cap.
    pub concurrency: Option<usize>,
    /// What happens beyond the cap.
    pub overflow: Overflow,
    /// Starting balance in compute units.
    pub credits: f64,
    /// The bearer token the API accepts.
    pub token: String,
    /// Injected faults.
    pub faults: Vec<FaultRule>,
    /// Retired models.
    pub retirements: Vec<Retirement>,
    /// Videos as placeholder payloads of this many bytes (download tests and benchmarks);
    /// `None`: short playable MP4 files.
    pub video_bytes: Option<u64>,
    /// Ports to bind (0 = any free port) for the API and the file origin.
    pub ports: (u16, u16),
    /// The document `GET /openapi.json` serves; `None`: the vendored description the simulator
    /// was built from (with its hand-written operations), as Krea serves its own.
    pub openapi: Option<Arc<serde_json::Value>>,
    /// The date the simulator believes it is (for field sunsets and model retirements);
    /// `None`: today.
    pub today: Option<chrono::NaiveDate>,
    /// Hosts besides loopback that webhooks are really delivered to; a webhook for any other
    /// (accepted, as Krea accepts any https URL) is counted as undeliverable.
    pub webhook_hosts: Vec<String>,
    /// Added to every answer of both origins (a network round trip): half before the request
    /// is handled, half after, so a job is stamped about half a round trip after it was sent.
    pub latency: Duration,
    /// The server's clock minus the real one: every stamp it writes (`created_at`,
    /// `completed_at`, the `Date` header...) is off by this much.
    pub clock_skew: chrono::Duration,
    /// Stamps (`created_at`, `completed_at`) in whole seconds, as some backends write them.
    /// Pagination still works: cursors keep the full precision.
    pub whole_second_stamps: bool,
    /// A new job shows in `GET /jobs` only this long after it was created (a listing served
    /// from a replica); `GET /jobs/{id}` sees it at once.
    pub listing_lag: Duration,
    /// Another program on the same account creates a Flux job this often while the simulator
    /// runs (foreign jobs: see [`crate::Counters::foreign_jobs_created`]).
    pub foreign_every: Option<Duration>,
    /// The backend's work between a request's arrival and the job's insert: a job is stamped
    /// this long after its request arrived, and answered just after (3 ms unless set).
    pub commit_delay: Duration,
}

/// The token a simulator accepts unless told otherwise. Not a secret: the simulator is local.
pub const DEFAULT_TOKEN: &str = "krea-sim-token";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0x5eed,
            seeded: false,
            time_scale: 1.0,
            concurrency: None,
            overflow: Overflow::Reject,
            credits: 1_000_000.0,
            token: DEFAULT_TOKEN.into(),
            faults: Vec::new(),
            retirements: vec![seedream_3_retirement()],
            video_bytes: None,
            ports: (0, 0),
            openapi: None,
            today: None,
            webhook_hosts: Vec::new(),
            latency: Duration::ZERO,
            clock_skew: chrono::Duration::zero(),
            whole_second_stamps: false,
            listing_lag: Duration::ZERO,
            foreign_every: None,
            commit_delay: Duration::from_millis(3),
        }
    }
}

/// Seedream 3, which Krea retired on 2026-05-13 in favour of Seedream 4.
pub fn seedream_3_retirement() -> Retirement {
    let day = NaiveDate::from_ymd_opt(2026, 5, 13).and_then(|d| d.and_hms_opt(0, 0, 0));
    Retirement {
        path: "/generate/image/bytedance/seedream-3".into(),
        sunset: day.map(|d| d.and_utc()).unwrap_or_default(),
        replacement: "bytedance/seedream-4".into(),
    }
}

/// Per-kind durations when the catalog states none (seconds, before `time_scale`).
pub(crate) fn default_seconds(kind: krea_gen::catalog::Kind) -> f64 {
    match kind {
        krea_gen::catalog::Kind::Image => 20.0,
        krea_gen::catalog::Kind::Enhance => 30.0,
        krea_gen::catalog::Kind::Video => 120.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_exact_routes_prefixes_and_everything() {
        let rule = |route: &str| FaultRule {
            route: route.into(),
            fault: Fault::Status(503),
            rate: 1.0,
            body_contains: None,
        };
        assert!(rule("GET /jobs/{id}").matches("GET /jobs/{id}"));
        assert!(!rule("GET /jobs/{id}").matches("GET /jobs"));
        assert!(rule("POST /generate/*").matches("POST /generate/image/bfl/flux-1-dev"));
        assert!(rule("*").matches("DELETE /assets/{id}"));
    }

    #[test]
    fn fault_rules_parse_from_text() {
        let rule: FaultRule = "POST /generate/*=commit-after:504:2000@0.25"
            .parse()
            .expect("parses");
        assert_eq!(rule.route, "POST /generate/*");
        assert_eq!(rule.rate, 0.25);
        assert_eq!(
            rule.fault,
            Fault::CommitAfter {
                status: Some(504),
                delay: Duration::from_secs(2)
            }
        );
        let one: FaultRule = "POST /generate/*=status:500~line A"
            .parse()
            .expect("parses");
        assert_eq!(one.body_contains.as_deref(), Some("line A"));
        assert!(one.takes_body(Some(br#"{"prompt":"line A"}"#)));
        assert!(!one.takes_body(Some(br#"{"prompt":"line B"}"#)));
        let reset: FaultRule = "*=commit-after:reset:10".parse().expect("parses");
        assert_eq!(
            reset.fault,
            Fault::CommitAfter {
                status: None,
                delay: Duration::from_millis(10)
            }
        );
        assert_eq!(
            "GET /jobs=out-of-order"
                .parse::<FaultRule>()
                .map(|r| r.fault),
            Ok(Fault::OutOfOrderListing)
        );
        for bad in [
            "no equals sign",
            "*=status:99",
            "*=status:500@2",
            "*=unreadable:xml",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn seedream_3_is_retired_for_seedream_4() {
        let r = seedream_3_retirement();
        assert_eq!(r.sunset.to_rfc3339(), "2026-05-13T00:00:00+00:00");
        assert_eq!(r.replacement, "bytedance/seedream-4");
    }
}
