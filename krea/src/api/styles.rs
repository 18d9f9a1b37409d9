//! `krea.styles()`: train a style (LoRA) as a job, list, get, update, share.

use futures_util::Stream;
use krea_gen::types;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Problem;
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::send::{Call, Class};
use crate::submit::Creation;
use crate::types::{Style, StyleShareLink};

/// A style training request. `name` and at least one image URL are required.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
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
    /// Training images that are local files or bytes: uploaded first, then added to `urls`.
    #[serde(skip)]
    pub inputs: Vec<crate::Input>,
}

/// Fields to change on a style you own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
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

#[derive(Deserialize)]
struct Page {
    items: Vec<Style>,
    #[serde(default)]
    next_cursor: Option<String>,
}

impl StyleTraining {
    /// One more training image: a URL, a local file or bytes (uploaded before training).
    pub fn image(mut self, input: impl Into<crate::Input>) -> Self {
        match input.into() {
            crate::Input::Url(u) => self.urls.push(u),
            local => self.inputs.push(local),
        }
        self
    }

    /// A training of style `name` on images at `urls`.
    pub fn new(name: impl Into<String>, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        StyleTraining {
            name: name.into(),
            urls: urls.into_iter().map(Into::into).collect(),
            ..StyleTraining::default()
        }
    }

    /// The base model (`flux_dev`, `flux_schnell`, `wan`, `wan22`...).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// `Style`, `Object`, `Character` or `Default`.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// The word that invokes the style in prompts.
    pub fn trigger_word(mut self, word: impl Into<String>) -> Self {
        self.trigger_word = Some(word.into());
        self
    }

    /// Training steps, 1..=2000.
    pub fn max_train_steps(mut self, steps: u32) -> Self {
        self.max_train_steps = Some(steps);
        self
    }

    /// Learning rate.
    pub fn learning_rate(mut self, rate: f64) -> Self {
        self.learning_rate = Some(rate);
        self
    }

    /// Batch size.
    pub fn batch_size(mut self, size: u32) -> Self {
        self.batch_size = Some(size);
        self
    }
}

impl StyleUpdate {
    /// Make it public (or not).
    pub fn public(mut self, yes: bool) -> Self {
        self.public = Some(yes);
        self
    }

    /// A new title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// New preview URLs.
    pub fn urls(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.urls = Some(urls.into_iter().map(Into::into).collect());
        self
    }

    /// A new cover URL.
    pub fn cover_url(mut self, url: impl Into<String>) -> Self {
        self.cover_url = Some(url.into());
        self
    }
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
            problems.push(Problem::at("name", "is required"));
        }
        if training.urls.is_empty() && training.inputs.is_empty() {
            problems.push(Problem::at(
                "urls",
                "at least one training image is required",
            ));
        }
        problems.extend(
            training
                .inputs
                .iter()
                .filter_map(|i| i.problem().map(|p| Problem::at("images", p))),
        );
        for url in &training.urls {
            if reqwest::Url::parse(url).is_err() {
                problems.push(Problem::at(
                    "urls",
                    format!("{url:?} is not an absolute URL"),
                ));
            }
        }
        if training
            .max_train_steps
            .is_some_and(|s| !(1..=2000).contains(&s))
        {
            problems.push(Problem::at("max_train_steps", "must be from 1 to 2000"));
        }
        let mut full = training.clone();
        full.urls
            .extend(training.inputs.iter().map(crate::Input::placeholder));
        let body = serde_json::to_value(&full).unwrap_or(Value::Null);
        if problems.is_empty() {
            // The generated type knows the two forms the API accepts.
            if let Err(e) = serde_json::from_value::<types::TrainStyleBody>(body.clone()) {
                problems.push(Problem::whole(format!(
                    "the training does not match any form the API accepts: {e}"
                )));
            }
        }
        if !problems.is_empty() {
            return Err(Error::InvalidRequest {
                subject: TRAIN.into(),
                problems,
            });
        }
        // Checked: now upload the local images.
        let mut training = training.clone();
        for input in std::mem::take(&mut training.inputs) {
            training.urls.push(input.resolve(&self.krea).await?);
        }
        let body = serde_json::to_value(&training).unwrap_or(body);
        let jobs = self
            .krea
            .create(&Creation::new(TRAIN, "/styles/train", body))
            .await?;
        let job = jobs.into_iter().next().ok_or_else(|| Error::Decode {
            operation: TRAIN.into(),
            path: None,
            message: "the answer named no job".into(),
            body: String::new(),
        })?;
        let poll = self.krea.poll_policy().clone();
        Ok(JobHandle::new(
            self.krea.clone(),
            job,
            None,
            None,
            poll,
            false,
        ))
    }

    /// Styles matching `filter` (`all`, `user`, `shared`, `krea`...), newest first.
    pub fn list(&self, filter: Option<&str>) -> impl Stream<Item = Result<Style>> + Send + 'static {
        let state = (
            self.krea.clone(),
            filter.map(String::from),
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
                let mut query = Vec::new();
                if let Some(f) = &filter {
                    query.push(format!("filter={f}"));
                }
                if let Some(c) = &cursor {
                    query.push(format!("cursor={c}"));
                }
                let path = if query.is_empty() {
                    "/styles".to_string()
                } else {
                    format!("/styles?{}", query.join("&"))
                };
                let page: Result<Page> = krea.read(Method::GET, &path, "GET /styles").await;
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
        self.krea
            .read(Method::GET, &format!("/styles/{id}"), "GET /styles/{id}")
            .await
    }

    /// Changes a style you own.
    pub async fn update(&self, id: &str, update: &StyleUpdate) -> Result<Style> {
        if update == &StyleUpdate::default() {
            return Err(Error::InvalidRequest {
                subject: "PATCH /styles".into(),
                problems: vec![Problem::whole(
                    "nothing to update: set public, title, urls or cover_url",
                )],
            });
        }
        let body = serde_json::to_value(update).unwrap_or(Value::Null);
        if let Err(e) = serde_json::from_value::<types::UpdateStyleBody>(body.clone()) {
            return Err(Error::InvalidRequest {
                subject: "PATCH /styles".into(),
                problems: vec![Problem::whole(e.to_string())],
            });
        }
        // Setting the same fields again changes nothing: safe to repeat.
        let call = Call::api(
            &self.krea,
            Class::Read,
            Method::PATCH,
            &format!("/styles/{id}"),
            "PATCH /styles/{id}",
        )
        .json(body);
        self.krea
            .json_call(&call)
            .await
            .map_err(|f| self.krea.error(f, "PATCH /styles/{id}"))
    }

    /// A shareable link to a style you own, and whether it was just created.
    pub async fn share_link(&self, id: &str) -> Result<StyleShareLink> {
        self.krea
            .read(
                Method::GET,
                &format!("/styles/{id}/share/link"),
                "GET /styles/{id}/share/link",
            )
            .await
    }

    /// Shares a style you own with your workspace.
    pub async fn share(&self, id: &str) -> Result<()> {
        // Sharing twice leaves it shared: safe to repeat.
        let op = "POST /styles/{id}/share/workspace";
        let call = Call::api(
            &self.krea,
            Class::Read,
            Method::POST,
            &format!("/styles/{id}/share/workspace"),
            op,
        );
        self.krea
            .ignore_answer(&call)
            .await
            .map_err(|f| self.krea.error(f, op))
    }

    /// Stops sharing a style with your workspace.
    pub async fn unshare(&self, id: &str) -> Result<()> {
        let op = "DELETE /styles/{id}/share/workspace";
        let call = Call::api(
            &self.krea,
            Class::Read,
            Method::DELETE,
            &format!("/styles/{id}/share/workspace"),
            op,
        );
        self.krea
            .ignore_answer(&call)
            .await
            .map_err(|f| self.krea.error(f, op))
    }
}
