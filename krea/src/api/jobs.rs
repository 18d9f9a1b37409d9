//! `krea.jobs()`: list (a paginating stream), get, wait (one or many: one loop), cancel,
//! delete, resume.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use reqwest::Method;
use serde::Deserialize;
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::next_cursor;
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::{Finished, JobHandle, JobUpdate};
use crate::journal::PendingJob;
use crate::models;
use crate::poll::{FirstPoll, PollPolicy};
use crate::send::{Call, Class};
use crate::types::{Job, JobStatus};

/// Which jobs [`Jobs::list`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
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

impl JobQuery {
    /// Every job, newest first.
    pub fn all() -> JobQuery {
        JobQuery::default()
    }

    /// Only jobs in `status`.
    pub fn status(mut self, status: JobStatus) -> JobQuery {
        self.status = Some(status);
        self
    }

    /// At most `n` jobs.
    pub fn max(mut self, n: usize) -> JobQuery {
        self.max = Some(n);
        self
    }

    /// `n` jobs per request.
    pub fn page_size(mut self, n: u64) -> JobQuery {
        self.page_size = Some(n);
        self
    }
}

/// The jobs API.
#[derive(Debug, Clone)]
pub struct Jobs {
    pub(crate) krea: Krea,
}

/// What [`Jobs::resume`] did for one journaled job.
#[derive(Debug)]
#[non_exhaustive]
pub struct Resumed {
    /// The job.
    pub job_id: Uuid,
    /// Its model id, as journaled.
    pub model: String,
    /// The files written (empty without an output plan), or why not.
    pub outcome: Result<Vec<PathBuf>>,
}

#[derive(Deserialize)]
struct Page {
    items: Vec<Job>,
    #[serde(default)]
    next_cursor: Option<String>,
}

impl Jobs {
    /// One job.
    pub async fn get(&self, id: Uuid) -> Result<Job> {
        self.krea
            .read(Method::GET, &format!("/jobs/{id}"), "GET /jobs/{id}")
            .await
    }

    /// The job named by `given`: a whole id, or a unique prefix of at least 6 characters (the
    /// short ids progress rows and file names show), looked up in the journal and in the
    /// newest 1000 jobs of the account. An ambiguous prefix is refused with its matches.
    ///
    /// ```no_run
    /// # async fn f(krea: krea::Krea) -> krea::Result<()> {
    /// let id = krea.jobs().resolve("fc03387f").await?;
    /// let job = krea.jobs().get(id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resolve(&self, given: &str) -> Result<Uuid> {
        let text = given.trim();
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(id);
        }
        let refuse = |matches: Vec<Uuid>, message: String| Error::UnknownJob {
            given: given.to_string(),
            matches,
            message,
        };
        let prefix = text.to_ascii_lowercase();
        let hex = prefix.chars().filter(|c| *c != '-').count();
        if hex < 6 || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(refuse(
                Vec::new(),
                format!(
                    "{} is not a job id: give the whole id or at least its first 6 characters (as `krea jobs list` shows them)",
                    crate::redact::for_display(given)
                ),
            ));
        }
        let mut found: BTreeSet<Uuid> = BTreeSet::new();
        let mut starts = |id: Uuid| {
            if id.to_string().starts_with(&prefix) {
                found.insert(id);
            }
        };
        if let Some(journal) = self.krea.journal() {
            journal.job_ids()?.into_iter().for_each(&mut starts);
        }
        let newest = self.page(&JobQuery::all().page_size(1000), None).await;
        match newest {
            Ok((jobs, _)) => jobs.iter().for_each(|j| starts(j.id)),
            // Offline, a prefix the journal knows is enough.
            Err(_) if !found.is_empty() => {}
            Err(e) => return Err(e),
        }
        let matches: Vec<Uuid> = found.into_iter().collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(refuse(
                matches,
                format!(
                    "no job id begins with {prefix} (this machine's journal and the account's newest 1000 jobs were searched): give the whole id"
                ),
            )),
            many => {
                let list: Vec<String> = many.iter().map(Uuid::to_string).collect();
                let message = format!(
                    "{prefix} begins {} job ids ({}): give more characters",
                    many.len(),
                    list.join(", ")
                );
                Err(refuse(matches, message))
            }
        }
    }

    /// One page, newest first, of jobs created before `cursor`.
    pub async fn page(
        &self,
        query: &JobQuery,
        cursor: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Job>, Option<DateTime<Utc>>)> {
        let size = query.page_size.unwrap_or(100).clamp(1, 1000);
        let mut path = format!("/jobs?limit={size}");
        if let Some(c) = cursor {
            path.push_str(&format!(
                "&cursor={}",
                c.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                    .replace('+', "%2B")
            ));
        }
        if let Some(s) = &query.status {
            path.push_str(&format!("&status={s}"));
        }
        if !query.types.is_empty() {
            path.push_str(&format!("&types={}", query.types.join(",")));
        }
        let page: Page = self.krea.read(Method::GET, &path, "GET /jobs").await?;
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
        handle.wait().await
    }

    /// A handle on job `id` (fetched now), its model and output plan taken from the journal
    /// when known; it polls at once, then as the client's policy says.
    pub async fn handle_for(&self, id: Uuid) -> Result<JobHandle> {
        let job = self.get(id).await?;
        let journaled = self.krea.journal().and_then(|j| j.submitted(id));
        let model = journaled
            .as_ref()
            .and_then(|p| models::resolve(&p.model).ok());
        let policy = PollPolicy {
            first: FirstPoll::After(Duration::ZERO),
            ..self.krea.poll_policy().clone()
        };
        Ok(
            JobHandle::existing(&self.krea, job, model, journaled.and_then(|p| p.output))
                .with_policy(policy),
        )
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
        let op = "DELETE /jobs/{id}";
        let call = Call::api(
            &self.krea,
            Class::Read,
            Method::DELETE,
            &format!("/jobs/{id}"),
            op,
        );
        self.krea
            .ignore_answer(&call)
            .await
            .map_err(|f| self.krea.error(f, op))
    }

    /// Waits for many jobs at once. Each keeps its own poll schedule, but when several are due
    /// one `GET /jobs` page refreshes them all, so N jobs cost far fewer than N requests per
    /// round. Results are in `handles` order. Every wait (one job's included) is this loop.
    pub async fn wait_all(&self, handles: &[&JobHandle]) -> Vec<Result<Finished>> {
        self.wait_all_with(handles, |_, _| {}).await
    }

    /// [`Jobs::wait_all`], calling `on_update` at each change of state.
    pub async fn wait_all_with(
        &self,
        handles: &[&JobHandle],
        mut on_update: impl FnMut(&JobHandle, &JobUpdate),
    ) -> Vec<Result<Finished>> {
        let mut waiter = Waiter::new(self.clone());
        for (i, h) in handles.iter().enumerate() {
            waiter.add(i, *h);
        }
        let mut results: Vec<Option<Result<Finished>>> = handles.iter().map(|_| None).collect();
        while !waiter.is_empty() {
            let mut report = |_: usize, h: &JobHandle, u: &JobUpdate| on_update(h, u);
            for (i, _, result) in waiter.step(None, &mut report).await {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .zip(handles)
            .map(|(r, h)| {
                r.unwrap_or_else(|| {
                    Err(Error::Timeout {
                        job_id: h.id(),
                        waited: h.submitted().elapsed(),
                    })
                })
            })
            .collect()
    }

    /// Finishes what an interrupted program left, from the journal: unknown outcomes are
    /// settled first ([`Krea::settle_all`]); then every journaled job without a `finished` line
    /// is waited for (no new request is paid for), its files downloaded where its plan says,
    /// and the journal updated. Needs a journal.
    pub async fn resume(&self) -> Result<Vec<Resumed>> {
        self.resume_with(|_, _| {}).await
    }

    /// As [`Jobs::resume`], reporting each state change of the jobs it waits for (progress
    /// displays).
    pub async fn resume_with(
        &self,
        on_update: impl FnMut(&JobHandle, &JobUpdate),
    ) -> Result<Vec<Resumed>> {
        self.resume_where(|_| true, on_update).await
    }

    /// As [`Jobs::resume_with`], for the journaled jobs `keep` accepts: a long-lived program
    /// leaves out the jobs it is already waiting for elsewhere, so no job is waited for (and
    /// downloaded) twice at once.
    pub async fn resume_where(
        &self,
        keep: impl Fn(&PendingJob) -> bool,
        on_update: impl FnMut(&JobHandle, &JobUpdate),
    ) -> Result<Vec<Resumed>> {
        let Some(journal) = self.krea.journal() else {
            return Err(Error::Config(
                "resuming needs a job journal: build the client with KreaBuilder::journal".into(),
            ));
        };
        self.krea.settle_all().await?;
        let mut plans = journal.pending()?;
        plans.retain(|p| keep(p));
        let policy = PollPolicy {
            first: FirstPoll::After(Duration::ZERO),
            ..self.krea.poll_policy().clone()
        };
        let handles: Vec<JobHandle> = plans
            .iter()
            .map(|p| {
                // Its real state arrives with the first poll, which is immediate.
                let placeholder = Job::placeholder(p.job_id, JobStatus::Queued, p.submitted_at);
                let model = models::resolve(&p.model).ok();
                JobHandle::existing(&self.krea, placeholder, model, p.output.clone())
                    .with_policy(policy.clone())
            })
            .collect();
        let refs: Vec<&JobHandle> = handles.iter().collect();
        let results = self.wait_all_with(&refs, on_update).await;
        let mut out = Vec::new();
        for ((p, handle), result) in plans.iter().zip(&handles).zip(results) {
            let outcome = match result {
                Ok(finished) if handle.output().is_some() => finished.download().await,
                Ok(_) => Ok(Vec::new()),
                Err(Error::Polling { source, .. })
                    if matches!(*source, Error::Api { status: 404, .. }) =>
                {
                    // Gone on Krea's side (deleted): nothing left to finish.
                    self.krea.journal_finished(p.job_id, "not_found", &[])?;
                    Err(*source)
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

/// One job being waited for.
struct Waiting<H> {
    tag: usize,
    handle: H,
    schedule: crate::poll::Schedule,
    due: Instant,
    deadline: Instant,
    /// Polling it failed for good: its wait ends with this.
    error: Option<Error>,
}

/// The wait loop: jobs can be added while others are waited for (a batch adds as it submits).
/// Each [`Waiter::step`] sleeps until the next poll is due (or `until`), polls what is due (one
/// listing for many), and returns the jobs that ended or ran out of time.
pub(crate) struct Waiter<H> {
    jobs: Jobs,
    waiting: Vec<Waiting<H>>,
    last_listing: Option<Instant>,
}

impl<H: std::ops::Deref<Target = JobHandle>> Waiter<H> {
    pub fn new(jobs: Jobs) -> Waiter<H> {
        Waiter {
            jobs,
            waiting: Vec::new(),
            last_listing: None,
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
        on_update: &mut impl FnMut(usize, &JobHandle, &JobUpdate),
    ) -> Vec<(usize, H, Result<Finished>)> {
        let mut ended = self.take_ended();
        if !ended.is_empty() || self.waiting.is_empty() {
            return ended;
        }
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
            self.poll_due(now, next_deadline, on_update).await;
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

    async fn poll_due(
        &mut self,
        now: Instant,
        deadline: Instant,
        on_update: &mut impl FnMut(usize, &JobHandle, &JobUpdate),
    ) {
        // Polls made now end by the nearest job deadline, so a stalled answer cannot hold the
        // wait past it.
        let jobs = self.jobs.krea.until(deadline).jobs();
        let mut refreshed = vec![false; self.waiting.len()];
        if self.waiting.len() > 1 {
            self.last_listing = Some(now);
            match self.refresh_by_listing(&jobs, on_update).await {
                Ok(seen) => seen.into_iter().for_each(|i| refreshed[i] = true),
                Err(e) => {
                    tracing::debug!(error = %e, "listing jobs failed; polling them one by one")
                }
            }
        }
        for (i, w) in self.waiting.iter_mut().enumerate() {
            if w.due > now && !refreshed[i] {
                continue;
            }
            if w.due <= now && !refreshed[i] {
                match jobs.get(w.handle.id()).await {
                    Ok(job) => {
                        tracing::trace!(job_id = %job.id, status = %job.status, "polled");
                        if w.handle.observe(job) {
                            on_update(w.tag, &w.handle, &w.handle.update());
                        }
                    }
                    // The deadline cut the poll short: the next round reports the timeout.
                    Err(Error::DeadlineExceeded { .. }) => continue,
                    Err(e) => {
                        // It may still finish: the error names the job.
                        w.error = Some(Error::Polling {
                            job_id: w.handle.id(),
                            source: Box::new(e),
                        });
                        continue;
                    }
                }
            }
            // Just looked at (by its own poll or the listing): if its next poll was near, it
            // counts as done and the schedule moves on.
            if w.due <= now + w.schedule.upcoming() {
                w.due = now + w.schedule.next_delay();
            }
        }
    }

    /// Lists jobs newest first until older than the oldest one waited for; returns the
    /// indexes of the jobs it saw.
    async fn refresh_by_listing(
        &self,
        jobs: &Jobs,
        on_update: &mut impl FnMut(usize, &JobHandle, &JobUpdate),
    ) -> Result<Vec<usize>> {
        let by_id: HashMap<Uuid, usize> = self
            .waiting
            .iter()
            .enumerate()
            .map(|(i, w)| (w.handle.id(), i))
            .collect();
        let oldest = self
            .waiting
            .iter()
            .map(|w| w.handle.snapshot().created_at)
            .min();
        let query = JobQuery {
            page_size: Some((self.waiting.len() as u64 * 2).clamp(100, 1000)),
            ..JobQuery::default()
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..20 {
            let (items, next) = jobs.page(&query, cursor).await?;
            let reached_oldest = items
                .last()
                .is_none_or(|j| oldest.is_none_or(|o| j.created_at < o));
            for job in items {
                if let Some(&i) = by_id.get(&job.id) {
                    let w = &self.waiting[i];
                    if w.handle.observe(job) {
                        on_update(w.tag, &w.handle, &w.handle.update());
                    }
                    seen.push(i);
                }
            }
            if reached_oldest || seen.len() == self.waiting.len() || next.is_none() {
                break;
            }
            cursor = next;
        }
        Ok(seen)
    }
}
