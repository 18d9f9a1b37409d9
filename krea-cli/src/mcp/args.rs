//! The tools' arguments. Their doc comments become the JSON schemas' descriptions, which an
//! assistant pays for in context on every conversation: one short line each.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListModels {
    /// Only this kind: image, video or enhance.
    pub kind: Option<String>,
    /// Only models whose id, name or alias contains this text.
    pub search: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ModelArg {
    /// Model id or alias (e.g. "flux", "bfl/flux-1-dev").
    pub model: String,
    /// Also return the request body's full JSON Schema (large; the parameter list is enough
    /// to build a request).
    #[serde(default)]
    pub full_schema: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EstimateCost {
    /// Model id or alias.
    pub model: String,
    /// The request's parameters, as get_model_schema lists them.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// How many such calls (default 1).
    pub count: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateImage {
    /// What to draw.
    pub prompt: String,
    /// Model id or alias (default: Nano Banana 2).
    pub model: Option<String>,
    /// Reference images: absolute local paths (uploaded first) or URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// Width in pixels, where the model takes one (get_model_schema gives the range).
    pub width: Option<u32>,
    /// Height in pixels, where the model takes one.
    pub height: Option<u32>,
    /// Aspect ratio such as "16:9", where the model takes one.
    pub aspect_ratio: Option<String>,
    /// Seed, for repeatable results.
    pub seed: Option<u64>,
    /// Any other parameter of the model (get_model_schema lists them).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Seconds to wait before answering `pending` (default 120).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateVideo {
    /// What happens in the video.
    pub prompt: String,
    /// Model id or alias (default: Veo 3.1 Fast).
    pub model: Option<String>,
    /// First frame: an absolute local path (uploaded first) or a URL.
    pub start_image: Option<String>,
    /// Last frame: an absolute local path or a URL.
    pub end_image: Option<String>,
    /// Length in seconds, where the model takes one.
    pub duration: Option<u32>,
    /// Aspect ratio such as "16:9".
    pub aspect_ratio: Option<String>,
    /// Any other parameter of the model (get_model_schema lists them).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Seconds to wait before answering `pending` (default 30; videos take minutes).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EnhanceImage {
    /// The image: an absolute local path (uploaded first) or a URL.
    pub image: String,
    /// Model id or alias (default: Topaz standard enhance).
    pub model: Option<String>,
    /// Upscale factor, where the model takes one.
    pub scale: Option<f64>,
    /// Any other parameter of the model (get_model_schema lists them).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Seconds to wait before answering `pending` (default 120).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunModel {
    /// Model id or alias, of any kind.
    pub model: String,
    /// The request body's parameters, as get_model_schema lists them.
    pub params: Map<String, Value>,
    /// Seconds to wait before answering `pending` (default: 120, videos 30).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct JobArg {
    /// Job id (a unique prefix of 6 or more characters will do).
    pub job_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitJob {
    /// Job id (a unique prefix of 6 or more characters will do).
    pub job_id: String,
    /// Seconds to wait before answering `pending` again (default 60).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListJobs {
    /// Only jobs in this state (queued, processing, completed, failed, cancelled...).
    pub status: Option<String>,
    /// At most this many, newest first (default 20).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResumeJobs {
    /// Seconds to wait for the journaled jobs before answering (default 120).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UploadAsset {
    /// An absolute local path to upload.
    pub path: Option<String>,
    /// Or the file's bytes, base64-encoded (with mime_type).
    pub base64: Option<String>,
    /// The MIME type of `base64`, e.g. "image/png".
    pub mime_type: Option<String>,
    /// A note stored with the asset.
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunPipeline {
    /// An absolute path to a pipeline file.
    pub file: Option<String>,
    /// Or the pipeline itself: {"vars": {...}, "steps": [{"id", "model", "params", "fan_out"}]}.
    pub pipeline: Option<Value>,
    /// Variables over the pipeline's vars.
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// The run's directory (default: a new one under the output directory).
    pub output_dir: Option<String>,
    /// Continue the run already in output_dir (nothing is paid twice).
    #[serde(default)]
    pub resume: bool,
    /// Seconds to wait before answering with the progress so far (default 30).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PipelineStatus {
    /// The run_id run_pipeline returned, or the run's directory.
    pub run_id: String,
}
