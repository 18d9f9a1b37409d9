//! A simulated job: a timeline fixed when it is created, from which its state at any instant
//! follows. Nothing ticks; a `GET` computes the state for "now", so completion times are exact
//! and an idle simulator costs nothing.

use chrono::{DateTime, SecondsFormat, Utc};
use krea_gen::JobStatus;
use krea_gen::catalog::ModelSpec;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use crate::render::Output;

/// What produced a job.
#[derive(Debug, Clone)]
pub enum Origin {
    /// `POST /generate/...`
    Generation(&'static ModelSpec),
    /// `POST /styles/train`; the style exists once the job completes.
    StyleTraining { style_id: String },
    /// `POST /node-apps/{id}/execute`
    NodeApp { app_id: String },
}

/// One job and its fixed timeline.
#[derive(Debug, Clone)]
pub struct SimJob {
    /// `job_id`.
    pub id: Uuid,
    /// What produced it.
    pub origin: Origin,
    /// The body it was created with (snake_case).
    pub request: Value,
    /// Its result URLs are hostile (see `Fault::HostileUrls`).
    pub hostile: bool,
    /// Wall-clock creation time (strictly increasing across jobs, microsecond precision).
    pub created_at: DateTime<Utc>,
    /// Monotonic creation instant.
    pub created: Instant,
    /// When `GET /jobs` starts listing it (later than `created` with a listing lag).
    pub visible_at: Instant,
    /// Its stamps are written in whole seconds.
    pub whole_seconds: bool,
    /// Another program's job on the same account.
    pub foreign: bool,
    /// When it leaves `backlogged` (later than `created` only when backlogged at the cap).
    pub start: Instant,
    /// When it reaches its terminal state; `None` for a job that never finishes.
    pub finish: Option<Instant>,
    /// It ends `failed` rather than `completed`.
    pub fails: bool,
    /// Cancelled at this instant (wall time alongside).
    pub cancelled: Option<(Instant, DateTime<Utc>)>,
    /// Compute units charged (refunded if it fails or is cancelled).
    pub cost: f64,
    /// Its refund, if due, has been made.
    pub refunded: bool,
    /// Result files.
    pub outputs: Vec<Output>,
    /// Seeds the result files' bytes: a hash of model, request and seed.
    pub fingerprint: u64,
    /// `X-Webhook-URL`, if given.
    pub webhook: Option<String>,
    /// An enhance job's input, where the simulator could reach it ([`crate::upscale`]).
    pub input: Option<crate::upscale::Input>,
    /// Removed by `DELETE /jobs/{id}` after it ended.
    pub deleted: bool,
    /// The concurrency slot it holds (backlog mode).
    pub slot: Option<usize>,
}

/// The job type of a model's generations: Flux models are `flux` (the document's example), other
/// image models `externalImage` (the document's example), videos `externalVideo` and upscalers
/// `externalEnhance` (our extension of that naming; Krea publishes no list).
pub fn family_type(model: &ModelSpec) -> &'static str {
    match model.kind {
        _ if model.provider == "bfl" => "flux",
        krea_gen::catalog::Kind::Image => "externalImage",
        krea_gen::catalog::Kind::Video => "externalVideo",
        krea_gen::catalog::Kind::Enhance => "externalEnhance",
    }
}

/// RFC 3339 with microseconds and `Z`, as the simulator writes every timestamp.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl SimJob {
    /// The job type `GET /jobs?types=` filters on, per model family. Krea's document names
    /// types only by example (`flux`, `k1`, `externalImage`) and for style training
    /// (`loraTraining`); the rest is our reading of those names (see the README's table).
    pub fn job_type(&self) -> &'static str {
        match &self.origin {
            Origin::Generation(m) => family_type(m),
            Origin::StyleTraining { .. } => "loraTraining",
            Origin::NodeApp { .. } => "nodeApp",
        }
    }

    /// The state at `now`.
    pub fn status(&self, now: Instant) -> JobStatus {
        if let Some((at, _)) = self.cancelled
            && now >= at
        {
            return JobStatus::Cancelled;
        }
        if now < self.start {
            return JobStatus::Backlogged;
        }
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let Some(finish) = self.finish else {
            return if elapsed < 0.05 {
                JobStatus::Queued
            } else {
                JobStatus::Processing
            };
        };
        if now >= finish {
            return if self.fails {
                JobStatus::Failed
            } else {
                JobStatus::Completed
            };
        }
        let fraction = elapsed
            / finish
                .duration_since(self.start)
                .as_secs_f64()
                .max(f64::MIN_POSITIVE);
        match fraction {
            f if f < 0.10 => JobStatus::Queued,
            f if f < 0.15 => JobStatus::Scheduled,
            f if f < 0.50 => JobStatus::Processing,
            _ => JobStatus::Sampling,
        }
    }

    /// The instant it became terminal, if it has by `now`.
    pub fn ended(&self, now: Instant) -> Option<Instant> {
        match (self.cancelled, self.finish) {
            (Some((at, _)), _) if at <= now => Some(at),
            (_, Some(finish)) if finish <= now => Some(finish),
            _ => None,
        }
    }

    /// Wall-clock time it became terminal.
    pub fn completed_at(&self, now: Instant) -> Option<DateTime<Utc>> {
        if let Some((at, wall)) = self.cancelled
            && at <= now
        {
            return Some(wall);
        }
        let finish = self.finish.filter(|f| *f <= now)?;
        let offset = chrono::Duration::from_std(finish.duration_since(self.created)).ok()?;
        Some(self.created_at + offset)
    }

    /// Whether it counts against the concurrency cap at `now`.
    pub fn is_running(&self, now: Instant) -> bool {
        self.start <= now && self.ended(now).is_none()
    }

    /// The URL of result file `n`.
    pub fn file_url(&self, files_url: &str, n: usize) -> String {
        let ext = self.outputs.get(n).map_or("bin", Output::extension);
        if !self.hostile {
            return format!("{files_url}/files/{}/{n}.{ext}", self.id);
        }
        // Each job tries another way out of the download directory.
        let escape = match self.id.as_bytes()[0] % 4 {
            0 => format!("..%2F..%2F..%2Fescape.{ext}"),
            1 => format!("%2e%2e/%2e%2e/escape.{ext}"),
            2 => format!("..\\..\\escape.{ext}"),
            _ => format!("/etc/escape.{ext}"),
        };
        format!("{files_url}/files/{}/{n}/{escape}", self.id)
    }

    /// What its rendered images say on them: that they are simulated, the model, the prompt.
    pub fn label(&self) -> Vec<String> {
        let model = match &self.origin {
            Origin::Generation(m) => m.id.to_string(),
            Origin::StyleTraining { .. } => "style training".into(),
            Origin::NodeApp { app_id } => format!("node app {app_id}"),
        };
        let prompt = self
            .request
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut lines = vec!["SIMULATED by krea-sim".into(), model, prompt.to_string()];
        if let Origin::Generation(m) = &self.origin
            && m.kind == krea_gen::catalog::Kind::Enhance
        {
            lines.push(match self.input {
                Some(_) => "upscaled from its input image".into(),
                None => "its input is out of reach: a stand-in picture".into(),
            });
        }
        lines
    }

    /// The answer to the POST that created it: the pending job, whose schema (unlike
    /// `GET /jobs/{id}`'s) requires `completed_at` and `result`, both null. A job that runs in
    /// no time (time scale 0) is still answered as queued: the answer says it is pending.
    pub fn submitted_json(&self, files_url: &str) -> Value {
        let mut job = self.to_json(self.created, files_url);
        if job["status"] == "completed" || job["status"] == "failed" {
            job["status"] = json!("queued");
        }
        job["completed_at"] = Value::Null;
        job["result"] = Value::Null;
        job
    }

    /// The job as the API returns it at `now`. `completed_at` and `result` are left out until
    /// they exist (the document types them as a date-time and an object, never null); a failed
    /// job says why in `result.error`.
    pub fn to_json(&self, now: Instant, files_url: &str) -> Value {
        let status = self.status(now);
        // Milliseconds, as backends write them; the cursor keeps full precision (`timestamp`).
        let stamp = |t: DateTime<Utc>| match self.whole_seconds {
            true => t.to_rfc3339_opts(SecondsFormat::Secs, true),
            false => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        let mut job = json!({
            "job_id": self.id,
            "status": status.as_str(),
            "created_at": stamp(self.created_at),
        });
        if let Some(at) = self.completed_at(now) {
            job["completed_at"] = json!(stamp(at));
        }
        match status {
            JobStatus::Completed => {
                job["result"] = match &self.origin {
                    Origin::StyleTraining { style_id } => {
                        json!({ "style_id": style_id, "urls": [] })
                    }
                    _ => {
                        json!({ "urls": (0..self.outputs.len()).map(|n| self.file_url(files_url, n)).collect::<Vec<_>>() })
                    }
                };
            }
            JobStatus::Failed => {
                job["result"] = json!({ "error": FAILURE_REASON });
            }
            _ => {}
        }
        job
    }
}

/// What a failed simulated job gives as its reason.
pub const FAILURE_REASON: &str =
    "The model produced no output for this request (a failure the simulator was told to inject)";

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(start_after: u64, run: Option<u64>) -> SimJob {
        let created = Instant::now();
        let start = created + Duration::from_millis(start_after);
        SimJob {
            id: Uuid::nil(),
            origin: Origin::NodeApp { app_id: "a".into() },
            request: json!({}),
            hostile: false,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            created,
            visible_at: created,
            whole_seconds: false,
            foreign: false,
            start,
            finish: run.map(|r| start + Duration::from_millis(r)),
            fails: false,
            cancelled: None,
            cost: 1.0,
            refunded: false,
            outputs: vec![Output::Image {
                format: crate::render::ImageFormat::Png,
                width: 8,
                height: 8,
            }],
            fingerprint: 1,
            webhook: None,
            input: None,
            deleted: false,
            slot: None,
        }
    }

    #[test]
    fn moves_through_the_documented_states() {
        let j = job(100, Some(1000));
        let at = |ms: u64| j.created + Duration::from_millis(ms);
        assert_eq!(j.status(at(50)), JobStatus::Backlogged);
        assert_eq!(j.status(at(150)), JobStatus::Queued);
        assert_eq!(j.status(at(220)), JobStatus::Scheduled);
        assert_eq!(j.status(at(400)), JobStatus::Processing);
        assert_eq!(j.status(at(900)), JobStatus::Sampling);
        assert_eq!(j.status(at(1100)), JobStatus::Completed);
        assert_eq!(
            j.completed_at(at(1100)).map(timestamp).as_deref(),
            Some("1970-01-01T00:00:01.100000Z")
        );
    }

    #[test]
    fn a_stuck_job_never_finishes_and_a_failing_one_fails() {
        let stuck = job(0, None);
        assert_eq!(
            stuck.status(stuck.created + Duration::from_secs(3600)),
            JobStatus::Processing
        );
        let mut failing = job(0, Some(10));
        failing.fails = true;
        assert_eq!(
            failing.status(failing.created + Duration::from_millis(20)),
            JobStatus::Failed
        );
    }

    #[test]
    fn the_json_has_urls_only_when_completed() {
        let j = job(0, Some(10));
        let pending = j.to_json(j.created, "http://f");
        assert_eq!(
            (pending["completed_at"].clone(), pending["result"].clone()),
            (Value::Null, Value::Null)
        );
        let done = j.to_json(j.created + Duration::from_millis(10), "http://f");
        assert_eq!(
            done["result"]["urls"][0],
            format!("http://f/files/{}/0.png", Uuid::nil())
        );
    }
}
