//! Running a pipeline: step after step, each as a batch in its own directory, the next built
//! from the outputs of the last; the manifest rewritten after each step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::plan::{self, Instance, Made};
use super::{
    InputRecord, JobRecord, Pipeline, PipelineEvent, PipelineManifest, PipelineReport, StepRecord,
};
use crate::Problem;
use crate::batch::{BatchReport, ItemStatus};
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::input::Input;
use crate::journal::{FileLock, fingerprint};
use crate::models::ModelSpec;
use crate::request::GenerationRequest;

/// Where a run's manifest is.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("pipeline.json")
}

/// The value of `field` if it is a local path the model takes as a URL (uploaded first).
fn local_path<'a>(model: &ModelSpec, field: &str, value: &'a serde_json::Value) -> Option<&'a str> {
    let takes_url = model
        .parameter(field)
        .is_some_and(|p| p.format.as_deref() == Some("uri"));
    value
        .as_str()
        .filter(|s| takes_url && !s.starts_with("https://") && !s.starts_with("http://"))
}

/// The local files an instance's request reads.
pub(crate) fn local_files(model: &ModelSpec, i: &Instance) -> Vec<PathBuf> {
    i.body
        .iter()
        .filter_map(|(k, v)| local_path(model, k, v).map(PathBuf::from))
        .collect()
}

/// The request of one instance: a local path where the model takes a URL is uploaded first.
pub(crate) fn request(krea: &Krea, model: &'static ModelSpec, i: &Instance) -> GenerationRequest {
    let mut body = serde_json::Map::new();
    let mut local = Vec::new();
    for (k, v) in &i.body {
        match local_path(model, k, v) {
            Some(s) => local.push((k.clone(), Input::path(s))),
            None => {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    let mut r = krea.generate(&model.id, serde_json::Value::Object(body));
    for (k, input) in local {
        r = r.input(&k, input);
    }
    r
}

fn write_manifest(dir: &Path, manifest: &PipelineManifest) -> Result<()> {
    let path = manifest_path(dir);
    let tmp = dir.join(".pipeline.json.tmp");
    let text = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Config(e.to_string()))?;
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

/// The step's jobs for the manifest, from its instances and its batch's items.
fn records(instances: &[Instance], report: &BatchReport) -> Vec<JobRecord> {
    instances
        .iter()
        .zip(&report.items)
        .map(|(i, item)| JobRecord {
            label: i.label.clone(),
            vars: i.vars.clone(),
            inputs: i
                .inputs
                .iter()
                .map(|t| InputRecord {
                    param: t.param.clone(),
                    step: t.step.clone(),
                    from: t.from.clone(),
                    url: t.url.clone(),
                })
                .collect(),
            job_id: item.job_id,
            status: item.status,
            urls: item.urls.clone(),
            files: item.files.clone(),
            cost_cu: match item.status {
                ItemStatus::Completed => item.estimate.map(|e| e.high),
                ItemStatus::Failed | ItemStatus::Cancelled => Some(0.0),
                _ => None,
            },
            error: item.error.clone(),
        })
        .collect()
}

impl Pipeline {
    /// The name a shared run's steps are known by in the store (`NAME/STEP`'s `NAME`).
    fn shared_name(&self) -> Result<Option<String>> {
        Ok(match &self.shared {
            None => None,
            Some(super::Shared::Named(name)) => Some(name.clone()),
            Some(super::Shared::ByContent) => {
                let text =
                    serde_json::to_vec(&self.file).map_err(|e| Error::Config(e.to_string()))?;
                Some(format!("pipeline-{}", fingerprint(&text)))
            }
        })
    }

    /// Runs the pipeline in its directory (see [`Pipeline::dir`]); `on_event` hears of every
    /// step and every job. Everything is checked first ([`Pipeline::plan`]). The run stops
    /// after a step with jobs not done (timed out, unknown, stopped for credits): resume it.
    pub async fn run(self, mut on_event: impl FnMut(PipelineEvent<'_>)) -> Result<PipelineReport> {
        let dir = self.dir.clone().ok_or_else(|| {
            Error::Config("a pipeline run needs a directory: Pipeline::dir".into())
        })?;
        self.plan()?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock = dir.join(".krea-pipeline.lock");
        let _lock = match FileLock::try_exclusive(&lock).map_err(|e| Error::io(&lock, e))? {
            Ok(l) => l,
            Err(holder) => return Err(Error::Busy { path: dir, holder }),
        };
        if manifest_path(&dir).exists() && !self.resume {
            return Err(super::refuse(vec![Problem::at(
                "dir",
                format!(
                    "{} already holds a pipeline run: resume it, or choose another directory",
                    dir.display()
                ),
            )]));
        }
        let steps = plan::order(&self.file).map_err(super::refuse)?;
        let shared = self.shared_name()?;
        let mut manifest = PipelineManifest {
            version: 1,
            pipeline: self.file.clone(),
            steps: Vec::new(),
            stopped_at: None,
        };
        let mut made: HashMap<String, Vec<Made>> = HashMap::new();
        let mut reports = Vec::new();
        for step in &steps {
            let id = step.spec.id.as_str();
            let instances = plan::expand(step, &self.file.vars, &made).map_err(|e| {
                super::refuse(vec![Problem::at(plan::place(step.spec), e.to_string())])
            })?;
            let step_dir = dir.join(id);
            on_event(PipelineEvent::StepStarted {
                step: id,
                model: step.model,
                jobs: instances.len(),
            });
            let mut batch = self.krea.batch().dir(&step_dir).resume(true);
            if let Some(n) = self.concurrency {
                batch = batch.concurrency(n);
            }
            if let Some(name) = &shared {
                batch = batch.shared(format!("{name}/{id}"));
            }
            if let Some(lease) = self.lease {
                batch = batch.claim_lease(lease);
            }
            for i in &instances {
                batch = batch.item(i.label.clone(), request(&self.krea, step.model, i));
            }
            let report = batch
                .run(|event| on_event(PipelineEvent::Batch { step: id, event }))
                .await?;
            made.insert(
                id.to_string(),
                instances
                    .iter()
                    .zip(&report.items)
                    .map(|(i, item)| Made {
                        label: i.label.clone(),
                        vars: i.vars.clone(),
                        // A job another worker finished: its URLs as that worker recorded them.
                        urls: if matches!(item.status, ItemStatus::Completed)
                            || (item.status == ItemStatus::Elsewhere && item.error.is_none())
                        {
                            item.urls.clone()
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
            );
            manifest.steps.push(StepRecord {
                id: id.to_string(),
                model: step.model.id.to_string(),
                dir: step_dir,
                jobs: records(&instances, &report),
            });
            let stop = report.stopped.is_some() || !report.all_done();
            if stop {
                manifest.stopped_at = Some(id.to_string());
            }
            write_manifest(&dir, &manifest)?;
            on_event(PipelineEvent::StepEnded {
                step: id,
                report: &report,
            });
            reports.push((id.to_string(), report));
            if stop {
                break;
            }
        }
        Ok(PipelineReport {
            steps: reports,
            manifest,
            dir,
        })
    }
}
