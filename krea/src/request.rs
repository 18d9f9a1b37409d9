//! Building a generation request, checked against the model's schema before anything is sent.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::JobHandle;
use crate::journal::{Entry, OutputPlan};
use crate::models::{self, Kind, ModelSpec};
use crate::poll::PollPolicy;

/// A generation being prepared. Setters never fail; problems (a parameter the model does not
/// have, a value out of range...) are all reported by [`GenerationRequest::submit`] (or
/// [`GenerationRequest::check`]) as one [`Error::InvalidRequest`], before any request is sent.
#[derive(Debug, Clone)]
#[must_use]
pub struct GenerationRequest {
    krea: Krea,
    /// The name asked for, and what it resolved to.
    name: String,
    model: Option<&'static ModelSpec>,
    kind: Option<Kind>,
    params: Map<String, Value>,
    problems: Vec<String>,
    webhook: Option<String>,
    output: Option<OutputPlan>,
    poll: Option<PollPolicy>,
    cancel_on_drop: bool,
    /// An endpoint no catalog lists: the body is sent as given.
    unchecked: bool,
}

impl Krea {
    /// An image generation with `model` (an id, alias, slug or path; see [`models::resolve`]).
    pub fn image(&self, model: &str) -> GenerationRequest {
        GenerationRequest::new(self, model, Some(Kind::Image))
    }

    /// A video generation with `model`.
    pub fn video(&self, model: &str) -> GenerationRequest {
        GenerationRequest::new(self, model, Some(Kind::Video))
    }

    /// An enhancement (upscale) with `model`.
    pub fn enhance(&self, model: &str) -> GenerationRequest {
        GenerationRequest::new(self, model, Some(Kind::Enhance))
    }

    /// Any generation endpoint with a JSON object of parameters.
    ///
    /// ```no_run
    /// # async fn run(krea: krea::Krea) -> krea::Result<()> {
    /// let job = krea
    ///     .generate("google/veo-3.1-fast", serde_json::json!({"prompt": "waves", "duration": 8}))
    ///     .submit()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn generate(&self, model: &str, params: Value) -> GenerationRequest {
        let mut r = GenerationRequest::new(self, model, None);
        match params {
            Value::Object(map) => {
                for (k, v) in map {
                    r = r.param(&k, v);
                }
            }
            other => r
                .problems
                .push(format!("the parameters must be a JSON object, not {other}")),
        }
        r
    }
}

impl Krea {
    /// A generation on an endpoint neither the built-in catalog nor a refreshed one lists
    /// (`/generate/{kind}/{provider}/{model}`), with `params` sent exactly as given: nothing is
    /// checked before paying. Prefer [`Krea::refresh_catalog`], after which the model validates
    /// like any other; this is the last resort for an endpoint newer than both.
    pub fn generate_unchecked(&self, path: &str, params: Value) -> GenerationRequest {
        let mut r = GenerationRequest::new(self, path, None);
        match krea_gen::catalog::unlisted(path) {
            Some(stand_in) if r.model.is_none() => {
                r.model = Some(stand_in);
                r.unchecked = true;
            }
            Some(_) => {}
            None => r.problems.push(format!(
                "{path} is not a generation endpoint: expected /generate/image|video|enhance/PROVIDER/MODEL"
            )),
        }
        match params {
            Value::Object(map) => r.params = map,
            other => r
                .problems
                .push(format!("the parameters must be a JSON object, not {other}")),
        }
        r
    }
}

impl GenerationRequest {
    fn new(krea: &Krea, model: &str, kind: Option<Kind>) -> GenerationRequest {
        GenerationRequest {
            krea: krea.clone(),
            name: model.to_string(),
            model: models::resolve(model).ok(),
            kind,
            params: Map::new(),
            problems: Vec::new(),
            webhook: None,
            output: None,
            poll: None,
            cancel_on_drop: false,
            unchecked: false,
        }
    }

    /// The resolved model, if the name resolved.
    pub fn model(&self) -> Option<&'static ModelSpec> {
        self.model
    }

    fn has(&self, name: &str) -> bool {
        self.model().is_none_or(|m| m.parameter(name).is_some())
    }

    /// Sets `name` if the model has it, else notes the problem.
    fn typed(mut self, name: &str, value: Value) -> Self {
        match self.model() {
            Some(m) if m.parameter(name).is_none() => {
                let names: Vec<&str> = m.parameters.iter().map(|p| p.name).collect();
                self.problems.push(format!(
                    "{name}: {} has no such parameter (it takes: {})",
                    m.id,
                    names.join(", ")
                ));
            }
            _ => {
                self.params.insert(name.to_string(), value);
            }
        }
        self
    }

    /// Any parameter. A deprecated camelCase name the model still lists (`imageUrls`) is sent
    /// under its snake_case name (`image_urls`).
    pub fn param(mut self, key: &str, value: impl Into<Value>) -> Self {
        let key = self
            .model()
            .and_then(|m| m.deprecated_aliases.iter().find(|a| a.from == key))
            .map_or(key, |a| a.to);
        self.params.insert(key.to_string(), value.into());
        self
    }

    /// The text prompt.
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.typed("prompt", Value::String(prompt.into()))
    }

    /// Width in pixels.
    pub fn width(self, px: u32) -> Self {
        self.typed("width", json!(px))
    }

    /// Height in pixels.
    pub fn height(self, px: u32) -> Self {
        self.typed("height", json!(px))
    }

    /// Aspect ratio, e.g. `"16:9"`.
    pub fn aspect_ratio(self, ratio: impl Into<String>) -> Self {
        self.typed("aspect_ratio", Value::String(ratio.into()))
    }

    /// Resolution, e.g. `"2K"` or `"1080p"`.
    pub fn resolution(self, resolution: impl Into<String>) -> Self {
        self.typed("resolution", Value::String(resolution.into()))
    }

    /// Seed, for repeatable results.
    pub fn seed(self, seed: u64) -> Self {
        self.typed("seed", json!(seed))
    }

    /// Sampling steps (Flux).
    pub fn steps(self, steps: u32) -> Self {
        self.typed("steps", json!(steps))
    }

    /// Duration in seconds (videos).
    pub fn duration(self, seconds: u32) -> Self {
        self.typed("duration", json!(seconds))
    }

    /// Generate audio with the video.
    pub fn audio(self, on: bool) -> Self {
        self.typed("generate_audio", Value::Bool(on))
    }

    /// Quality setting, e.g. `"high"` (GPT Image).
    pub fn quality(self, quality: impl Into<String>) -> Self {
        self.typed("quality", Value::String(quality.into()))
    }

    /// An input image by URL: appended to `image_urls` where the model takes several, else
    /// `image_url`, else (videos) the `start_image`.
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        let url = Value::String(url.into());
        let model = self.model();
        let takes = |name: &str| model.is_some_and(|m| m.parameter(name).is_some());
        if takes("image_urls") {
            if let Value::Array(list) = self.params.entry("image_urls").or_insert_with(|| json!([]))
            {
                list.push(url);
            }
            self
        } else if takes("image_url") {
            self.typed("image_url", url)
        } else if takes("start_image") {
            self.typed("start_image", url)
        } else {
            self.typed("image_url", url)
        }
    }

    /// The first frame of a video.
    pub fn start_image(self, url: impl Into<String>) -> Self {
        self.typed("start_image", Value::String(url.into()))
    }

    /// The last frame of a video.
    pub fn end_image(self, url: impl Into<String>) -> Self {
        self.typed("end_image", Value::String(url.into()))
    }

    /// A style reference image with a strength in -2..=2.
    pub fn style_image(mut self, url: impl Into<String>, strength: f64) -> Self {
        if !self.has("style_images") {
            return self.typed("style_images", Value::Null);
        }
        if let Value::Array(list) = self
            .params
            .entry("style_images")
            .or_insert_with(|| json!([]))
        {
            list.push(json!({ "url": url.into(), "strength": strength }));
        }
        self
    }

    /// A trained style (LoRA) by id with a strength in -2..=2.
    pub fn style(mut self, id: impl Into<String>, strength: f64) -> Self {
        if !self.has("styles") {
            return self.typed("styles", Value::Null);
        }
        if let Value::Array(list) = self.params.entry("styles").or_insert_with(|| json!([])) {
            list.push(json!({ "id": id.into(), "strength": strength }));
        }
        self
    }

    /// Krea POSTs the finished job to `url` (absolute https, or http on a loopback host).
    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self
    }

    /// Where [`crate::Finished::download`] (and `krea jobs resume`) put the files.
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let overwrite = self.output.as_ref().is_some_and(|o| o.overwrite);
        self.output = Some(OutputPlan {
            dir: dir.into(),
            overwrite,
        });
        self
    }

    /// Replace existing files when downloading (default: pick a new name).
    pub fn overwrite(mut self, yes: bool) -> Self {
        if let Some(o) = &mut self.output {
            o.overwrite = yes;
        }
        self
    }

    /// Poll this job with `policy` instead of the client's default.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = Some(policy);
        self
    }

    /// Cancel the job if its handle is dropped before it ends.
    pub fn cancel_on_drop(mut self) -> Self {
        self.cancel_on_drop = true;
        self
    }

    /// The model and the JSON body that would be sent, after every check.
    pub fn check(&self) -> Result<(&'static ModelSpec, Value)> {
        let Some(model) = self.model else {
            if !self.problems.is_empty() {
                return Err(Error::InvalidRequest {
                    model: self.name.clone(),
                    problems: self.problems.clone(),
                });
            }
            // Resolving again gives the typed error (UnknownModel with suggestions, ModelRetired).
            return Err(models::resolve(&self.name)
                .err()
                .unwrap_or(Error::UnknownModel {
                    name: self.name.clone(),
                    suggestions: Vec::new(),
                }));
        };
        let mut problems = self.problems.clone();
        let body = Value::Object(self.params.clone());
        if self.unchecked {
            return if problems.is_empty() {
                Ok((model, body))
            } else {
                Err(Error::InvalidRequest {
                    model: model.id.into(),
                    problems,
                })
            };
        }
        if let Some(kind) = self.kind.filter(|k| *k != model.kind) {
            let call = match model.kind {
                Kind::Image => "krea.image(...)",
                Kind::Video => "krea.video(...)",
                Kind::Enhance => "krea.enhance(...)",
            };
            let a = |k: Kind| {
                if k == Kind::Video {
                    "a video"
                } else if k == Kind::Image {
                    "an image"
                } else {
                    "an enhance"
                }
            };
            problems.push(format!(
                "{} is {} model, not {}: use {call} or krea.generate(...)",
                model.id,
                a(model.kind),
                a(kind)
            ));
        }
        problems.extend(
            krea_gen::validate::validate(model, &body)
                .iter()
                .map(ToString::to_string),
        );
        if problems.is_empty() {
            // The generated type is the last word: a body it refuses is not sent.
            if let Some(Err(e)) = krea_gen::catalog::decode_body(model.operation_id, &body) {
                problems.push(e);
            }
        }
        if let Some(url) = &self.webhook
            && let Err(why) = check_webhook_url(url)
        {
            problems.push(format!("webhook: {why}"));
        }
        problems.dedup();
        if problems.is_empty() {
            Ok((model, body))
        } else {
            Err(Error::InvalidRequest {
                model: model.id.into(),
                problems,
            })
        }
    }

    /// Checks, sends, journals and returns a handle to wait on.
    pub async fn submit(self) -> Result<JobHandle> {
        let (model, body) = self.check()?;
        if self.unchecked {
            tracing::warn!(
                path = model.path,
                "no catalog lists this endpoint: sending the body unchecked"
            );
        }
        let (job, permit) = self
            .krea
            .create_job::<krea_gen::types::Job>(
                model.id,
                model.path,
                &body,
                self.webhook.as_deref(),
            )
            .await?;
        if let Some(journal) = self.krea.journal() {
            let entry = Entry::Submitted {
                at: chrono::Utc::now(),
                job_id: job.job_id,
                model: model.id.into(),
                request: body,
                output: self.output.clone(),
            };
            // The job exists and is paid for: failing to note it must not lose it, so say so.
            if let Err(e) = journal.append(&entry) {
                tracing::warn!(job_id = %job.job_id, error = %e, "could not write the job journal; keep this job id");
            }
        }
        let poll = self.poll.unwrap_or_else(|| self.krea.poll_policy().clone());
        Ok(JobHandle::new(
            self.krea,
            job,
            Some(model),
            self.output,
            poll,
            Some(permit),
            self.cancel_on_drop,
        ))
    }
}

/// Absolute https, or http to a loopback host.
pub fn check_webhook_url(url: &str) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| format!("{url:?} is not an absolute URL"))?;
    let loopback = krea_gen::net::is_loopback_host(parsed.host_str());
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "{url} must use https:// (http:// only for loopback hosts)"
        )),
        _ => Err(format!("{url} must be an https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krea() -> Krea {
        Krea::builder()
            .token("t")
            .base_url("http://127.0.0.1:9")
            .journal(crate::config::StatePath::Disabled)
            .timings(crate::config::StatePath::Disabled)
            .build()
            .expect("client")
    }

    #[test]
    fn a_valid_request_gives_the_body_to_send() {
        let (model, body) = krea()
            .image("flux")
            .prompt("a lighthouse")
            .width(1024)
            .seed(7)
            .check()
            .expect("valid");
        assert_eq!(model.id, "bfl/flux-1-dev");
        assert_eq!(
            body,
            json!({"prompt": "a lighthouse", "width": 1024, "seed": 7})
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = krea()
            .image("flux")
            .prompt("x".repeat(2000))
            .width(9000)
            .duration(5)
            .check()
            .expect_err("invalid");
        let Error::InvalidRequest { problems, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("duration: bfl/flux-1-dev has no such parameter"))
        );
    }

    #[test]
    fn deprecated_camel_case_is_sent_as_snake_case() {
        let (_, body) = krea()
            .generate(
                "nano banana 2",
                json!({"prompt": "cat", "imageUrls": ["https://example.com/a.png"]}),
            )
            .check()
            .expect("valid");
        assert_eq!(body["image_urls"][0], "https://example.com/a.png");
        assert!(body.get("imageUrls").is_none());
    }

    #[test]
    fn image_urls_go_where_the_model_takes_them() {
        let (_, body) = krea()
            .image("nano2")
            .prompt("cat")
            .image_url("https://e.com/a.png")
            .image_url("https://e.com/b.png")
            .check()
            .expect("valid");
        assert_eq!(
            body["image_urls"],
            json!(["https://e.com/a.png", "https://e.com/b.png"])
        );
        let (_, body) = krea()
            .image("flux")
            .prompt("cat")
            .image_url("https://e.com/a.png")
            .check()
            .expect("valid");
        assert_eq!(body["image_url"], "https://e.com/a.png");
        let (_, body) = krea()
            .video("kling/kling-2.1")
            .prompt("waves")
            .image_url("https://e.com/a.png")
            .check()
            .expect("valid");
        assert_eq!(body["start_image"], "https://e.com/a.png");
    }

    #[test]
    fn the_kind_must_match() {
        let err = krea()
            .image("kling/kling-2.1")
            .prompt("waves")
            .check()
            .expect_err("a video model");
        assert!(err.to_string().contains("use krea.video(...)"), "{err}");
    }

    #[test]
    fn model_errors_keep_their_type() {
        assert!(matches!(
            krea().image("seedream-3").prompt("x").check(),
            Err(Error::ModelRetired { .. })
        ));
        match krea().image("fluxx").prompt("x").check() {
            Err(Error::UnknownModel { suggestions, .. }) => assert!(!suggestions.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn webhooks_must_be_https_or_loopback() {
        assert!(check_webhook_url("https://hooks.example.com/krea").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook_url("http://hooks.example.com/krea").is_err());
        assert!(check_webhook_url("/relative").is_err());
        let err = krea()
            .image("flux")
            .prompt("x")
            .webhook("http://evil.example/h")
            .check()
            .expect_err("refused");
        assert!(err.to_string().contains("webhook"));
    }
}
