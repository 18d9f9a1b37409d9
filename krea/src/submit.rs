//! Creating paid jobs, one way for all of them (generations, style trainings, node app runs):
//! write the intent to the journal, send once (repeated only where nothing can have been
//! created), write what came of it. A failure after sending is [`Error::OutcomeUnknown`],
//! carrying what [`crate::Krea::settle`] needs to find the job.

use chrono::Utc;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use uuid::Uuid;

use crate::client::Krea;
use crate::error::{Error, Result, UnknownOutcome};
use crate::journal::{Entry, Journal, OutputPlan, fingerprint};
use crate::send::{Body, Call, Class, Fault, decode, read_capped};
use crate::types::Job;

/// A paid request about to be sent.
#[derive(Debug, Clone)]
pub(crate) struct Creation {
    /// What is being made, for errors and the journal (a model id, `node app X`...).
    pub label: String,
    /// The API path.
    pub path: String,
    pub body: Value,
    pub output: Option<OutputPlan>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The journal key for this attempt (a batch keeps it in its manifest).
    pub key: Uuid,
}

impl Creation {
    pub fn new(label: impl Into<String>, path: impl Into<String>, body: Value) -> Creation {
        Creation {
            label: label.into(),
            path: path.into(),
            body,
            output: None,
            headers: Vec::new(),
            key: Uuid::new_v4(),
        }
    }

    /// 16 hex digits identifying path and body.
    pub fn fingerprint(&self) -> String {
        fingerprint(format!("{} {}", self.path, self.body).as_bytes())
    }
}

/// The job(s) in a creation answer: one job object, or a list of them (node apps).
fn jobs_in(value: Value) -> std::result::Result<Vec<Job>, Fault> {
    let text = value.to_string();
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| decode::<Job>(v.to_string().as_bytes()))
            .collect(),
        _ => decode::<Job>(text.as_bytes()).map(|j| vec![j]),
    }
}

impl Krea {
    /// Sends `c` once, journaled in this handle's journal (if any).
    pub(crate) async fn create(&self, c: &Creation) -> Result<Vec<Job>> {
        // One paid request in flight at a time: an answer that never arrives then leaves one
        // request without a known outcome in any stretch of time, and settling can tell which
        // job is whose by time alone (the job objects do not carry the request).
        let _gate = self.inner.creating.lock().await;
        let journal = self.journal();
        let fingerprint = c.fingerprint();
        let sent_at = Utc::now();
        if let Some(j) = journal {
            // Not written, not sent: nothing is paid without a record of it.
            j.record(&Entry::Sending {
                key: c.key,
                at: sent_at,
                scope: j.scope().clone(),
                model: c.label.clone(),
                path: c.path.clone(),
                fingerprint: fingerprint.clone(),
                request: c.body.clone(),
                output: c.output.clone(),
            })?;
        }
        let call = Call {
            class: Class::Create,
            method: Method::POST,
            url: format!("{}{}", self.base_url(), c.path),
            auth: true,
            body: Body::Json(c.body.clone()),
            headers: c.headers.clone(),
            operation: c.label.clone(),
            last_sent: Default::default(),
        };
        let limit = self.inner.max_answer_bytes;
        let answer = self
            .execute(&call, |response| async move {
                let bytes = read_capped(response, limit).await?;
                jobs_in(decode::<Value>(&bytes)?)
            })
            .await;
        match answer {
            Ok(jobs) => {
                tracing::info!(what = %c.label, jobs = jobs.len(), "job created");
                self.inner.limiter.accepted();
                for job in &jobs {
                    self.note_submitted(journal, c, job.id)?;
                }
                Ok(jobs)
            }
            Err(fault) if fault.may_have_created() => {
                let job_id = match &fault {
                    Fault::Decode { job_id, .. } => *job_id,
                    _ => None,
                };
                let last_sent = call
                    .last_sent
                    .lock()
                    .ok()
                    .and_then(|at| *at)
                    .unwrap_or(sent_at);
                let outcome = UnknownOutcome {
                    model: c.label.clone(),
                    path: c.path.clone(),
                    fingerprint,
                    sent_at: last_sent,
                    job_id,
                    detail: fault.detail(self.secret()),
                };
                tracing::info!(what = %c.label, detail = %outcome.detail, job_id = ?job_id, "outcome unknown");
                if let Some(j) = journal {
                    let timed_out = matches!(&fault, Fault::Deadline)
                        || matches!(&fault, Fault::NoAnswer { source: Some(e), .. } if e.is_timeout());
                    let entry = Entry::Unknown {
                        key: c.key,
                        at: Utc::now(),
                        last_sent,
                        in_flight: timed_out,
                    };
                    // Unwritten, settling falls back to the send time: wider, still safe.
                    if let Err(e) = j.record(&entry) {
                        tracing::warn!(error = %e, "could not note an unknown outcome in the journal");
                    }
                }
                if let Some(id) = job_id {
                    // The answer named its job: that job exists, whatever else was wrong.
                    self.note_submitted(journal, c, id)?;
                }
                Err(Error::OutcomeUnknown(Box::new(outcome)))
            }
            Err(fault) => {
                if let Some(j) = journal {
                    let entry = Entry::NotCreated {
                        key: c.key,
                        at: Utc::now(),
                        reason: fault.detail(self.secret()),
                    };
                    // Unwritten, the intent stays unresolved and is settled later: no harm.
                    if let Err(e) = j.record(&entry) {
                        tracing::warn!(error = %e, "could not note a refused request in the journal");
                    }
                }
                Err(self.error(fault, &c.label))
            }
        }
    }

    fn note_submitted(&self, journal: Option<&Journal>, c: &Creation, job_id: Uuid) -> Result<()> {
        let Some(j) = journal else { return Ok(()) };
        j.record(&Entry::Submitted {
            key: Some(c.key),
            at: Utc::now(),
            scope: j.scope().clone(),
            job_id,
            model: c.label.clone(),
            request: c.body.clone(),
            output: c.output.clone(),
        })
    }
}
