//! The pipeline tools: start a run (checked and priced first, held to the session's limits),
//! which goes on in the background after the call answers, and ask where a run stands.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use krea::pipeline::{PipelineEvent, PipelineFile, PipelineManifest, manifest_path};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, Peer, RoleServer, tool, tool_router};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Server;
use super::args::{PipelineStatus, RunPipeline};
use super::wait;

/// Default wait for a run, in seconds.
const RUN_WAIT: f64 = 30.0;

/// A run this server started: where each step is, and how it ended.
#[derive(Debug, Default)]
pub struct RunState {
    /// (step, jobs, ended) in order.
    steps: Vec<(String, usize, usize)>,
    /// The run ended: `Ok(finished)`, or why it stopped.
    outcome: Option<Result<bool, String>>,
}

/// Runs by id (their directory's name).
pub type Runs = Arc<Mutex<HashMap<String, (PathBuf, Arc<Mutex<RunState>>)>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    /// Where a run stands, from this server's memory, else from its manifest.
    fn run_status(&self, id: &str, dir: &std::path::Path) -> CallToolResult {
        let live = lock(&self.runs).get(id).map(|(_, s)| s.clone());
        let manifest: Option<PipelineManifest> = std::fs::read(manifest_path(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (steps, state) = match &live {
            Some(state) => {
                let s = lock(state);
                let steps: Vec<Value> = s
                    .steps
                    .iter()
                    .map(|(id, jobs, ended)| json!({"id": id, "jobs": jobs, "ended": ended}))
                    .collect();
                let state = match &s.outcome {
                    None => "running".to_string(),
                    Some(Ok(true)) => "finished".to_string(),
                    Some(Ok(false)) => "stopped".to_string(),
                    Some(Err(e)) => format!("failed: {e}"),
                };
                (steps, state)
            }
            None => match &manifest {
                Some(m) => (
                    m.steps
                        .iter()
                        .map(|s| json!({"id": s.id, "jobs": s.jobs.len(),
                                        "ended": s.jobs.iter().filter(|j| j.status.is_done()).count()}))
                        .collect(),
                    if m.stopped_at.is_some() {
                        "stopped".to_string()
                    } else {
                        "finished".to_string()
                    },
                ),
                None => {
                    return self.refused(
                        "unknown_run",
                        &format!(
                            "no pipeline run {id:?}: give the run_id run_pipeline returned, or the run's directory"
                        ),
                    );
                }
            },
        };
        let files: Vec<PathBuf> = manifest
            .iter()
            .flat_map(|m| m.steps.iter().flat_map(|s| s.jobs.iter()))
            .flat_map(|j| j.files.clone())
            .collect();
        let cost: f64 = manifest
            .iter()
            .flat_map(|m| m.steps.iter().flat_map(|s| s.jobs.iter()))
            .filter_map(|j| j.cost_cu)
            .fold(0.0, |a, b| a + b);
        let progress: Vec<String> = steps
            .iter()
            .map(|s| {
                format!(
                    "{} {}/{}",
                    s["id"].as_str().unwrap_or(""),
                    s["ended"],
                    s["jobs"]
                )
            })
            .collect();
        let next = match state.as_str() {
            "running" => Some(format!("call pipeline_status with run_id {id:?} later")),
            "stopped" => Some(format!(
                "call run_pipeline again with resume: true and output_dir {:?} (nothing is paid twice)",
                dir.display().to_string()
            )),
            _ => None,
        };
        let mut line = format!(
            "pipeline {id}: {state}; {}; {} file(s) in {}; cost ~{} CU (session {} CU)",
            progress.join(", "),
            files.len(),
            dir.display(),
            super::reply::number(cost),
            super::reply::number(self.money.spent())
        );
        if let Some(n) = &next {
            line.push_str(&format!(". Next: {n}"));
        }
        self.reply(
            json!({"run_id": id, "dir": dir, "status": state, "steps": steps, "files": files,
                   "cost_cu": cost, "session_cu": self.money.spent(), "next": next}),
            &line,
            false,
        )
    }
}

#[tool_router(router = pipeline_router, vis = "pub(super)")]
impl Server {
    /// Runs a pipeline (e.g. image -> enhance -> video) from a file or inline JSON; priced first, runs in the background.
    #[tool(
        title = "Run a pipeline (paid)",
        annotations(
            title = "Run a pipeline (paid)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn run_pipeline(
        &self,
        Parameters(a): Parameters<RunPipeline>,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = match wait::seconds(a.wait_seconds, RUN_WAIT) {
            Ok(l) => l,
            Err(why) => return Ok(self.refused("usage", &why)),
        };
        let (file, name) = match (&a.file, &a.pipeline) {
            (Some(path), None) => (
                match self.readable(path, &peer).await {
                    Ok(path) => PipelineFile::load(path),
                    Err(why) => return Ok(self.refused("outside_allowed_dirs", &why)),
                },
                std::path::Path::new(path)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned()),
            ),
            (None, Some(inline)) => (
                PipelineFile::from_value(Value::Object(inline.clone())),
                None,
            ),
            _ => {
                return Ok(self.refused(
                    "usage",
                    "give exactly one of file (a path) or pipeline (the JSON) (nothing was sent)",
                ));
            }
        };
        let file = match file {
            Ok(f) => f,
            Err(e) => return Ok(self.failed(&e)),
        };
        let dir = match &a.output_dir {
            Some(d) => match self.bounds.writable(d) {
                Ok(dir) => dir,
                Err(why) => return Ok(self.refused("outside_output_dir", &why)),
            },
            None => self.bounds.output_dir().join(format!(
                "{}-{}",
                name.unwrap_or_else(|| "pipeline".into()),
                &Uuid::new_v4().simple().to_string()[..8]
            )),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let id = dir
            .file_name()
            .map_or_else(|| "pipeline".into(), |n| n.to_string_lossy().into_owned());
        let mut pipeline = self.ctx.krea.pipeline(file).dir(&dir).resume(a.resume);
        for (k, v) in a.vars {
            pipeline = pipeline.var(k, v);
        }
        let plan = match pipeline.plan() {
            Ok(p) => p,
            Err(e) => return Ok(self.failed(&e)),
        };
        // Local files the steps would upload: only from where this session may read.
        for file in plan.steps.iter().flat_map(|s| &s.local_files) {
            if let Err(why) = self.readable(&file.to_string_lossy(), &peer).await {
                return Ok(self.refused("outside_allowed_dirs", &why));
            }
        }
        let reservation = match self.money.reserve(plan.total) {
            Ok(r) => r,
            Err(over) => {
                let why = super::money::refusal("pipeline", &over);
                let mut refusal = self.refused("over_budget", &why);
                if let Some(s) = refusal.structured_content.as_mut() {
                    s["estimate_cu"] = json!({"low": plan.total.low, "high": plan.total.high});
                    s["unpriced_jobs"] = json!(plan.unpriced);
                }
                return Ok(refusal);
            }
        };
        let state = Arc::new(Mutex::new(RunState::default()));
        lock(&self.runs).insert(id.clone(), (dir.clone(), state.clone()));
        let progress = state.clone();
        let run = tokio::spawn(async move {
            let result = pipeline
                .run(|event| {
                    let mut s = lock(&progress);
                    match event {
                        PipelineEvent::StepStarted { step, jobs, .. } => {
                            s.steps.push((step.to_string(), jobs, 0))
                        }
                        PipelineEvent::Batch {
                            event: krea::BatchEvent::Ended { .. },
                            ..
                        } => {
                            if let Some(last) = s.steps.last_mut() {
                                last.2 += 1;
                            }
                        }
                        _ => {}
                    }
                })
                .await;
            // What the run counts for now: its completed jobs, not the estimate.
            let spent = match &result {
                Ok(r) => r
                    .manifest
                    .steps
                    .iter()
                    .flat_map(|s| &s.jobs)
                    .filter_map(|j| j.cost_cu)
                    .fold(0.0, |a, b| a + b),
                Err(e) if e.nothing_sent() => 0.0,
                Err(_) => plan.total.high,
            };
            // The run's jobs, counted as one.
            reservation.charge(Uuid::new_v4(), spent);
            lock(&progress).outcome = Some(result.map(|r| r.finished()).map_err(|e| e.report()));
        });
        let _ = tokio::time::timeout(limit, run).await;
        let mut result = self.run_status(&id, &dir);
        if let Some(s) = result.structured_content.as_mut() {
            s["estimate_cu"] = json!({"low": plan.total.low, "high": plan.total.high});
            s["unpriced_jobs"] = json!(plan.unpriced);
            s["jobs_planned"] = json!(plan.jobs());
        }
        Ok(result)
    }

    /// Where a pipeline run stands: jobs ended per step, files, cost.
    #[tool(
        title = "Pipeline status",
        annotations(
            title = "Pipeline status",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn pipeline_status(
        &self,
        Parameters(a): Parameters<PipelineStatus>,
    ) -> Result<CallToolResult, ErrorData> {
        let known = lock(&self.runs).get(&a.run_id).map(|(d, _)| d.clone());
        // A run of an earlier session: only under the output directory.
        let dir = match known {
            Some(dir) => dir,
            None => match self.bounds.writable(&a.run_id) {
                Ok(dir) => dir,
                Err(why) => return Ok(self.refused("outside_output_dir", &why)),
            },
        };
        Ok(self.run_status(&a.run_id, &dir))
    }
}
