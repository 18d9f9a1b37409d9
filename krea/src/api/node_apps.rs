//! `krea.node_apps()`: apps built in Krea's node editor, run as jobs.

use krea_gen::types::{GetNodeAppResponse, Job};
use serde_json::Value;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::journal::Entry;

/// The node apps API.
#[derive(Debug, Clone)]
pub struct NodeApps {
    pub(crate) krea: Krea,
}

impl NodeApps {
    /// An app version, with its input and output schemas.
    pub async fn get(&self, id: &str) -> Result<GetNodeAppResponse> {
        let raw = self.krea.raw();
        self.krea
            .call("get_node_app", || {
                raw.get_node_app().id(id.to_string()).send()
            })
            .await
    }

    /// Runs app version `id` with `inputs` (checked against the app's required inputs first).
    pub async fn execute(&self, id: &str, inputs: Value) -> Result<Vec<JobHandle>> {
        let app = self.get(id).await?;
        let Value::Object(given) = &inputs else {
            return Err(Error::InvalidRequest {
                model: format!("node app {id}"),
                problems: vec!["the inputs must be a JSON object".into()],
            });
        };
        let missing: Vec<String> = app
            .input_openapi_schema
            .as_ref()
            .map(|s| {
                s.required
                    .iter()
                    .filter(|r| !given.contains_key(r.as_str()))
                    .map(|r| format!("{r}: is required by this app"))
                    .collect()
            })
            .unwrap_or_default();
        if !missing.is_empty() {
            return Err(Error::InvalidRequest {
                model: format!("node app {id}"),
                problems: missing,
            });
        }
        let label = format!("node app {id}");
        let path = format!("/node-apps/{id}/execute");
        let (jobs, permit) = self
            .krea
            .create_job::<Vec<Job>>(&label, &path, &inputs, None)
            .await?;
        let mut permit = Some(permit);
        let mut handles = Vec::new();
        for job in jobs {
            if let Some(journal) = self.krea.journal() {
                let entry = Entry::Submitted {
                    at: chrono::Utc::now(),
                    job_id: job.job_id,
                    model: label.clone(),
                    request: inputs.clone(),
                    output: None,
                };
                if let Err(e) = journal.append(&entry) {
                    tracing::warn!(job_id = %job.job_id, error = %e, "could not write the job journal; keep this job id");
                }
            }
            let poll = self.krea.poll_policy().clone();
            handles.push(JobHandle::new(
                self.krea.clone(),
                job,
                None,
                None,
                poll,
                permit.take(),
                false,
            ));
        }
        Ok(handles)
    }
}
