//! Building a generation request, checked against the model's schema before anything is sent:
//! parameters, inputs (URLs, local files, bytes), where the results go, and what it will cost.

use std::path::PathBuf;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use crate::Problem;
use crate::client::Krea;
use crate::cost::{Estimate, estimate};
use crate::error::{Error, Result};
use crate::input::Input;
use crate::job::JobHandle;
use crate::journal::OutputPlan;
use crate::models::{self, Kind, ModelSpec};
use crate::poll::PollPolicy;
use crate::sizes;
use crate::submit::Creation;

/// Where an input goes in the body.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    /// The field takes one URL.
    Field(String),
    /// The field is a list of URLs: appended.
    Append(String),
    /// `style_images`: appended as `{url, strength}`.
    StyleImage(f64),
}

/// A generation being prepared. Setters never fail; problems (a parameter the model does not
/// have, a value out of range, a missing file...) are all reported by
/// [`GenerationRequest::submit`] (or [`GenerationRequest::check`]) as one
/// [`Error::InvalidRequest`], before anything is uploaded, sent or paid.
#[derive(Debug, Clone)]
#[must_use]
pub struct GenerationRequest {
    krea: Krea,
    /// The name asked for, and what it resolved to.
    name: String,
    model: Option<&'static ModelSpec>,
    kind: Option<Kind>,
    params: Map<String, Value>,
    inputs: Vec<(Slot, Input)>,
    ratio_hint: Option<String>,
    scale: Option<f64>,
    problems: Vec<Problem>,
    webhook: Option<String>,
    output: Option<OutputPlan>,
    poll: Option<PollPolicy>,
    cancel_on_drop: bool,
    /// An endpoint no catalog lists: the body is sent as given.
    unchecked: bool,
}

/// A request that passed every check: what would be sent, what was filled in, what it costs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Checked {
    /// The model.
    pub model: &'static ModelSpec,
    /// The body that would be sent (local inputs appear as `https://uploads.invalid/...`
    /// until they are uploaded).
    pub body: Value,
    /// Values the request left out and this crate chose (a size from the aspect ratio...).
    pub notes: Vec<String>,
    /// The cost in compute units, where Krea publishes the model's pricing.
    pub estimate: Option<Estimate>,
    /// The most it may cost: `estimate`, or where there is none the assumed price
    /// ([`crate::KreaBuilder::assumed_price`]); what budgets hold.
    pub worst_case: Estimate,
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

    /// An enhancement (upscale) with `model`. Without a width and height, the output is the
    /// input's size times [`GenerationRequest::scale`] (default 2), read from a local input.
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
            other => r.problems.push(Problem::whole(format!(
                "the parameters must be a JSON object, not {other}"
            ))),
        }
        r
    }

    /// A request from a typed body of the generated client ([`crate::raw`]), e.g.
    /// `raw::types::GenerateImageBflFlux1DevBody`: sent through the same checked, journaled
    /// path as every other generation.
    pub fn generate_body<B: crate::raw::GenerationBody>(
        &self,
        body: &B,
    ) -> GenerationRequest {
        match serde_json::to_value(body) {
            Ok(v) => self.generate(B::PATH, v),
            Err(e) => {
                let mut r = GenerationRequest::new(self, B::PATH, None);
                r.problems
                    .push(Problem::whole(format!("the body does not serialize: {e}")));
                r
            }
        }
    }

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
            None => r.problems.push(Problem::whole(format!(
                "{path} is not a generation endpoint: expected /generate/image|video|enhance/PROVIDER/MODEL"
            ))),
        }
        match params {
            Value::Object(map) => r.params = map,
            other => r.problems.push(Problem::whole(format!(
                "the parameters must be a JSON object, not {other}"
            ))),
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
            inputs: Vec::new(),
            ratio_hint: None,
            scale: None,
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

    fn takes(&self, name: &str) -> bool {
        self.model().is_none_or(|m| m.parameter(name).is_some())
    }

    /// Sets `name` if the model has it, else notes the problem.
    fn typed(mut self, name: &str, value: Value) -> Self {
        match self.model() {
            Some(m) if m.parameter(name).is_none() => {
                let names: Vec<&str> = m.parameters.iter().map(|p| p.name).collect();
                self.problems.push(Problem::at(
                    name,
                    format!(
                        "{} has no such parameter (it takes: {})",
                        m.id,
                        names.join(", ")
                    ),
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

    /// Aspect ratio, e.g. `"16:9"`. A model that takes an aspect ratio gets it as is; one that
    /// takes a width and height gets a size of its usual area in that shape.
    pub fn aspect_ratio(mut self, ratio: impl Into<String>) -> Self {
        let ratio = ratio.into();
        if self.takes("aspect_ratio") {
            self.typed("aspect_ratio", Value::String(ratio))
        } else if self.takes("width") && self.takes("height") {
            match (self.model, sizes::parse_ratio(&ratio)) {
                (Some(m), Some(r)) => {
                    let (w, h) = sizes::size_for_ratio(m, r);
                    self.params.entry("width").or_insert(json!(w));
                    self.params.entry("height").or_insert(json!(h));
                }
                _ => self.problems.push(Problem::at(
                    "aspect_ratio",
                    format!("{ratio:?} is not of the form W:H"),
                )),
            }
            self.ratio_hint = Some(ratio);
            self
        } else {
            self.typed("aspect_ratio", Value::String(ratio))
        }
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

    /// For an enhancer: output size = input size x `factor` (where the model takes a scale
    /// factor, it is sent too).
    pub fn scale(mut self, factor: f64) -> Self {
        if !(factor.is_finite() && factor > 0.0) {
            self.problems.push(Problem::at(
                "scale",
                format!("{factor} is not a positive number"),
            ));
        }
        self.scale = Some(factor);
        self
    }

    fn input_into(mut self, slot: Slot, input: Input) -> Self {
        self.inputs.push((slot, input));
        self
    }

    /// An input image (a URL, a local file, or bytes; see [`Input`]): appended to
    /// `image_urls` where the model takes several, else `image_url`, else (videos) the
    /// `start_image`. Local files are uploaded just before the request is sent.
    pub fn image(self, input: impl Into<Input>) -> Self {
        let slot = if self
            .model()
            .is_some_and(|m| m.parameter("image_urls").is_some())
        {
            Slot::Append("image_urls".into())
        } else if self
            .model()
            .is_some_and(|m| m.parameter("image_url").is_some())
        {
            Slot::Field("image_url".into())
        } else if self
            .model()
            .is_some_and(|m| m.parameter("start_image").is_some())
        {
            Slot::Field("start_image".into())
        } else {
            Slot::Field("image_url".into())
        };
        self.input_into(slot, input.into())
    }

    /// An input image by URL (see [`GenerationRequest::image`]).
    pub fn image_url(self, url: impl Into<String>) -> Self {
        self.image(Input::Url(url.into()))
    }

    /// The first frame of a video (a URL, a local file, or bytes).
    pub fn start_image(self, input: impl Into<Input>) -> Self {
        self.input_into(Slot::Field("start_image".into()), input.into())
    }

    /// The last frame of a video (a URL, a local file, or bytes).
    pub fn end_image(self, input: impl Into<Input>) -> Self {
        self.input_into(Slot::Field("end_image".into()), input.into())
    }

    /// Any field that takes a URL (`init_video`, `audio_url`, `start_video`...), from a URL, a
    /// local file or bytes.
    pub fn input(self, field: &str, input: impl Into<Input>) -> Self {
        self.input_into(Slot::Field(field.into()), input.into())
    }

    /// A style reference image with a strength in -2..=2.
    pub fn style_image(self, input: impl Into<Input>, strength: f64) -> Self {
        self.input_into(Slot::StyleImage(strength), input.into())
    }

    /// A trained style (LoRA) by id with a strength in -2..=2.
    pub fn style(mut self, id: impl Into<String>, strength: f64) -> Self {
        if !self.takes("styles") {
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

    /// Where [`crate::Finished::download`] (and resuming) put the files: a directory, or an
    /// exact file with [`GenerationRequest::output_file`].
    pub fn output_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let overwrite = self.output.as_ref().is_some_and(|o| o.overwrite);
        self.output = Some(OutputPlan::dir(dir).overwrite(overwrite));
        self
    }

    /// The first result is written at exactly `path` (later ones get `-1`, `-2`...). Its
    /// extension must suit the model's output (an image name for an image model); checked
    /// before sending.
    pub fn output_file(mut self, path: impl Into<PathBuf>) -> Self {
        let overwrite = self.output.as_ref().is_some_and(|o| o.overwrite);
        self.output = Some(OutputPlan::file(path).overwrite(overwrite));
        self
    }

    /// Replace existing files when downloading (default: pick a free name).
    pub fn overwrite(mut self, yes: bool) -> Self {
        if let Some(o) = self.output.take() {
            self.output = Some(o.overwrite(yes));
        }
        self
    }

    /// Poll this job with `policy` instead of the client's default.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = Some(policy);
        self
    }

    /// The request's poll policy, else `policy`.
    pub(crate) fn poll_or(mut self, policy: &PollPolicy) -> Self {
        self.poll.get_or_insert_with(|| policy.clone());
        self
    }

    /// Cancel the job if its handle is dropped before it ends.
    pub fn cancel_on_drop(mut self) -> Self {
        self.cancel_on_drop = true;
        self
    }

    /// The parameters with each input's URL (`urls`, in input order) placed into its field.
    fn placed(&self, urls: &[String]) -> Map<String, Value> {
        let mut params = self.params.clone();
        for ((slot, _), url) in self.inputs.iter().zip(urls) {
            let url = Value::String(url.clone());
            match slot {
                Slot::Field(f) => {
                    params.insert(f.clone(), url);
                }
                Slot::Append(f) => {
                    if let Value::Array(list) = params.entry(f.clone()).or_insert_with(|| json!([]))
                    {
                        list.push(url);
                    }
                }
                Slot::StyleImage(strength) => {
                    if let Value::Array(list) =
                        params.entry("style_images").or_insert_with(|| json!([]))
                    {
                        list.push(json!({ "url": url, "strength": strength }));
                    }
                }
            }
        }
        params
    }

    /// Every check, and what would be sent (local inputs as placeholders), the values chosen
    /// for what the model requires and the request left out, and the cost.
    pub fn check(&self) -> Result<Checked> {
        let placeholders: Vec<String> = self.inputs.iter().map(|(_, i)| i.placeholder()).collect();
        self.check_with(&self.placed(&placeholders))
    }

    /// What the request will cost in compute units (`None` where Krea publishes no pricing).
    pub fn estimate(&self) -> Result<Option<Estimate>> {
        Ok(self.check()?.estimate)
    }

    fn check_with(&self, params: &Map<String, Value>) -> Result<Checked> {
        let Some(model) = self.model else {
            if !self.problems.is_empty() {
                return Err(Error::InvalidRequest {
                    subject: self.name.clone(),
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
        problems.extend(self.inputs.iter().filter_map(|(slot, input)| {
            let field = match slot {
                Slot::Field(f) | Slot::Append(f) => f.as_str(),
                Slot::StyleImage(_) => "style_images",
            };
            input.problem().map(|p| Problem::at(field, p))
        }));
        if self.unchecked {
            return if problems.is_empty() {
                Ok(Checked {
                    model,
                    body: Value::Object(params.clone()),
                    notes: Vec::new(),
                    estimate: None,
                    worst_case: crate::cost::worst_case(
                        model,
                        &Value::Object(params.clone()),
                        self.krea.inner.assumed_price,
                    ),
                })
            } else {
                Err(Error::InvalidRequest {
                    subject: model.id.into(),
                    problems,
                })
            };
        }
        if let Some(kind) = self.kind.filter(|k| *k != model.kind) {
            problems.push(Problem::whole(format!(
                "{} is {} model, not {}",
                model.id,
                models::kind_with_article(model.kind),
                models::kind_with_article(kind)
            )));
        }
        let mut params = params.clone();
        let source = self.inputs.iter().find_map(|(_, i)| i.dimensions());
        let (mut notes, unfilled) = sizes::fill(
            model,
            &mut params,
            self.ratio_hint.as_deref(),
            source,
            self.scale,
        );
        // A size the fill could not make is said once, not again as two missing parameters.
        let size_explained = unfilled
            .iter()
            .any(|p| p.field.as_deref() == Some(sizes::SIZE));
        problems.extend(unfilled);
        // A ratio given to a model that takes a size: say once what size it became.
        if let Some(ratio) = &self.ratio_hint
            && model.parameter("aspect_ratio").is_none()
            && let (Some(w), Some(h)) = (params.get("width"), params.get("height"))
        {
            notes.push(format!(
                "aspect ratio {ratio} sent as {w}x{h}: {} takes a width and a height",
                model.id
            ));
        }
        let mut body = Value::Object(params);
        krea_gen::validate::normalize_integers(model, &mut body);
        problems.extend(
            krea_gen::validate::validate(model, &body)
                .into_iter()
                .map(Problem::from)
                .filter(|p| {
                    let a_size = matches!(p.field.as_deref(), Some("width" | "height"));
                    !(size_explained && a_size && p.message == "is required")
                }),
        );
        problems.extend(blank_prompt(model, &body));
        if problems.is_empty() {
            // The generated type is the last word: a body it refuses is not sent.
            if let Some(Err(e)) = krea_gen::catalog::decode_body(model.operation_id, &body) {
                problems.push(Problem::whole(e));
            }
        }
        if let Some(url) = &self.webhook
            && let Err(why) = check_webhook_url(url)
        {
            problems.push(Problem::at("webhook", why));
        }
        if let Some(why) = self
            .output
            .as_ref()
            .and_then(|o| output_problem(o, model.kind))
        {
            problems.push(Problem::at("output", why));
        }
        problems.dedup();
        if !problems.is_empty() {
            return Err(Error::InvalidRequest {
                subject: model.id.into(),
                problems,
            });
        }
        let estimate = estimate(model, &body);
        let worst_case = crate::cost::worst_case(model, &body, self.krea.inner.assumed_price);
        Ok(Checked {
            model,
            body,
            notes,
            estimate,
            worst_case,
        })
    }

    /// Checks; uploads local inputs; sends once (journaled, if the client keeps a journal);
    /// returns a handle to wait on. The values chosen for the request are logged.
    pub async fn submit(self) -> Result<JobHandle> {
        self.submit_keyed(uuid::Uuid::new_v4(), None).await
    }

    /// [`GenerationRequest::submit`], and where the answer is lost, settles it (within the
    /// client's deadline, see [`Krea::until`]): the job the request created is returned, and a
    /// request settled as having created nothing is sent again. Still undecided at the
    /// deadline, the [`Error::OutcomeUnknown`] is returned (the journal, if any, keeps it for
    /// [`Krea::settle_all`]). Never sent again while it may have created a job.
    ///
    /// ```no_run
    /// # async fn run(krea: krea::Krea) -> krea::Result<()> {
    /// let job = krea.image("flux").prompt("a fox").submit_settled().await?;
    /// let files = job.wait().await?.download_to("out/").await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit_settled(self) -> Result<JobHandle> {
        // A server that loses every answer before creating anything is not chased forever.
        let mut sent = 0;
        loop {
            sent += 1;
            let outcome = match self.clone().submit().await {
                Err(Error::OutcomeUnknown(u)) => u,
                other => return other,
            };
            match self.krea.settle(&outcome).await? {
                crate::Settlement::Adopted { job_id, .. } => {
                    let job = crate::types::Job::placeholder(
                        job_id,
                        crate::JobStatus::Queued,
                        chrono::Utc::now(),
                    );
                    let poll = self.poll.clone().unwrap_or_else(|| PollPolicy {
                        first: crate::poll::FirstPoll::After(std::time::Duration::ZERO),
                        ..self.krea.poll_policy().clone()
                    });
                    return Ok(
                        JobHandle::existing(&self.krea, job, self.model, self.output)
                            .with_policy(poll),
                    );
                }
                crate::Settlement::NotCreated { .. } if sent < 3 => continue,
                crate::Settlement::NotCreated { .. } => {
                    return Err(Error::Transport {
                        operation: outcome.model.clone(),
                        detail: format!(
                            "three requests in a row lost their answers and created nothing ({})",
                            outcome.detail
                        ),
                        source: None,
                    });
                }
                _ => return Err(Error::OutcomeUnknown(outcome)),
            }
        }
    }

    /// Where the results go, if planned.
    pub fn output(&self) -> Option<&OutputPlan> {
        self.output.as_ref()
    }

    /// The client this request is sent with.
    pub(crate) fn with_client(mut self, krea: &Krea) -> Self {
        self.krea = krea.clone();
        self
    }

    /// [`GenerationRequest::submit`] with the journal key chosen by the caller (a batch records
    /// it in its manifest before sending).
    pub(crate) async fn submit_keyed(
        self,
        key: uuid::Uuid,
        admission: Option<crate::limiter::Admission>,
    ) -> Result<JobHandle> {
        // Everything is checked before the first upload.
        let checked = self.check()?;
        let mut urls = Vec::with_capacity(self.inputs.len());
        for (_, input) in &self.inputs {
            urls.push(input.resolve(&self.krea).await?);
        }
        let params = self.placed(&urls);
        let Checked {
            model, body, notes, ..
        } = if self.inputs.is_empty() {
            checked
        } else {
            self.check_with(&params)?
        };
        for note in &notes {
            tracing::info!(model = model.id, "{note}");
        }
        if self.unchecked {
            tracing::info!(
                path = model.path,
                "no catalog lists this endpoint: sending the body unchecked"
            );
        }
        let mut creation = Creation::new(model.id, model.path, body);
        creation.key = key;
        creation.admission = admission;
        creation.output = self.output.clone();
        if let Some(url) = &self.webhook
            && let Ok(v) = HeaderValue::try_from(url.as_str())
        {
            creation
                .headers
                .push((HeaderName::from_static("x-webhook-url"), v));
        }
        let jobs = self.krea.create(&creation).await?;
        let job = jobs.into_iter().next().ok_or_else(|| Error::Decode {
            operation: model.id.into(),
            path: None,
            message: "the answer named no job".into(),
            body: String::new(),
        })?;
        let poll = self.poll.unwrap_or_else(|| self.krea.poll_policy().clone());
        Ok(JobHandle::new(
            self.krea,
            job,
            Some(model),
            self.output,
            poll,
            self.cancel_on_drop,
        ))
    }
}

/// Why `plan` cannot receive a `kind` model's output, if it cannot.
fn output_problem(plan: &OutputPlan, kind: Kind) -> Option<String> {
    if let Some(why) = dir_problem(&plan.dir) {
        return Some(why);
    }
    let name = plan.file_name.as_deref()?;
    let path = plan.dir.join(name);
    if path.is_dir() {
        return Some(format!("{} is a directory", path.display()));
    }
    if path.exists() && !plan.overwrite {
        return Some(format!(
            "{} exists (choose another name, or let it be replaced)",
            path.display()
        ));
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let fits: &[&str] = match kind {
        Kind::Image | Kind::Enhance => &["png", "jpg", "jpeg", "webp"],
        Kind::Video => &["mp4", "mov", "webm"],
    };
    match ext {
        Some(e) if fits.contains(&e.as_str()) => None,
        _ => Some(format!(
            "{name} needs one of the extensions {} for this model's results",
            fits.join(", ")
        )),
    }
}

/// A prompt the model generates from that holds only whitespace: Krea would take it and
/// charge for a picture of nothing in particular.
fn blank_prompt(model: &ModelSpec, body: &Value) -> Option<Problem> {
    let required = model
        .parameters
        .iter()
        .any(|p| p.name == "prompt" && p.required);
    let blank = body
        .get("prompt")
        .and_then(Value::as_str)
        .is_some_and(|p| p.trim().is_empty());
    (required && blank).then(|| Problem::at("prompt", "is empty; say what to generate"))
}

/// Why files cannot be written under `dir` (created where missing), found before anything is
/// paid: the nearest part of it that exists must be a directory this process can create files
/// in. Tried with a file, since permission bits alone are wrong for root, read-only mounts and
/// ACLs.
fn dir_problem(dir: &std::path::Path) -> Option<String> {
    // By components: `taken/` names `taken` (a file there must not pass for "missing").
    let dir: PathBuf = dir.components().collect();
    let existing = dir
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_ok())
        .unwrap_or(std::path::Path::new("."));
    if !existing.is_dir() {
        return Some(format!(
            "{} is a file, not a directory (choose another output directory)",
            existing.display()
        ));
    }
    // A batch checks every line, each more than once: a directory found writable is not
    // tried again in this process (one that stops being so fails at the download, and the
    // journal keeps the job to download again).
    static WRITABLE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let known = |w: &Vec<PathBuf>| w.iter().any(|d| d == existing);
    if WRITABLE.lock().is_ok_and(|w| known(&w)) {
        return None;
    }
    let probe = existing.join(format!(".krea-write-check-{}", uuid::Uuid::new_v4()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            if let Ok(mut w) = WRITABLE.lock()
                && !known(&w)
                && w.len() < 64
            {
                w.push(existing.to_path_buf());
            }
            None
        }
        Err(e) => Some(format!(
            "cannot write in {} ({e}); choose a directory you can write to",
            existing.display()
        )),
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
            .build()
            .expect("client")
    }

    #[test]
    fn a_valid_request_gives_the_body_to_send() {
        let crate::Checked {
            model,
            body,
            estimate,
            ..
        } = krea()
            .image("flux")
            .prompt("a lighthouse")
            .width(1024)
            .seed(7)
            .check()
            .expect("valid");
        assert_eq!(estimate.and_then(|e| e.exact()), Some(3.0));
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
        assert!(problems.iter().any(|p| {
            p.field.as_deref() == Some("duration")
                && p.message
                    .starts_with("bfl/flux-1-dev has no such parameter")
        }));
    }

    #[test]
    fn deprecated_camel_case_is_sent_as_snake_case() {
        let body = krea()
            .generate(
                "nano banana 2",
                json!({"prompt": "cat", "imageUrls": ["https://example.com/a.png"]}),
            )
            .check()
            .expect("valid")
            .body;
        assert_eq!(body["image_urls"][0], "https://example.com/a.png");
        assert!(body.get("imageUrls").is_none());
    }

    #[test]
    fn image_urls_go_where_the_model_takes_them() {
        let body = krea()
            .image("nano2")
            .prompt("cat")
            .image_url("https://e.com/a.png")
            .image_url("https://e.com/b.png")
            .check()
            .expect("valid")
            .body;
        assert_eq!(
            body["image_urls"],
            json!(["https://e.com/a.png", "https://e.com/b.png"])
        );
        let body = krea()
            .image("flux")
            .prompt("cat")
            .image_url("https://e.com/a.png")
            .check()
            .expect("valid")
            .body;
        assert_eq!(body["image_url"], "https://e.com/a.png");
        let body = krea()
            .video("kling/kling-2.1")
            .prompt("waves")
            .image_url("https://e.com/a.png")
            .check()
            .expect("valid")
            .body;
        assert_eq!(body["start_image"], "https://e.com/a.png");
    }

    #[test]
    fn the_kind_must_match() {
        let err = krea()
            .image("kling/kling-2.1")
            .prompt("waves")
            .check()
            .expect_err("a video model");
        assert!(
            err.to_string().contains("a video model, not an image"),
            "{err}"
        );
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

#[cfg(test)]
mod more_tests {
    use super::*;

    fn krea() -> Krea {
        Krea::builder()
            .token("t")
            .base_url("http://127.0.0.1:9")
            .build()
            .expect("client")
    }

    #[test]
    fn an_aspect_ratio_becomes_a_size_where_the_model_takes_one() {
        let c = krea()
            .image("flux")
            .prompt("x")
            .aspect_ratio("16:9")
            .check()
            .expect("valid");
        assert_eq!(
            (c.body["width"].clone(), c.body["height"].clone()),
            (json!(1344), json!(768))
        );
        let c = krea()
            .image("nano2")
            .prompt("a cat")
            .aspect_ratio("16:9")
            .check()
            .expect("valid");
        assert_eq!(c.body["aspect_ratio"], "16:9");
    }

    #[test]
    fn a_prompt_alone_is_enough_for_every_image_model_that_needs_no_input() {
        for m in crate::models::of_kind(Kind::Image) {
            let needs_input = m
                .required()
                .any(|p| p.name.contains("image") || p.name.contains("reference"));
            if needs_input {
                continue;
            }
            let c = krea().image(m.id).prompt("a lighthouse").check();
            assert!(c.is_ok(), "{}: {c:?}", m.id);
        }
    }

    #[test]
    fn local_inputs_are_checked_and_placed_as_placeholders() {
        let err = krea()
            .image("flux")
            .prompt("x")
            .image("/nonexistent/photo.png")
            .check()
            .expect_err("missing file");
        assert!(err.to_string().contains("image_url: cannot read"), "{err}");
        let dir = tempfile::Builder::new()
            .prefix("krea-input-")
            .tempdir()
            .expect("scratch");
        let png = dir.path().join("in.png");
        std::fs::write(&png, krea_png()).expect("write");
        let c = krea()
            .enhance("topaz")
            .image(png.as_path())
            .scale(2.0)
            .check()
            .expect("valid");
        assert!(
            c.body["image_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("https://uploads.invalid/"))
        );
        assert_eq!(
            (c.body["width"].clone(), c.body["height"].clone()),
            (json!(6), json!(4))
        );
    }

    #[test]
    fn an_output_file_must_suit_the_model_and_not_exist() {
        let err = krea()
            .image("flux")
            .prompt("x")
            .output_file("/tmp/out.mp4")
            .check()
            .expect_err("a video name for an image");
        assert!(err.to_string().contains("extensions"), "{err}");
        let dir = tempfile::Builder::new()
            .prefix("krea-exists-")
            .tempdir()
            .expect("scratch");
        let existing = dir.path().join("taken.png");
        std::fs::write(&existing, b"x").expect("write");
        let err = krea()
            .image("flux")
            .prompt("x")
            .output_file(&existing)
            .check()
            .expect_err("exists");
        assert!(err.to_string().contains("exists"), "{err}");
        assert!(
            krea()
                .image("flux")
                .prompt("x")
                .output_file(&existing)
                .overwrite(true)
                .check()
                .is_ok()
        );
    }

    fn krea_png() -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        v.extend_from_slice(&3u32.to_be_bytes());
        v.extend_from_slice(&2u32.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0]);
        v
    }
}
