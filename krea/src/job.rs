//! A submitted job: waiting for it (smart polling), following its progress, cancelling it.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::Stream;
use krea_gen::JobStatus;
use krea_gen::types::Job;
use tokio::time::Instant;
use uuid::Uuid;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::journal::{Entry, OutputPlan};
use crate::limiter::Permit;
use crate::models::{Kind, ModelSpec};
use crate::poll::{PollPolicy, Schedule, kind_default};

/// A change of state seen while waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct JobUpdate {
    /// The job.
    pub job_id: Uuid,
    /// Its new state.
    pub status: JobStatus,
    /// Time since the handle was created (submission).
    pub elapsed: Duration,
}

/// A job that has been created. Wait for it with [`JobHandle::wait`].
#[derive(Debug)]
pub struct JobHandle {
    krea: Krea,
    job: Mutex<Job>,
    model: Option<&'static ModelSpec>,
    output: Option<OutputPlan>,
    poll: PollPolicy,
    /// The limiter slot, held until the job is seen to end.
    permit: Mutex<Option<Permit>>,
    cancel_on_drop: bool,
    created: Instant,
}

impl JobHandle {
    pub(crate) fn new(
        krea: Krea,
        job: Job,
        model: Option<&'static ModelSpec>,
        output: Option<OutputPlan>,
        poll: PollPolicy,
        permit: Option<Permit>,
        cancel_on_drop: bool,
    ) -> JobHandle {
        JobHandle {
            krea,
            job: Mutex::new(job),
            model,
            output,
            poll,
            permit: Mutex::new(permit),
            cancel_on_drop,
            created: Instant::now(),
        }
    }

    /// A handle on an existing job (from its id), e.g. one created by another process.
    pub fn existing(
        krea: &Krea,
        job: Job,
        model: Option<&'static ModelSpec>,
        output: Option<OutputPlan>,
    ) -> JobHandle {
        let poll = krea.poll_policy().clone();
        JobHandle::new(krea.clone(), job, model, output, poll, None, false)
    }

    /// The same handle polling with `policy`.
    pub fn with_policy(mut self, policy: PollPolicy) -> JobHandle {
        self.poll = policy;
        self
    }

    /// The job id.
    pub fn id(&self) -> Uuid {
        self.snapshot().job_id
    }

    /// The model, when known.
    pub fn model(&self) -> Option<&'static ModelSpec> {
        self.model
    }

    /// The job as last seen.
    pub fn snapshot(&self) -> Job {
        self.job.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where its files go, if planned.
    pub fn output(&self) -> Option<&OutputPlan> {
        self.output.as_ref()
    }

    /// The state as last seen.
    pub fn status(&self) -> JobStatus {
        self.snapshot().status
    }

    pub(crate) fn kind(&self) -> Kind {
        self.model.map_or(Kind::Image, |m| m.kind)
    }

    pub(crate) fn policy(&self) -> &PollPolicy {
        &self.poll
    }

    pub(crate) fn submitted(&self) -> Instant {
        self.created
    }

    /// The poll schedule for this job.
    pub(crate) fn schedule(&self, policy: &PollPolicy) -> Schedule {
        let expected = match self.model {
            Some(m) => self.krea.expectation(m),
            None => crate::poll::Expectation {
                seconds: kind_default(Kind::Image),
                founded: false,
            },
        };
        policy.schedule(expected)
    }

    /// Records what a poll saw; returns whether the state changed.
    pub(crate) fn observe(&self, job: Job) -> bool {
        let mut current = self.job.lock().unwrap_or_else(|p| p.into_inner());
        let changed = current.status != job.status;
        *current = job;
        changed
    }

    /// Fetches the job now.
    pub async fn refresh(&self) -> Result<Job> {
        let job = self.krea.jobs().get(self.id()).await?;
        self.observe(job.clone());
        Ok(job)
    }

    /// Waits with the handle's poll policy until the job ends.
    pub async fn wait(&self) -> Result<Finished> {
        self.wait_with(&self.poll.clone(), |_| {}).await
    }

    /// Waits with `policy`, calling `on_update` at each change of state.
    pub async fn wait_with(
        &self,
        policy: &PollPolicy,
        mut on_update: impl FnMut(&JobUpdate),
    ) -> Result<Finished> {
        let mut schedule = self.schedule(policy);
        let deadline = self.created + policy.deadline_for(self.kind());
        let mut at = self.created;
        loop {
            if let Some(done) = self.settled() {
                return done;
            }
            at = (at + schedule.next_delay()).max(Instant::now());
            if at >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(Error::Timeout {
                    job_id: self.id(),
                    waited: self.created.elapsed(),
                });
            }
            tokio::time::sleep_until(at).await;
            let job = self.krea.jobs().get(self.id()).await?;
            tracing::trace!(job_id = %job.job_id, status = %job.status, "polled");
            if self.observe(job) {
                tracing::debug!(job_id = %self.id(), status = %self.status(), "state changed");
                on_update(&self.update());
            }
        }
    }

    /// The state changes until the job ends, as a stream (the last item is the final state).
    pub fn updates(&self) -> impl Stream<Item = Result<JobUpdate>> + '_ {
        let schedule = self.schedule(&self.poll);
        let deadline = self.created + self.poll.deadline_for(self.kind());
        futures_util::stream::unfold(
            (schedule, self.created, false),
            move |(mut schedule, mut at, done)| async move {
                if done {
                    return None;
                }
                loop {
                    at = (at + schedule.next_delay()).max(Instant::now());
                    if at >= deadline {
                        let timeout = Error::Timeout {
                            job_id: self.id(),
                            waited: self.created.elapsed(),
                        };
                        return Some((Err(timeout), (schedule, at, true)));
                    }
                    tokio::time::sleep_until(at).await;
                    match self.krea.jobs().get(self.id()).await {
                        Ok(job) => {
                            let terminal = job.status.is_terminal();
                            if self.observe(job) || terminal {
                                return Some((Ok(self.update()), (schedule, at, terminal)));
                            }
                        }
                        Err(e) => return Some((Err(e), (schedule, at, true))),
                    }
                }
            },
        )
    }

    fn update(&self) -> JobUpdate {
        JobUpdate {
            job_id: self.id(),
            status: self.status(),
            elapsed: self.created.elapsed(),
        }
    }

    /// If the job has ended: release the slot, learn its duration, and give the outcome.
    pub(crate) fn settled(&self) -> Option<Result<Finished>> {
        let job = self.snapshot();
        if !job.status.is_terminal() {
            return None;
        }
        self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (Some(model), Some(done), JobStatus::Completed) =
            (self.model, job.completed_at, &job.status)
        {
            let seconds = (done - job.created_at).num_milliseconds() as f64 / 1000.0;
            self.krea.observe_duration(model, seconds);
        }
        Some(self.outcome(job))
    }

    fn outcome(&self, job: Job) -> Result<Finished> {
        let journal_finished = |status: &JobStatus| {
            if let Some(journal) = self.krea.journal() {
                let entry = Entry::Finished {
                    at: chrono::Utc::now(),
                    job_id: job.job_id,
                    status: status.to_string(),
                    files: Vec::new(),
                };
                if let Err(e) = journal.append(&entry) {
                    tracing::warn!(job_id = %job.job_id, error = %e, "could not write the job journal");
                }
            }
        };
        match &job.status {
            JobStatus::Completed => {
                // With an output plan, the journal entry is closed once the files are on disk.
                if self.output.is_none() {
                    journal_finished(&job.status);
                }
                Ok(Finished {
                    krea: self.krea.clone(),
                    job,
                    model: self.model,
                    output: self.output.clone(),
                })
            }
            status => {
                journal_finished(status);
                Err(Error::JobFailed {
                    job_id: job.job_id,
                    reason: status.to_string(),
                })
            }
        }
    }

    /// Cancels the job if it is still pending (Krea does not charge cancelled jobs).
    pub async fn cancel(&self) -> Result<bool> {
        let cancelled = self.krea.jobs().cancel(self.id()).await?;
        self.refresh().await?;
        Ok(cancelled)
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.cancel_on_drop || self.status().is_terminal() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(job_id = %self.id(), "cannot cancel on drop outside a Tokio runtime");
            return;
        };
        let (krea, id) = (self.krea.clone(), self.id());
        runtime.spawn(async move {
            if let Err(e) = krea.jobs().cancel(id).await {
                tracing::warn!(job_id = %id, error = %e, "cancel on drop failed");
            }
        });
    }
}

/// A completed job: its result URLs, and downloading them.
#[derive(Debug, Clone)]
pub struct Finished {
    pub(crate) krea: Krea,
    pub(crate) job: Job,
    pub(crate) model: Option<&'static ModelSpec>,
    pub(crate) output: Option<OutputPlan>,
}

impl Finished {
    /// The job id.
    pub fn job_id(&self) -> Uuid {
        self.job.job_id
    }

    /// The job as Krea returned it.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The model that produced it (every result says which).
    pub fn model(&self) -> Option<&'static ModelSpec> {
        self.model
    }

    /// The model id, or `unknown` for a job of unknown origin.
    pub fn model_id(&self) -> &str {
        self.model.map_or("unknown", |m| m.id)
    }

    /// The result files' URLs.
    pub fn urls(&self) -> &[String] {
        self.job.result.as_ref().map_or(&[], |r| r.urls.as_slice())
    }

    /// The trained style, for a style-training job.
    pub fn style_id(&self) -> Option<&str> {
        self.job.result.as_ref().and_then(|r| r.style_id.as_deref())
    }

    /// Server-side duration (created to completed).
    pub fn duration(&self) -> Option<Duration> {
        let done = self.job.completed_at?;
        (done - self.job.created_at).to_std().ok()
    }
}
