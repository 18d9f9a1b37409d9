//! Sending a checked request: inputs uploaded, the creation journaled and sent once.

use reqwest::header::{HeaderName, HeaderValue};

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::journal::OutputPlan;
use crate::poll::PollPolicy;
use crate::submit::Creation;

use super::{Checked, GenerationRequest};

impl GenerationRequest {
    /// Checks; uploads local inputs; sends once (journaled, if the client keeps a journal);
    /// returns a handle to wait on. The values chosen for the request are logged.
    pub async fn submit(self) -> Result<JobHandle> {
        self.submit_keyed(uuid::Uuid::new_v4(), None).await
    }

    /// [`GenerationRequest::submit`], and where the answer is lost, settles it (within the
    /// client's deadline, see [`Krea::until`]): the job the request created is returned, and a
    /// request settled as having created nothing is sent again. Still undecided at the
    /// deadline, the [`Error::OutcomeUnknown`] is returned (the journal, if any, keeps it for
    /// [`Krea::settle_all`]). Never sent again while it may have created a job.
    ///
    /// ```no_run
    /// # async fn run(krea: krea::Krea) -> krea::Result<()> {
    /// let job = krea.image("flux").prompt("a fox").submit_settled().await?;
    /// let files = job.wait().await?.download_to("out/").await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit_settled(self) -> Result<JobHandle> {
        // A server that loses every answer before creating anything is not chased forever.
        let mut sent = 0;
        loop {
            sent += 1;
            let outcome = match self.clone().submit().await {
                Err(Error::OutcomeUnknown(u)) => u,
                other => return other,
            };
            match self.krea.settle(&outcome).await? {
                crate::Settlement::Adopted { job_id, .. } => {
                    let job = crate::types::Job::placeholder(
                        job_id,
                        crate::JobStatus::Queued,
                        chrono::Utc::now(),
                    );
                    let poll = self.poll.clone().unwrap_or_else(|| PollPolicy {
                        first: crate::poll::FirstPoll::After(std::time::Duration::ZERO),
                        ..self.krea.poll_policy().clone()
                    });
                    return Ok(
                        JobHandle::existing(&self.krea, job, self.model, self.output)
                            .with_policy(poll),
                    );
                }
                crate::Settlement::NotCreated { .. } if sent < 3 => continue,
                crate::Settlement::NotCreated { .. } => {
                    return Err(Error::Transport {
                        operation: outcome.model.clone(),
                        detail: format!(
                            "three requests in a row lost their answers and created nothing ({})",
                            outcome.detail
                        ),
                        source: None,
                    });
                }
                _ => return Err(Error::OutcomeUnknown(outcome)),
            }
        }
    }

    /// Where the results go, if planned.
    pub fn output(&self) -> Option<&OutputPlan> {
        self.output.as_ref()
    }

    /// The client this request is sent with.
    pub(crate) fn with_client(mut self, krea: &Krea) -> Self {
        self.krea = krea.clone();
        self
    }

    /// [`GenerationRequest::submit`] with the journal key chosen by the caller (a batch records
    /// it in its manifest before sending).
    pub(crate) async fn submit_keyed(
        self,
        key: uuid::Uuid,
        admission: Option<crate::limiter::Admission>,
    ) -> Result<JobHandle> {
        self.submit_for_line(key, admission, None).await
    }

    /// [`GenerationRequest::submit_keyed`] for a line of a shared batch: written down (and so
    /// sent) only while this client holds the line's claim.
    pub(crate) async fn submit_for_line(
        self,
        key: uuid::Uuid,
        admission: Option<crate::limiter::Admission>,
        line: Option<crate::journal::LineRef>,
    ) -> Result<JobHandle> {
        // Everything is checked before the first upload.
        let checked = self.check()?;
        let mut urls = Vec::with_capacity(self.inputs.len());
        for (_, input) in &self.inputs {
            urls.push(input.resolve(&self.krea).await?);
        }
        let params = self.placed(&urls);
        let Checked {
            model, body, notes, ..
        } = if self.inputs.is_empty() {
            checked
        } else {
            self.check_with(&params)?
        };
        for note in &notes {
            tracing::info!(model = model.id, "{note}");
        }
        if self.unchecked {
            tracing::info!(
                path = model.path,
                "no catalog lists this endpoint: sending the body unchecked"
            );
        }
        let mut creation = Creation::new(model.id.as_str(), model.path.as_str(), body);
        creation.key = key;
        creation.admission = admission;
        creation.line = line;
        creation.output = self.output.clone();
        if let Some(url) = &self.webhook
            && let Ok(v) = HeaderValue::try_from(url.as_str())
        {
            creation
                .headers
                .push((HeaderName::from_static("x-webhook-url"), v));
        }
        let jobs = self.krea.create(&creation).await?;
        let job = jobs.into_iter().next().ok_or_else(|| Error::Decode {
            operation: model.id.clone(),
            path: None,
            message: "the answer named no job".into(),
            body: String::new(),
        })?;
        let poll = self.poll.unwrap_or_else(|| self.krea.poll_policy().clone());
        Ok(JobHandle::new(
            self.krea,
            job,
            Some(model),
            self.output,
            poll,
            self.cancel_on_drop,
        ))
    }
}
