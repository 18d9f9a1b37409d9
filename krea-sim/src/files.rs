//! The file origin: a second listener (another origin, like Krea's CDN) that serves result
//! files and uploaded assets, counts any `Authorization` header it receives, and answers the
//! API redirect fault at `/mirror/...`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use krea_gen::JobStatus;
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::error;
use crate::config::Fault;
use crate::render::{self, Output};
use crate::server::{files_layer, mirror, route_name};
use crate::state::Sim;

/// Chunk size when streaming placeholders.
const CHUNK: usize = 64 * 1024;

pub fn router(sim: Arc<Sim>, api: Router) -> Router {
    let mirror_routes = Router::new()
        .route("/mirror/{*rest}", any(mirror))
        .with_state(api);
    Router::new()
        .route("/files/{job_id}/{*file}", get(result_file))
        .route("/assets/{id}/{file}", get(asset_file))
        .merge(mirror_routes)
        .route_layer(middleware::from_fn_with_state(sim.clone(), files_layer))
        .with_state(sim)
}

/// Serves `bytes`, or (truncation fault) a body that stops halfway under a full Content-Length.
fn respond(content_type: &'static str, total: u64, chunks: Vec<Bytes>, truncate: bool) -> Response {
    let kept: Vec<Result<Bytes, std::io::Error>> = if truncate {
        let mut left = total / 2;
        let mut out = Vec::new();
        for c in chunks {
            if left == 0 {
                break;
            }
            let take = (c.len() as u64).min(left) as usize;
            out.push(Ok(c.slice(..take)));
            left -= take as u64;
        }
        out
    } else {
        chunks.into_iter().map(Ok).collect()
    };
    let body = stream::iter(kept).chain(stream::once(async move {
        if truncate {
            // Let the head and the first half reach the client before the connection drops.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(std::io::Error::other("simulated truncation"))
        } else {
            Ok(Bytes::new())
        }
    }));
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(total));
    response
}

async fn result_file(
    State(sim): State<Arc<Sim>>,
    Path((job_id, file)): Path<(String, String)>,
    req: axum::extract::Request,
) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, "No file at this address");
    let Ok(id) = Uuid::parse_str(&job_id) else {
        return not_found();
    };
    let digits: String = file.chars().take_while(char::is_ascii_digit).collect();
    let Ok(index) = digits.parse::<usize>() else {
        return not_found();
    };
    let route = route_name(&req);
    let (output, fingerprint, truncate, label, input) = {
        let mut st = sim.lock();
        let Some(job) = st.jobs.get(&id) else {
            return not_found();
        };
        if job.status(Instant::now()) != JobStatus::Completed || index >= job.outputs.len() {
            return not_found();
        }
        // A normal URL ends in exactly `{n}.{ext}`; a hostile job's carry more after `{n}/`.
        let exact = format!("{index}.{}", job.outputs[index].extension());
        let matches = if job.hostile {
            file[digits.len()..].starts_with('/')
        } else {
            file == exact
        };
        if !matches {
            return not_found();
        }
        let (output, fingerprint) = (job.outputs[index], job.fingerprint ^ index as u64);
        let (label, input) = (job.label(), job.input.clone());
        let truncate = st
            .draw_fault(sim.config.seed, &route, |f| {
                matches!(f, Fault::TruncateBody)
            })
            .is_some();
        (output, fingerprint, truncate, label, input)
    };
    match output {
        Output::Image { .. } | Output::Video { .. } => {
            // Rendering is CPU work: keep it off the async workers.
            let bytes = tokio::task::spawn_blocking(move || {
                input
                    .and_then(|i| crate::upscale::render(&i, output, &label))
                    .or_else(|| output.render(fingerprint, &label))
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
            if bytes.is_empty() {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The file could not be rendered",
                );
            }
            let total = bytes.len() as u64;
            respond(
                output.content_type(),
                total,
                vec![Bytes::from(bytes)],
                truncate,
            )
        }
        Output::Placeholder { format, bytes } => {
            if truncate {
                let half =
                    render::placeholder_chunk(format, fingerprint, bytes, 0, (bytes / 2) as usize);
                return respond(output.content_type(), bytes, vec![Bytes::from(half)], true);
            }
            // Streamed chunk by chunk: a 256 MB placeholder never sits in memory.
            let chunks = stream::unfold(0u64, move |offset| async move {
                (offset < bytes).then(|| {
                    let chunk =
                        render::placeholder_chunk(format, fingerprint, bytes, offset, CHUNK);
                    let next = offset + chunk.len() as u64;
                    (Ok::<_, std::io::Error>(Bytes::from(chunk)), next)
                })
            });
            let mut response = Body::from_stream(chunks).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(output.content_type()),
            );
            headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(bytes));
            response
        }
    }
}

async fn asset_file(
    State(sim): State<Arc<Sim>>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return error(StatusCode::NOT_FOUND, "No file at this address");
    };
    let asset = sim
        .lock()
        .assets
        .get(&id)
        .filter(|a| a.file_name == file)
        .cloned();
    match asset {
        Some(a) => respond(a.mime, a.bytes.len() as u64, vec![a.bytes], false),
        None => error(StatusCode::NOT_FOUND, "No file at this address"),
    }
}
