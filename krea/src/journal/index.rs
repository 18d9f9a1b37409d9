//! What a journal's lines add up to, kept in memory and brought up to date by reading only
//! what was appended since (by any process).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::entry::{Entry, LineRef, OutputPlan, Scope};
use crate::evidence::Exchange;

/// Exchanges kept for measuring Krea's clock (the newest).
const EXCHANGES: usize = 128;

/// A paid request whose outcome is not known: it may have created a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Unresolved {
    /// The request's key.
    pub key: Uuid,
    /// When it was written down, before its first attempt.
    pub sent_at: DateTime<Utc>,
    /// When its last attempt went out, if the client lived to note it.
    pub last_sent: Option<DateTime<Utc>>,
    /// When the exchange ended for the client, if it lived to note it.
    pub given_up_at: Option<DateTime<Utc>>,
    /// Whether Krea may still have been working on it then (the client timed out).
    pub in_flight: bool,
    /// A success status came back: the job exists, its id is not known yet.
    pub created: bool,
    /// The client that sent it.
    pub run: Option<Uuid>,
    /// The model id.
    pub model: String,
    /// The API path.
    pub path: String,
    /// Fingerprint of path and body.
    pub fingerprint: String,
    /// The body.
    pub request: Value,
    /// Where its files go.
    pub output: Option<OutputPlan>,
}

impl Unresolved {
    /// When the attempt whose outcome is unknown went out.
    pub fn attempt_sent(&self) -> DateTime<Utc> {
        self.last_sent.unwrap_or(self.sent_at)
    }
}

/// A submitted job with no `finished` line yet.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PendingJob {
    /// The job.
    pub job_id: Uuid,
    /// The model id.
    pub model: String,
    /// The body sent.
    pub request: Value,
    /// Where its files go, if known.
    pub output: Option<OutputPlan>,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// The request's key, when known.
    pub key: Option<Uuid>,
    /// Why settling could not be sure this job is the request's, when it could not.
    pub uncertain: Option<String>,
    /// What its body is priced at (`None` for a model with no published price).
    pub estimate: Option<crate::Estimate>,
    /// The files written for it, once it finished.
    pub files: Vec<std::path::PathBuf>,
}

/// What the journal knows of the request with a given key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyOutcome {
    /// It created this job.
    Created(Uuid),
    /// It created nothing.
    NotCreated,
    /// It was sent; the outcome is unknown.
    Unresolved,
    /// The journal has no record of it being sent.
    Absent,
}

/// A line that could not be read: what it was about, as far as can be told.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Damaged {
    /// 1-based line number (at the time it was read).
    pub line: usize,
    /// A job id the line mentions, if any: that job may need finishing by hand.
    pub job_id: Option<Uuid>,
    /// The start of the line, cleaned for display.
    pub excerpt: String,
}

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.job_id {
            Some(id) => write!(
                f,
                "line {} is damaged and was skipped; it was about job {id} (check that job by its id)",
                self.line
            ),
            None => write!(
                f,
                "line {} is damaged and was skipped (no job id in it): {:?}",
                self.line, self.excerpt
            ),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Index {
    /// Bytes of the file read so far, and the file's identity then.
    pub offset: u64,
    pub identity: Option<(u64, u64)>,
    pub lines: usize,
    /// The journal file, kept open (reopened when it is replaced).
    pub file: Option<File>,
    /// The same file opened for appending, kept open likewise.
    pub append: Option<File>,
    /// The file's length when it was last read.
    pub seen_len: u64,
    /// Requests not resolved yet (their bodies are dropped once resolved).
    pub sending: HashMap<Uuid, Unresolved>,
    /// Keys of every request of this scope written down.
    pub keys: HashSet<Uuid>,
    pub resolved: HashSet<Uuid>,
    pub job_of_key: HashMap<Uuid, Uuid>,
    pub not_created: HashSet<Uuid>,
    /// Why the outcome of a request was settled with some doubt, by key.
    pub uncertain: HashMap<Uuid, String>,
    pub submitted: HashMap<Uuid, PendingJob>,
    /// Order jobs were submitted in.
    pub order: Vec<Uuid>,
    pub finished: HashSet<Uuid>,
    /// Files of finished jobs whose submitted line comes later (or never).
    pub files_of: HashMap<Uuid, Vec<std::path::PathBuf>>,
    pub finished_lines: usize,
    pub damaged: Vec<Damaged>,
    /// The newest send of any attempt of this scope, per client run: paid sends are paced
    /// from other clients' (a client paces its own).
    pub last_send: HashMap<Option<Uuid>, DateTime<Utc>>,
    /// The run of each request written down (for its later attempts).
    pub run_of_key: HashMap<Uuid, Option<Uuid>>,
    /// Exchanges whose answer named the job, newest last.
    pub exchanges: VecDeque<Exchange>,
    /// The requests sent for each line of a shared batch, oldest first.
    pub line_keys: HashMap<LineRef, Vec<Uuid>>,
}

impl Index {
    pub fn apply(&mut self, entry: Entry, scope: &Scope) {
        match entry {
            Entry::Sending {
                key,
                at,
                scope: s,
                model,
                path,
                fingerprint,
                request,
                output,
                run,
                line,
            } if s == *scope => {
                self.keys.insert(key);
                if let Some(line) = line {
                    let keys = self.line_keys.entry(line).or_default();
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                self.note_send(run, at);
                self.run_of_key.insert(key, run);
                if self.resolved.contains(&key) {
                    return;
                }
                self.sending.insert(
                    key,
                    Unresolved {
                        key,
                        sent_at: at,
                        last_sent: None,
                        given_up_at: None,
                        in_flight: false,
                        created: false,
                        run,
                        model,
                        path,
                        fingerprint,
                        request,
                        output,
                    },
                );
            }
            Entry::Attempt { key, at } => {
                if let Some(u) = self.sending.get_mut(&key) {
                    u.last_sent = Some(at);
                }
                if let Some(run) = self.run_of_key.get(&key).copied() {
                    self.note_send(run, at);
                }
            }
            Entry::Submitted {
                key,
                at,
                scope: s,
                job_id,
                model,
                request,
                output,
                sent_at,
                created_at,
                adopted,
                uncertain,
            } if s == *scope => {
                if let Some(k) = key {
                    self.resolved.insert(k);
                    self.sending.remove(&k);
                    self.job_of_key.entry(k).or_insert(job_id);
                    if let Some(why) = &uncertain {
                        self.uncertain.insert(k, why.clone());
                    }
                }
                if let (Some(sent), Some(created), false) = (sent_at, created_at, adopted) {
                    if self.exchanges.len() == EXCHANGES {
                        self.exchanges.pop_front();
                    }
                    self.exchanges.push_back(Exchange {
                        sent,
                        answered: at,
                        created,
                    });
                }
                if !self.submitted.contains_key(&job_id) {
                    self.order.push(job_id);
                }
                let estimate = krea_gen::catalog::model(&model)
                    .and_then(|m| crate::cost::estimate(m, &request));
                let request = if self.finished.contains(&job_id) {
                    only_prompt(&request)
                } else {
                    request
                };
                self.submitted.insert(
                    job_id,
                    PendingJob {
                        job_id,
                        model,
                        request,
                        output,
                        submitted_at: at,
                        key,
                        uncertain,
                        estimate,
                        files: self.files_of.remove(&job_id).unwrap_or_default(),
                    },
                );
            }
            Entry::Unknown {
                key,
                at,
                last_sent,
                in_flight,
                created,
            } => {
                if let Some(u) = self.sending.get_mut(&key) {
                    u.last_sent = Some(last_sent);
                    u.given_up_at = Some(at);
                    u.in_flight = in_flight;
                    u.created |= created;
                }
            }
            Entry::NotCreated { key, uncertain, .. } => {
                self.resolved.insert(key);
                self.sending.remove(&key);
                self.not_created.insert(key);
                if let Some(why) = uncertain {
                    self.uncertain.insert(key, why);
                }
            }
            Entry::Finished { job_id, files, .. } => {
                self.finished.insert(job_id);
                self.finished_lines += 1;
                // Its body is no longer needed: keep memory flat over long runs (the start of
                // its prompt stays, for listings); its files are kept to be shown.
                match self.submitted.get_mut(&job_id) {
                    Some(job) => {
                        job.request = only_prompt(&job.request);
                        job.files = files;
                    }
                    // Compaction may keep a finished line without its submitted line first.
                    None => {
                        self.files_of.insert(job_id, files);
                    }
                }
            }
            // Another API or account.
            _ => {}
        }
    }

    fn note_send(&mut self, run: Option<Uuid>, at: DateTime<Utc>) {
        let last = self.last_send.entry(run).or_insert(at);
        *last = (*last).max(at);
    }

    /// The newest send of any run but `own`.
    pub fn last_send_besides(&self, own: Option<Uuid>) -> Option<DateTime<Utc>> {
        self.last_send
            .iter()
            .filter(|(run, _)| **run != own || own.is_none())
            .map(|(_, at)| *at)
            .max()
    }

    pub fn outcome(&self, key: Uuid) -> KeyOutcome {
        if let Some(job) = self.job_of_key.get(&key) {
            KeyOutcome::Created(*job)
        } else if self.not_created.contains(&key) {
            KeyOutcome::NotCreated
        } else if self.keys.contains(&key) {
            KeyOutcome::Unresolved
        } else {
            KeyOutcome::Absent
        }
    }
}

/// The most of a finished job's body kept in memory: the start of its prompt.
const KEPT_PROMPT_CHARS: usize = 120;

/// `{"prompt": first 120 characters}`, or null for a body without a prompt.
fn only_prompt(request: &Value) -> Value {
    match request.get("prompt").and_then(Value::as_str) {
        Some(p) => {
            serde_json::json!({ "prompt": p.chars().take(KEPT_PROMPT_CHARS).collect::<String>() })
        }
        None => Value::Null,
    }
}
