//! `krea.node_apps()`: apps built in Krea's node editor, run as jobs.

use reqwest::Method;
use serde_json::Value;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::submit::Creation;
use crate::types::NodeApp;

/// The node apps API.
#[derive(Debug, Clone)]
pub struct NodeApps {
    pub(crate) krea: Krea,
}

impl NodeApps {
    /// An app version, with its input and output schemas.
    pub async fn get(&self, id: &str) -> Result<NodeApp> {
        self.krea
            .read(
                Method::GET,
                &format!("/node-apps/{id}"),
                "GET /node-apps/{id}",
            )
            .await
    }

    /// Runs app version `id` with `inputs` (checked against the app's required inputs first).
    pub async fn execute(&self, id: &str, inputs: Value) -> Result<Vec<JobHandle>> {
        let app = self.get(id).await?;
        let label = format!("node app {id}");
        let Value::Object(given) = &inputs else {
            return Err(Error::InvalidRequest {
                subject: label,
                problems: vec![crate::Problem::whole("the inputs must be a JSON object")],
            });
        };
        let required: Vec<String> = app
            .input_openapi_schema
            .as_ref()
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let missing: Vec<crate::Problem> = required
            .iter()
            .filter(|r| !given.contains_key(r.as_str()))
            .map(|r| crate::Problem::at(r.as_str(), "is required by this app"))
            .collect();
        if !missing.is_empty() {
            return Err(Error::InvalidRequest {
                subject: label,
                problems: missing,
            });
        }
        let path = format!("/node-apps/{id}/execute");
        let jobs = self
            .krea
            .create(&Creation::new(label, path, inputs))
            .await?;
        let poll = self.krea.poll_policy().clone();
        Ok(jobs
            .into_iter()
            .map(|job| JobHandle::new(self.krea.clone(), job, None, None, poll.clone(), false))
            .collect())
    }
}
