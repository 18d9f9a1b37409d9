//! The job journal: what this client sent and what came of it, written before anything is paid
//! and read back by anything that resumes, so an interrupted run is finished later without
//! paying twice.
//!
//! A JSON Lines file, one event per line:
//!
//! - `sending`: a paid request is about to go out (its key, model, path, body fingerprint and
//!   body, output plan, the client sending it). Written *before* the request; if it cannot be
//!   written, nothing is sent.
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
//! Safe to share between processes: appends and compaction take an OS lock on `<file>.lock`
//! (waits bounded by the caller's deadline); each process keeps an index in memory and reads
//! only what others appended since, line by line. Each open journal holds a run lock in
//! `<file>.runs/`, so settling can tell a request another running client is still waiting on
//! from one whose client is gone. A torn or garbage line (a crash mid-write, a disk error) is
//! skipped and reported by [`Journal::damaged`] with any job id it mentions; it never hides the
//! other entries, compaction keeps it, and the next append starts on a fresh line.

mod entry;
mod index;
mod lock;

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use chrono::Utc;
use uuid::Uuid;

pub(crate) use entry::Entry;
pub use entry::OutputPlan;
pub(crate) use entry::Scope;
pub(crate) use entry::absolute;
pub(crate) use index::KeyOutcome;
pub use index::{Damaged, PendingJob, Unresolved};
pub(crate) use lock::FileLock;

use crate::error::{Error, Result};
use crate::evidence::Exchange;
use index::Index;
use lock::{DEFAULT_LOCK_WAIT, RunLock, lock_until};

/// Finished entries kept by [`Journal::compact`] (the newest), for history.
const KEEP_FINISHED: usize = 500;
/// Compaction runs on its own once the file holds this many finished entries.
const COMPACT_AFTER: usize = 5_000;
/// A longer line is not an entry this crate wrote: skipped as damaged without holding it.
const MAX_LINE: usize = 32 * 1024 * 1024;

/// A journal file, opened for one API origin and account.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    lock_path: PathBuf,
    runs_dir: PathBuf,
    /// `<file>.lock`, opened once: locking it is all an append or a read needs.
    lock_file: Mutex<Option<File>>,
    scope: Scope,
    index: Mutex<Index>,
    run: Option<RunLock>,
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

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    p.into()
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
        let runs_dir = sibling(&path, ".runs");
        let run = RunLock::take(&runs_dir).map_err(|e| Error::io(&runs_dir, e))?;
        let journal = Journal {
            lock_path: sibling(&path, ".lock"),
            runs_dir,
            path,
            lock_file: Mutex::new(None),
            scope,
            index: Mutex::new(Index::default()),
            run: Some(run),
        };
        let started = Instant::now();
        journal.refresh_until(deadline)?;
        let read = started.elapsed();
        for d in journal.damaged() {
            tracing::warn!(journal = %journal.path.display(), "{d}");
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

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The API and account this journal is opened for.
    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// This client's run (its requests' `sending` lines carry it).
    pub(crate) fn run_id(&self) -> Option<Uuid> {
        self.run.as_ref().map(RunLock::id)
    }

    /// Whether the client that sent under `run` still runs (this one does).
    pub(crate) fn run_alive(&self, run: Option<Uuid>) -> bool {
        match run {
            None => false,
            Some(r) if Some(r) == self.run_id() => true,
            Some(r) => lock::run_alive(&self.runs_dir, r),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io_error(&self, job_id: Option<Uuid>, source: std::io::Error) -> Error {
        if source.kind() == std::io::ErrorKind::TimedOut && job_id.is_none() {
            // A lock held by another process, or a read too long for the deadline.
            return Error::DeadlineExceeded {
                operation: format!("using the job journal {} ({source})", self.path.display()),
            };
        }
        Error::Journal {
            path: self.path.clone(),
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
        self.locked(false, deadline, || {
            let mut index = self.index();
            self.read_into(&mut index, deadline)
        })
        .map_err(|e| self.io_error(None, e))
    }

    /// Runs `f` holding the OS lock on `<file>.lock` (shared for readers, exclusive for
    /// writers), the lock file opened once and kept; the lock is waited for until `deadline`.
    fn locked<T>(
        &self,
        exclusive: bool,
        deadline: Instant,
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
        lock_until(file, exclusive, deadline, &self.path)?;
        let result = f();
        let _ = file.unlock();
        result
    }

    /// Reads whole lines appended since `index.offset`, one at a time (memory stays bounded
    /// by the longest line), until the end or `deadline`.
    fn read_into(&self, index: &mut Index, deadline: Instant) -> std::io::Result<()> {
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
        index.seen_len = meta.len();
        if meta.len() == index.offset {
            return Ok(());
        }
        let Some(mut file) = index.file.take() else {
            return Ok(());
        };
        let result = (|| {
            file.seek(SeekFrom::Start(index.offset))?;
            let mut reader = BufReader::with_capacity(64 * 1024, &mut file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n =
                    Read::take(&mut reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    if n > MAX_LINE {
                        // Not a line this crate wrote: skip to its end.
                        let mut rest = Vec::new();
                        let more = reader.read_until(b'\n', &mut rest)?;
                        if rest.last() == Some(&b'\n') {
                            index.lines += 1;
                            index.offset += (n + more) as u64;
                            index.damaged.push(Damaged {
                                line: index.lines,
                                job_id: None,
                                excerpt: crate::redact::clean(
                                    &String::from_utf8_lossy(&line[..120.min(line.len())]),
                                    None,
                                    120,
                                ),
                            });
                            continue;
                        }
                    }
                    // A line still being written (no newline yet) is read next time.
                    return Ok(());
                }
                index.offset += n as u64;
                index.lines += 1;
                let text = &line[..n - 1];
                if !text.iter().all(u8::is_ascii_whitespace) {
                    match serde_json::from_slice::<Entry>(text) {
                        Ok(entry) => index.apply(entry, &self.scope),
                        Err(_) => {
                            let text = String::from_utf8_lossy(text);
                            index.damaged.push(Damaged {
                                line: index.lines,
                                job_id: crate::send::job_id_in(&text).or_else(|| first_uuid(&text)),
                                excerpt: crate::redact::clean(&text, None, 120),
                            });
                        }
                    }
                }
                if index.lines.is_multiple_of(4096) && Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "reading the journal was cut short by the deadline after {} bytes",
                            index.offset
                        ),
                    ));
                }
            }
        })();
        index.file = Some(file);
        result
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
        let deadline_at = limit(deadline);
        let mut check = Some(check);
        let allowed = std::cell::Cell::new(true);
        let result = self.locked(true, deadline_at, || {
            let mut index = self.index();
            self.read_into(&mut index, deadline_at)?;
            if let Some(check) = check.take()
                && !check(&JournalView { index: &index })
            {
                allowed.set(false);
                return Ok(());
            }
            self.write_lines(&mut index, entries)
        });
        result.map_err(|e| self.io_error(entries.iter().find_map(Entry::job_id), e))?;
        Ok(allowed.get())
    }

    fn append(
        &self,
        entries: &[Entry],
        spacing: Option<chrono::TimeDelta>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Paced> {
        let job_id = entries.iter().find_map(Entry::job_id);
        let deadline = limit(deadline);
        let result = self.locked(true, deadline, || {
            let mut index = self.index();
            self.read_into(&mut index, deadline)?;
            // This client paces its own sends; other clients' are kept at the spacing too.
            let others = index.last_send_besides(self.run_id());
            if let (Some(spacing), Some(last)) = (spacing, others) {
                let wait = last + spacing - Utc::now();
                if wait > chrono::TimeDelta::zero() {
                    return Ok(Paced::TooSoon(wait.to_std().unwrap_or_default()));
                }
            }
            self.write_lines(&mut index, entries)?;
            Ok(Paced::Written)
        });
        let paced = result.map_err(|e| self.io_error(job_id, e))?;
        if self.index().finished_lines >= COMPACT_AFTER
            && let Err(e) = self.compact()
        {
            tracing::warn!(error = %e.report(), "the job journal could not be compacted");
        }
        Ok(paced)
    }

    /// Writes `entries` at the end of the file (the exclusive lock held, the index current).
    fn write_lines(&self, index: &mut Index, entries: &[Entry]) -> std::io::Result<()> {
        if index.append.is_none() {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            };
            let file = match open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(dir) = self.path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    open()?
                }
                other => other?,
            };
            index.append = Some(file);
        }
        // Bytes past the last complete line when it was read (under this lock): a torn line (a
        // crash mid-write). It must not swallow these entries.
        let torn = index.seen_len > index.offset;
        let mut bytes = Vec::new();
        if torn {
            bytes.push(b'\n');
        }
        for entry in entries {
            serde_json::to_writer(&mut bytes, entry).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        if let Some(file) = index.append.as_mut() {
            file.write_all(&bytes)?;
        }
        if torn || index.file.is_none() {
            // Read back like anything else, so a torn line is reported where it is.
            self.read_into(index, limit(None))
        } else {
            // Nobody else wrote meanwhile (the lock): what was just written is these entries.
            index.lines += entries.len();
            index.offset += bytes.len() as u64;
            index.seen_len = index.offset;
            for entry in entries {
                index.apply(entry.clone(), &self.scope);
            }
            Ok(())
        }
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

    /// Rewrites the file keeping every entry still needed (unknown outcomes, pending jobs,
    /// damaged lines, any other API's or account's unfinished work) and the newest finished
    /// ones. Returns the lines before and after.
    pub fn compact(&self) -> Result<(usize, usize)> {
        let deadline = limit(None);
        let result = self.locked(true, deadline, || -> std::io::Result<(usize, usize)> {
            let tmp = sibling(&self.path, ".compacting");
            let (lines, kept) = match compact_into(&self.path, &tmp)? {
                Some(c) => c,
                None => return Ok((0, 0)),
            };
            std::fs::rename(&tmp, &self.path)?;
            let mut index = self.index();
            *index = Index::default();
            self.read_into(&mut index, deadline)?;
            Ok((lines, kept))
        });
        result.map_err(|e| self.io_error(None, e))
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

/// Hands `f` each whole line of the file at `path` with its entry (`None`: damaged), read one
/// at a time. Returns the bytes of a torn last line (empty if none), or `None` if there is no
/// file.
fn each_line(
    path: &Path,
    mut f: impl FnMut(&[u8], Option<Entry>) -> std::io::Result<()>,
) -> std::io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(Some(Vec::new()));
        }
        if line.last() != Some(&b'\n') {
            return Ok(Some(line));
        }
        let text = &line[..line.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(text, serde_json::from_slice::<Entry>(text).ok())?;
    }
}

/// Writes to `tmp` the lines of the file at `path` a compaction keeps, reading it twice line
/// by line (memory stays bounded by what is kept in sets of ids, whatever the file's size):
/// `(lines before, lines kept)`.
fn compact_into(path: &Path, tmp: &Path) -> std::io::Result<Option<(usize, usize)>> {
    let mut finished: Vec<Uuid> = Vec::new();
    let mut resolved: HashSet<Uuid> = HashSet::new();
    let mut job_of_key: HashMap<Uuid, Uuid> = HashMap::new();
    let mut lines = 0;
    let torn = each_line(path, |_, entry| {
        lines += 1;
        match entry {
            Some(Entry::Finished { job_id, .. }) => finished.push(job_id),
            Some(Entry::Submitted {
                key: Some(k),
                job_id,
                ..
            }) => {
                resolved.insert(k);
                job_of_key.insert(k, job_id);
            }
            Some(Entry::NotCreated { key, .. }) => {
                resolved.insert(key);
            }
            _ => {}
        }
        Ok(())
    })?;
    let Some(torn) = torn else {
        return Ok(None);
    };
    let keep_finished: HashSet<Uuid> = finished.iter().rev().take(KEEP_FINISHED).copied().collect();
    let done: HashSet<Uuid> = finished.into_iter().collect();
    let needed_job = |id: &Uuid| !done.contains(id) || keep_finished.contains(id);
    let mut out = std::io::BufWriter::new(File::create(tmp)?);
    let mut kept = 0;
    each_line(path, |raw, entry| {
        let keep = match entry {
            // A damaged line stays: it may be all that is left of a job's id.
            None => true,
            Some(Entry::Sending { key, .. }) => {
                !resolved.contains(&key) || job_of_key.get(&key).is_some_and(needed_job)
            }
            Some(Entry::NotCreated { .. }) => false,
            Some(Entry::Unknown { key, .. } | Entry::Attempt { key, .. }) => {
                !resolved.contains(&key)
            }
            Some(Entry::Submitted { job_id, .. }) => needed_job(&job_id),
            Some(Entry::Finished { job_id, .. }) => keep_finished.contains(&job_id),
        };
        if keep {
            out.write_all(raw)?;
            out.write_all(b"\n")?;
            kept += 1;
        }
        Ok(())
    })?;
    // A torn last line stays as it was, at the end.
    out.write_all(&torn)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(Some((lines, kept)))
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
mod tests;
