//! The one shape a job has in `--json` output, whichever command printed it (README, "JSON
//! output"): every key always present, empty values (`null`, `[]`, `""`) where nothing is
//! known.
//!
//! ```json
//! {"id": "…", "model": "bfl/flux-1-dev", "status": "completed",
//!  "created_at": "…", "completed_at": "…", "urls": ["…"], "files": ["./…png"],
//!  "cost_cu": 3.0, "error": null, "uncertain": null}
//! ```

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use krea::{ItemState, Krea};
use serde_json::{Value, json};
use uuid::Uuid;

/// A job, as `--json` shows it.
pub struct JobOut {
    pub id: Option<Uuid>,
    pub model: String,
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub urls: Vec<String>,
    pub files: Vec<PathBuf>,
    /// What it cost (completed jobs: the estimate; failed and cancelled ones are free).
    pub cost_cu: Option<f64>,
    pub error: Option<String>,
    /// Why the job may not be the request's own (a lost answer settled with doubt).
    pub uncertain: Option<String>,
}

impl JobOut {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "urls": self.urls.iter().map(|u| krea::redact::for_display(u)).collect::<Vec<_>>(),
            "files": self.files,
            "cost_cu": self.cost_cu,
            "error": self.error,
            "uncertain": self.uncertain,
        })
    }

    /// A job known only by its id, model and how it ended (waits and resumes that did not end
    /// with a job description).
    pub fn ended(
        id: Uuid,
        model: &str,
        status: &str,
        files: Vec<PathBuf>,
        error: Option<&krea::Error>,
    ) -> JobOut {
        JobOut {
            id: Some(id),
            model: model.to_string(),
            status: status.to_string(),
            created_at: None,
            completed_at: None,
            urls: Vec::new(),
            files,
            cost_cu: None,
            error: error.map(krea::Error::report),
            uncertain: None,
        }
    }

    /// A job whose wait ended in `e`: the job's own end (`failed`, `cancelled`) when it had
    /// one, else how the wait ended (the error's kind: `timeout`, `network`...).
    pub fn failed(id: Uuid, model: &str, e: &krea::Error) -> JobOut {
        let status = match e {
            krea::Error::JobFailed { status, .. } => status.as_str(),
            other => other.kind().as_str(),
        };
        let mut job = JobOut::ended(id, model, status, Vec::new(), Some(e));
        if matches!(status, "failed" | "cancelled") {
            job.cost_cu = Some(0.0);
        }
        job
    }

    /// A batch item (image, video, run and batch runs go through the library's batch).
    pub fn from_item(item: &ItemState) -> JobOut {
        JobOut {
            id: item.job_id,
            model: item.model.clone(),
            status: crate::progress::item_word(item.status),
            created_at: item.created_at,
            completed_at: item.completed_at,
            urls: item.urls.clone(),
            files: item.files.clone(),
            cost_cu: item.charged().map(|e| e.high),
            error: item.error.clone(),
            uncertain: item.uncertain.clone(),
        }
    }

    /// A job as the API describes it; the model from the journal when it knows the job.
    pub fn from_job(krea: &Krea, job: &krea::Job, files: Vec<PathBuf>) -> JobOut {
        let sent = krea.journal().and_then(|j| j.submitted(job.id));
        let model = sent.as_ref().map(|p| p.model.clone()).unwrap_or_default();
        // The files this machine wrote for it, when the journal knows them.
        let files = match (&sent, files.is_empty()) {
            (Some(p), true) => p.files.clone(),
            _ => files,
        };
        let ended_free = matches!(
            job.status,
            krea::JobStatus::Failed | krea::JobStatus::Cancelled
        );
        // A completed job costs what its body is priced at; a failed or cancelled one nothing.
        let cost_cu = if ended_free {
            Some(0.0)
        } else if job.status == krea::JobStatus::Completed {
            sent.as_ref().and_then(|p| p.estimate).map(|e| e.high)
        } else {
            None
        };
        JobOut {
            id: Some(job.id),
            model,
            status: job.status.as_str().to_string(),
            created_at: Some(job.created_at),
            completed_at: job.completed_at,
            urls: job.urls().to_vec(),
            files,
            cost_cu,
            error: job
                .result
                .as_ref()
                .and_then(|r| r.error.clone())
                .map(|e| krea::redact::for_display(&e)),
            uncertain: krea
                .journal()
                .and_then(|j| j.submitted(job.id))
                .and_then(|p| p.uncertain),
        }
    }
}

/// `{"error": {"kind", "message", "job_id"}}` (and `problems`, each `{field, message}`, for a
/// request refused before sending): what `--json` prints on stdout when a command fails (with
/// the same exit code as without `--json`).
pub fn error(e: &anyhow::Error) -> Value {
    let library = e.downcast_ref::<krea::Error>();
    let kind = match library {
        Some(k) => k.kind().as_str(),
        None if e.downcast_ref::<crate::exit::Usage>().is_some() => "usage",
        None => "error",
    };
    let mut out = json!({"error": {
        "kind": kind,
        // What stderr says, in the CLI's words (`krea auth login`, not the builder).
        "message": library.map_or_else(
            || krea::redact::for_display(&format!("{e:#}")),
            |k| {
                let (head, hints) = crate::exit::explain(k, crate::exit::Voice::Cli);
                match hints.is_empty() {
                    true => head,
                    false => format!("{head} {}", hints.join("; ")),
                }
            },
        ),
        "job_id": library.and_then(krea::Error::job_id),
    }});
    if let Some(problems) = library.and_then(problems) {
        out["error"]["problems"] = problems;
    }
    out
}

/// The problems of a request refused before sending, as data: `[{"field", "message"}]`
/// (`field` null for the request as a whole), cleaned for display.
pub fn problems(e: &krea::Error) -> Option<Value> {
    let krea::Error::InvalidRequest { problems, .. } = e else {
        return None;
    };
    Some(
        problems
            .iter()
            .map(|p| {
                json!({
                    "field": p.field.as_deref().map(krea::redact::for_display),
                    "message": krea::redact::for_display(&p.message),
                })
            })
            .collect(),
    )
}
