//! The tools that pay: generate, enhance, run any model; and uploads. Each request is checked
//! and priced before anything is uploaded or sent, held to the session's limits, journaled when
//! submitted, then waited for at most `wait_seconds`.

use base64::Engine;
use krea::models::{self, Kind};
use krea::{GenerationOptions, GenerationRequest, Input, JobHandle};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, RequestMetaObject};
use rmcp::{ErrorData, Peer, RoleServer, tool, tool_router};
use serde_json::{Value, json};

use super::args::{EnhanceImage, GenerateImage, GenerateVideo, RunModel, UploadAsset};
use super::wait::{self, Reporter};
use super::{Server, money};
use crate::job_json::JobOut;

/// Default waits, in seconds: images and upscales usually end within it, videos rarely.
const IMAGE_WAIT: f64 = 120.0;
const VIDEO_WAIT: f64 = 30.0;

/// Progress goes to the client when it gave a token with the call.
fn reporter(meta: &RequestMetaObject, peer: Peer<RoleServer>) -> Option<Reporter> {
    meta.get_progress_token()
        .map(|token| Reporter { peer, token })
}

/// The tool to call for a model of `kind`.
fn tool_for(kind: Kind) -> &'static str {
    match kind {
        Kind::Image => "generate_image",
        Kind::Video => "generate_video",
        _ => "enhance_image",
    }
}

impl Server {
    /// An image input: a URL as given, a local file only under the directories this session
    /// may read (else why not: the caller refuses, nothing sent).
    async fn input(&self, given: &str, peer: &Peer<RoleServer>) -> Result<Input, String> {
        match Input::from(given) {
            Input::Path(_) => self.readable(given, peer).await.map(Input::from),
            url => Ok(url),
        }
    }

    /// Refuses a model of another kind than the tool's, naming the right tool.
    fn kind_check(&self, name: &str, kind: Kind) -> Option<CallToolResult> {
        let m = models::of_another_kind(name, kind)?;
        Some(self.refused(
            "usage",
            &format!(
                "{} is {} model (nothing was sent): call {} with it, or run_model",
                m.id,
                models::kind_with_article(m.kind),
                tool_for(m.kind)
            ),
        ))
    }

    /// Checks, prices, submits and waits: the path every paying tool takes.
    async fn generate(
        &self,
        request: GenerationRequest,
        wait_seconds: Option<f64>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> CallToolResult {
        let request = request.output_dir(self.bounds.output_dir());
        let checked = match request.check() {
            Ok(c) => c,
            Err(e) => return self.failed(&e),
        };
        let model = checked.model;
        let default = if model.kind == Kind::Video {
            VIDEO_WAIT
        } else {
            IMAGE_WAIT
        };
        let limit = match wait::seconds(wait_seconds, default) {
            Ok(l) => l,
            Err(why) => return self.refused("usage", &why),
        };
        // Held from here: calls at once cannot pass the budget together.
        let reservation = match self.money.reserve(checked.worst_case) {
            Ok(r) => r,
            Err(over) => {
                let mut refusal = self.refused("over_budget", &money::refusal(&model.id, &over));
                if let Some(s) = refusal.structured_content.as_mut() {
                    s["estimate_cu"] = json!(checked.worst_case.high);
                    s["assumed_price"] = json!(checked.worst_case.assumed);
                    s["session_cu"] = json!(self.money.spent());
                }
                return refusal;
            }
        };
        // A lost answer is settled within the call's wait (but a short wait still lets the
        // settle grace run out): the job it created is followed, never paid for twice.
        let started = std::time::Instant::now();
        let settling = limit.max(std::time::Duration::from_secs(20));
        let handle = match tokio::time::timeout(settling, request.submit_settled()).await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                // Nothing created: the reservation ends. Anything else (an unknown outcome, a
                // listing that failed while settling) may have left a paid job: it keeps it.
                if !e.nothing_sent() {
                    self.unsettled.hold(reservation);
                }
                return self.failed(&e);
            }
            Err(_) => {
                self.unsettled.hold(reservation);
                return self.refused(
                    "outcome_unknown",
                    "the request was sent and its answer was lost; settling had not decided by the end of the wait: call resume_jobs later (it finds the job if one was created); do not send the request again",
                );
            }
        };
        let limit = limit.saturating_sub(started.elapsed());
        // An unpriced job counts at its assumed price until it ends.
        reservation.charge(handle.id(), checked.worst_case.high);
        self.follow(handle, limit, reporter(&meta, peer)).await
    }

    /// Waits for a job at most `limit`, then downloads its files; or answers `pending`.
    pub(super) async fn follow(
        &self,
        handle: JobHandle,
        limit: std::time::Duration,
        reporter: Option<Reporter>,
    ) -> CallToolResult {
        let id = handle.id();
        let _active = self.waiting_for(id);
        let scale = self.ctx.krea.poll_policy().time_scale;
        let model = handle.model().map(|m| m.id.to_string()).unwrap_or_default();
        let described = |job: &krea::Job, files| {
            let mut out = JobOut::from_job(&self.ctx.krea, job, files);
            if out.model.is_empty() {
                out.model = model.clone();
            }
            if out.cost_cu.is_none() {
                out.cost_cu = self.money.of(id);
            }
            out
        };
        match wait::bounded(&handle, limit, reporter.as_ref(), scale).await {
            None => {
                let job = described(&handle.snapshot(), Vec::new());
                let next = format!(
                    "still {} after {:.0} s and running on; call wait_job with job_id {id} (do not submit again: that pays twice)",
                    job.status,
                    limit.as_secs_f64()
                );
                self.job_reply(job, Some(next)).await
            }
            Some(Ok(finished)) => {
                let files = match finished.output() {
                    Some(_) => finished.download().await,
                    None => finished.download_to(self.bounds.output_dir()).await,
                };
                match files {
                    Ok(files) => self.job_reply(described(finished.job(), files), None).await,
                    Err(e) => self.failed(&e),
                }
            }
            Some(Err(e)) => {
                if matches!(e, krea::Error::JobFailed { .. }) {
                    self.money.release(id);
                }
                self.failed(&e)
            }
        }
    }
}

#[tool_router(router = generate_router, vis = "pub(super)")]
impl Server {
    /// Generates an image from a prompt; returns file paths, a preview and the cost.
    #[tool(
        title = "Generate an image (paid)",
        annotations(
            title = "Generate an image (paid)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn generate_image(
        &self,
        Parameters(a): Parameters<GenerateImage>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let name = a
            .model
            .as_deref()
            .unwrap_or(models::default_for(Kind::Image));
        if let Some(refusal) = self.kind_check(name, Kind::Image) {
            return Ok(refusal);
        }
        let mut o = GenerationOptions::default();
        for i in &a.images {
            match self.input(i, &peer).await {
                Ok(input) => o.images.push(input),
                Err(why) => return Ok(self.refused("outside_allowed_dirs", &why)),
            }
        }
        o.width = a.width;
        o.height = a.height;
        o.aspect_ratio = a.aspect_ratio;
        o.seed = a.seed;
        o.params = a.params;
        let r = self.ctx.krea.image(name).prompt(a.prompt).with_options(o);
        Ok(self.generate(r, a.wait_seconds, meta, peer).await)
    }

    /// Generates a video from a prompt and optional frames. Takes minutes: expect `pending`, then call wait_job.
    #[tool(
        title = "Generate a video (paid)",
        annotations(
            title = "Generate a video (paid)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn generate_video(
        &self,
        Parameters(a): Parameters<GenerateVideo>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let name = a
            .model
            .as_deref()
            .unwrap_or(models::default_for(Kind::Video));
        if let Some(refusal) = self.kind_check(name, Kind::Video) {
            return Ok(refusal);
        }
        let mut o = GenerationOptions::default();
        for (frame, given) in [
            (&mut o.start_image, &a.start_image),
            (&mut o.end_image, &a.end_image),
        ] {
            if let Some(i) = given {
                match self.input(i, &peer).await {
                    Ok(input) => *frame = Some(input),
                    Err(why) => return Ok(self.refused("outside_allowed_dirs", &why)),
                }
            }
        }
        o.duration = a.duration;
        o.aspect_ratio = a.aspect_ratio;
        o.params = a.params;
        let r = self.ctx.krea.video(name).prompt(a.prompt).with_options(o);
        Ok(self.generate(r, a.wait_seconds, meta, peer).await)
    }

    /// Upscales or enhances an image (local path or URL).
    #[tool(
        title = "Upscale an image (paid)",
        annotations(
            title = "Upscale an image (paid)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn enhance_image(
        &self,
        Parameters(a): Parameters<EnhanceImage>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let name = a
            .model
            .as_deref()
            .unwrap_or(models::default_for(Kind::Enhance));
        if let Some(refusal) = self.kind_check(name, Kind::Enhance) {
            return Ok(refusal);
        }
        let image = match self.input(&a.image, &peer).await {
            Ok(input) => input,
            Err(why) => return Ok(self.refused("outside_allowed_dirs", &why)),
        };
        let mut o = GenerationOptions::default();
        o.scale = a.scale;
        o.params = a.params;
        let r = self.ctx.krea.enhance(name).image(image).with_options(o);
        Ok(self.generate(r, a.wait_seconds, meta, peer).await)
    }

    /// Runs any model with raw parameters (get_model_schema lists them).
    #[tool(
        title = "Run any model (paid)",
        annotations(
            title = "Run any model (paid)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn run_model(
        &self,
        Parameters(a): Parameters<RunModel>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let r = self.ctx.krea.generate(&a.model, Value::Object(a.params));
        Ok(self.generate(r, a.wait_seconds, meta, peer).await)
    }

    /// Uploads a local file or base64 bytes; returns a URL to use as an input.
    #[tool(
        title = "Upload a file",
        annotations(
            title = "Upload a file",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn upload_asset(
        &self,
        Parameters(a): Parameters<UploadAsset>,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let assets = self.ctx.krea.assets();
        let description = a.description.as_deref();
        let uploaded = match (&a.path, &a.base64) {
            (Some(path), None) => match self.readable(path, &peer).await {
                Ok(path) => assets.upload(&path, description).await,
                Err(why) => return Ok(self.refused("outside_allowed_dirs", &why)),
            },
            (None, Some(data)) => {
                let Some(ext) = a
                    .mime_type
                    .as_deref()
                    .and_then(krea_gen::media::extension_for)
                else {
                    return Ok(self.refused(
                        "usage",
                        "base64 needs mime_type (image/png, image/jpeg, image/webp, video/mp4...) (nothing was sent)",
                    ));
                };
                let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                    Ok(b) => b,
                    Err(e) => {
                        return Ok(self.refused(
                            "usage",
                            &format!("base64 does not decode ({e}) (nothing was sent)"),
                        ));
                    }
                };
                assets
                    .upload_bytes(bytes, &format!("upload.{ext}"), description)
                    .await
            }
            _ => {
                return Ok(self.refused(
                    "usage",
                    "give exactly one of path or base64 (nothing was sent)",
                ));
            }
        };
        match uploaded {
            Ok(asset) => {
                let line = format!("uploaded: asset {} at {}", asset.id, asset.image_url);
                Ok(self.reply(
                    json!({"id": asset.id, "url": asset.image_url}),
                    &line,
                    false,
                ))
            }
            Err(e) => Ok(self.failed(&e)),
        }
    }
}
