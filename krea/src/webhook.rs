//! Checking a webhook delivery. Krea POSTs the job JSON to `X-Webhook-URL` when it ends; the
//! POST is not signed, so a receiver must only trust jobs it created (see
//! `examples/webhook_receiver.rs`).

use uuid::Uuid;

use crate::client::Krea;
use crate::error::Result;
use crate::job::{Finished, JobHandle};
use crate::types::Job;

/// Why a webhook body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Not a job as JSON.
    #[error("the webhook body is not a Krea job: {0}")]
    Malformed(String),
    /// A job this receiver did not create: ignore it (webhooks are unsigned).
    #[error("job {0} was not created by this client; ignoring it")]
    UnknownJob(Uuid),
    /// Krea only calls on terminal states; anything else is suspect.
    #[error("job {job_id} is {status}, not finished; ignoring it")]
    NotTerminal {
        /// The job.
        job_id: Uuid,
        /// Its state in the body.
        status: String,
    },
}

/// Parses a webhook body and checks that the job is one `is_ours` recognises and that it has
/// ended.
///
/// ```
/// let body = br#"{"job_id":"4d0e5f97-9721-4422-b88c-73a9032d7de1","status":"completed","created_at":"2026-11-21T10:00:00Z","completed_at":"2026-11-21T10:00:07Z","result":{"urls":["https://cdn.example/a.png"]}}"#;
/// let ours = uuid::Uuid::parse_str("4d0e5f97-9721-4422-b88c-73a9032d7de1").unwrap();
/// let job = krea::webhook::parse(body, |id| id == ours)?;
/// assert_eq!(job.urls().len(), 1);
/// assert!(krea::webhook::parse(body, |_| false).is_err());
/// # Ok::<(), krea::webhook::WebhookError>(())
/// ```
pub fn parse(body: &[u8], is_ours: impl Fn(Uuid) -> bool) -> Result<Job, WebhookError> {
    let job: Job =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if !is_ours(job.id) {
        return Err(WebhookError::UnknownJob(job.id));
    }
    if !job.status.is_terminal() {
        return Err(WebhookError::NotTerminal {
            job_id: job.id,
            status: crate::redact::for_display(job.status.as_str()),
        });
    }
    Ok(job)
}

impl Krea {
    /// A job delivered by a webhook (already checked with [`parse`]) as the outcome of waiting
    /// for it: a [`Finished`] that downloads with no further request to the API (its model and
    /// output plan from the journal, when kept), or the job's failure. The journal is updated
    /// like after a wait.
    pub fn delivered(&self, job: Job) -> Result<Finished> {
        let journaled = self.journal().and_then(|j| j.submitted(job.id));
        let model = journaled
            .as_ref()
            .and_then(|p| crate::models::resolve(&p.model).ok());
        let output = journaled.and_then(|p| p.output);
        let handle = JobHandle::existing(self, job, model, output);
        handle.settled().unwrap_or_else(|| {
            Err(crate::Error::Config(
                "a webhook job that has not ended cannot be delivered".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_and_pending_jobs() {
        assert!(matches!(
            parse(b"{}", |_| true),
            Err(WebhookError::Malformed(_))
        ));
        let pending = br#"{"job_id":"4d0e5f97-9721-4422-b88c-73a9032d7de1","status":"processing","created_at":"2026-11-21T10:00:00Z"}"#;
        assert!(matches!(
            parse(pending, |_| true),
            Err(WebhookError::NotTerminal { .. })
        ));
    }
}
