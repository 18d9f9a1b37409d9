//! `krea.jobs()`: list (a paginating stream), get, wait (one or many: one loop), cancel,
//! delete, resume.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use reqwest::Method;
use serde::Deserialize;
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
use crate::wait::Waiter;

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
    /// What it may cost, from the journaled request (an unpriced model at its assumed
    /// price); `None` for a model this build does not know.
    pub estimate: Option<crate::Estimate>,
    /// The files written (empty without an output plan), or why not.
    pub outcome: Result<Vec<PathBuf>>,
}

/// One page of a listing, newest first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<T> {
    /// What the page holds.
    pub items: Vec<T>,
    /// Where the next page starts (pass it back as the cursor); `None` on the last page.
    pub next: Option<DateTime<Utc>>,
}

/// `GET /jobs` as the API answers it.
#[derive(Deserialize)]
struct RawPage {
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
            Ok(page) => page.items.iter().for_each(|j| starts(j.id)),
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

    /// One page, newest first, of jobs created before `cursor` (`None`: the newest). Most
    /// callers want [`Jobs::list`], which reads the pages as its stream is read.
    pub async fn page(&self, query: &JobQuery, cursor: Option<DateTime<Utc>>) -> Result<Page<Job>> {
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
        let page: RawPage = self.krea.read(Method::GET, &path, "GET /jobs").await?;
        Ok(Page {
            items: page.items,
            next: next_cursor(page.next_cursor.as_deref()),
        })
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
                    Ok(Page { items, next }) => {
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
            let mut report = |_: usize, h: &JobHandle, u: &JobUpdate, changed: bool| {
                if changed {
                    on_update(h, u);
                }
            };
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
            let estimate = models::resolve(&p.model)
                .ok()
                .map(|m| crate::cost::worst_case(m, &p.request, self.krea.inner.assumed_price));
            out.push(Resumed {
                job_id: p.job_id,
                model: p.model.clone(),
                estimate,
                outcome,
            });
        }
        Ok(out)
    }
}
