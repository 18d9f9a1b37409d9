//! Pipelines: steps that feed each other (generate, then enhance each image, then animate each
//! one) as one priced, resumable run.
//!
//! A pipeline file (JSON) has variables and steps. A step names a model (any alias), its
//! parameters, and optionally `fan_out` lists (one job per value, or per combination). In
//! parameters, `{{name}}` is a variable, `{{steps.ID.outputs}}` makes the step run once per
//! output of step ID, and `{{steps.ID.outputs[N]}}` takes one output. A local path where the
//! model takes a URL is uploaded first. Steps form a graph: a cycle, an unknown step or
//! variable, or a request its model refuses is an error before anything is sent.
//!
//! ```json
//! {"vars": {"style": "watercolor"},
//!  "steps": [
//!    {"id": "draw", "model": "flux", "fan_out": {"animal": ["a fox", "an owl"]},
//!     "params": {"prompt": "{{animal}}, {{style}}"}},
//!    {"id": "upscale", "model": "topaz", "params": {"image_url": "{{steps.draw.outputs}}"}},
//!    {"id": "animate", "model": "veo-3.1-fast",
//!     "params": {"prompt": "{{animal}} looks around", "start_image": "{{steps.upscale.outputs}}"}}]}
//! ```
//!
//! Each step runs as a [`crate::Batch`] in its own directory under the pipeline's (the same
//! bounded, adaptive submission, the same journal), once the steps it reads from are done.
//! [`Pipeline::resume`] continues an interrupted run: finished jobs are not redone, submitted
//! ones are waited for and never sent again, unknown outcomes are settled. `pipeline.json`
//! records every job with its inputs, outputs and cost.
//!
//! Against a local simulator (how this crate is tested):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> krea::Result<()> {
//! let sim = krea_sim::Simulator::builder().time_scale(0.001).start().await.expect("simulator");
//! let krea = krea::Krea::builder()
//!     .token(sim.token())
//!     .base_url(sim.api_url())
//!     .poll_policy(krea::PollPolicy::default().scaled(0.001))
//!     .build()?;
//! let file = krea::pipeline::PipelineFile::parse(r#"{"steps": [
//!     {"id": "draw", "model": "flux", "fan_out": {"animal": ["a fox", "an owl"]},
//!      "params": {"prompt": "{{animal}}"}},
//!     {"id": "animate", "model": "veo-3.1-fast",
//!      "params": {"prompt": "{{animal}} blinks", "start_image": "{{steps.draw.outputs}}"}}]}"#)?;
//! let dir = std::env::temp_dir().join(format!("krea-pipeline-doc-{}", std::process::id()));
//! let pipeline = krea.pipeline(file).dir(&dir);
//! let plan = pipeline.plan()?; // every request checked and priced; nothing sent
//! assert_eq!(plan.jobs(), 4);
//! println!("about {}", plan.total);
//! let report = pipeline.run(|_| {}).await?;
//! assert!(report.finished());
//! assert_eq!(report.completed(), 4);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

mod plan;
mod run;
mod template;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Problem;
use crate::batch::{BatchEvent, BatchReport, ItemStatus};
use crate::client::Krea;
use crate::cost::Estimate;
use crate::error::{Error, Result};
use crate::models::ModelSpec;

pub use run::manifest_path;

/// A pipeline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PipelineFile {
    /// Variables for `{{name}}` (a fan-out or the upstream instance may shadow them).
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    /// The steps, in any order.
    pub steps: Vec<StepSpec>,
}

/// One step of a pipeline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StepSpec {
    /// Its name (letters, digits, `_`, `-`): the directory its files go to.
    pub id: String,
    /// The model: an id, alias, slug or path.
    pub model: String,
    /// The request's parameters, with `{{...}}` references.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// One job per value (per combination, with several names), the value as `{{name}}`.
    #[serde(default)]
    pub fan_out: BTreeMap<String, Vec<Value>>,
}

impl PipelineFile {
    /// An empty pipeline, to build in code.
    ///
    /// ```
    /// use krea::pipeline::{PipelineFile, StepSpec};
    /// let file = PipelineFile::new()
    ///     .var("style", "watercolor")
    ///     .step(StepSpec::new("draw", "flux").param("prompt", "a fox, {{style}}"))
    ///     .step(
    ///         StepSpec::new("animate", "veo-3.1-fast")
    ///             .param("prompt", "the fox looks around")
    ///             .param("start_image", "{{steps.draw.outputs}}"),
    ///     );
    /// assert_eq!(file.steps.len(), 2);
    /// ```
    pub fn new() -> PipelineFile {
        PipelineFile {
            vars: BTreeMap::new(),
            steps: Vec::new(),
        }
    }

    /// Sets variable `name` for `{{name}}`.
    pub fn var(mut self, name: impl Into<String>, value: impl Into<Value>) -> PipelineFile {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Adds a step (steps may come in any order).
    pub fn step(mut self, step: StepSpec) -> PipelineFile {
        self.steps.push(step);
        self
    }

    /// Reads a pipeline file (JSON).
    pub fn parse(text: &str) -> Result<PipelineFile> {
        serde_json::from_str(text).map_err(|e| {
            refuse(vec![Problem::whole(format!(
                "the pipeline file does not read: {e}"
            ))])
        })
    }

    /// Reads a pipeline from JSON already parsed (a tool's argument, a larger document).
    pub fn from_value(value: Value) -> Result<PipelineFile> {
        serde_json::from_value(value).map_err(|e| {
            refuse(vec![Problem::whole(format!(
                "the pipeline does not read: {e}"
            ))])
        })
    }

    /// Reads the pipeline file at `path`; one that cannot be read is refused like one that
    /// does not parse, naming the path.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<PipelineFile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            refuse(vec![Problem::whole(format!(
                "cannot read {}: {e}",
                path.display()
            ))])
        })?;
        PipelineFile::parse(&text)
    }
}

/// A problem of one of a step's jobs (`draw 2`), filed under the step.
fn in_job(p: Problem, step: &StepSpec, job: &str) -> Problem {
    let mut p = p.within(&plan::place(step));
    p.message = format!("{} (job {job})", p.message);
    p
}

/// A pipeline that cannot run as written: every problem, before anything is sent.
pub(crate) fn refuse(problems: Vec<Problem>) -> Error {
    Error::InvalidRequest {
        subject: "pipeline".into(),
        problems,
    }
}

impl Default for PipelineFile {
    fn default() -> Self {
        PipelineFile::new()
    }
}

impl StepSpec {
    /// A step `id` running `model` (an id, alias, slug or path).
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> StepSpec {
        StepSpec {
            id: id.into(),
            model: model.into(),
            params: Map::new(),
            fan_out: BTreeMap::new(),
        }
    }

    /// Sets parameter `name` (with `{{...}}` references where wanted).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> StepSpec {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Runs the step once per value of `name` (per combination, with several).
    pub fn fan_out(mut self, name: impl Into<String>, values: Vec<Value>) -> StepSpec {
        self.fan_out.insert(name.into(), values);
        self
    }
}

/// A pipeline to check, price and run; see the module documentation.
#[derive(Debug, Clone)]
#[must_use]
pub struct Pipeline {
    krea: Krea,
    file: PipelineFile,
    dir: Option<PathBuf>,
    resume: bool,
    concurrency: Option<usize>,
    shared: Option<Shared>,
    lease: Option<std::time::Duration>,
}

/// How a pipeline worked by several processes is known in the store.
#[derive(Debug, Clone)]
enum Shared {
    Named(String),
    ByContent,
}

impl Krea {
    /// A pipeline from `file`.
    pub fn pipeline(&self, file: PipelineFile) -> Pipeline {
        Pipeline {
            krea: self.clone(),
            file,
            dir: None,
            resume: false,
            concurrency: None,
            shared: None,
            lease: None,
        }
    }
}

/// One step, as planned.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepPlan {
    /// The step's id.
    pub id: String,
    /// Its model.
    pub model: &'static ModelSpec,
    /// Jobs it runs (counting one output per upstream job).
    pub jobs: usize,
    /// The most they cost together (a job without a published price at the assumed price:
    /// the estimate then says `assumed`).
    pub estimate: Estimate,
    /// Jobs whose model publishes no price for the request.
    pub unpriced: usize,
    /// Local files its requests read (uploaded before they are sent), as the file names
    /// them: for a caller that bounds what may be read.
    pub local_files: Vec<PathBuf>,
}

/// The whole run, as planned: every request checked, the cost added up.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// The steps in the order they run.
    pub steps: Vec<StepPlan>,
    /// The total estimate.
    pub total: Estimate,
    /// Jobs without a published price.
    pub unpriced: usize,
}

impl Plan {
    /// Jobs in all.
    pub fn jobs(&self) -> usize {
        self.steps.iter().map(|s| s.jobs).sum()
    }
}

/// Something that happened in a pipeline run, for progress displays.
#[derive(Debug)]
#[non_exhaustive]
pub enum PipelineEvent<'a> {
    /// A step starts, with this many jobs.
    StepStarted {
        /// The step.
        step: &'a str,
        /// Its model.
        model: &'static ModelSpec,
        /// Its jobs.
        jobs: usize,
    },
    /// Something happened in the step's batch.
    Batch {
        /// The step.
        step: &'a str,
        /// What.
        event: BatchEvent<'a>,
    },
    /// A step ended (every job done, or the run stops here).
    StepEnded {
        /// The step.
        step: &'a str,
        /// Its batch's report.
        report: &'a BatchReport,
    },
}

/// The manifest of a run (`pipeline.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PipelineManifest {
    /// Format version.
    pub version: u32,
    /// The file the run was made from (variables applied).
    pub pipeline: PipelineFile,
    /// The steps that ran, in order.
    pub steps: Vec<StepRecord>,
    /// The step the run stopped at, when it did not finish.
    pub stopped_at: Option<String>,
}

/// A step of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// The step's id.
    pub id: String,
    /// The model id.
    pub model: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its jobs.
    pub jobs: Vec<JobRecord>,
}

/// One job of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// `upscale 2`.
    pub label: String,
    /// Its variables.
    pub vars: BTreeMap<String, Value>,
    /// Other steps' outputs it took.
    pub inputs: Vec<InputRecord>,
    /// Its job, once created.
    pub job_id: Option<Uuid>,
    /// Where it is.
    pub status: ItemStatus,
    /// Result URLs.
    pub urls: Vec<String>,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Its cost (the estimate for a completed job; 0 for a failed or cancelled one).
    pub cost_cu: Option<f64>,
    /// Why it did not complete.
    pub error: Option<String>,
}

/// An output of another step, taken as an input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputRecord {
    /// The parameter.
    pub param: String,
    /// The step that made it.
    pub step: String,
    /// The job of that step (its label).
    pub from: String,
    /// The output's URL.
    pub url: String,
}

/// What a run did.
#[derive(Debug)]
#[non_exhaustive]
pub struct PipelineReport {
    /// The steps that ran, with their batches' reports.
    pub steps: Vec<(String, BatchReport)>,
    /// The manifest written.
    pub manifest: PipelineManifest,
    /// Where.
    pub dir: PathBuf,
}

impl PipelineReport {
    /// Whether every step ran and every job is done (completed, failed or cancelled).
    pub fn finished(&self) -> bool {
        self.manifest.stopped_at.is_none()
    }

    /// Jobs completed, in all steps.
    pub fn completed(&self) -> usize {
        self.steps.iter().map(|(_, r)| r.completed()).sum()
    }
}

impl Pipeline {
    /// Sets variable `name` (over the file's `vars`).
    pub fn var(mut self, name: impl Into<String>, value: impl Into<Value>) -> Pipeline {
        self.file.vars.insert(name.into(), value.into());
        self
    }

    /// The run's directory: a directory per step, `pipeline.json`; locked while it runs.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Pipeline {
        let dir = dir.into();
        self.dir = Some(std::path::absolute(&dir).unwrap_or(dir));
        self
    }

    /// Continue the run already in the directory (without it, a directory that holds one is
    /// refused).
    pub fn resume(mut self, yes: bool) -> Pipeline {
        self.resume = yes;
        self
    }

    /// At most `n` jobs pending at once in each step.
    pub fn concurrency(mut self, n: usize) -> Pipeline {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Work this pipeline together with other processes (on this machine or others) that run
    /// the same file under the same `name`, on the same journal in PostgreSQL
    /// ([`crate::KreaBuilder::journal_postgres`]). Each step is a shared batch
    /// ([`crate::Batch::shared`], named `NAME/STEP`): its jobs are claimed one at a time and
    /// paid for at most once, a dead worker's taken over. Every worker waits until a step is
    /// done everywhere, then builds the next from every job's outputs (those done by others
    /// too: the store keeps each job's result URLs), so all build the same next step. Each
    /// worker downloads the files of the jobs it finished into its own directory.
    ///
    /// ```no_run
    /// # async fn run(krea: krea::Krea, file: krea::pipeline::PipelineFile) -> krea::Result<()> {
    /// // The same on every worker: the file, the name, the database (in `krea`).
    /// let report = krea.pipeline(file).shared("catalog-v2").dir("run").run(|_| {}).await?;
    /// assert!(report.finished());
    /// # Ok(()) }
    /// ```
    pub fn shared(mut self, name: impl Into<String>) -> Pipeline {
        self.shared = Some(Shared::Named(name.into()));
        self
    }

    /// [`Pipeline::shared`], the run known by the pipeline's content (its steps and variables):
    /// every worker with the same file works the same run.
    pub fn shared_by_content(mut self) -> Pipeline {
        self.shared = Some(Shared::ByContent);
        self
    }

    /// How long a job a worker of a shared pipeline claimed stays its own without renewal
    /// ([`crate::Batch::claim_lease`]; default 30 s).
    pub fn claim_lease(mut self, lease: std::time::Duration) -> Pipeline {
        self.lease = Some(lease);
        self
    }

    /// Checks every step's every request (other steps' outputs stood in for by placeholder
    /// URLs, one output per job) and adds up the cost. Sends nothing. The error lists every
    /// problem, each naming its step.
    pub fn plan(&self) -> Result<Plan> {
        let steps = plan::order(&self.file).map_err(refuse)?;
        let mut made = HashMap::new();
        let mut planned = Vec::new();
        let mut problems = Vec::new();
        for step in &steps {
            let instances = match plan::expand(step, &self.file.vars, &made) {
                Ok(i) => i,
                Err(e) => {
                    problems.push(Problem::at(plan::place(step.spec), e.to_string()));
                    Vec::new()
                }
            };
            let mut estimate = Estimate::zero();
            let mut unpriced = 0;
            let mut local_files = Vec::new();
            for i in &instances {
                local_files.extend(run::local_files(step.model, i));
                match run::request(&self.krea, step.model, i).check() {
                    Ok(c) => {
                        estimate = estimate.plus(c.worst_case);
                        unpriced += usize::from(c.estimate.is_none());
                    }
                    Err(Error::InvalidRequest { problems: p, .. }) => {
                        problems.extend(p.into_iter().map(|p| in_job(p, step.spec, &i.label)))
                    }
                    Err(e) => {
                        problems.push(in_job(Problem::whole(e.report()), step.spec, &i.label))
                    }
                }
            }
            made.insert(
                step.spec.id.clone(),
                plan::imagined(&step.spec.id, &instances),
            );
            planned.push(StepPlan {
                id: step.spec.id.clone(),
                model: step.model,
                jobs: instances.len(),
                estimate,
                unpriced,
                local_files,
            });
        }
        if !problems.is_empty() {
            return Err(refuse(problems));
        }
        Ok(Plan {
            total: planned
                .iter()
                .map(|s| s.estimate)
                .fold(Estimate::zero(), Estimate::plus),
            unpriced: planned.iter().map(|s| s.unpriced).sum(),
            steps: planned,
        })
    }
}
