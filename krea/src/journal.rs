//! The job journal: what this client sent and what came of it, written before anything is paid
//! and read back by anything that resumes, so an interrupted run is finished later without
//! paying twice.
//!
//! A JSON Lines file, one event per line:
//!
//! - `sending`: a paid request is about to go out (its key, model, path, body fingerprint and
//!   body, output plan). Written *before* the request; if it cannot be written, nothing is sent.
//! - `submitted`: the request created job `job_id` (or [`crate::Krea::settle`] adopted it).
//! - `not_created`: the request certainly created nothing (refused, never sent, or settled as
//!   not created).
//! - `finished`: the job ended and what was due was done (files written, failure noted).
//!
//! A `sending` with neither `submitted` nor `not_created` is an unknown outcome; a `submitted`
//! with no `finished` is a pending job. Entries carry the API origin and an account fingerprint
//! (a hash of the token, never the token): a journal opened for one API and account sees only
//! its own jobs. Output directories are absolute.
//!
//! Safe to share between processes: appends and compaction take an OS lock on `<file>.lock`;
//! each process keeps an index in memory and reads only what others appended since. A torn or
//! garbage line (a crash mid-write, a disk error) is skipped and reported by
//! [`Journal::damaged`] with any job id it mentions; it never hides the other entries, and the
//! next append starts on a fresh line.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Finished entries kept by [`Journal::compact`] (the newest), for history.
const KEEP_FINISHED: usize = 500;
/// Compaction runs on its own once the file holds this many finished entries.
const COMPACT_AFTER: usize = 5_000;

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

fn absolute(p: PathBuf) -> PathBuf {
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

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Entry {
    /// A paid request is about to be sent.
    Sending {
        /// Identifies this request in later entries.
        key: Uuid,
        /// When.
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
    },
    /// A job exists for a request (created, or adopted by settling).
    Submitted {
        /// The request's key (absent in journals written by older versions).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Uuid>,
        /// When.
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
    },
    /// The request got no usable answer: it may have created a job ([`crate::Krea::settle`]).
    Unknown {
        /// The request's key.
        key: Uuid,
        /// When the client gave up on it.
        at: DateTime<Utc>,
        /// When its last attempt was sent.
        last_sent: DateTime<Utc>,
        /// The client stopped waiting (a timeout) while Krea may still have been working on it;
        /// otherwise the exchange had ended (a reset, an error answer) by `at`.
        #[serde(default)]
        in_flight: bool,
    },
    /// The request certainly created nothing.
    NotCreated {
        /// The request's key.
        key: Uuid,
        /// When.
        at: DateTime<Utc>,
        /// Why that is known.
        reason: String,
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

/// A paid request whose outcome is not known: it may have created a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Unresolved {
    /// The request's key.
    pub key: Uuid,
    /// When it was written down, before sending.
    pub sent_at: DateTime<Utc>,
    /// When its last attempt went out, if the client lived to note it.
    pub last_sent: Option<DateTime<Utc>>,
    /// When the client gave up on it, if it lived to note it.
    pub given_up_at: Option<DateTime<Utc>>,
    /// Whether Krea may still have been working on it then (the client timed out).
    pub in_flight: bool,
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
}

/// What the journal knows of the request with a given key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
struct Index {
    /// Bytes of the file read so far, and the file's identity then.
    offset: u64,
    identity: Option<(u64, u64)>,
    lines: usize,
    /// Requests not resolved yet (their bodies are dropped once resolved).
    sending: HashMap<Uuid, Unresolved>,
    /// When every request of this scope was written down, by key.
    sent_at_of: HashMap<Uuid, DateTime<Utc>>,
    resolved: HashSet<Uuid>,
    /// The journal file, kept open (reopened when it is replaced).
    file: Option<File>,
    job_of_key: HashMap<Uuid, Uuid>,
    not_created: HashSet<Uuid>,
    /// When every request of this scope was written down, in file order.
    sent_times: Vec<DateTime<Utc>>,
    submitted: HashMap<Uuid, PendingJob>,
    /// Order jobs were submitted in.
    order: Vec<Uuid>,
    finished: HashSet<Uuid>,
    finished_lines: usize,
    damaged: Vec<Damaged>,
}

impl Index {
    fn apply(&mut self, entry: Entry, scope: &Scope) {
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
            } if s == *scope => {
                self.sent_times.push(at);
                self.sent_at_of.insert(key, at);
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
                        model,
                        path,
                        fingerprint,
                        request,
                        output,
                    },
                );
            }
            Entry::Submitted {
                key,
                at,
                scope: s,
                job_id,
                model,
                request,
                output,
            } if s == *scope => {
                if let Some(k) = key {
                    self.resolved.insert(k);
                    self.sending.remove(&k);
                    self.job_of_key.entry(k).or_insert(job_id);
                }
                if !self.submitted.contains_key(&job_id) {
                    self.order.push(job_id);
                }
                self.submitted.insert(
                    job_id,
                    PendingJob {
                        job_id,
                        model,
                        request,
                        output,
                        submitted_at: at,
                        key,
                    },
                );
            }
            Entry::Unknown {
                key,
                at,
                last_sent,
                in_flight,
            } => {
                if let Some(u) = self.sending.get_mut(&key) {
                    u.last_sent = Some(last_sent);
                    u.given_up_at = Some(at);
                    u.in_flight = in_flight;
                }
            }
            Entry::NotCreated { key, .. } => {
                self.resolved.insert(key);
                self.sending.remove(&key);
                self.not_created.insert(key);
            }
            Entry::Finished { job_id, .. } => {
                self.finished.insert(job_id);
                self.finished_lines += 1;
                // Its body is no longer needed: keep memory flat over long runs.
                if let Some(job) = self.submitted.get_mut(&job_id) {
                    job.request = Value::Null;
                }
            }
            // Another API or account.
            _ => {}
        }
    }
}

/// A journal file, opened for one API origin and account.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    lock_path: PathBuf,
    /// `<file>.lock`, opened once: locking it is all an append or a read needs.
    lock_file: Mutex<Option<File>>,
    scope: Scope,
    index: Mutex<Index>,
}

/// The default location: `krea/journal.jsonl` under the user's state directory
/// (`$XDG_STATE_HOME`, `~/.local/state` on Linux), else the local data directory.
pub fn default_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("krea").join("journal.jsonl"))
}

/// 16 hex digits of the sha256 of `text`.
pub(crate) fn fingerprint(text: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An OS lock on a file beside the journal (or a batch directory), released on drop.
#[derive(Debug)]
pub(crate) struct FileLock(File);

impl FileLock {
    /// Waits for the lock (exclusive, or shared for readers).
    pub fn acquire(path: &Path, exclusive: bool) -> std::io::Result<FileLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        if exclusive {
            file.lock()?;
        } else {
            file.lock_shared()?;
        }
        Ok(FileLock(file))
    }

    /// Takes the exclusive lock only if it is free right now, recording this process's id
    /// in the lock file; `Err(holder)` names the process holding it, when it wrote its id.
    pub fn try_exclusive(
        path: &Path,
    ) -> std::io::Result<std::result::Result<FileLock, Option<u32>>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                write!(file, "{}", std::process::id())?;
                Ok(Ok(FileLock(file)))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(Err(text.trim().parse().ok()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

impl Journal {
    /// Opens (or prepares to create) the journal at `path` for `scope`, reading what it holds.
    pub fn open(path: impl Into<PathBuf>, scope: Scope) -> Result<Journal> {
        let path = absolute(path.into());
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let journal = Journal {
            path,
            lock_path: lock_path.into(),
            lock_file: Mutex::new(None),
            scope,
            index: Mutex::new(Index::default()),
        };
        journal.refresh()?;
        for d in journal.damaged() {
            tracing::warn!(journal = %journal.path.display(), "{d}");
        }
        Ok(journal)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The API and account this journal is opened for.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io_error(&self, job_id: Option<Uuid>, source: std::io::Error) -> Error {
        Error::Journal {
            path: self.path.clone(),
            job_id,
            source,
        }
    }

    /// Reads what was appended since the last read (by any process); everything again if the
    /// file was replaced (compacted) meanwhile.
    pub fn refresh(&self) -> Result<()> {
        self.locked(false, || {
            let mut index = self.index();
            self.read_into(&mut index)
        })
        .map_err(|e| self.io_error(None, e))
    }

    /// Runs `f` holding the OS lock on `<file>.lock` (shared for readers, exclusive for
    /// writers), the lock file opened once and kept.
    fn locked<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce() -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut slot = self.lock_file.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            if let Some(dir) = self.lock_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            *slot = Some(
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(&self.lock_path)?,
            );
        }
        let Some(file) = slot.as_ref() else {
            return Err(std::io::Error::other("no lock file"));
        };
        if exclusive {
            file.lock()?;
        } else {
            file.lock_shared()?;
        }
        let result = f();
        let _ = file.unlock();
        result
    }

    fn read_into(&self, index: &mut Index) -> std::io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *index = Index::default();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let id = identity(&meta);
        if id != index.identity || meta.len() < index.offset || index.file.is_none() {
            // New, or replaced (compacted) since: read it all again.
            *index = Index {
                identity: id,
                file: Some(File::open(&self.path)?),
                ..Index::default()
            };
        }
        let Some(mut file) = index.file.take() else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(index.offset))?;
        let mut bytes = Vec::new();
        let read = file.read_to_end(&mut bytes);
        index.file = Some(file);
        read?;
        // Only whole lines: a line still being written (no newline yet) is read next time.
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let whole = &bytes[..complete.saturating_sub(1)];
        for line in whole.split(|b| *b == b'\n').filter(|_| complete > 0) {
            index.lines += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Entry>(line) {
                Ok(entry) => index.apply(entry, &self.scope),
                Err(_) => {
                    let text = String::from_utf8_lossy(line);
                    index.damaged.push(Damaged {
                        line: index.lines,
                        job_id: crate::send::job_id_in(&text).or_else(|| first_uuid(&text)),
                        excerpt: crate::redact::clean(&text, None, 120),
                    });
                }
            }
        }
        index.offset += complete as u64;
        Ok(())
    }

    /// Appends `entry` (after anything another process appended), under the lock, on a line of
    /// its own. The error names the job when there is one: it exists, keep its id.
    pub(crate) fn record(&self, entry: &Entry) -> Result<()> {
        let job_id = match entry {
            Entry::Submitted { job_id, .. } | Entry::Finished { job_id, .. } => Some(*job_id),
            _ => None,
        };
        let result = self.locked(true, || {
            let mut index = self.index();
            self.read_into(&mut index)?;
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            let len = file.metadata()?.len();
            // Bytes past the last complete line: a torn line (a crash mid-write). It must not
            // swallow this entry.
            let torn = len > index.offset;
            let mut line = Vec::new();
            if torn {
                line.push(b'\n');
            }
            serde_json::to_writer(&mut line, entry).map_err(std::io::Error::other)?;
            line.push(b'\n');
            file.write_all(&line)?;
            file.flush()?;
            if torn {
                // Read back like anything else, so the torn line is reported where it is.
                self.read_into(&mut index)
            } else {
                // Nobody else wrote meanwhile (the lock): what was just written is this entry.
                index.lines += 1;
                index.offset = len + line.len() as u64;
                index.apply(entry.clone(), &self.scope);
                Ok(())
            }
        });
        result.map_err(|e| self.io_error(job_id, e))?;
        if self.index().finished_lines >= COMPACT_AFTER
            && let Err(e) = self.compact()
        {
            tracing::warn!(error = %e, "the job journal could not be compacted");
        }
        Ok(())
    }

    /// Submitted jobs without a `finished` line, oldest first (after reading what other
    /// processes appended).
    pub fn pending(&self) -> Result<Vec<PendingJob>> {
        self.refresh()?;
        let index = self.index();
        Ok(index
            .order
            .iter()
            .filter(|id| !index.finished.contains(id))
            .filter_map(|id| index.submitted.get(id).cloned())
            .collect())
    }

    /// Every job this journal has seen submitted, finished or not, oldest first.
    pub fn job_ids(&self) -> Result<Vec<Uuid>> {
        self.refresh()?;
        Ok(self.index().order.clone())
    }

    /// Requests sent whose outcome is not known, oldest first.
    pub fn unresolved(&self) -> Result<Vec<Unresolved>> {
        self.refresh()?;
        let index = self.index();
        let mut out: Vec<Unresolved> = index.sending.values().cloned().collect();
        out.sort_by_key(|u| u.sent_at);
        Ok(out)
    }

    /// The `submitted` entry of `job_id`, if this journal has one (from memory).
    pub fn submitted(&self, job_id: Uuid) -> Option<PendingJob> {
        self.index().submitted.get(&job_id).cloned()
    }

    /// What is known of the request with `key` (after reading what others appended).
    pub fn outcome(&self, key: Uuid) -> Result<KeyOutcome> {
        self.refresh()?;
        let index = self.index();
        Ok(if let Some(job) = index.job_of_key.get(&key) {
            KeyOutcome::Created(*job)
        } else if index.not_created.contains(&key) {
            KeyOutcome::NotCreated
        } else if index.sent_at_of.contains_key(&key) {
            KeyOutcome::Unresolved
        } else {
            KeyOutcome::Absent
        })
    }

    /// The first request of this scope written down after `t`, if any: a client sends one paid
    /// request at a time, so the one before it had ended by then.
    pub fn next_sent_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.index()
            .sent_times
            .iter()
            .filter(|s| **s > t)
            .min()
            .copied()
    }

    /// When the request that created `job_id` was written down (before sending) and when its
    /// answer was (after), where the journal has both: the exchange happened in between.
    pub fn exchange(&self, job_id: Uuid) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let index = self.index();
        let job = index.submitted.get(&job_id)?;
        let sent = *index.sent_at_of.get(&job.key?)?;
        Some((sent, job.submitted_at))
    }

    /// Whether `job_id` has a `finished` line.
    pub fn is_finished(&self, job_id: Uuid) -> bool {
        self.index().finished.contains(&job_id)
    }

    /// Every job id this journal knows (any state).
    pub fn known_jobs(&self) -> HashSet<Uuid> {
        self.index().submitted.keys().copied().collect()
    }

    /// Lines that could not be read, with what they were about.
    pub fn damaged(&self) -> Vec<Damaged> {
        self.index().damaged.clone()
    }

    /// Rewrites the file keeping every entry still needed (unknown outcomes, pending jobs, any
    /// other API's or account's lines) and the newest finished ones; damaged lines are dropped
    /// (they were reported when read). Returns the lines before and after.
    pub fn compact(&self) -> Result<(usize, usize)> {
        let result = self.locked(true, || -> std::io::Result<(usize, usize)> {
            let bytes = match std::fs::read(&self.path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
                Err(e) => return Err(e),
            };
            let lines: Vec<&[u8]> = bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .collect();
            let entries: Vec<(&[u8], Option<Entry>)> = lines
                .iter()
                .map(|l| (*l, serde_json::from_slice::<Entry>(l).ok()))
                .collect();
            let finished: Vec<Uuid> = entries
                .iter()
                .filter_map(|(_, e)| match e {
                    Some(Entry::Finished { job_id, .. }) => Some(*job_id),
                    _ => None,
                })
                .collect();
            let keep_finished: HashSet<Uuid> =
                finished.iter().rev().take(KEEP_FINISHED).copied().collect();
            let done: HashSet<Uuid> = finished.iter().copied().collect();
            let resolved: HashSet<Uuid> = entries
                .iter()
                .filter_map(|(_, e)| match e {
                    Some(Entry::Submitted { key: Some(k), .. }) => Some(*k),
                    Some(Entry::NotCreated { key, .. }) => Some(*key),
                    _ => None,
                })
                .collect();
            let job_of_key: HashMap<Uuid, Uuid> = entries
                .iter()
                .filter_map(|(_, e)| match e {
                    Some(Entry::Submitted {
                        key: Some(k),
                        job_id,
                        ..
                    }) => Some((*k, *job_id)),
                    _ => None,
                })
                .collect();
            let needed_job = |id: &Uuid| !done.contains(id) || keep_finished.contains(id);
            let mut out = Vec::new();
            let mut kept = 0;
            for (raw, entry) in &entries {
                let keep = match entry {
                    None => false,
                    Some(Entry::Sending { key, .. }) => {
                        !resolved.contains(key) || job_of_key.get(key).is_some_and(needed_job)
                    }
                    Some(Entry::NotCreated { .. }) => false,
                    Some(Entry::Unknown { key, .. }) => !resolved.contains(key),
                    Some(Entry::Submitted { job_id, .. }) => needed_job(job_id),
                    Some(Entry::Finished { job_id, .. }) => keep_finished.contains(job_id),
                };
                if keep {
                    out.extend_from_slice(raw);
                    out.push(b'\n');
                    kept += 1;
                }
            }
            let tmp = self.path.with_extension("jsonl.compacting");
            std::fs::write(&tmp, &out)?;
            std::fs::rename(&tmp, &self.path)?;
            let mut index = self.index();
            *index = Index::default();
            self.read_into(&mut index)?;
            Ok((lines.len(), kept))
        });
        result.map_err(|e| self.io_error(None, e))
    }
}

fn first_uuid(text: &str) -> Option<Uuid> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).find_map(|i| {
        text.get(i..i + 36)
            .filter(|c| c.as_bytes()[8] == b'-' && c.as_bytes()[13] == b'-')
            .and_then(|c| c.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            origin: "http://127.0.0.1:1".into(),
            account: "0123456789abcdef".into(),
        }
    }

    /// A journal in a scratch directory that goes when the test ends.
    fn journal(name: &str) -> (tempfile::TempDir, Journal) {
        let dir = tempfile::Builder::new()
            .prefix(&format!("krea-journal-{name}-"))
            .tempdir()
            .expect("scratch");
        let journal = Journal::open(dir.path().join("journal.jsonl"), scope()).expect("open");
        (dir, journal)
    }

    fn submitted(id: u128) -> Entry {
        Entry::Submitted {
            key: Some(Uuid::from_u128(id + 1000)),
            at: Utc::now(),
            scope: scope(),
            job_id: Uuid::from_u128(id),
            model: "bfl/flux-1-dev".into(),
            request: json!({"prompt": "x"}),
            output: Some(OutputPlan::dir("/tmp/out")),
        }
    }

    fn finished(id: u128) -> Entry {
        Entry::Finished {
            at: Utc::now(),
            job_id: Uuid::from_u128(id),
            status: "completed".into(),
            files: vec![],
        }
    }

    fn sending(key: u128) -> Entry {
        Entry::Sending {
            key: Uuid::from_u128(key),
            at: Utc::now(),
            scope: scope(),
            model: "bfl/flux-1-dev".into(),
            path: "/generate/image/bfl/flux-1-dev".into(),
            fingerprint: "f".into(),
            request: json!({"prompt": "x"}),
            output: None,
        }
    }

    #[test]
    fn a_job_is_pending_until_it_is_finished_and_unknowns_until_resolved() {
        let (_dir, j) = journal("pending");
        j.record(&sending(1001)).expect("append");
        j.record(&submitted(1)).expect("append");
        j.record(&submitted(2)).expect("append");
        j.record(&sending(77)).expect("append");
        j.record(&finished(1)).expect("append");
        let pending = j.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].job_id, Uuid::from_u128(2));
        assert!(
            pending[0]
                .output
                .as_ref()
                .is_some_and(|o| o.dir.is_absolute())
        );
        let unknown = j.unresolved().expect("unresolved");
        assert_eq!(unknown.len(), 1, "key 1001 was resolved by job 1");
        assert_eq!(unknown[0].key, Uuid::from_u128(77));
    }

    #[test]
    fn torn_and_garbage_lines_lose_nothing_else_and_say_what_they_were() {
        let (_dir, j) = journal("torn");
        j.record(&submitted(3)).expect("append");
        // A garbage line in the middle, with invalid UTF-8, naming a job.
        let mut f = OpenOptions::new()
            .append(true)
            .open(j.path())
            .expect("open");
        f.write_all(b"{\"event\":\"submitted\",\"job_id\":\"00000000-0000-0000-0000-000000000009\",\xff\xfe\n")
            .expect("write");
        drop(f);
        j.record(&submitted(4)).expect("append");
        // A torn last line: the next append must not be glued to it.
        let mut f = OpenOptions::new()
            .append(true)
            .open(j.path())
            .expect("open");
        f.write_all(b"{\"event\":\"finished\",\"job_id\":")
            .expect("write");
        drop(f);
        j.record(&submitted(5)).expect("append");

        let again = Journal::open(j.path(), scope()).expect("reopen");
        let ids: Vec<Uuid> = again
            .pending()
            .expect("pending")
            .iter()
            .map(|p| p.job_id)
            .collect();
        assert_eq!(
            ids,
            vec![Uuid::from_u128(3), Uuid::from_u128(4), Uuid::from_u128(5)]
        );
        let damaged = again.damaged();
        assert_eq!(damaged.len(), 2, "{damaged:?}");
        assert_eq!(damaged[0].job_id, Some(Uuid::from_u128(9)));
        assert!(
            damaged[0]
                .to_string()
                .contains("00000000-0000-0000-0000-000000000009")
        );
    }

    #[test]
    fn another_process_appends_are_seen_and_other_scopes_are_not() {
        let (_dir, j) = journal("shared");
        let other = Journal::open(j.path(), scope()).expect("second opener");
        other.record(&submitted(6)).expect("append");
        assert_eq!(j.pending().expect("pending").len(), 1, "read incrementally");
        let elsewhere = Journal::open(
            j.path(),
            Scope {
                origin: "https://api.krea.ai".into(),
                account: "fedcba9876543210".into(),
            },
        )
        .expect("other scope");
        assert!(elsewhere.pending().expect("pending").is_empty());
    }

    #[test]
    fn compaction_keeps_what_is_still_needed() {
        let (_dir, j) = journal("compact");
        for i in 0..20 {
            j.record(&submitted(100 + i)).expect("append");
            if i % 2 == 0 {
                j.record(&finished(100 + i)).expect("append");
            }
        }
        j.record(&sending(5000)).expect("append");
        let before = j.pending().expect("pending");
        let (lines, kept) = j.compact().expect("compact");
        assert_eq!(lines, 31);
        assert!(kept <= lines);
        assert_eq!(j.pending().expect("pending"), before);
        assert_eq!(j.unresolved().expect("unresolved").len(), 1);
    }

    #[test]
    fn a_failed_write_is_an_error_naming_the_job() {
        let scratch = tempfile::Builder::new()
            .prefix("krea-journal-ro-")
            .tempdir()
            .expect("scratch");
        let dir = scratch.path();
        // A directory where the file should be: every append fails.
        let path = dir.join("journal.jsonl");
        std::fs::create_dir_all(&path).expect("blocker");
        let j = Journal {
            path: path.clone(),
            lock_path: dir.join("journal.jsonl.lock"),
            lock_file: Mutex::new(None),
            scope: scope(),
            index: Mutex::new(Index::default()),
        };
        let err = j.record(&submitted(7)).expect_err("cannot write");
        assert_eq!(err.job_id(), Some(Uuid::from_u128(7)));
        assert!(err.to_string().contains("keep its id"), "{err}");
    }
}
