//! Building a generation request, checked against the model's schema before anything is sent:
//! parameters, inputs (URLs, local files, bytes), where the results go, and what it will cost.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::Problem;
use crate::client::Krea;
use crate::cost::Estimate;
use crate::input::Input;
use crate::journal::OutputPlan;
use crate::models::{self, Kind, ModelSpec};
use crate::poll::PollPolicy;
use crate::sizes;

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
/// [`Error::InvalidRequest`](crate::Error::InvalidRequest), before anything is uploaded, sent or paid.
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
    pub fn generate_body<B: crate::raw::GenerationBody>(&self, body: &B) -> GenerationRequest {
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
                let names: Vec<&str> = m.parameters.iter().map(|p| p.name.as_str()).collect();
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
            .map_or(key, |a| a.to.as_str());
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
}

mod check;
mod submit;
#[cfg(test)]
mod tests;
