//! What a compaction keeps, the same for every store: unknown outcomes, pending jobs, damaged
//! entries, and the newest finished jobs; every entry a kept job or unresolved request needs.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::KEEP_FINISHED;
use super::entry::Entry;

/// What compaction needs of an entry.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Sending(Uuid),
    Attempt(Uuid),
    Unknown(Uuid),
    Submitted {
        key: Option<Uuid>,
        job: Uuid,
    },
    NotCreated(Uuid),
    Finished(Uuid),
    /// Unreadable: kept, it may be all that is left of a job's id.
    Damaged,
}

impl Kind {
    pub fn of(entry: Option<&Entry>) -> Kind {
        match entry {
            None => Kind::Damaged,
            Some(Entry::Sending { key, .. }) => Kind::Sending(*key),
            Some(Entry::Attempt { key, .. }) => Kind::Attempt(*key),
            Some(Entry::Unknown { key, .. }) => Kind::Unknown(*key),
            Some(Entry::Submitted { key, job_id, .. }) => Kind::Submitted {
                key: *key,
                job: *job_id,
            },
            Some(Entry::NotCreated { key, .. }) => Kind::NotCreated(*key),
            Some(Entry::Finished { job_id, .. }) => Kind::Finished(*job_id),
        }
    }

    /// From a database row's columns (its `event`, `key` and `job_id`).
    #[cfg(feature = "postgres")]
    pub fn of_event(event: &str, key: Option<Uuid>, job: Option<Uuid>) -> Kind {
        match (event, key, job) {
            ("sending", Some(k), _) => Kind::Sending(k),
            ("attempt", Some(k), _) => Kind::Attempt(k),
            ("unknown", Some(k), _) => Kind::Unknown(k),
            ("submitted", key, Some(job)) => Kind::Submitted { key, job },
            ("not_created", Some(k), _) => Kind::NotCreated(k),
            ("finished", _, Some(job)) => Kind::Finished(job),
            _ => Kind::Damaged,
        }
    }
}

/// Filled by a first pass over every entry ([`Compaction::note`]); then tells which to keep.
#[derive(Debug, Default)]
pub(super) struct Compaction {
    finished: Vec<Uuid>,
    resolved: HashSet<Uuid>,
    job_of_key: HashMap<Uuid, Uuid>,
    keep_finished: Option<HashSet<Uuid>>,
    done: HashSet<Uuid>,
}

impl Compaction {
    pub fn note(&mut self, kind: &Kind) {
        match *kind {
            Kind::Finished(job) => self.finished.push(job),
            Kind::Submitted { key: Some(k), job } => {
                self.resolved.insert(k);
                self.job_of_key.insert(k, job);
            }
            Kind::NotCreated(k) => {
                self.resolved.insert(k);
            }
            _ => {}
        }
    }

    fn needed_job(&self, job: &Uuid) -> bool {
        !self.done.contains(job) || self.keep_finished.as_ref().is_some_and(|k| k.contains(job))
    }

    /// Whether the entry stays (after every entry was noted).
    pub fn keeps(&mut self, kind: &Kind) -> bool {
        if self.keep_finished.is_none() {
            let finished = std::mem::take(&mut self.finished);
            self.keep_finished = Some(finished.iter().rev().take(KEEP_FINISHED).copied().collect());
            self.done = finished.into_iter().collect();
        }
        match kind {
            Kind::Damaged => true,
            Kind::Sending(key) => {
                !self.resolved.contains(key)
                    || self.job_of_key.get(key).is_some_and(|j| self.needed_job(j))
            }
            Kind::NotCreated(_) => false,
            Kind::Unknown(key) | Kind::Attempt(key) => !self.resolved.contains(key),
            Kind::Submitted { job, .. } => self.needed_job(job),
            Kind::Finished(job) => self.keep_finished.as_ref().is_some_and(|k| k.contains(job)),
        }
    }
}
