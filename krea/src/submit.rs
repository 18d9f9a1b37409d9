//! Creating paid jobs, one way for all of them (generations, style trainings, node app runs):
//! each attempt paced ([`crate::pacer`]) and written to the journal before it goes out, then
//! what the answer proves:
//!
//! - a success status proves the job exists, whatever its body: the job id is taken from the
//!   body if any form of it is there; otherwise the outcome is "created, id unknown", found
//!   later by settling and never sent again;
//! - 3xx (not followed), 400-407 and 409-499 prove nothing was created;
//! - 408, 5xx, a reset, a timeout or the deadline passing in flight leave it unknown:
//!   [`Error::OutcomeUnknown`], carrying what [`crate::Krea::settle`] needs to find the job.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;
use uuid::Uuid;

use crate::client::Krea;
use crate::error::{Error, Result, UnknownOutcome};
use crate::evidence::Exchange;
use crate::journal::{Entry, Journal, LineRef, OutputPlan, Paced, fingerprint};
use crate::limiter::Admission;
use crate::pacer::{Awaiting, CAP, FLOOR};
use crate::send::{Body, Call, Class, Fault, decode, read_capped};
use crate::types::{Job, JobStatus};

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
    /// The journal key for this request (a batch keeps it in its manifest).
    pub key: Uuid,
    /// The batch slot it holds: checked as it goes out, marked running when accepted, and a
    /// 429 handed back to the batch (which waits for a slot) instead of retried here.
    pub admission: Option<Admission>,
    /// The shared batch line it is for (sent only while this client holds its claim).
    pub line: Option<LineRef>,
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
            admission: None,
            line: None,
        }
    }

    /// 16 hex digits identifying path and body.
    pub fn fingerprint(&self) -> String {
        fingerprint(format!("{} {}", self.path, self.body).as_bytes())
    }
}

/// The job(s) in a creation answer: one job object, or a list of them (node apps). Parsed once,
/// straight into jobs: this runs for every paid request.
fn jobs_in(bytes: &[u8]) -> std::result::Result<Vec<Job>, Fault> {
    if bytes.trim_ascii_start().starts_with(b"[") {
        decode::<Vec<Job>>(bytes)
    } else {
        decode::<Job>(bytes).map(|j| vec![j])
    }
}

impl Krea {
    /// Sends `c` (retried only where nothing can have been created), journaled in this
    /// handle's journal (if any).
    pub(crate) async fn create(&self, c: &Creation) -> Result<Vec<Job>> {
        let journal = self.journal();
        let fingerprint = c.fingerprint();
        let call = Call {
            class: Class::Create,
            method: Method::POST,
            url: format!("{}{}", self.base_url(), c.path),
            auth: true,
            body: Body::Json(c.body.clone()),
            headers: c.headers.clone(),
            operation: c.label.clone(),
            last_sent: Default::default(),
            retry_rate_limited: c.admission.is_none(),
        };
        // When the current attempt was written down (just before it went out), and its place
        // among the attempts awaiting answers.
        let attempt_at: Mutex<Option<DateTime<Utc>>> = Mutex::new(None);
        let out: Mutex<Option<Awaiting<'_>>> = Mutex::new(None);
        // Awaiting its answer until this returns: settling leaves its job to it meanwhile.
        let _flight = self.inner.settling.flying(c.key, Utc::now());
        let limit = self.inner.max_answer_bytes;
        let answer = self
            .execute_with(
                &call,
                |attempt| {
                    let attempt_at = &attempt_at;
                    let out = &out;
                    let fingerprint = &fingerprint;
                    async move {
                        let admitted = || c.admission.as_ref().is_none_or(|a| a.admits());
                        if !admitted() {
                            return Err(Fault::Held);
                        }
                        // The last attempt was answered (a refusal): it awaits nothing more.
                        drop(out.lock().ok().and_then(|mut o| o.take()));
                        let (at, awaiting) = self.pace(journal, c, fingerprint, attempt).await?;
                        if let Ok(mut o) = out.lock() {
                            *o = Some(awaiting);
                        }
                        self.inner.settling.note_attempt(c.key, at);
                        if let Ok(mut slot) = attempt_at.lock() {
                            *slot = Some(at);
                        }
                        if let Some(a) = &c.admission
                            && !a.send()
                        {
                            // Written down, not sent: recorded as not created below.
                            return Err(Fault::Held);
                        }
                        Ok(())
                    }
                },
                |response| async move {
                    let bytes = read_capped(response, limit).await?;
                    jobs_in(&bytes)
                },
            )
            .await;
        let sent = attempt_at.lock().ok().and_then(|a| *a);
        let ended = Utc::now();
        match answer {
            Ok(jobs) => {
                tracing::info!(what = %c.label, jobs = jobs.len(), "job created");
                self.accepted(c);
                for job in &jobs {
                    if let Some(sent) = sent {
                        self.inner.evidence.exchange(Exchange {
                            sent,
                            answered: ended,
                            created: job.created_at,
                        });
                    }
                    self.inner.settling.claim(job.id);
                    self.note_submitted(journal, c, job.id, sent, Some(job.created_at))?;
                }
                Ok(jobs)
            }
            // Nothing went out, or it was refused: nothing was created.
            Err(fault) if sent.is_none() || !fault.may_have_created() => {
                if let (
                    Some(a),
                    Fault::Status {
                        status: 429,
                        retry_after,
                        ..
                    },
                ) = (&c.admission, &fault)
                {
                    a.refused(*retry_after);
                }
                if let (Some(j), Some(_)) = (journal, sent) {
                    let entry = Entry::NotCreated {
                        key: c.key,
                        at: ended,
                        reason: fault.detail(self.secret()),
                        uncertain: None,
                    };
                    // Unwritten, the intent stays unresolved and is settled later: no harm.
                    if let Err(e) = j.record_until(&entry, self.deadline) {
                        tracing::warn!(error = %e.report(), "could not note a refused request in the journal");
                    }
                }
                Err(self.error(fault, &c.label))
            }
            Err(fault) => {
                let sent = sent.unwrap_or(ended);
                let named = match &fault {
                    Fault::Decode { job_id, .. } => *job_id,
                    _ => None,
                };
                if let Some(id) = named {
                    // A success that names its job: that job exists, whatever else was wrong.
                    tracing::info!(what = %c.label, job_id = %id, "the answer did not decode, but named its job");
                    self.accepted(c);
                    self.inner.settling.claim(id);
                    self.note_submitted(journal, c, id, None, None)?;
                    return Ok(vec![Job::placeholder(id, JobStatus::Queued, ended)]);
                }
                let created = fault.answered_success();
                let timed_out = matches!(&fault, Fault::Deadline)
                    || matches!(&fault, Fault::NoAnswer { source: Some(e), .. } if e.is_timeout());
                let outcome = UnknownOutcome {
                    model: c.label.clone(),
                    path: c.path.clone(),
                    fingerprint,
                    sent_at: sent,
                    ended_at: Some(ended),
                    created,
                    key: journal.map(|_| c.key),
                    job_id: None,
                    detail: fault.detail(self.secret()),
                };
                tracing::info!(what = %c.label, detail = %outcome.detail, created, "outcome unknown");
                // Nothing more goes out until this request's window has passed (set before this
                // attempt stops awaiting, so nothing slips in between).
                self.inner.pacer.lost(sent, &self.inner.evidence);
                drop(out.lock().ok().and_then(|mut o| o.take()));
                if let Some(j) = journal {
                    let entry = Entry::Unknown {
                        key: c.key,
                        at: ended,
                        last_sent: sent,
                        in_flight: timed_out,
                        created,
                    };
                    // Unwritten, settling falls back to the send time: wider, still safe.
                    if let Err(e) = j.record_until(&entry, self.deadline) {
                        tracing::warn!(error = %e.report(), "could not note an unknown outcome in the journal");
                    }
                }
                Err(Error::OutcomeUnknown(Box::new(outcome)))
            }
        }
    }

    /// Waits for this client's send slot and, with a journal, writes the attempt down (the
    /// first as `sending`, later ones as `attempt`) unless another process sent too recently;
    /// returns when it was written. Not written, not sent.
    async fn pace(
        &self,
        journal: Option<&Journal>,
        c: &Creation,
        fingerprint: &str,
        attempt: u32,
    ) -> std::result::Result<(DateTime<Utc>, Awaiting<'_>), Fault> {
        let spacing = self.inner.evidence.spacing(FLOOR, CAP);
        let out = self.inner.pacer.slot(spacing).await;
        loop {
            let at = Utc::now();
            let Some(j) = journal else {
                return Ok((at, out));
            };
            let entry = match attempt {
                1 => Entry::Sending {
                    key: c.key,
                    at,
                    scope: j.scope().clone(),
                    model: c.label.clone(),
                    path: c.path.clone(),
                    fingerprint: fingerprint.to_string(),
                    request: c.body.clone(),
                    output: c.output.clone(),
                    run: j.run_id(),
                    line: c.line.clone(),
                },
                _ => Entry::Attempt { key: c.key, at },
            };
            let spacing = chrono::TimeDelta::from_std(spacing).unwrap_or_default();
            match j.record_paced(&entry, spacing, self.deadline) {
                Ok(Paced::Written) => return Ok((at, out)),
                Ok(Paced::TooSoon(wait)) => tokio::time::sleep(wait).await,
                Err(e) => return Err(Fault::Fatal(e)),
            }
        }
    }

    /// A job exists: its slot (if it holds one) now runs it; the window may grow.
    fn accepted(&self, c: &Creation) {
        match &c.admission {
            Some(a) => a.accepted(),
            None => self.inner.limiter.accepted(),
        }
    }

    fn note_submitted(
        &self,
        journal: Option<&Journal>,
        c: &Creation,
        job_id: Uuid,
        sent_at: Option<DateTime<Utc>>,
        created_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let Some(j) = journal else { return Ok(()) };
        j.record_until(
            &Entry::Submitted {
                key: Some(c.key),
                at: Utc::now(),
                scope: j.scope().clone(),
                job_id,
                model: c.label.clone(),
                request: c.body.clone(),
                output: c.output.clone(),
                sent_at,
                created_at,
                adopted: false,
                uncertain: None,
            },
            self.deadline,
        )
    }
}
