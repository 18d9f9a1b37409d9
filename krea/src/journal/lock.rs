//! OS file locks: waits bounded by a deadline, and the run locks that tell whether the client
//! that sent a request still runs (a killed process's lock is released by the OS).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How long a lock is waited for when the caller sets no deadline.
pub(crate) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

pub(super) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

/// Takes `file`'s lock (exclusive, or shared for readers), trying until `deadline`. Polling
/// rather than blocking: a blocked call could not be given up at the deadline.
pub(crate) fn lock_until(
    file: &File,
    exclusive: bool,
    deadline: Instant,
    what: &Path,
) -> std::io::Result<()> {
    let mut pause = Duration::from_micros(200);
    loop {
        let attempt = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(TryLockError::Error(e)) => return Err(e),
            Err(TryLockError::WouldBlock) if Instant::now() >= deadline => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{} stayed locked by another process until the deadline",
                        what.display()
                    ),
                ));
            }
            Err(TryLockError::WouldBlock) => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// An OS lock on a file beside the journal (or a batch directory), released on drop.
#[derive(Debug)]
pub(crate) struct FileLock(File);

impl FileLock {
    /// Takes the exclusive lock only if it is free right now, recording this process's id
    /// in the lock file; `Err(holder)` names the process holding it, when it wrote its id.
    pub fn try_exclusive(
        path: &Path,
    ) -> std::io::Result<std::result::Result<FileLock, Option<u32>>> {
        let mut file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                write!(file, "{}", std::process::id())?;
                Ok(Ok(FileLock(file)))
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(Err(text.trim().parse().ok()))
            }
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The lock a running client holds for as long as its journal is open: `<journal>.runs/<id>`.
/// Another process can tell from it whether the requests this client sent may still get an
/// answer (it runs) or will never be heard of by it again (the lock is free: it ended).
#[derive(Debug)]
pub(crate) struct RunLock {
    id: Uuid,
    path: PathBuf,
    file: File,
}

impl RunLock {
    /// Takes a new run's lock in `dir`.
    pub fn take(dir: &Path) -> std::io::Result<RunLock> {
        let id = Uuid::new_v4();
        let path = dir.join(id.to_string());
        let file = open_lock_file(&path)?;
        file.try_lock().map_err(std::io::Error::from)?;
        Ok(RunLock { id, path, file })
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether run `id`'s client still holds its lock in `dir`. A lock file left by a client that
/// ended (killed) is removed on the way.
pub(crate) fn run_alive(dir: &Path, id: Uuid) -> bool {
    let path = dir.join(id.to_string());
    let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
        // No lock file: it ended cleanly (or its directory is gone).
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = std::fs::remove_file(&path);
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        // Cannot tell: assume it runs (its requests are then left to it, never guessed).
        Err(TryLockError::Error(_)) => true,
    }
}
