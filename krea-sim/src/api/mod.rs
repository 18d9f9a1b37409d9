//! The API origin: every operation of Krea's document.

// Handlers return early with a ready `Response` as the error: the idiomatic axum shape, on
// cold paths, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use krea_gen::catalog::MODELS;
use serde_json::json;
use tokio::time::Instant;

use crate::server::api_layer;
use crate::state::Sim;

pub mod assets;
pub mod generate;
pub mod jobs;
pub mod node_apps;
pub mod query;
pub mod styles;

/// `{"error": message}` with `status`, as Krea answers every failure.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Largest request body accepted on the upload route (the API's own limit, 75 MB, is checked
/// with a clear message below this).
const UPLOAD_BODY_LIMIT: usize = 80 * 1024 * 1024;

/// Every route of the document, plus `/_sim/counters`.
pub fn router(sim: Arc<Sim>) -> Router {
    let mut api = Router::new()
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::get).delete(jobs::delete))
        .route(
            "/assets",
            get(assets::list)
                .post(assets::upload)
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/assets/{id}", get(assets::get).delete(assets::delete))
        .route("/styles/train", post(styles::train))
        .route("/styles", get(styles::list))
        .route("/styles/{id}", get(styles::get).patch(styles::update))
        .route("/styles/{id}/share/link", get(styles::share_link))
        .route(
            "/styles/{id}/share/workspace",
            post(styles::share).delete(styles::unshare),
        )
        .route("/node-apps/{id}", get(node_apps::get))
        .route("/node-apps/{id}/execute", post(node_apps::execute));
    // Started with a document of its own: serve its models too, the ones this build lacks.
    let extra = sim
        .config
        .openapi
        .as_deref()
        .and_then(|doc| krea_openapi::catalog::extract(doc).ok())
        .map(|models| {
            krea_gen::catalog::register(&models);
            models
                .iter()
                .filter_map(|m| krea_gen::catalog::model(&m.id))
                .filter(|m| !MODELS.iter().any(|b| b.id == m.id))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for model in MODELS.iter().chain(extra) {
        api = api.route(
            &model.path,
            post(move |state, headers, body| generate::generate(model, state, headers, body)),
        );
    }
    for retired in &sim.config.retirements {
        if !MODELS.iter().any(|m| m.path == retired.path) {
            let (path, retired) = (retired.path.clone(), retired.clone());
            api = api.route(&path, post(move || async move { generate::gone(&retired) }));
        }
    }
    api.route_layer(middleware::from_fn_with_state(sim.clone(), api_layer))
        // Public, as on api.krea.ai: clients discover models from it before they have a token.
        .route("/openapi.json", get(openapi))
        .route("/_sim/counters", get(counters))
        .fallback(not_found)
        .layer(middleware::map_response(json_errors))
        .with_state(sim)
}

/// Every failure answers `{"error": ...}` in this project's words, also the ones axum writes
/// itself as plain text (an unreadable body, a method the path does not take).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = match status {
        StatusCode::BAD_REQUEST => {
            "The request could not be read: check its body against the operation's schema"
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            "This path does not take that method: the Allow header lists the ones it does"
        }
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large for this operation",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "This operation does not take a body of that Content-Type"
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            "The request body does not have the shape this operation takes"
        }
        _ => "The request failed",
    };
    let mut answer = error(status, message);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

async fn openapi(State(sim): State<Arc<Sim>>) -> Response {
    sim.lock().count("GET /openapi.json", 200);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        sim.openapi_json.clone(),
    )
        .into_response()
}

async fn counters(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().counters(Instant::now())).into_response()
}

/// Counted as `METHOD (unmatched)`, so a client calling an endpoint that does not exist shows.
async fn not_found(State(sim): State<Arc<Sim>>, method: Method, uri: Uri) -> Response {
    sim.lock().count(&format!("{method} (unmatched)"), 404);
    error(
        StatusCode::NOT_FOUND,
        format!("No such operation: {method} {}", uri.path()),
    )
}
