//! The one wait loop: jobs can be added while others are waited for (a batch adds as it
//! submits). Each [`Waiter::step`] sleeps until the next poll is due (or `until`), polls what
//! is due (one listing for many), and returns the jobs that ended or ran out of time.
//!
//! A step may be dropped at any point (a batch's `select!` wakes for a send or a download):
//! a poll under way is kept and finished by the next step, so an answer already asked for is
//! never thrown away and asked for again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;
use uuid::Uuid;

use crate::api::jobs::{JobQuery, Jobs};
use crate::error::{Error, Result};
use crate::job::{Finished, JobHandle, JobUpdate};
use crate::types::Job;

/// One job being waited for.
struct Waiting<H> {
    tag: usize,
    handle: H,
    schedule: crate::poll::PollSchedule,
    due: Instant,
    deadline: Instant,
    /// Polling it failed for good: its wait ends with this.
    error: Option<Error>,
}

/// What a poll brought back.
struct Fetched {
    /// When it started.
    at: Instant,
    /// The jobs of the listing that are waited for (if a listing was made and answered).
    listed: Vec<Job>,
    /// Jobs polled one by one (due, and not in the listing).
    got: Vec<(Uuid, Result<Job>)>,
}

type Fetch = Pin<Box<dyn Future<Output = Fetched> + Send>>;

pub(crate) struct Waiter<H> {
    jobs: Jobs,
    waiting: Vec<Waiting<H>>,
    last_listing: Option<Instant>,
    /// The poll under way, kept across dropped steps.
    fetch: Option<Fetch>,
}

impl<H: std::ops::Deref<Target = JobHandle>> Waiter<H> {
    pub fn new(jobs: Jobs) -> Waiter<H> {
        Waiter {
            jobs,
            waiting: Vec::new(),
            last_listing: None,
            fetch: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Waits for `handle` too; `tag` comes back with its result.
    pub fn add(&mut self, tag: usize, handle: H) {
        let mut schedule = handle.schedule();
        let due = handle.submitted() + schedule.next_delay();
        let own = handle.submitted() + handle.policy().deadline_for(handle.kind());
        let deadline = self.jobs.krea.deadline.map_or(own, |d| d.min(own));
        self.waiting.push(Waiting {
            tag,
            handle,
            schedule,
            due,
            deadline,
            error: None,
        });
    }

    /// One round: the jobs that ended (or timed out, or could not be polled), with their tags.
    pub async fn step(
        &mut self,
        until: Option<Instant>,
        on_update: &mut impl FnMut(usize, &JobHandle, &JobUpdate, bool),
    ) -> Vec<(usize, H, Result<Finished>)> {
        let mut ended = self.take_ended();
        if !ended.is_empty() || self.waiting.is_empty() {
            return ended;
        }
        if self.fetch.is_none() {
            let next_due = self
                .waiting
                .iter()
                .map(|w| w.due)
                .min()
                .unwrap_or_else(Instant::now);
            let next_deadline = self
                .waiting
                .iter()
                .map(|w| w.deadline)
                .min()
                .unwrap_or(next_due);
            // Listings are at least this far apart: the shortest interval among the jobs.
            let gap = self
                .waiting
                .iter()
                .map(|w| {
                    w.handle
                        .policy()
                        .interval
                        .mul_f64(w.handle.policy().time_scale)
                })
                .min()
                .unwrap_or_default();
            let spaced = match self.last_listing {
                Some(at) if self.waiting.len() > 1 => next_due.max(at + gap),
                _ => next_due,
            };
            let wake = until.map_or(spaced, |u| u.min(spaced)).min(next_deadline);
            tokio::time::sleep_until(wake).await;
            let now = Instant::now();
            if self.waiting.iter().any(|w| w.due <= now) {
                self.fetch = Some(self.start_fetch(now, next_deadline));
            }
        }
        if let Some(fetch) = self.fetch.as_mut() {
            let fetched = fetch.await;
            self.fetch = None;
            self.apply(fetched, on_update);
        }
        ended.extend(self.take_ended());
        ended
    }

    /// Removes and returns the jobs that ended or ran out of time.
    fn take_ended(&mut self) -> Vec<(usize, H, Result<Finished>)> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &mut self.waiting[i];
            if let Some(e) = w.error.take() {
                let w = self.waiting.swap_remove(i);
                out.push((w.tag, w.handle, Err(e)));
                continue;
            }
            let result = match w.handle.settled() {
                Some(done) => Some(done),
                None if now >= w.deadline => Some(Err(Error::Timeout {
                    job_id: w.handle.id(),
                    waited: w.handle.submitted().elapsed(),
                })),
                None => None,
            };
            match result {
                Some(r) => {
                    let w = self.waiting.swap_remove(i);
                    out.push((w.tag, w.handle, r));
                }
                None => i += 1,
            }
        }
        out
    }

    /// A poll of what is due at `now`: one listing when several jobs are waited for, then the
    /// due jobs it did not show, one by one (at once). Polls end by `deadline` (the nearest
    /// job deadline), so a stalled answer cannot hold the wait past it.
    fn start_fetch(&mut self, now: Instant, deadline: Instant) -> Fetch {
        let jobs = self.jobs.krea.until(deadline).jobs();
        let wanted: HashSet<Uuid> = self.waiting.iter().map(|w| w.handle.id()).collect();
        let due: Vec<Uuid> = self
            .waiting
            .iter()
            .filter(|w| w.due <= now)
            .map(|w| w.handle.id())
            .collect();
        let oldest = self
            .waiting
            .iter()
            .map(|w| w.handle.snapshot().created_at)
            .min();
        let listing = self.waiting.len() > 1;
        if listing {
            self.last_listing = Some(now);
        }
        Box::pin(async move {
            let mut listed = Vec::new();
            if listing {
                match list_waited(&jobs, &wanted, oldest).await {
                    Ok(jobs) => listed = jobs,
                    Err(e) => {
                        tracing::debug!(error = %e.report(), "listing jobs failed; polling them one by one")
                    }
                }
            }
            let seen: HashSet<Uuid> = listed.iter().map(|j| j.id).collect();
            let got = futures_util::future::join_all(
                due.into_iter().filter(|id| !seen.contains(id)).map(|id| {
                    let jobs = jobs.clone();
                    async move { (id, jobs.get(id).await) }
                }),
            )
            .await;
            Fetched {
                at: now,
                listed,
                got,
            }
        })
    }

    /// Takes in what a poll brought back, and moves the schedules on.
    fn apply(
        &mut self,
        fetched: Fetched,
        on_update: &mut impl FnMut(usize, &JobHandle, &JobUpdate, bool),
    ) {
        let index: HashMap<Uuid, usize> = self
            .waiting
            .iter()
            .enumerate()
            .map(|(i, w)| (w.handle.id(), i))
            .collect();
        let mut looked: HashSet<usize> = HashSet::new();
        for job in fetched.listed {
            if let Some(&i) = index.get(&job.id) {
                let w = &self.waiting[i];
                // Every observation is reported; the flag says whether the state is new.
                let changed = w.handle.observe(job);
                on_update(w.tag, &w.handle, &w.handle.update(), changed);
                looked.insert(i);
            }
        }
        for (id, result) in fetched.got {
            let Some(&i) = index.get(&id) else { continue };
            let w = &mut self.waiting[i];
            match result {
                Ok(job) => {
                    tracing::trace!(job_id = %job.id, status = %job.status, "polled");
                    let changed = w.handle.observe(job);
                    on_update(w.tag, &w.handle, &w.handle.update(), changed);
                    looked.insert(i);
                }
                // The deadline cut the poll short: the next round reports the timeout.
                Err(Error::DeadlineExceeded { .. }) => {}
                // It may still finish: the error names the job.
                Err(e) => {
                    w.error = Some(Error::Polling {
                        job_id: id,
                        source: Box::new(e),
                    })
                }
            }
        }
        let now = fetched.at;
        for (i, w) in self.waiting.iter_mut().enumerate() {
            // Just looked at (by its own poll or the listing): if its next poll was near, it
            // counts as done and the schedule moves on.
            let polled = looked.contains(&i) || w.due <= now;
            if polled && w.due <= now + w.schedule.upcoming() {
                w.due = Instant::now() + w.schedule.next_delay();
            }
        }
    }
}

/// Lists jobs newest first until older than the oldest one waited for (or all were seen):
/// those of `wanted`.
async fn list_waited(
    jobs: &Jobs,
    wanted: &HashSet<Uuid>,
    oldest: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<Job>> {
    let query = JobQuery {
        page_size: Some((wanted.len() as u64 * 2).clamp(100, 1000)),
        ..JobQuery::default()
    };
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let crate::Page { items, next } = jobs.page(&query, cursor).await?;
        let reached_oldest = items
            .last()
            .is_none_or(|j| oldest.is_none_or(|o| j.created_at < o));
        out.extend(items.into_iter().filter(|j| wanted.contains(&j.id)));
        if reached_oldest || out.len() == wanted.len() || next.is_none() {
            break;
        }
        cursor = next;
    }
    Ok(out)
}
