//! One error type for everything the client does. Every message says what to do next, and none
//! contains the API token.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No token was configured.
    #[error(
        "Krea API token not configured: set KREA_API_TOKEN (create one at https://krea.ai/settings/api-tokens)"
    )]
    MissingToken,

    /// The client configuration cannot work (a bad base URL, an unusable token...).
    #[error("invalid Krea client configuration: {0}")]
    Config(String),

    /// The API refused the token (401).
    #[error(
        "the Krea API rejected the token ({message}): check KREA_API_TOKEN, or create a new token at https://krea.ai/settings/api-tokens"
    )]
    Unauthorized {
        /// The API's message.
        message: String,
    },

    /// The account has run out of compute units (402). Not retried.
    #[error(
        "out of Krea credits ({message}): add compute units at https://krea.ai/settings/billing, then run again"
    )]
    InsufficientCredits {
        /// The API's message.
        message: String,
    },

    /// Still rate limited (429) after the retries the policy allows.
    #[error("rate limited by the Krea API ({message}); retry after {}", retry_after.map_or("a while".to_string(), |d| format!("{:.1} s", d.as_secs_f64())))]
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

    /// The request breaks the model's schema. Caught before anything is sent.
    #[error("invalid request for {model}: {}", problems.join("; "))]
    InvalidRequest {
        /// The model id (or the operation) the request was for.
        model: String,
        /// Each problem, naming the field and what is allowed.
        problems: Vec<String>,
    },

    /// No model has this name.
    #[error("unknown model {name:?}{}; `krea models` lists them all", if suggestions.is_empty() { String::new() } else { format!(" (did you mean {}?)", suggestions.join(", ")) })]
    UnknownModel {
        /// What was asked for.
        name: String,
        /// Close names.
        suggestions: Vec<String>,
    },

    /// The job ended `failed` or `cancelled`. Krea does not charge for it.
    #[error("job {job_id} {reason} (not charged); run it again, or try another model")]
    JobFailed {
        /// The job.
        job_id: Uuid,
        /// `failed` or `cancelled`, with any detail.
        reason: String,
    },

    /// The job did not finish before the deadline. It may still finish: it is not lost.
    #[error("job {job_id} did not finish within {:.0} s; it may still complete: continue with `krea jobs wait {job_id}`", waited.as_secs_f64())]
    Timeout {
        /// The job, still usable with `krea.jobs().wait(id)`.
        job_id: Uuid,
        /// How long the client waited.
        waited: Duration,
    },

    /// The generation request was sent but no answer came back: a job may have been created
    /// (and charged). It is never retried automatically.
    #[error(
        "the request to {model} was sent but the connection failed before an answer ({detail}); a job may exist and be charged: check `krea jobs list` before submitting again"
    )]
    OutcomeUnknown {
        /// The model the request was for.
        model: String,
        /// What failed.
        detail: String,
    },

    /// Any other error status from the API.
    #[error("the Krea API answered {status}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's message (or the start of the body).
        message: String,
    },

    /// The network failed (no answer, timeouts, DNS...), after the retries the policy allows.
    #[error("cannot reach the Krea API ({0}); check the network and KREA_BASE_URL, then run again")]
    Transport(String),

    /// A response could not be decoded; the raw body is kept.
    #[error(
        "unexpected response from the Krea API ({message}); body: {}",
        truncate(body)
    )]
    Decode {
        /// What did not decode.
        message: String,
        /// The body as received.
        body: String,
    },

    /// A result file could not be downloaded completely; nothing partial was left on disk.
    #[error(
        "download of {url} failed: {reason}; run it again (`krea jobs resume` finishes interrupted runs)"
    )]
    Download {
        /// The file's URL.
        url: String,
        /// What happened.
        reason: String,
    },

    /// A local file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn truncate(body: &str) -> String {
    let mut end = body.len().min(300);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < body.len() { "..." } else { "" };
    format!("{}{cut}", &body[..end])
}

impl Error {
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
            Error::JobFailed { job_id, .. } | Error::Timeout { job_id, .. } => Some(*job_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        assert!(
            Error::MissingToken
                .to_string()
                .contains("set KREA_API_TOKEN")
        );
        let e = Error::UnknownModel {
            name: "fluz".into(),
            suggestions: vec!["flux".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown model \"fluz\" (did you mean flux?); `krea models` lists them all"
        );
        let e = Error::Timeout {
            job_id: Uuid::nil(),
            waited: Duration::from_secs(600),
        };
        assert!(
            e.to_string()
                .contains("krea jobs wait 00000000-0000-0000-0000-000000000000")
        );
        let e = Error::ModelRetired {
            model: "seedream-3".into(),
            replacement: "bytedance/seedream-4".into(),
            sunset: Some("2026-05-13".into()),
        };
        assert_eq!(
            e.to_string(),
            "seedream-3 was retired by Krea on 2026-05-13: use bytedance/seedream-4 instead"
        );
    }

    #[test]
    fn long_bodies_are_cut_at_a_char_boundary() {
        let e = Error::Decode {
            message: "m".into(),
            body: "é".repeat(400),
        };
        assert!(e.to_string().ends_with("..."));
    }
}
