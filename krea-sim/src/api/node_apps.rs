//! Node apps: `GET /node-apps/{id}` and `POST /node-apps/{id}/execute`. The simulator ships
//! one app, [`DEMO_APP`]: a prompt in, an image out.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::error;
use crate::api::generate::{refused, webhook_url};
use crate::job::Origin;
use crate::render::{self, Output};
use crate::state::{NewJob, Sim};
use crate::webhook;

/// The version id of the simulator's node app.
pub const DEMO_APP: &str = "sim-prompt-to-image-v1";

fn app_json() -> Value {
    json!({
        "id": DEMO_APP,
        "author_id": "00000000-0000-4000-8000-000000000001",
        "workspace_id": "sim-workspace",
        "name": "Prompt to image",
        "slug": "prompt-to-image",
        "description": "A simulated node app: renders an image from a prompt.",
        "scope": "public",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "2026-01-01T00:00:00.000000Z",
        "last_version_id": DEMO_APP,
        "version": 1,
        "version_created_at": "2026-01-01T00:00:00.000000Z",
        "username": "krea-sim",
        "example_outputs": [],
        "input_openapi_schema": {
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "description": "What to draw"},
                "width": {"type": "number"},
                "height": {"type": "number"}
            },
            "required": ["prompt"]
        },
        "output_openapi_schema": {"type": "object", "properties": {"image": {"type": "string", "format": "uri"}}, "required": ["image"]},
        "input_key_mapping": {"prompt": "node-1-prompt"},
        "output_key_mapping": {"node-2-image": "image"}
    })
}

pub async fn get(Path(id): Path<String>) -> Response {
    if id != DEMO_APP {
        return error(
            StatusCode::NOT_FOUND,
            "No node app with this id (copy the id from the app's page)",
        );
    }
    Json(app_json()).into_response()
}

pub async fn execute(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if id != DEMO_APP {
        return error(
            StatusCode::NOT_FOUND,
            "This node app has no version of that number",
        );
    }
    let webhook = match webhook_url(&headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let input = match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid request body: expected a JSON object of inputs",
            );
        }
    };
    if !input.get("prompt").is_some_and(Value::is_string) {
        return error(
            StatusCode::BAD_REQUEST,
            "Missing input `prompt` (a string), required by this node app",
        );
    }
    let (width, height) = render::image_size(&input);
    let new = NewJob {
        origin: Origin::NodeApp { app_id: id },
        request: input,
        seconds: 20.0,
        cost: 10.0,
        outputs: vec![Output::Image {
            format: crate::render::ImageFormat::Png,
            width,
            height,
        }],
        webhook,
        fails: false,
        stuck: false,
        hostile: false,
        foreign: None,
        input: None,
    };
    sim.commit_pause().await;
    match sim.create_job(new) {
        Ok(job) => {
            webhook::watch(&sim, &job);
            Json(json!([job.to_json(Instant::now(), &sim.files_url)])).into_response()
        }
        Err(refusal) => refused(refusal),
    }
}
