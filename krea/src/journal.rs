//! The job journal: every submitted job is written down before the client waits for it, so an
//! interrupted run can be finished later without paying twice.
//!
//! The file is JSON Lines, one event per line, appended with a single write each:
//!
//! ```text
//! {"event":"submitted","at":"2026-11-21T12:00:00Z","job_id":"…","model":"bfl/flux-1-dev","request":{…},"output":{"dir":"out","overwrite":false}}
//! {"event":"finished","at":"2026-11-21T12:00:09Z","job_id":"…","status":"completed","files":["out/flux-1-dev-4d0e5f97-0.png"]}
//! ```
//!
//! A job is pending while it has a `submitted` line and no `finished` line. Default location:
//! `krea/journal.jsonl` under the user's state directory (`$XDG_STATE_HOME`, `~/.local/state`
//! on Linux), else under the local data directory.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};

/// Where downloaded results go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPlan {
    /// The destination directory.
    pub dir: PathBuf,
    /// Replace files that exist (else a numbered name is chosen).
    #[serde(default)]
    pub overwrite: bool,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// A job was created (and is being paid for).
    Submitted {
        /// When.
        at: DateTime<Utc>,
        /// The job.
        job_id: Uuid,
        /// The model id.
        model: String,
        /// The body sent.
        request: Value,
        /// Where its files go, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<OutputPlan>,
    },
    /// The job ended and whatever was due was done (files downloaded, or the failure noted).
    Finished {
        /// When.
        at: DateTime<Utc>,
        /// The job.
        job_id: Uuid,
        /// Its final state.
        status: String,
        /// Files written.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<PathBuf>,
    },
}

impl Entry {
    /// The job the line is about.
    pub fn job_id(&self) -> Uuid {
        match self {
            Entry::Submitted { job_id, .. } | Entry::Finished { job_id, .. } => *job_id,
        }
    }
}

/// A submitted job with no `finished` line yet.
#[derive(Debug, Clone, PartialEq)]
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
}

/// An append-only journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    write: Mutex<()>,
}

impl Journal {
    /// The default location.
    pub fn default_path() -> Option<PathBuf> {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .map(|d| d.join("krea").join("journal.jsonl"))
    }

    /// A journal at `path` (created on first write).
    pub fn at(path: impl Into<PathBuf>) -> Journal {
        Journal {
            path: path.into(),
            write: Mutex::new(()),
        }
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (one `write` call, so concurrent writers do not interleave lines).
    pub fn append(&self, entry: &Entry) -> Result<()> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        file.write_all(&line)
            .map_err(|e| Error::io(&self.path, e))?;
        file.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// Every line that parses (a torn last line from a crash is skipped).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let mut out = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::io(&self.path, e))?;
            if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Submitted jobs without a `finished` line, oldest first.
    pub fn pending(&self) -> Result<Vec<PendingJob>> {
        let entries = self.entries()?;
        let finished: std::collections::HashSet<Uuid> = entries
            .iter()
            .filter(|e| matches!(e, Entry::Finished { .. }))
            .map(Entry::job_id)
            .collect();
        let mut seen = std::collections::HashSet::new();
        Ok(entries
            .into_iter()
            .filter_map(PendingJob::from_entry)
            .filter(|p| !finished.contains(&p.job_id) && seen.insert(p.job_id))
            .collect())
    }

    /// The `submitted` line of `job_id`, if any.
    pub fn submitted(&self, job_id: Uuid) -> Result<Option<PendingJob>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(PendingJob::from_entry)
            .find(|p| p.job_id == job_id))
    }
}

impl PendingJob {
    /// The job a `submitted` line describes.
    fn from_entry(entry: Entry) -> Option<PendingJob> {
        match entry {
            Entry::Submitted {
                at,
                job_id,
                model,
                request,
                output,
            } => Some(PendingJob {
                job_id,
                model,
                request,
                output,
                submitted_at: at,
            }),
            Entry::Finished { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn journal(name: &str) -> Journal {
        let path =
            std::env::temp_dir().join(format!("krea-journal-{name}-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Journal::at(path)
    }

    fn submitted(id: u128) -> Entry {
        Entry::Submitted {
            at: Utc::now(),
            job_id: Uuid::from_u128(id),
            model: "bfl/flux-1-dev".into(),
            request: json!({"prompt": "x"}),
            output: Some(OutputPlan {
                dir: "out".into(),
                overwrite: false,
            }),
        }
    }

    #[test]
    fn a_job_is_pending_until_it_is_finished() {
        let j = journal("pending");
        j.append(&submitted(1)).expect("append");
        j.append(&submitted(2)).expect("append");
        j.append(&Entry::Finished {
            at: Utc::now(),
            job_id: Uuid::from_u128(1),
            status: "completed".into(),
            files: vec!["out/a.png".into()],
        })
        .expect("append");
        let pending = j.pending().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].job_id, Uuid::from_u128(2));
        assert_eq!(
            pending[0].output.as_ref().map(|o| o.dir.clone()),
            Some(PathBuf::from("out"))
        );
        let _ = std::fs::remove_file(j.path());
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let j = journal("torn");
        j.append(&submitted(3)).expect("append");
        let mut f = OpenOptions::new()
            .append(true)
            .open(j.path())
            .expect("open");
        f.write_all(b"{\"event\":\"finished\",\"job_id\":")
            .expect("write");
        assert_eq!(j.pending().expect("pending").len(), 1);
        let _ = std::fs::remove_file(j.path());
    }

    #[test]
    fn lines_are_one_json_object_each() {
        let j = journal("format");
        j.append(&submitted(4)).expect("append");
        let text = std::fs::read_to_string(j.path()).expect("read");
        let v: Value = serde_json::from_str(text.trim_end()).expect("one line of JSON");
        assert_eq!(v["event"], "submitted");
        assert_eq!(v["model"], "bfl/flux-1-dev");
        let _ = std::fs::remove_file(j.path());
    }
}
