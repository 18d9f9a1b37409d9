//! The journal's line format: one JSON object per line, tagged by `event`. Lines written by
//! earlier versions (without the newer optional fields) still read.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a job's files go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutputPlan {
    /// The destination directory (absolute).
    pub dir: PathBuf,
    /// An exact file name for the first (or only) file; later files get `-1`, `-2`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Replace files that exist (else a free name is chosen).
    #[serde(default)]
    pub overwrite: bool,
}

impl OutputPlan {
    /// Files go into `dir` (made absolute against the current directory).
    pub fn dir(dir: impl Into<PathBuf>) -> OutputPlan {
        OutputPlan {
            dir: absolute(dir.into()),
            file_name: None,
            overwrite: false,
        }
    }

    /// The first file is written exactly at `path` (its directory must exist or be creatable;
    /// its extension must fit the model's output, checked before sending).
    pub fn file(path: impl Into<PathBuf>) -> OutputPlan {
        let path = absolute(path.into());
        OutputPlan {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            file_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            overwrite: false,
        }
    }

    /// The same plan, replacing files that exist.
    pub fn overwrite(mut self, yes: bool) -> OutputPlan {
        self.overwrite = yes;
        self
    }
}

pub(crate) fn absolute(p: PathBuf) -> PathBuf {
    std::path::absolute(&p).unwrap_or(p)
}

/// Which API and account a journal line belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// The API base URL.
    pub origin: String,
    /// A fingerprint of the token (16 hex digits of its sha256).
    pub account: String,
}

/// A line of a batch shared by several workers ([`crate::Batch::shared`]): the request is
/// sent only while its worker holds the line's claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct LineRef {
    /// The batch's name in the store.
    pub batch: String,
    /// The line (0-based).
    pub line: u32,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    /// A paid request is about to be sent (its first attempt).
    Sending {
        /// Identifies this request in later entries.
        key: Uuid,
        /// When (client clock), just before the first attempt went out.
        at: DateTime<Utc>,
        /// API and account.
        #[serde(flatten)]
        scope: Scope,
        /// The model id (or operation).
        model: String,
        /// The API path.
        path: String,
        /// A fingerprint of path and body.
        fingerprint: String,
        /// The body.
        request: Value,
        /// Where its files go.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputPlan>,
        /// The client that sends it (its lock file tells whether it still runs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<Uuid>,
        /// The shared batch's line it is for: written only while this client holds the claim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<LineRef>,
    },
    /// Another attempt of the same request is about to go out (the last one was refused
    /// without creating anything, e.g. a 429): its job, if any, is stamped after this.
    Attempt {
        /// The request's key.
        key: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// A job exists for a request (created, or adopted by settling).
    Submitted {
        /// The request's key (absent in journals written by older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Uuid>,
        /// When (client clock): the answer's arrival, or the settling.
        at: DateTime<Utc>,
        /// API and account.
        #[serde(flatten)]
        scope: Scope,
        /// The job.
        job_id: Uuid,
        /// The model id.
        model: String,
        /// The body sent.
        request: Value,
        /// Where its files go.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputPlan>,
        /// When the attempt that created it went out (client clock).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_at: Option<DateTime<Utc>>,
        /// The job's `created_at` (Krea's clock), as its answer or the listing gave it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_at: Option<DateTime<Utc>>,
        /// Found by settling (no answer named it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        adopted: bool,
        /// Why settling could not be sure the job is this request's (another of this
        /// client's lost requests, or another program, could have created it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uncertain: Option<String>,
    },
    /// The request got no usable answer: it may have created a job ([`crate::Krea::settle`]).
    Unknown {
        /// The request's key.
        key: Uuid,
        /// When the exchange ended for the client (the answer, the reset, or its giving up).
        at: DateTime<Utc>,
        /// When its last attempt was sent.
        last_sent: DateTime<Utc>,
        /// The client stopped waiting (a timeout) while Krea may still have been working on it;
        /// otherwise the exchange had ended (a reset, an error answer) by `at`.
        #[serde(default)]
        in_flight: bool,
        /// A success status came back (its body unreadable): the job exists, only its id is
        /// missing. Never sent again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        created: bool,
    },
    /// The request created nothing (it was refused, or settling found no job it could have
    /// created).
    NotCreated {
        /// The request's key.
        key: Uuid,
        /// When.
        at: DateTime<Utc>,
        /// Why that is known.
        reason: String,
        /// Settled among several lost requests whose jobs could not be told apart: which of
        /// them created nothing is a choice, not a certainty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uncertain: Option<String>,
    },
    /// The job ended and whatever was due was done.
    Finished {
        /// When.
        at: DateTime<Utc>,
        /// The job.
        job_id: Uuid,
        /// Its final state (or `not_found`).
        status: String,
        /// Files written.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<PathBuf>,
    },
}

impl Entry {
    /// The job a line is about, for errors that must keep it.
    pub(crate) fn job_id(&self) -> Option<Uuid> {
        match self {
            Entry::Submitted { job_id, .. } | Entry::Finished { job_id, .. } => Some(*job_id),
            _ => None,
        }
    }
}
