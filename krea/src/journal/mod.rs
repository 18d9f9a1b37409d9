//! The job journal: what this client sent and what came of it, written before anything is paid
//! and read back by anything that resumes, so an interrupted run is finished later without
//! paying twice.
//!
//! One event per entry:
//!
//! - `sending`: a paid request is about to go out (its key, model, path, body fingerprint and
//!   body, output plan, the client sending it, the shared batch line it is for). Written
//!   *before* the request; if it cannot be written, nothing is sent.
//! - `attempt`: the request goes out again (the last attempt was refused and created nothing).
//! - `submitted`: the request created job `job_id`, with the send and stamp times that measure
//!   Krea's clock (or [`crate::Krea::settle`] adopted the job, saying how sure it is).
//! - `unknown`: no usable answer came back; when the exchange ended, and whether a success
//!   status said the job exists.
//! - `not_created`: the request created nothing (refused, never sent, or settled).
//! - `finished`: the job ended and what was due was done (files written, failure noted).
//!
//! A `sending` with neither `submitted` nor `not_created` is an unknown outcome; a `submitted`
//! with no `finished` is a pending job. Entries carry the API origin and an account fingerprint
//! (a hash of the token, never the token): a journal opened for one API and account sees only
//! its own jobs. Output directories are absolute.
//!
//! Two stores keep the entries, behind one interface (`Store`): an append is whole or absent,
//! appends are ordered, a reader reads only what was appended since its last read, an
//! exclusive section sees everything appended before it (settling records a decision only if
//! nobody recorded one meanwhile), and whether another client's run is alive can be asked.
//!
//! - A JSON Lines file (the default): appends and compaction take an OS lock on
//!   `<file>.lock` (waits bounded by the caller's deadline); each process keeps an index in
//!   memory and reads only what others appended since, line by line. Each open journal holds a
//!   run lock in `<file>.runs/`. A torn or garbage line (a crash mid-write, a disk error) is
//!   skipped and reported by [`Journal::damaged`] with any job id it mentions; it never hides
//!   the other entries, compaction keeps it, and the next append starts on a fresh line.
//! - PostgreSQL (the `postgres` feature), shared by several machines: `krea_journal` rows in
//!   sequence order, appended under a transaction-level advisory lock on the API and account;
//!   a run is alive while its database session holds its advisory lock; batches shared by
//!   several workers keep their lines' claims in `krea_batch_lines`. Tables are created and
//!   migrated by version (`krea_schema`).

mod compaction;
mod entry;
mod file;
mod index;
mod lock;
#[cfg(feature = "postgres")]
mod postgres;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use uuid::Uuid;

pub(crate) use entry::Entry;
pub(crate) use entry::LineRef;
pub use entry::OutputPlan;
pub(crate) use entry::Scope;
pub(crate) use entry::absolute;
pub(crate) use index::KeyOutcome;
pub use index::{Damaged, PendingJob, Unresolved};
pub(crate) use lock::FileLock;

use crate::error::{Error, Result};
use crate::evidence::Exchange;
use file::FileStore;
use index::Index;
use lock::DEFAULT_LOCK_WAIT;

/// Finished entries kept by [`Journal::compact`] (the newest), for history.
const KEEP_FINISHED: usize = 500;
/// Compaction runs on its own once the journal holds this many finished entries.
const COMPACT_AFTER: usize = 5_000;
/// A longer line is not an entry this crate wrote: skipped as damaged without holding it.
const MAX_LINE: usize = 32 * 1024 * 1024;

/// A job journal, opened for one API origin and account: a file, or a PostgreSQL database
/// shared by several machines (the `postgres` feature).
#[derive(Debug)]
pub struct Journal {
    store: Store,
    scope: Scope,
    index: Mutex<Index>,
}

/// Where the entries are kept. Each keeps the same promises: an append is whole or absent,
/// appends are ordered, a reader reads only what was appended since, an exclusive section
/// sees everything appended before it, and a run's liveness can be asked.
#[derive(Debug)]
enum Store {
    File(FileStore),
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::PgStore>),
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

/// What a paced append found: written, or too soon after the last send (wait this long).
pub(crate) enum Paced {
    Written,
    TooSoon(std::time::Duration),
}

impl Journal {
    /// Opens (or prepares to create) the journal at `path` for `scope`, reading what it holds.
    #[cfg(test)]
    pub(crate) fn open(path: impl Into<PathBuf>, scope: Scope) -> Result<Journal> {
        Journal::open_until(path, scope, None)
    }

    /// [`Journal::open`], reading (and waiting for the lock) no later than `deadline`. A file
    /// holding more finished jobs than it needs is compacted on the way, when the deadline
    /// leaves the time (about twice the read's).
    pub(crate) fn open_until(
        path: impl Into<PathBuf>,
        scope: Scope,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Journal> {
        let path = absolute(path.into());
        let store = FileStore::open(path.clone()).map_err(|e| Error::io(&path, e))?;
        Journal::opened(Store::File(store), scope, deadline)
    }

    /// The journal in the PostgreSQL database at `url` for `scope`: connected, its tables
    /// made or migrated, and what it holds for `scope` read, all by `deadline`.
    #[cfg(feature = "postgres")]
    pub(crate) fn open_postgres_until(
        url: &str,
        scope: Scope,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Journal> {
        let store = postgres::PgStore::open(url, &scope, limit(deadline))?;
        Journal::opened(Store::Postgres(Box::new(store)), scope, deadline)
    }

    fn opened(
        store: Store,
        scope: Scope,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Journal> {
        let journal = Journal {
            store,
            scope,
            index: Mutex::new(Index::default()),
        };
        let started = Instant::now();
        journal.refresh_until(deadline)?;
        let read = started.elapsed();
        for d in journal.damaged() {
            tracing::warn!(journal = %journal.location(), "{d}");
        }
        let room = deadline
            .is_none_or(|d| d.into_std().saturating_duration_since(Instant::now()) > read * 3);
        if journal.index().finished_lines >= COMPACT_AFTER {
            if !room {
                tracing::info!("the job journal is due for compaction; left for a run with time");
            } else if let Err(e) = journal.compact() {
                tracing::warn!(error = %e.report(), "the job journal could not be compacted");
            }
        }
        Ok(journal)
    }

    /// The file, for a journal kept in one.
    pub fn path(&self) -> Option<&Path> {
        match &self.store {
            Store::File(f) => Some(f.path()),
            #[cfg(feature = "postgres")]
            Store::Postgres(_) => None,
        }
    }

    /// Where the journal is, for people: the file's path, or the database (its address
    /// without user or password).
    pub fn location(&self) -> String {
        match &self.store {
            Store::File(f) => f.path().display().to_string(),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.location().to_string(),
        }
    }

    /// The API and account this journal is opened for.
    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// This client's run (its requests' `sending` lines carry it).
    pub(crate) fn run_id(&self) -> Option<Uuid> {
        Some(match &self.store {
            Store::File(f) => f.run_id(),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.run_id(),
        })
    }

    /// Whether the client that sent under `run` still runs (this one does).
    pub(crate) fn run_alive(&self, run: Option<Uuid>) -> bool {
        match run {
            None => false,
            Some(r) if Some(r) == self.run_id() => true,
            Some(r) => match &self.store {
                Store::File(f) => f.run_alive(r),
                #[cfg(feature = "postgres")]
                Store::Postgres(p) => p.run_alive(r),
            },
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io_error(&self, job_id: Option<Uuid>, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::TimedOut && job_id.is_none() {
            // A lock held by another process, or a read too long for the deadline.
            return Error::DeadlineExceeded {
                operation: format!("using the job journal {} ({source})", self.location()),
            };
        }
        Error::Journal {
            path: PathBuf::from(self.location()),
            job_id,
            source,
        }
    }

    /// Reads what was appended since the last read (by any process); everything again if the
    /// file was replaced (compacted) meanwhile.
    pub fn refresh(&self) -> Result<()> {
        self.refresh_until(None)
    }

    /// [`Journal::refresh`], waiting for the lock and reading no later than `deadline`.
    pub(crate) fn refresh_until(&self, deadline: Option<tokio::time::Instant>) -> Result<()> {
        let deadline = limit(deadline);
        let mut index = self.index();
        let result = match &self.store {
            Store::File(f) => f.refresh(&mut index, &self.scope, deadline),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.refresh(&mut index, &self.scope, deadline),
        };
        drop(index);
        result.map_err(|e| self.io_error(None, e))
    }

    /// Under the store's exclusive section, with the index up to date: writes `entries` if
    /// `decide` allows. Returns whether they were written.
    fn write_if(
        &self,
        entries: &[Entry],
        deadline: Instant,
        decide: impl FnOnce(&Index) -> bool,
    ) -> std::io::Result<bool> {
        let mut index = self.index();
        match &self.store {
            Store::File(f) => f.write_if(&mut index, &self.scope, entries, deadline, decide),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.write_if(&mut index, &self.scope, entries, deadline, decide),
        }
    }

    /// Appends `entry` (after anything another process appended), under the lock, on a line of
    /// its own. The error names the job when there is one: it exists, keep its id.
    #[cfg(test)]
    pub(crate) fn record(&self, entry: &Entry) -> Result<()> {
        self.record_until(entry, None)
    }

    /// Appends `entry` (after anything another process appended), under the lock, on a line of
    /// its own, waiting for the lock until `deadline` at most. The error names the job when
    /// there is one: it exists, keep its id.
    pub(crate) fn record_until(
        &self,
        entry: &Entry,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<()> {
        self.append(std::slice::from_ref(entry), None, deadline)
            .map(drop)
    }

    /// Appends a `sending` or `attempt` line unless another attempt (of any process) went out
    /// less than `spacing` ago: then nothing is written and the wait is returned.
    pub(crate) fn record_paced(
        &self,
        entry: &Entry,
        spacing: chrono::TimeDelta,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Paced> {
        self.append(std::slice::from_ref(entry), Some(spacing), deadline)
    }

    /// Appends `entries` if `check` (run on the index brought up to date, under the exclusive
    /// lock) allows it: how settling records what it found only if nobody else recorded the
    /// same requests meanwhile. Returns whether they were written.
    pub(crate) fn record_if(
        &self,
        entries: &[Entry],
        check: impl FnOnce(&JournalView<'_>) -> bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<bool> {
        self.write_if(entries, limit(deadline), |index| {
            check(&JournalView { index })
        })
        .map_err(|e| self.io_error(entries.iter().find_map(Entry::job_id), e))
    }

    fn append(
        &self,
        entries: &[Entry],
        spacing: Option<chrono::TimeDelta>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Paced> {
        let job_id = entries.iter().find_map(Entry::job_id);
        let own = self.run_id();
        let mut paced = Paced::Written;
        let result = self.write_if(entries, limit(deadline), |index| {
            // This client paces its own sends; other clients' are kept at the spacing too.
            if let (Some(spacing), Some(last)) = (spacing, index.last_send_besides(own)) {
                let wait = last + spacing - Utc::now();
                if wait > chrono::TimeDelta::zero() {
                    paced = Paced::TooSoon(wait.to_std().unwrap_or_default());
                    return false;
                }
            }
            true
        });
        result.map_err(|e| self.io_error(job_id, e))?;
        if self.index().finished_lines >= COMPACT_AFTER
            && let Err(e) = self.compact()
        {
            tracing::warn!(error = %e.report(), "the job journal could not be compacted");
        }
        Ok(paced)
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
        Ok(self.unresolved_now())
    }

    /// [`Journal::unresolved`] from memory (no read).
    pub(crate) fn unresolved_now(&self) -> Vec<Unresolved> {
        let index = self.index();
        let mut out: Vec<Unresolved> = index.sending.values().cloned().collect();
        out.sort_by_key(|u| u.sent_at);
        out
    }

    /// The `submitted` entry of `job_id`, if this journal has one (from memory).
    pub fn submitted(&self, job_id: Uuid) -> Option<PendingJob> {
        self.index().submitted.get(&job_id).cloned()
    }

    /// What is known of the request with `key` (after reading what others appended).
    pub(crate) fn outcome(&self, key: Uuid) -> Result<KeyOutcome> {
        self.refresh()?;
        Ok(self.index().outcome(key))
    }

    /// What is known of the request with `key`, from memory (as of the last read).
    pub(crate) fn outcome_now(&self, key: Uuid) -> KeyOutcome {
        self.index().outcome(key)
    }

    /// Why the outcome of the request with `key` was settled with doubt, if it was (from
    /// memory).
    pub fn uncertain(&self, key: Uuid) -> Option<String> {
        self.index().uncertain.get(&key).cloned()
    }

    /// Exchanges whose answers named their jobs, newest last (from memory): they measure
    /// Krea's clock.
    pub(crate) fn exchanges(&self) -> Vec<Exchange> {
        self.index().exchanges.iter().copied().collect()
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

    /// Drops what is no longer needed, keeping every entry still needed (unknown outcomes,
    /// pending jobs, damaged lines, any other API's or account's unfinished work) and the
    /// newest finished ones. Returns the entries before and after.
    pub fn compact(&self) -> Result<(usize, usize)> {
        let mut index = self.index();
        let result = match &self.store {
            Store::File(f) => f.compact(&mut index, &self.scope),
            #[cfg(feature = "postgres")]
            Store::Postgres(p) => p.compact(&mut index, &self.scope),
        };
        drop(index);
        result.map_err(|e| self.io_error(None, e))
    }
}

/// How long a shared batch line's claim holds without renewal, unless the batch says
/// otherwise. A killed worker's claims are free at once (its run lock goes with its database
/// connection); the lease frees those of a worker that hangs.
pub(crate) const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// One line of a shared batch, as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedLine {
    pub line: u32,
    pub done: bool,
    pub job_id: Option<Uuid>,
    /// Claimed by another worker whose claim still holds.
    pub held_elsewhere: bool,
    /// How it ended, when it is done.
    pub end: Option<LineEnd>,
}

/// How a shared batch's line ended, as its worker recorded it for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineEnd {
    pub job_id: Option<Uuid>,
    /// The item's status there (`completed`, `failed`, `cancelled`).
    pub status: String,
    /// Its job's result URLs.
    pub urls: Vec<String>,
}

/// Batches shared by several workers: their lines' claims, kept beside the entries (a
/// journal in PostgreSQL only).
impl Journal {
    #[cfg(feature = "postgres")]
    fn shared(&self) -> Result<&postgres::PgStore> {
        match &self.store {
            Store::Postgres(p) => Ok(p),
            Store::File(_) => Err(no_sharing()),
        }
    }

    #[cfg(not(feature = "postgres"))]
    fn shared(&self) -> Result<&Never> {
        Err(no_sharing())
    }

    fn claims_error(&self, e: std::io::Error) -> Error {
        self.io_error(None, e)
    }

    /// Registers the batch `batch` (or checks that the one of that name is this one).
    pub(crate) fn batch_open(
        &self,
        batch: &str,
        fingerprint: &str,
        lines: u32,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<()> {
        self.shared()?
            .batch_open(&self.scope, batch, fingerprint, lines, limit(deadline))
            .map_err(|e| self.claims_error(e))?
            .map_err(Error::Config)
    }

    /// Claims the next line nobody holds, if any, other than those in `skip`, for `lease`.
    pub(crate) fn claim_line(
        &self,
        batch: &str,
        lease: std::time::Duration,
        skip: &[u32],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Option<u32>> {
        self.shared()?
            .claim_line(&self.scope, batch, lease, skip, limit(deadline))
            .map_err(|e| self.claims_error(e))
    }

    /// Frees this worker's claim of `line` in `batch`, if it is not done.
    pub(crate) fn release_line(
        &self,
        batch: &str,
        line: u32,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<()> {
        self.shared()?
            .release_line(&self.scope, batch, line, limit(deadline))
            .map_err(|e| self.claims_error(e))
    }

    /// Extends this worker's claims in `batch` to `lease` from now.
    pub(crate) fn renew_claims(
        &self,
        batch: &str,
        lease: std::time::Duration,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<()> {
        self.shared()?
            .renew_claims(&self.scope, batch, lease, limit(deadline))
            .map_err(|e| self.claims_error(e))
    }

    /// Frees this worker's unfinished claims in `batch`.
    pub(crate) fn release_claims(
        &self,
        batch: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<()> {
        self.shared()?
            .release_claims(&self.scope, batch, limit(deadline))
            .map_err(|e| self.claims_error(e))
    }

    /// Marks a line done, with how it ended.
    pub(crate) fn line_done(
        &self,
        batch: &str,
        line: u32,
        end: &LineEnd,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<()> {
        self.shared()?
            .line_done(&self.scope, batch, line, end, limit(deadline))
            .map_err(|e| self.claims_error(e))
    }

    /// Every line of `batch`.
    pub(crate) fn batch_lines(
        &self,
        batch: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Vec<SharedLine>> {
        self.shared()?
            .batch_lines(&self.scope, batch, limit(deadline))
            .map_err(|e| self.claims_error(e))
    }

    /// The requests written down for a shared batch's line, oldest first (from memory).
    pub(crate) fn line_keys(&self, line: &LineRef) -> Vec<Uuid> {
        self.index()
            .line_keys
            .get(line)
            .cloned()
            .unwrap_or_default()
    }
}

fn no_sharing() -> Error {
    Error::Config(
        "a batch shared by several workers needs the journal in PostgreSQL: \
         --journal postgres://... (KreaBuilder::journal_postgres)"
            .into(),
    )
}

/// Without the `postgres` feature there is no store that shares batches.
#[cfg(not(feature = "postgres"))]
#[derive(Debug)]
enum Never {}

#[cfg(not(feature = "postgres"))]
impl Never {
    fn batch_open(
        &self,
        _: &Scope,
        _: &str,
        _: &str,
        _: u32,
        _: Instant,
    ) -> std::io::Result<std::result::Result<(), String>> {
        match *self {}
    }
    fn claim_line(
        &self,
        _: &Scope,
        _: &str,
        _: std::time::Duration,
        _: &[u32],
        _: Instant,
    ) -> std::io::Result<Option<u32>> {
        match *self {}
    }
    fn release_line(&self, _: &Scope, _: &str, _: u32, _: Instant) -> std::io::Result<()> {
        match *self {}
    }
    fn renew_claims(
        &self,
        _: &Scope,
        _: &str,
        _: std::time::Duration,
        _: Instant,
    ) -> std::io::Result<()> {
        match *self {}
    }
    fn release_claims(&self, _: &Scope, _: &str, _: Instant) -> std::io::Result<()> {
        match *self {}
    }
    fn line_done(
        &self,
        _: &Scope,
        _: &str,
        _: u32,
        _: &LineEnd,
        _: Instant,
    ) -> std::io::Result<()> {
        match *self {}
    }
    fn batch_lines(&self, _: &Scope, _: &str, _: Instant) -> std::io::Result<Vec<SharedLine>> {
        match *self {}
    }
}

/// A read-only look at the index under the lock (for [`Journal::record_if`]).
pub(crate) struct JournalView<'a> {
    index: &'a Index,
}

impl JournalView<'_> {
    pub fn outcome(&self, key: Uuid) -> KeyOutcome {
        self.index.outcome(key)
    }

    pub fn claims(&self, job_id: Uuid) -> bool {
        self.index.submitted.contains_key(&job_id)
    }
}

/// The instant a lock or read gives up: the caller's deadline, else a default wait.
fn limit(deadline: Option<tokio::time::Instant>) -> Instant {
    let default = Instant::now() + DEFAULT_LOCK_WAIT;
    deadline.map_or(default, |d| d.into_std().min(default))
}

pub(super) fn first_uuid(text: &str) -> Option<Uuid> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(35)).find_map(|i| {
        text.get(i..i + 36)
            .filter(|c| c.as_bytes()[8] == b'-' && c.as_bytes()[13] == b'-')
            .and_then(|c| c.parse().ok())
    })
}

#[cfg(all(test, feature = "postgres"))]
mod pg_tests;
#[cfg(test)]
mod tests;
