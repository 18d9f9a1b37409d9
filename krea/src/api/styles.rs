//! `krea.styles()`: train a style (LoRA) as a job, list, get, update, share.

use futures_util::Stream;
use krea_gen::types::{self, Job, Style};
use serde::Serialize;
use serde_json::Value;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::journal::Entry;

/// A style training request. `name` and at least one image URL are required.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StyleTraining {
    /// The style's name.
    pub name: String,
    /// Training image URLs (upload local files with `krea.assets()` first).
    pub urls: Vec<String>,
    /// Base model: `flux_dev` (default), `flux_schnell`, `wan`, `wan22`, `qwen`, `z-image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `Style`, `Object`, `Character` or `Default`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The word that invokes the style in prompts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_word: Option<String>,
    /// Training steps, 1..=2000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_train_steps: Option<u32>,
    /// Learning rate (not for `qwen` and `z-image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// Batch size (not for `qwen` and `z-image`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
}

/// Fields to change on a style you own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StyleUpdate {
    /// Visible to everyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// New title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New preview URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// New cover URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
}

/// The styles API.
#[derive(Debug, Clone)]
pub struct Styles {
    pub(crate) krea: Krea,
}

const TRAIN: &str = "style training";

impl Styles {
    /// Starts training; the job's result carries the new style id
    /// ([`crate::Finished::style_id`]).
    pub async fn train(&self, training: &StyleTraining) -> Result<JobHandle> {
        let mut problems = Vec::new();
        if training.name.trim().is_empty() {
            problems.push("name: is required".to_string());
        }
        if training.urls.is_empty() {
            problems.push("urls: at least one training image URL is required".to_string());
        }
        for url in &training.urls {
            if reqwest::Url::parse(url).is_err() {
                problems.push(format!("urls: {url:?} is not an absolute URL"));
            }
        }
        if training
            .max_train_steps
            .is_some_and(|s| !(1..=2000).contains(&s))
        {
            problems.push("max_train_steps: must be from 1 to 2000".into());
        }
        let body = serde_json::to_value(training).unwrap_or(Value::Null);
        if problems.is_empty() {
            // The generated type knows the two forms the API accepts.
            if let Err(e) = serde_json::from_value::<types::TrainStyleBody>(body.clone()) {
                problems.push(format!(
                    "the training does not match any form the API accepts: {e}"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidRequest {
                model: TRAIN.into(),
                problems,
            });
        }
        let (job, permit) = self
            .krea
            .create_job::<Job>(TRAIN, "/styles/train", &body, None)
            .await?;
        if let Some(journal) = self.krea.journal() {
            let entry = Entry::Submitted {
                at: chrono::Utc::now(),
                job_id: job.job_id,
                model: TRAIN.into(),
                request: body,
                output: None,
            };
            if let Err(e) = journal.append(&entry) {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not write the job journal; keep this job id");
            }
        }
        let poll = self.krea.poll_policy().clone();
        Ok(JobHandle::new(
            self.krea.clone(),
            job,
            None,
            None,
            poll,
            Some(permit),
            false,
        ))
    }

    /// Styles matching `filter` (`all`, `user`, `shared`, `krea`...), newest first.
    pub fn list(
        &self,
        filter: Option<types::ListStylesFilter>,
    ) -> impl Stream<Item = Result<Style>> + Send + 'static {
        let state = (
            self.krea.clone(),
            filter,
            None::<String>,
            std::collections::VecDeque::new(),
            false,
        );
        futures_util::stream::unfold(
            state,
            |(krea, filter, cursor, mut buffer, done)| async move {
                if let Some(s) = buffer.pop_front() {
                    return Some((Ok(s), (krea, filter, cursor, buffer, done)));
                }
                if done {
                    return None;
                }
                let raw = krea.raw();
                let page = krea
                    .call("list_styles", || {
                        let mut b = raw.list_styles();
                        if let Some(f) = filter {
                            b = b.filter(f);
                        }
                        if let Some(c) = &cursor {
                            b = b.cursor(c.clone());
                        }
                        b.send()
                    })
                    .await;
                match page {
                    Ok(page) => {
                        let next = page.next_cursor.clone();
                        let mut buffer: std::collections::VecDeque<Style> = page.items.into();
                        let first = buffer.pop_front()?;
                        let done = next.is_none();
                        Some((Ok(first), (krea, filter, next, buffer, done)))
                    }
                    Err(e) => Some((Err(e), (krea, filter, cursor, buffer, true))),
                }
            },
        )
    }

    /// One style.
    pub async fn get(&self, id: &str) -> Result<Style> {
        let raw = self.krea.raw();
        self.krea
            .call("get_style", || raw.get_style().id(id.to_string()).send())
            .await
    }

    /// Changes a style you own.
    pub async fn update(&self, id: &str, update: &StyleUpdate) -> Result<Style> {
        if update == &StyleUpdate::default() {
            return Err(Error::InvalidRequest {
                model: "PATCH /styles".into(),
                problems: vec!["nothing to update: set public, title, urls or cover_url".into()],
            });
        }
        let body: types::UpdateStyleBody = serde_json::from_value(
            serde_json::to_value(update).unwrap_or(Value::Null),
        )
        .map_err(|e| Error::InvalidRequest {
            model: "PATCH /styles".into(),
            problems: vec![e.to_string()],
        })?;
        let raw = self.krea.raw();
        self.krea
            .call("update_style", || {
                raw.update_style()
                    .id(id.to_string())
                    .body(body.clone())
                    .send()
            })
            .await
    }

    /// A shareable link to a style you own, and whether it was just created.
    pub async fn share_link(&self, id: &str) -> Result<(String, bool)> {
        let raw = self.krea.raw();
        let link = self
            .krea
            .call("get_style_share_link", || {
                raw.get_style_share_link().id(id.to_string()).send()
            })
            .await?;
        Ok((link.share_link, link.is_new))
    }

    /// Shares a style you own with your workspace.
    pub async fn share(&self, id: &str) -> Result<()> {
        let raw = self.krea.raw();
        self.krea
            .call("share_style_workspace", || {
                raw.share_style_workspace().id(id.to_string()).send()
            })
            .await
            .map(drop)
    }

    /// Stops sharing a style with your workspace.
    pub async fn unshare(&self, id: &str) -> Result<()> {
        let raw = self.krea.raw();
        self.krea
            .call("delete_style_share_workspace", || {
                raw.delete_style_share_workspace().id(id.to_string()).send()
            })
            .await
            .map(drop)
    }
}
