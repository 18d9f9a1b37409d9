//! `krea.jobs()`: list (a paginating stream), get, wait (one or many), cancel, delete, resume.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::Stream;
use krea_gen::JobStatus;
use krea_gen::types::Job;
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::next_cursor;
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::{Finished, JobHandle, JobUpdate};
use crate::journal::Entry;
use crate::models;
use crate::poll::{FirstPoll, PollPolicy};

/// Which jobs [`Jobs::list`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobQuery {
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Only these job types (Krea's names, e.g. `flux`).
    pub types: Vec<String>,
    /// Jobs per request (1..=1000; default 100).
    pub page_size: Option<u64>,
    /// Stop after this many jobs.
    pub max: Option<usize>,
}

/// The jobs API.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub(crate) krea: Krea,
}

/// What [`Jobs::resume`] did for one journaled job.
#[derive(Debug)]
pub struct Resumed {
    /// The job.
    pub job_id: Uuid,
    /// Its model id, as journaled.
    pub model: String,
    /// The files written (empty without an output plan), or why not.
    pub outcome: Result<Vec<PathBuf>>,
}

impl Jobs {
    /// One job.
    pub async fn get(&self, id: Uuid) -> Result<Job> {
        let raw = self.krea.raw();
        let id = id.to_string();
        self.krea
            .call("get_job", || raw.get_job().id(id.clone()).send())
            .await
    }

    /// One page, newest first, of jobs created before `cursor`.
    pub async fn page(
        &self,
        query: &JobQuery,
        cursor: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(Vec<Job>, Option<chrono::DateTime<chrono::Utc>>)> {
        let size = NonZeroU64::new(query.page_size.unwrap_or(100).clamp(1, 1000))
            .unwrap_or(NonZeroU64::MIN);
        let raw = self.krea.raw();
        let types = (!query.types.is_empty()).then(|| query.types.join(","));
        let page = self
            .krea
            .call("list_jobs", || {
                let mut b = raw.list_jobs().limit(size);
                if let Some(c) = cursor {
                    b = b.cursor(c);
                }
                if let Some(s) = &query.status {
                    b = b.status(s.clone());
                }
                if let Some(t) = &types {
                    b = b.types(t.clone());
                }
                b.send()
            })
            .await?;
        Ok((page.items, next_cursor(page.next_cursor.as_deref())))
    }

    /// Every job matching `query`, newest first, fetching pages as the stream is read.
    pub fn list(&self, query: JobQuery) -> impl Stream<Item = Result<Job>> + Send + 'static {
        let state = (self.clone(), query, None, VecDeque::new(), false, 0usize);
        futures_util::stream::unfold(
            state,
            |(jobs, query, cursor, mut buffer, done, yielded)| async move {
                if query.max.is_some_and(|m| yielded >= m) {
                    return None;
                }
                if let Some(job) = buffer.pop_front() {
                    return Some((Ok(job), (jobs, query, cursor, buffer, done, yielded + 1)));
                }
                if done {
                    return None;
                }
                match jobs.page(&query, cursor).await {
                    Ok((items, next)) => {
                        let mut buffer: VecDeque<Job> = items.into();
                        let first = buffer.pop_front()?;
                        Some((
                            Ok(first),
                            (jobs, query, next, buffer, next.is_none(), yielded + 1),
                        ))
                    }
                    Err(e) => Some((Err(e), (jobs, query, cursor, buffer, true, yielded))),
                }
            },
        )
    }

    /// Waits for job `id` (created by this or another process) with the client's policy.
    pub async fn wait(&self, id: Uuid) -> Result<Finished> {
        let handle = self.handle_for(id).await?;
        let policy = PollPolicy {
            first: FirstPoll::After(Duration::ZERO),
            ..self.krea.poll_policy().clone()
        };
        handle.wait_with(&policy, |_| {}).await
    }

    /// A handle on job `id`, its model and output plan taken from the journal when known.
    pub async fn handle_for(&self, id: Uuid) -> Result<JobHandle> {
        let job = self.get(id).await?;
        let journaled = self
            .krea
            .journal()
            .and_then(|j| j.submitted(id).ok().flatten());
        let model = journaled
            .as_ref()
            .and_then(|p| models::resolve(&p.model).ok());
        Ok(JobHandle::existing(
            &self.krea,
            job,
            model,
            journaled.and_then(|p| p.output),
        ))
    }

    /// Cancels job `id` if it is still pending; `false` if it had already ended.
    pub async fn cancel(&self, id: Uuid) -> Result<bool> {
        if self.get(id).await?.status.is_terminal() {
            return Ok(false);
        }
        self.delete(id).await?;
        Ok(true)
    }

    /// `DELETE /jobs/{id}`: cancels a pending job, deletes an ended one.
    pub async fn delete(&self, id: Uuid) -> Result<()> {
        let raw = self.krea.raw();
        let id = id.to_string();
        self.krea
            .call("delete_job", || raw.delete_job().id(id.clone()).send())
            .await
    }

    /// Waits for many jobs at once. Each keeps its own poll schedule, but when any is due one
    /// `GET /jobs` page refreshes all of them, so N jobs cost far fewer than N requests per
    /// round. Results are in `handles` order.
    pub async fn wait_all(&self, handles: &[JobHandle]) -> Vec<Result<Finished>> {
        self.wait_all_with(handles, |_, _| {}).await
    }

    /// [`Jobs::wait_all`], calling `on_update` at each change of state.
    pub async fn wait_all_with(
        &self,
        handles: &[JobHandle],
        mut on_update: impl FnMut(&JobHandle, &JobUpdate),
    ) -> Vec<Result<Finished>> {
        let mut results: Vec<Option<Result<Finished>>> = handles.iter().map(|_| None).collect();
        let mut schedules: Vec<_> = handles.iter().map(|h| h.schedule(h.policy())).collect();
        let mut due: Vec<Instant> = handles
            .iter()
            .zip(schedules.iter_mut())
            .map(|(h, s)| h.submitted() + s.next_delay())
            .collect();
        let deadlines: Vec<Instant> = handles
            .iter()
            .map(|h| h.submitted() + h.policy().deadline_for(h.kind()))
            .collect();
        // Listings are at least this far apart: the shortest interval among the jobs.
        let gap = handles
            .iter()
            .map(|h| h.policy().interval.mul_f64(h.policy().time_scale))
            .min()
            .unwrap_or_default();
        let mut last_listing: Option<Instant> = None;
        loop {
            let now = Instant::now();
            for (i, h) in handles.iter().enumerate() {
                if results[i].is_none() {
                    if let Some(done) = h.settled() {
                        results[i] = Some(done);
                    } else if now >= deadlines[i] {
                        results[i] = Some(Err(Error::Timeout {
                            job_id: h.id(),
                            waited: h.submitted().elapsed(),
                        }));
                    }
                }
            }
            let pending: Vec<usize> = (0..handles.len())
                .filter(|i| results[*i].is_none())
                .collect();
            let Some(next_due) = pending.iter().map(|i| due[*i]).min() else {
                break;
            };
            let next_deadline = pending
                .iter()
                .map(|i| deadlines[*i])
                .min()
                .unwrap_or(next_due);
            let spaced = match last_listing {
                Some(at) if pending.len() > 1 => next_due.max(at + gap),
                _ => next_due,
            };
            tokio::time::sleep_until(spaced.min(next_deadline)).await;
            let now = Instant::now();
            if !pending.iter().any(|i| due[*i] <= now) {
                continue;
            }
            let mut refreshed = vec![false; handles.len()];
            if pending.len() > 1 {
                last_listing = Some(now);
                match self
                    .refresh_by_listing(handles, &pending, &mut on_update)
                    .await
                {
                    Ok(seen) => seen.into_iter().for_each(|i| refreshed[i] = true),
                    Err(e) => {
                        tracing::debug!(error = %e, "listing jobs failed; polling them one by one")
                    }
                }
            }
            for &i in &pending {
                if due[i] > now && !refreshed[i] {
                    continue;
                }
                if due[i] <= now && !refreshed[i] {
                    match self.get(handles[i].id()).await {
                        Ok(job) => {
                            if handles[i].observe(job) {
                                on_update(&handles[i], &update_of(&handles[i]));
                            }
                        }
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    }
                }
                // Just looked at (by its own poll or the listing): if its next poll was near,
                // it counts as done and the schedule moves on.
                if due[i] <= now + schedules[i].upcoming() {
                    due[i] = now + schedules[i].next_delay();
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Transport("wait ended early".into()))))
            .collect()
    }

    /// Lists jobs newest first until older than the oldest pending one; returns the indexes of
    /// the handles it saw.
    async fn refresh_by_listing(
        &self,
        handles: &[JobHandle],
        pending: &[usize],
        on_update: &mut impl FnMut(&JobHandle, &JobUpdate),
    ) -> Result<Vec<usize>> {
        let by_id: HashMap<Uuid, usize> = pending.iter().map(|i| (handles[*i].id(), *i)).collect();
        let oldest = pending
            .iter()
            .map(|i| handles[*i].snapshot().created_at)
            .min();
        let query = JobQuery {
            page_size: Some((pending.len() as u64 * 2).clamp(100, 1000)),
            ..JobQuery::default()
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..20 {
            let (items, next) = self.page(&query, cursor).await?;
            let reached_oldest = items
                .last()
                .is_none_or(|j| oldest.is_none_or(|o| j.created_at < o));
            for job in items {
                if let Some(&i) = by_id.get(&job.job_id) {
                    if handles[i].observe(job) {
                        on_update(&handles[i], &update_of(&handles[i]));
                    }
                    seen.push(i);
                }
            }
            if reached_oldest || seen.len() == pending.len() || next.is_none() {
                break;
            }
            cursor = next;
        }
        Ok(seen)
    }

    /// Finishes what an interrupted run left: every journaled job without a `finished` line is
    /// waited for (no new POST), its files downloaded where its plan says, and the journal
    /// updated.
    pub async fn resume(&self) -> Result<Vec<Resumed>> {
        let Some(journal) = self.krea.journal() else {
            return Err(Error::Config(
                "the job journal is disabled, so there is nothing to resume".into(),
            ));
        };
        let policy = PollPolicy {
            first: FirstPoll::After(Duration::ZERO),
            ..self.krea.poll_policy().clone()
        };
        let plans = journal.pending()?;
        let handles: Vec<JobHandle> = plans
            .iter()
            .map(|p| {
                // Its real state arrives with the first poll, which is immediate.
                let placeholder = Job {
                    job_id: p.job_id,
                    status: JobStatus::Queued,
                    created_at: p.submitted_at,
                    completed_at: None,
                    result: None,
                };
                let model = models::resolve(&p.model).ok();
                JobHandle::existing(&self.krea, placeholder, model, p.output.clone())
                    .with_policy(policy.clone())
            })
            .collect();
        let results = self.wait_all(&handles).await;
        let mut out = Vec::new();
        for ((p, handle), result) in plans.iter().zip(&handles).zip(results) {
            let outcome = match result {
                Ok(finished) if handle.output().is_some() => finished.download().await,
                Ok(_) => Ok(Vec::new()),
                Err(Error::Api {
                    status: 404,
                    message,
                }) => {
                    // Gone on Krea's side: nothing left to finish.
                    let gone = Entry::Finished {
                        at: chrono::Utc::now(),
                        job_id: p.job_id,
                        status: "not_found".into(),
                        files: Vec::new(),
                    };
                    if let Err(e) = journal.append(&gone) {
                        tracing::warn!(job_id = %p.job_id, error = %e, "could not write the job journal");
                    }
                    Err(Error::Api {
                        status: 404,
                        message,
                    })
                }
                Err(e) => Err(e),
            };
            out.push(Resumed {
                job_id: p.job_id,
                model: p.model.clone(),
                outcome,
            });
        }
        Ok(out)
    }
}

fn update_of(handle: &JobHandle) -> JobUpdate {
    JobUpdate {
        job_id: handle.id(),
        status: handle.status(),
        elapsed: handle.submitted().elapsed(),
    }
}
