//! What kind of failure an [`crate::Error`] is, and what a program's exit status says about it:
//! one table, used for an error met directly and for the same error recorded in a batch or
//! pipeline item.

use serde::{Deserialize, Serialize};

/// The kind of an error, stable across versions: for programs, JSON output and batch manifests
/// (serialized in snake case, `"invalid_request"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// No token was configured.
    MissingToken,
    /// The client configuration cannot work.
    Config,
    /// The API refused the token (401).
    Unauthorized,
    /// The token may not do this (403).
    Forbidden,
    /// The account is out of compute units (402).
    InsufficientCredits,
    /// Still rate limited when the retries or the deadline ran out.
    RateLimited,
    /// The model was retired; another replaces it.
    ModelRetired,
    /// The request breaks the model's schema, or an input is unusable (nothing was sent).
    InvalidRequest,
    /// No model has this name.
    UnknownModel,
    /// A job id names no job, or several.
    UnknownJob,
    /// The job ended failed or cancelled (not charged).
    JobFailed,
    /// The job did not finish before the deadline (it may still).
    Timeout,
    /// Waiting for a job failed (it may still finish).
    Polling,
    /// A call did not complete before the deadline.
    DeadlineExceeded,
    /// A paid request was sent and its answer lost: settling finds out.
    OutcomeUnknown,
    /// The API refused the request (another 4xx).
    ApiRefused,
    /// The API failed (5xx or an unexpected status).
    Api,
    /// The network failed.
    Transport,
    /// An answer could not be decoded.
    Decode,
    /// An answer was larger than accepted.
    TooLarge,
    /// A result file could not be downloaded.
    Download,
    /// The job journal could not be written.
    Journal,
    /// Another process uses what this one needs.
    Busy,
    /// A local file operation failed.
    Io,
}

/// What a program's exit status says, by class (the `krea` command's codes in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ExitClass {
    /// Everything succeeded (0).
    Ok,
    /// A job failed, or its files could not be written (1).
    JobFailed,
    /// Bad usage or an invalid request: nothing was sent (2).
    Usage,
    /// The token or the account's credits (3).
    Auth,
    /// A deadline: what runs may still finish, and resuming continues it (4).
    Timeout,
    /// The network or the API (5).
    Network,
}

impl ExitClass {
    /// The process exit status for this class.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Ok => 0,
            ExitClass::JobFailed => 1,
            ExitClass::Usage => 2,
            ExitClass::Auth => 3,
            ExitClass::Timeout => 4,
            ExitClass::Network => 5,
        }
    }
}

impl ErrorKind {
    /// The name used in JSON (`"invalid_request"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingToken => "missing_token",
            ErrorKind::Config => "config",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InsufficientCredits => "insufficient_credits",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ModelRetired => "model_retired",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownModel => "unknown_model",
            ErrorKind::UnknownJob => "unknown_job",
            ErrorKind::JobFailed => "job_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Polling => "polling",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
            ErrorKind::ApiRefused => "api_refused",
            ErrorKind::Api => "api",
            ErrorKind::Transport => "transport",
            ErrorKind::Decode => "decode",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Download => "download",
            ErrorKind::Journal => "journal",
            ErrorKind::Busy => "busy",
            ErrorKind::Io => "io",
        }
    }

    /// The one table from kind to exit class.
    pub fn exit_class(self) -> ExitClass {
        match self {
            ErrorKind::MissingToken
            | ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::InsufficientCredits => ExitClass::Auth,
            ErrorKind::Config
            | ErrorKind::ModelRetired
            | ErrorKind::InvalidRequest
            | ErrorKind::UnknownModel
            | ErrorKind::UnknownJob
            | ErrorKind::ApiRefused
            | ErrorKind::Busy => ExitClass::Usage,
            ErrorKind::JobFailed | ErrorKind::Download | ErrorKind::Journal | ErrorKind::Io => {
                ExitClass::JobFailed
            }
            // What was sent may still finish: waiting or resuming continues it.
            ErrorKind::Timeout
            | ErrorKind::Polling
            | ErrorKind::DeadlineExceeded
            | ErrorKind::OutcomeUnknown => ExitClass::Timeout,
            ErrorKind::RateLimited
            | ErrorKind::Api
            | ErrorKind::Transport
            | ErrorKind::Decode
            | ErrorKind::TooLarge => ExitClass::Network,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_as_their_names() {
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::OutcomeUnknown,
            ErrorKind::Forbidden,
        ] {
            assert_eq!(
                serde_json::to_value(kind).expect("json"),
                serde_json::json!(kind.as_str())
            );
        }
    }
}
