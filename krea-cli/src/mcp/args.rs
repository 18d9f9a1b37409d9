//! The tools' arguments. Their doc comments become the JSON schemas' descriptions, which an
//! assistant pays for in context on every conversation: one short line each.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListModels {
    /// Only this kind: image, video or enhance.
    pub kind: Option<String>,
    /// Text in the id, name or alias.
    pub search: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ModelArg {
    /// Model id or alias (e.g. "flux", "bfl/flux-1-dev").
    pub model: String,
    /// Also every price row and the body's JSON Schema (large).
    #[serde(default)]
    pub full_schema: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EstimateCost {
    /// Model id or alias.
    pub model: String,
    /// Request parameters (see get_model_schema).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Number of such calls (default 1).
    pub count: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateImage {
    /// What to draw.
    pub prompt: String,
    /// Model id or alias (default: Nano Banana 2).
    pub model: Option<String>,
    /// Reference images: absolute local paths or URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// Width in pixels, if the model takes one.
    pub width: Option<u32>,
    /// Height in pixels, if the model takes one.
    pub height: Option<u32>,
    /// E.g. "16:9", if the model takes one.
    pub aspect_ratio: Option<String>,
    /// For repeatable results.
    pub seed: Option<u64>,
    /// Other model parameters (see get_model_schema).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Max seconds to wait (default 120).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateVideo {
    /// What happens in the video.
    pub prompt: String,
    /// Model id or alias (default: Veo 3.1 Fast).
    pub model: Option<String>,
    /// First frame: absolute local path or URL.
    pub start_image: Option<String>,
    /// Last frame: absolute local path or URL.
    pub end_image: Option<String>,
    /// Seconds, if the model takes one.
    pub duration: Option<u32>,
    /// E.g. "16:9".
    pub aspect_ratio: Option<String>,
    /// Other model parameters (see get_model_schema).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Max seconds to wait (default 30; videos take minutes).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EnhanceImage {
    /// Absolute local path (uploaded first) or URL.
    pub image: String,
    /// Model id or alias (default: Topaz standard).
    pub model: Option<String>,
    /// Upscale factor.
    pub scale: Option<f64>,
    /// Other model parameters (see get_model_schema).
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Max seconds to wait (default 120).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunModel {
    /// Model id or alias, of any kind.
    pub model: String,
    /// Request parameters (see get_model_schema).
    pub params: Map<String, Value>,
    /// Max seconds to wait (default 120; videos 30).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct JobArg {
    /// Job id, or a unique prefix of 6+ characters.
    pub job_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitJob {
    /// Job id, or a unique prefix of 6+ characters.
    pub job_id: String,
    /// Max seconds to wait (default 60).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListJobs {
    /// Only jobs in this state (e.g. completed, failed).
    pub status: Option<String>,
    /// At most this many, newest first (default 20).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResumeJobs {
    /// Max seconds to wait (default 120).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UploadAsset {
    /// Absolute local path.
    pub path: Option<String>,
    /// Or the bytes, base64 (with mime_type).
    pub base64: Option<String>,
    /// MIME type of base64, e.g. image/png.
    pub mime_type: Option<String>,
    /// A note kept with the asset.
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunPipeline {
    /// Absolute path to a pipeline file.
    pub file: Option<String>,
    /// Or the pipeline: {vars, steps: [{id, model, params, fan_out}]}.
    pub pipeline: Option<Map<String, Value>>,
    /// Values for the pipeline's vars.
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Run directory, under the output directory (default: new).
    pub output_dir: Option<String>,
    /// Continue the run in output_dir (nothing paid twice).
    #[serde(default)]
    pub resume: bool,
    /// Max seconds to wait, then report progress (default 30).
    pub wait_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PipelineStatus {
    /// run_id from run_pipeline, or the run's directory.
    pub run_id: String,
}
