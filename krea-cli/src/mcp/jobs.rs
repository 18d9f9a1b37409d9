//! The job tools: look at a job, wait for it again, cancel it, list jobs, and finish what the
//! journal still holds. None of them submits anything.

use futures_util::StreamExt;
use krea::{JobQuery, JobStatus};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, RequestMetaObject};
use rmcp::{ErrorData, Peer, RoleServer, tool, tool_router};
use serde_json::json;

use super::Server;
use super::args::{JobArg, ListJobs, ResumeJobs, WaitJob};
use super::wait::{self, Reporter};
use crate::job_json::JobOut;

/// Default waits, in seconds.
const WAIT_JOB: f64 = 60.0;
const RESUME: f64 = 120.0;

#[tool_router(router = jobs_router, vis = "pub(super)")]
impl Server {
    /// A job's state, result URLs and error, without waiting.
    #[tool(
        title = "Get a job",
        annotations(
            title = "Get a job",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_job(
        &self,
        Parameters(a): Parameters<JobArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let id = self.ctx.krea.jobs().resolve(&a.job_id).await?;
            let job = self.ctx.krea.jobs().get(id).await?;
            let mut out = JobOut::from_job(&self.ctx.krea, &job, Vec::new());
            if out.cost_cu.is_none() {
                out.cost_cu = self.money.of(id);
            }
            let next =
                (!job.status.is_terminal()).then(|| format!("call wait_job with job_id {id}"));
            Ok(self.job_reply(out, next).await)
        };
        self.answer(result.await)
    }

    /// Waits for a submitted job (e.g. one that answered `pending`) and downloads its files.
    #[tool(
        title = "Wait for a job",
        annotations(
            title = "Wait for a job",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn wait_job(
        &self,
        Parameters(a): Parameters<WaitJob>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = match wait::seconds(a.wait_seconds, WAIT_JOB) {
            Ok(l) => l,
            Err(why) => return Ok(self.refused("usage", &why)),
        };
        let result = async {
            let id = self.ctx.krea.jobs().resolve(&a.job_id).await?;
            let handle = self.ctx.krea.jobs().handle_for(id).await?;
            let reporter = meta
                .get_progress_token()
                .map(|token| Reporter { peer, token });
            Ok(self.follow(handle, limit, reporter).await)
        };
        self.answer(result.await)
    }

    /// Cancels a job that has not ended (a cancelled job is not charged).
    #[tool(
        title = "Cancel a job",
        annotations(
            title = "Cancel a job",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn cancel_job(
        &self,
        Parameters(a): Parameters<JobArg>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let id = self.ctx.krea.jobs().resolve(&a.job_id).await?;
            let cancelled = self.ctx.krea.jobs().cancel(id).await?;
            if cancelled {
                self.money.release(id);
            }
            let line = if cancelled {
                format!("cancelled job {id} (not charged)")
            } else {
                format!("job {id} had already ended: nothing to cancel")
            };
            Ok(self.reply(
                json!({"id": id, "cancelled": cancelled, "session_cu": self.money.spent()}),
                &line,
                false,
            ))
        };
        self.answer(result.await)
    }

    /// Lists recent jobs, newest first.
    #[tool(
        title = "List jobs",
        annotations(
            title = "List jobs",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn list_jobs(
        &self,
        Parameters(a): Parameters<ListJobs>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = a.limit.unwrap_or(20).clamp(1, 200);
        let mut query = JobQuery::all().max(limit);
        if let Some(s) = a.status.as_deref().filter(|s| !s.is_empty()) {
            let status: JobStatus = match serde_json::from_value(json!(s)) {
                Ok(s) => s,
                Err(_) => {
                    return Ok(self.refused(
                        "usage",
                        &format!(
                            "status takes queued, processing, completed, failed or cancelled, not {s:?}"
                        ),
                    ));
                }
            };
            query = query.status(status);
        }
        let mut stream = std::pin::pin!(self.ctx.krea.jobs().list(query));
        let mut jobs = Vec::new();
        while let Some(job) = stream.next().await {
            match job {
                Ok(job) => jobs.push(JobOut::from_job(&self.ctx.krea, &job, Vec::new())),
                Err(e) => return Ok(self.failed(&e)),
            }
        }
        let lines: Vec<String> = jobs
            .iter()
            .map(|j| {
                format!(
                    "{} {} {} {}",
                    j.id.map(|i| i.to_string()).unwrap_or_default(),
                    j.status,
                    if j.model.is_empty() { "-" } else { &j.model },
                    j.created_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                )
            })
            .collect();
        let text = if lines.is_empty() {
            "no jobs".to_string()
        } else {
            lines.join("\n")
        };
        let list: Vec<_> = jobs.iter().map(super::reply::job_value).collect();
        Ok(self.reply(json!({"jobs": list}), &text, false))
    }

    /// Finishes jobs left behind: settles unknown outcomes, waits, downloads their files.
    #[tool(
        title = "Finish interrupted jobs",
        annotations(
            title = "Finish interrupted jobs",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn resume_jobs(
        &self,
        Parameters(a): Parameters<ResumeJobs>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = match wait::seconds(a.wait_seconds, RESUME) {
            Ok(l) => l,
            Err(why) => return Ok(self.refused("usage", &why)),
        };
        // Waits end by the deadline (as timeouts); the jobs stay in the journal.
        let krea = self.ctx.krea.until(tokio::time::Instant::now() + limit);
        let resumed = krea
            .jobs()
            .resume_where(|p| !self.is_active(p.job_id), |_, _| {})
            .await;
        let resumed = match resumed {
            Ok(r) => r,
            Err(e) => return Ok(self.failed(&e)),
        };
        let mut lines = Vec::new();
        let mut list = Vec::new();
        let mut running = 0;
        for r in &resumed {
            let (status, files, error) = match &r.outcome {
                Ok(files) => ("completed", files.clone(), None),
                Err(krea::Error::Timeout { .. } | krea::Error::DeadlineExceeded { .. }) => {
                    running += 1;
                    ("pending", Vec::new(), None)
                }
                Err(krea::Error::JobFailed { .. }) => ("failed", Vec::new(), Some(&r.outcome)),
                Err(_) => ("error", Vec::new(), Some(&r.outcome)),
            };
            let error = error.and_then(|o| o.as_ref().err());
            if status == "failed" {
                self.money.release(r.job_id);
            } else if let Some(cu) = r.estimate.map(|e| e.high) {
                // A job adopted after a lost answer counts too (in place of its request's hold).
                self.unsettled.adopted(&self.money, r.job_id, cu);
            }
            let mut out = JobOut::ended(r.job_id, &r.model, status, files, error);
            out.cost_cu = self.money.of(r.job_id);
            lines.push(format!(
                "{} {} {}{}",
                r.job_id,
                status,
                r.model,
                out.files
                    .iter()
                    .map(|f| format!(" {}", f.display()))
                    .collect::<String>()
            ));
            list.push(super::reply::job_value(&out));
        }
        let next = (running > 0)
            .then(|| format!("{running} job(s) still running: call resume_jobs again later"));
        let mut text = if lines.is_empty() {
            "nothing to resume: every journaled job has finished".to_string()
        } else {
            lines.join("\n")
        };
        if let Some(n) = &next {
            text.push_str(&format!("\nNext: {n}"));
        }
        Ok(self.reply(
            json!({"jobs": list, "next": next, "session_cu": self.money.spent()}),
            &text,
            false,
        ))
    }
}
