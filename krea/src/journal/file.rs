//! The journal in a JSON Lines file: appends under an OS lock on `<file>.lock`, reads of only
//! what was appended since, compaction by rewriting, and run locks in `<file>.runs/`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

use super::MAX_LINE;
use super::compaction::{Compaction, Kind};
use super::entry::{Entry, Scope};
use super::index::{Damaged, Index};
use super::lock::{self, RunLock, lock_until};

/// A journal file and the locks beside it.
#[derive(Debug)]
pub(super) struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    runs_dir: PathBuf,
    /// `<file>.lock`, opened once: locking it is all an append or a read needs.
    lock_file: Mutex<Option<File>>,
    run: RunLock,
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

impl FileStore {
    /// The journal at `path` (created on the first append), this process's run lock taken.
    pub fn open(path: PathBuf) -> std::io::Result<FileStore> {
        let runs_dir = sibling(&path, ".runs");
        let run = RunLock::take(&runs_dir)?;
        Ok(FileStore {
            lock_path: sibling(&path, ".lock"),
            runs_dir,
            path,
            lock_file: Mutex::new(None),
            run,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_id(&self) -> Uuid {
        self.run.id()
    }

    /// Whether the client of run `run` (not this one) still holds its lock.
    pub fn run_alive(&self, run: Uuid) -> bool {
        lock::run_alive(&self.runs_dir, run)
    }

    /// Reads what any process appended since the last read, under the shared lock.
    pub fn refresh(
        &self,
        index: &mut Index,
        scope: &Scope,
        deadline: Instant,
    ) -> std::io::Result<()> {
        self.locked(false, deadline, || self.read_into(index, scope, deadline))
    }

    /// Under the exclusive lock, with `index` brought up to date: appends `entries` if `decide`
    /// allows. Returns whether they were written.
    pub fn write_if(
        &self,
        index: &mut Index,
        scope: &Scope,
        entries: &[Entry],
        deadline: Instant,
        decide: impl FnOnce(&Index) -> bool,
    ) -> std::io::Result<bool> {
        self.locked(true, deadline, || {
            self.read_into(index, scope, deadline)?;
            if !decide(index) {
                return Ok(false);
            }
            self.write_lines(index, scope, entries)?;
            Ok(true)
        })
    }

    /// Rewrites the file keeping every entry still needed (unknown outcomes, pending jobs,
    /// damaged lines, any other API's or account's unfinished work) and the newest finished
    /// ones, then reads it again. Returns the lines before and after.
    pub fn compact(&self, index: &mut Index, scope: &Scope) -> std::io::Result<(usize, usize)> {
        let deadline = super::limit(None);
        self.locked(true, deadline, || {
            let tmp = sibling(&self.path, ".compacting");
            let (lines, kept) = match compact_into(&self.path, &tmp)? {
                Some(c) => c,
                None => return Ok((0, 0)),
            };
            std::fs::rename(&tmp, &self.path)?;
            *index = Index::default();
            self.read_into(index, scope, deadline)?;
            Ok((lines, kept))
        })
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
        let file = match slot.as_ref() {
            Some(file) => file,
            None => slot.insert(lock::open_lock_file(&self.lock_path)?),
        };
        lock_until(file, exclusive, deadline, &self.path)?;
        let result = f();
        let _ = file.unlock();
        result
    }

    /// Reads whole lines appended since `index.offset`, one at a time (memory stays bounded
    /// by the longest line), until the end or `deadline`.
    fn read_into(
        &self,
        index: &mut Index,
        scope: &Scope,
        deadline: Instant,
    ) -> std::io::Result<()> {
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
                        Ok(entry) => index.apply(entry, scope),
                        Err(_) => {
                            let text = String::from_utf8_lossy(text);
                            index.damaged.push(Damaged {
                                line: index.lines,
                                job_id: crate::send::job_id_in(&text)
                                    .or_else(|| super::first_uuid(&text)),
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

    /// Writes `entries` at the end of the file (the exclusive lock held, the index current).
    fn write_lines(
        &self,
        index: &mut Index,
        scope: &Scope,
        entries: &[Entry],
    ) -> std::io::Result<()> {
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
            self.read_into(index, scope, super::limit(None))
        } else {
            // Nobody else wrote meanwhile (the lock): what was just written is these entries.
            index.lines += entries.len();
            index.offset += bytes.len() as u64;
            index.seen_len = index.offset;
            for entry in entries {
                index.apply(entry.clone(), scope);
            }
            Ok(())
        }
    }
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
    let mut plan = Compaction::default();
    let mut lines = 0;
    let torn = each_line(path, |_, entry| {
        lines += 1;
        plan.note(&Kind::of(entry.as_ref()));
        Ok(())
    })?;
    let Some(torn) = torn else {
        return Ok(None);
    };
    let mut out = std::io::BufWriter::new(File::create(tmp)?);
    let mut kept = 0;
    each_line(path, |raw, entry| {
        let keep = plan.keeps(&Kind::of(entry.as_ref()));
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
