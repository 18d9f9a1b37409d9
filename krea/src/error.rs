//! One error type for everything the client does. Messages say what to do next in this crate's
//! terms (programs built on it add their own hints); none contains the API token, and text
//! from a server is shown only after [`crate::redact::clean`]. A message never repeats its
//! cause: the cause is `source()`, and [`Error::report`] prints the chain once.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error_kind::{ErrorKind, ExitClass};
use crate::problem::Problem;
use crate::types::JobStatus;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A paid request was sent and no usable answer came back: a job may exist. Everything needed
/// to find it later ([`crate::Krea::settle`]) without paying twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnknownOutcome {
    /// The model (or operation) the request was for.
    pub model: String,
    /// The API path it was sent to.
    pub path: String,
    /// A fingerprint of the request body (sha256, 16 hex digits).
    pub fingerprint: String,
    /// When the request's last attempt was sent (client clock).
    pub sent_at: DateTime<Utc>,
    /// When the exchange ended for the client (an error answer, a reset, its giving up).
    pub ended_at: Option<DateTime<Utc>>,
    /// A success status came back (its body unreadable): the job exists, only its id is
    /// missing. Such a request is never sent again.
    pub created: bool,
    /// The request's journal key, when the client keeps a journal.
    pub key: Option<Uuid>,
    /// A job id, if any part of the answer had one.
    pub job_id: Option<Uuid>,
    /// What went wrong.
    pub detail: String,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No token was configured.
    #[error(
        "no Krea API token: set KREA_API_TOKEN or pass one to the builder (create one at https://krea.ai/settings/api-tokens)"
    )]
    MissingToken,

    /// The client configuration cannot work (a bad base URL, an unusable token...).
    #[error("invalid Krea client configuration: {0}")]
    Config(String),

    /// The API refused the token (401).
    #[error(
        "the Krea API rejected the token ({message}): check it, or create a new one at https://krea.ai/settings/api-tokens"
    )]
    Unauthorized {
        /// The API's message.
        message: String,
    },

    /// The account has run out of compute units (402). Not retried.
    #[error(
        "not enough Krea credits ({message}): add compute units at https://krea.ai/settings/billing, then try again"
    )]
    InsufficientCredits {
        /// The API's message.
        message: String,
    },

    /// Still rate limited (429) when the retries or the deadline ran out.
    #[error("rate limited by the Krea API ({message}); try again after {}", retry_after.map_or("a while".to_string(), |d| format!("{:.1} s", d.as_secs_f64())))]
    RateLimited {
        /// How long the API asked to wait, if it said.
        retry_after: Option<Duration>,
        /// The API's message.
        message: String,
    },

    /// The model was retired (410); use the replacement.
    #[error("{model} was retired by Krea{}: use {replacement} instead", sunset.as_ref().map_or(String::new(), |d| format!(" on {d}")))]
    ModelRetired {
        /// The model asked for.
        model: String,
        /// The model Krea names as its replacement.
        replacement: String,
        /// When it was retired, if known.
        sunset: Option<String>,
    },

    /// The request breaks the model's schema, or an input is unusable. Caught before anything
    /// is sent or paid.
    #[error("invalid request for {subject}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidRequest {
        /// What was asked: a model id, or `batch`, `pipeline`, an API operation
        /// (`PATCH /styles`).
        subject: String,
        /// Each problem: the field it concerns and what is allowed.
        problems: Vec<Problem>,
    },

    /// No model has this name.
    #[error("unknown model {name:?}{}", if suggestions.is_empty() { String::new() } else { format!(" (did you mean {}?)", suggestions.join(", ")) })]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// Close names.
        suggestions: Vec<String>,
    },

    /// The job ended failed or cancelled. Krea does not charge for it.
    #[error("job {job_id} {status}{} (not charged)", reason.as_ref().map_or(String::new(), |r| format!(": {r}")))]
    JobFailed {
        /// The job.
        job_id: Uuid,
        /// `failed` or `cancelled`.
        status: JobStatus,
        /// Krea's reason, where it gave one.
        reason: Option<String>,
    },

    /// The job did not finish before the deadline. It may still finish: it is not lost.
    #[error("job {job_id} did not finish within {:.0} s; it may still complete: wait for it again with its id", waited.as_secs_f64())]
    Timeout {
        /// The job, still usable with `krea.jobs().wait(id)`.
        job_id: Uuid,
        /// How long the client waited.
        waited: Duration,
    },

    /// Waiting for a job failed (the API could not be read about it); the job may still
    /// complete: it is not lost.
    #[error(
        "lost track of job {job_id} while waiting (it may still complete: wait for it again with its id)"
    )]
    Polling {
        /// The job.
        job_id: Uuid,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// A call did not complete before its deadline (retries and waits included).
    #[error("{operation} did not complete before the deadline")]
    DeadlineExceeded {
        /// What was being done.
        operation: String,
    },

    /// A paid request was sent but no usable answer came back: a job may exist and be charged.
    /// It is never repeated automatically; [`crate::Krea::settle`] finds out.
    #[error(
        "the request to {} was sent but its outcome is unknown ({}); a job may exist{}: settle it before sending again",
        .0.model,
        .0.detail,
        .0.job_id.map_or(String::new(), |id| format!(" (job {id})"))
    )]
    OutcomeUnknown(Box<UnknownOutcome>),

    /// A job id given in short form (or mistyped) names no job, or more than one.
    #[error("{message}")]
    UnknownJob {
        /// What was given.
        given: String,
        /// The jobs whose ids begin with it (several when it is ambiguous).
        matches: Vec<Uuid>,
        /// What is wrong and what to give instead.
        message: String,
    },

    /// Any other error status from the API.
    #[error("the Krea API answered {status} to {operation}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// What was asked.
        operation: String,
        /// The API's message (or the start of the body).
        message: String,
    },

    /// The network failed (no connection, no answer, a timeout), after the retries allowed.
    #[error(
        "no answer from the Krea API for {operation}: {detail} (check the network and the base URL, then try again)"
    )]
    Transport {
        /// What was asked.
        operation: String,
        /// What happened (cleaned for display): what the source does not say (`timed out`,
        /// `the transfer broke off after 1024 bytes`), or everything when there is no source.
        detail: String,
        /// The HTTP client's error, where there was one.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// An answer could not be decoded; an excerpt of the body is kept.
    #[error("unexpected answer to {operation} ({}{message}); body: {body}", path.as_ref().map_or(String::new(), |p| format!("at {p}: ")))]
    Decode {
        /// What was asked.
        operation: String,
        /// Where in the JSON it did not decode (`items[3].created_at`), when the JSON parsed.
        path: Option<String>,
        /// What did not decode.
        message: String,
        /// The start of the body, cleaned for display.
        body: String,
    },

    /// An answer was larger than the client accepts.
    #[error("the answer to {operation} is larger than {limit} bytes; refused")]
    TooLarge {
        /// What was asked.
        operation: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// A result file could not be downloaded completely; nothing partial was left on disk.
    #[error("download of {url} failed: {reason}; {}", match status {
        Some(400..=499) => "the file server refused it, so its URL has likely expired: get the job again (`krea jobs get`, Jobs::get) for fresh URLs",
        _ => "the job's files can be downloaded again",
    })]
    Download {
        /// The file's URL (cleaned for display).
        url: String,
        /// What happened.
        reason: String,
        /// The file server's answer, where it answered with an error status (403 or 404 for
        /// a signed URL that expired; 5xx for a server in trouble).
        status: Option<u16>,
    },

    /// The job journal could not be opened, read or written (a file, or a database that is
    /// down or refuses the connection): the job (if any) exists and is paid for; keep its id.
    /// Nothing is sent while the journal cannot take the request's entry.
    #[error("could not use the job journal {}{}", path.display(), job_id.map_or(String::new(), |id| format!(" (job {id} exists: keep its id)")))]
    Journal {
        /// The journal file, or the database's address (without user or password).
        path: PathBuf,
        /// The job the entry was about.
        job_id: Option<Uuid>,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Another process is using what this one needs (a batch directory, a journal).
    #[error("{} is in use by another process (pid {}); wait for it to finish", path.display(), holder.map_or("unknown".to_string(), |p| p.to_string()))]
    Busy {
        /// The directory or file.
        path: PathBuf,
        /// The process holding it, if it said.
        holder: Option<u32>,
    },

    /// A local file operation failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// `e` and every cause under it, `: `-separated (not cleaned).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Error {
    /// This error and every cause under it on one line, `: `-separated, cleaned for display:
    /// what a program prints for a person. A message never repeats its cause (the cause is
    /// [`std::error::Error::source`]), so printing the chain shows each once.
    ///
    /// ```
    /// let e = krea::Error::Config("no base URL".into());
    /// assert_eq!(e.report(), "invalid Krea client configuration: no base URL");
    /// ```
    pub fn report(&self) -> String {
        crate::redact::for_display(&chain(self))
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The job this error is about, if any.
    pub fn job_id(&self) -> Option<Uuid> {
        match self {
            Error::JobFailed { job_id, .. }
            | Error::Timeout { job_id, .. }
            | Error::Polling { job_id, .. } => Some(*job_id),
            Error::OutcomeUnknown(u) => u.job_id,
            Error::Journal { job_id, .. } => *job_id,
            _ => None,
        }
    }

    /// What kind of error this is (stable: for programs, JSON output and batch manifests).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MissingToken => ErrorKind::MissingToken,
            Error::Config(_) => ErrorKind::Config,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::InsufficientCredits { .. } => ErrorKind::InsufficientCredits,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::ModelRetired { .. } => ErrorKind::ModelRetired,
            Error::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Error::UnknownModel { .. } => ErrorKind::UnknownModel,
            Error::UnknownJob { .. } => ErrorKind::UnknownJob,
            Error::JobFailed { .. } => ErrorKind::JobFailed,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Polling { .. } => ErrorKind::Polling,
            Error::DeadlineExceeded { .. } => ErrorKind::DeadlineExceeded,
            Error::OutcomeUnknown(_) => ErrorKind::OutcomeUnknown,
            Error::Api { status: 401, .. } => ErrorKind::Unauthorized,
            Error::Api { status: 402, .. } => ErrorKind::InsufficientCredits,
            Error::Api { status: 403, .. } => ErrorKind::Forbidden,
            Error::Api { status: 408, .. } => ErrorKind::Api,
            Error::Api { status: 429, .. } => ErrorKind::RateLimited,
            Error::Api {
                status: 300..=499, ..
            } => ErrorKind::ApiRefused,
            Error::Api { .. } => ErrorKind::Api,
            Error::Transport { .. } => ErrorKind::Transport,
            Error::Decode { .. } => ErrorKind::Decode,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::Download { .. } => ErrorKind::Download,
            Error::Journal { .. } => ErrorKind::Journal,
            Error::Busy { .. } => ErrorKind::Busy,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// What a program's exit status says about this error ([`ErrorKind::exit_class`]).
    pub fn exit_class(&self) -> ExitClass {
        self.kind().exit_class()
    }

    /// The unknown outcome, for [`crate::Krea::settle`].
    pub fn unknown_outcome(&self) -> Option<&UnknownOutcome> {
        match self {
            Error::OutcomeUnknown(u) => Some(u),
            _ => None,
        }
    }

    /// Whether nothing can have been created or charged: nothing was sent (bad input, an
    /// unknown or retired model, a missing token, a bad configuration), or Krea refused the
    /// request with a status that proves it created nothing (401, 402, 403, 429, and the other
    /// refusals of [`ErrorKind::ApiRefused`]).
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::MissingToken
                | ErrorKind::Config
                | ErrorKind::InvalidRequest
                | ErrorKind::UnknownModel
                | ErrorKind::ModelRetired
                | ErrorKind::Unauthorized
                | ErrorKind::Forbidden
                | ErrorKind::InsufficientCredits
                | ErrorKind::RateLimited
                | ErrorKind::ApiRefused
        ) && !matches!(
            self,
            Error::Api {
                status: 300..=399,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_that_proves_nothing_was_created_counts_as_nothing_sent() {
        let api = |status| Error::Api {
            status,
            operation: "POST /generate/image/bfl/flux-1-dev".into(),
            message: String::new(),
        };
        for status in [401, 402, 403, 404, 422, 429] {
            assert!(api(status).nothing_sent(), "{status}");
        }
        for status in [307, 500, 502, 503] {
            assert!(!api(status).nothing_sent(), "{status}");
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let os = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied by the test");
        let journal = Error::Journal {
            path: "/state/journal.jsonl".into(),
            job_id: None,
            source: os(),
        };
        let waiting = Error::Polling {
            job_id: Uuid::nil(),
            source: Box::new(Error::Io {
                path: "/out".into(),
                source: os(),
            }),
        };
        let transport = Error::Transport {
            operation: "GET /jobs".into(),
            detail: "refused by the test".into(),
            source: None,
        };
        for e in [journal, waiting, transport] {
            // Every message and cause, as `{:#}` prints them.
            let all = chain(&e);
            for phrase in ["denied by the test", "refused by the test"] {
                assert!(all.matches(phrase).count() <= 1, "{all}");
            }
            assert!(all.contains("by the test"), "the cause is somewhere: {all}");
            assert_eq!(e.report(), all, "report prints the chain as it is");
        }
    }

    #[tokio::test]
    async fn a_lost_exchange_keeps_its_context_and_its_cause_once() {
        // Nothing listens on port 1: a real connection error from the HTTP client.
        let cause = krea_gen::net::client_builder()
            .build()
            .expect("client")
            .get("http://127.0.0.1:1/jobs")
            .send()
            .await
            .expect_err("refused");
        let cause_text = chain(&cause);
        let e = Error::Transport {
            operation: "GET /jobs".into(),
            detail: "the transfer broke off after 10 bytes".into(),
            source: Some(cause),
        };
        let all = e.report();
        assert_eq!(all.matches("broke off after 10 bytes").count(), 1, "{all}");
        assert_eq!(all.matches(&cause_text).count(), 1, "{all}");
        assert!(
            !e.to_string().contains(&cause_text),
            "the message leaves the cause to source(): {e}"
        );
    }

    #[test]
    fn messages_say_what_to_do_without_naming_a_command() {
        assert!(
            Error::MissingToken
                .to_string()
                .contains("set KREA_API_TOKEN")
        );
        let e = Error::UnknownModel {
            name: "fluz".into(),
            suggestions: vec!["flux".into()],
        };
        assert_eq!(e.to_string(), "unknown model \"fluz\" (did you mean flux?)");
        let e = Error::Timeout {
            job_id: Uuid::nil(),
            waited: Duration::from_secs(600),
        };
        assert!(e.to_string().contains("may still complete"), "{e}");
        let e = Error::ModelRetired {
            model: "seedream-3".into(),
            replacement: "bytedance/seedream-4".into(),
            sunset: Some("2026-05-13".into()),
        };
        assert_eq!(
            e.to_string(),
            "seedream-3 was retired by Krea on 2026-05-13: use bytedance/seedream-4 instead"
        );
        let unknown = Error::OutcomeUnknown(Box::new(UnknownOutcome {
            model: "bfl/flux-1-dev".into(),
            path: "/generate/image/bfl/flux-1-dev".into(),
            fingerprint: "0123456789abcdef".into(),
            sent_at: Utc::now(),
            ended_at: None,
            created: false,
            key: None,
            job_id: Some(Uuid::nil()),
            detail: "502".into(),
        }));
        assert_eq!(unknown.job_id(), Some(Uuid::nil()));
        assert!(unknown.to_string().contains("settle"), "{unknown}");
        assert!(
            !unknown.to_string().contains("krea "),
            "no CLI command: {unknown}"
        );
    }
}
