//! A submitted job ([`JobHandle`]: wait, follow, cancel) and a completed one ([`Finished`]:
//! its results, downloading them).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::journal::OutputPlan;
use crate::models::{Kind, ModelSpec};
use crate::poll::{Expectation, PollPolicy, PollSchedule, kind_default};
use crate::types::{Job, JobStatus};

/// A change of state seen while waiting.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobUpdate {
    /// The job.
    pub job_id: Uuid,
    /// Its new state.
    pub status: JobStatus,
    /// Time since the handle was created (submission).
    pub elapsed: Duration,
}

/// A job that has been created. Wait for it with [`JobHandle::wait`] (or many at once with
/// [`crate::Jobs::wait_all`]). A handle holds nothing but the job's id and what is known of
/// it: dropping it loses nothing (the job runs on; its id is in the journal, if one is kept).
#[derive(Debug)]
pub struct JobHandle {
    pub(crate) krea: Krea,
    job: Mutex<Job>,
    model: Option<&'static ModelSpec>,
    output: Option<OutputPlan>,
    poll: PollPolicy,
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
        cancel_on_drop: bool,
    ) -> JobHandle {
        JobHandle {
            krea,
            job: Mutex::new(job),
            model,
            output,
            poll,
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
        JobHandle::new(krea.clone(), job, model, output, poll, false)
    }

    /// The same handle polling with `policy`.
    pub fn with_policy(mut self, policy: PollPolicy) -> JobHandle {
        self.poll = policy;
        self
    }

    /// The job id.
    pub fn id(&self) -> Uuid {
        self.snapshot().id
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

    /// Time since the handle was made.
    pub fn elapsed(&self) -> Duration {
        self.created.elapsed()
    }

    /// What the client expects this job to take (observed durations, else the catalog).
    pub fn expected(&self) -> Expectation {
        match self.model {
            Some(m) => self.krea.expectation(m),
            None => Expectation {
                seconds: kind_default(Kind::Image),
                founded: false,
            },
        }
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
    pub(crate) fn schedule(&self) -> PollSchedule {
        self.poll.schedule(self.expected())
    }

    /// Records what a poll saw; returns whether the state changed.
    pub(crate) fn observe(&self, job: Job) -> bool {
        let mut current = self.job.lock().unwrap_or_else(|p| p.into_inner());
        let changed = current.status != job.status;
        *current = job;
        changed
    }

    pub(crate) fn update(&self) -> JobUpdate {
        JobUpdate {
            job_id: self.id(),
            status: self.status(),
            elapsed: self.created.elapsed(),
        }
    }

    /// Fetches the job now.
    pub async fn refresh(&self) -> Result<Job> {
        let job = self.krea.jobs().get(self.id()).await?;
        self.observe(job.clone());
        Ok(job)
    }

    /// Waits with the handle's poll policy until the job ends.
    pub async fn wait(&self) -> Result<Finished> {
        self.wait_with(|_| {}).await
    }

    /// Waits, calling `on_update` at each change of state (the same loop as
    /// [`crate::Jobs::wait_all`], for one job).
    pub async fn wait_with(&self, mut on_update: impl FnMut(&JobUpdate)) -> Result<Finished> {
        let mut results = self
            .krea
            .jobs()
            .wait_all_with(&[self], |_, update| on_update(update))
            .await;
        results.pop().unwrap_or_else(|| {
            Err(Error::Timeout {
                job_id: self.id(),
                waited: self.created.elapsed(),
            })
        })
    }

    /// If the job has ended: learn its duration, and give the outcome.
    pub(crate) fn settled(&self) -> Option<Result<Finished>> {
        let job = self.snapshot();
        if !job.status.is_terminal() {
            return None;
        }
        if let (Some(model), Some(done), JobStatus::Completed) =
            (self.model, job.completed_at, &job.status)
        {
            let seconds = (done - job.created_at).num_milliseconds() as f64 / 1000.0;
            self.krea.observe_duration(model, seconds);
        }
        Some(self.outcome(job))
    }

    fn outcome(&self, job: Job) -> Result<Finished> {
        match &job.status {
            JobStatus::Completed => {
                let finished = Finished {
                    krea: self.krea.clone(),
                    job,
                    model: self.model,
                    output: self.output.clone(),
                };
                // With an output plan the journal entry is closed once the files are on disk.
                if self.output.is_none() {
                    finished.close_journal(&[])?;
                }
                Ok(finished)
            }
            status => {
                let reason = job
                    .result
                    .as_ref()
                    .and_then(|r| r.error.as_deref())
                    .map(|r| crate::redact::clean(r, self.krea.secret(), 300));
                self.krea.journal_finished(job.id, status.as_str(), &[])?;
                Err(Error::JobFailed {
                    job_id: job.id,
                    status: status.clone(),
                    reason,
                })
            }
        }
    }

    /// Cancels the job if it is still pending (Krea does not charge cancelled jobs); `false`
    /// if it had already ended.
    pub async fn cancel(&self) -> Result<bool> {
        let cancelled = self.krea.jobs().cancel(self.id()).await?;
        self.refresh().await?;
        Ok(cancelled)
    }

    /// Cancel the job if this handle is dropped before it ends.
    pub fn cancel_on_drop(mut self) -> JobHandle {
        self.cancel_on_drop = true;
        self
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
                tracing::warn!(job_id = %id, error = %e.report(), "cancel on drop failed");
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
        self.job.id
    }

    /// The job as Krea returned it.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The model that produced it, when known (every result says which).
    pub fn model(&self) -> Option<&'static ModelSpec> {
        self.model
    }

    /// The model id, when known.
    pub fn model_id(&self) -> Option<&'static str> {
        self.model.map(|m| m.id.as_str())
    }

    /// The result files' URLs (as Krea sent them; clean them with
    /// [`crate::redact::for_display`] before showing them).
    pub fn urls(&self) -> &[String] {
        self.job.urls()
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

    /// Where its files go, if planned.
    pub fn output(&self) -> Option<&OutputPlan> {
        self.output.as_ref()
    }

    /// Notes in the journal (if any) that this job is done, with the files written.
    pub(crate) fn close_journal(&self, files: &[std::path::PathBuf]) -> Result<()> {
        self.krea
            .journal_finished(self.job.id, self.job.status.as_str(), files)
    }
}

impl Krea {
    /// Writes a `finished` line for `job_id` (once), if a journal is kept.
    pub(crate) fn journal_finished(
        &self,
        job_id: Uuid,
        status: &str,
        files: &[std::path::PathBuf],
    ) -> Result<()> {
        let Some(journal) = self.journal() else {
            return Ok(());
        };
        if journal.is_finished(job_id) {
            return Ok(());
        }
        journal.record_until(
            &crate::journal::Entry::Finished {
                at: chrono::Utc::now(),
                job_id,
                status: status.to_string(),
                files: files.to_vec(),
            },
            self.deadline,
        )
    }
}
