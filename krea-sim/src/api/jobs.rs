//! `GET /jobs`, `GET /jobs/{id}`, `DELETE /jobs/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use krea_gen::JobStatus;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::error;
use crate::config::Fault;
use crate::job::timestamp;
use crate::state::Sim;
use crate::webhook;

/// Parses `limit` (1..=1000, default 100) the way Krea documents it.
pub fn page_limit(query: &HashMap<String, String>) -> Result<usize, Response> {
    match query.get("limit") {
        None => Ok(100),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                format!("Invalid limit {l:?}: use a whole number from 1 to 1000"),
            )),
        },
    }
}

/// Parses an ISO 8601 `cursor`.
pub fn cursor(query: &HashMap<String, String>) -> Result<Option<DateTime<Utc>>, Response> {
    match query.get("cursor") {
        None => Ok(None),
        Some(c) => DateTime::parse_from_rfc3339(c).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| {
            error(StatusCode::BAD_REQUEST, format!("Invalid cursor {c:?}: use the next_cursor of the previous page (an ISO 8601 timestamp)"))
        }),
    }
}

/// Jobs newest first, created before `cursor`, filtered by `status` and `types`.
pub async fn list(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = match page_limit(&query) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let before = match cursor(&query) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let status = match query.get("status").map(|s| JobStatus::parse(s)) {
        Some(JobStatus::Other(s)) => {
            let known: Vec<&str> = JobStatus::KNOWN.iter().map(JobStatus::as_str).collect();
            return error(
                StatusCode::BAD_REQUEST,
                format!("Invalid status {s:?}: one of {}", known.join(", ")),
            );
        }
        other => other,
    };
    let types: Option<Vec<&str>> = query.get("types").map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    });
    let now = Instant::now();
    let mut st = sim.lock();
    let out_of_order = before.is_none()
        && st
            .draw_fault(sim.config.seed, "GET /jobs", |f| {
                matches!(f, Fault::OutOfOrderListing)
            })
            .is_some();
    let wanted = |job: &&crate::job::SimJob| {
        !job.deleted
            && job.visible_at <= now
            && status.as_ref().is_none_or(|s| job.status(now) == *s)
            && types.as_ref().is_none_or(|t| t.contains(&job.job_type()))
    };
    let mut matching = st
        .order
        .iter()
        .rev()
        .filter_map(|id| st.jobs.get(id))
        .filter(|job| before.is_none_or(|c| job.created_at < c))
        .filter(wanted);
    let mut page: Vec<&crate::job::SimJob> = matching.by_ref().take(limit).collect();
    let more = matching.next().is_some();
    // The cursor keeps full precision, whatever precision the stamps are shown in.
    let next_cursor = match (more, page.last()) {
        (true, Some(last)) => json!(timestamp(last.created_at)),
        _ => Value::Null,
    };
    if out_of_order {
        // The account's oldest job, ahead of the newest ones.
        let oldest = st
            .order
            .iter()
            .filter_map(|id| st.jobs.get(id))
            .find(wanted);
        if let Some(oldest) = oldest.filter(|o| !page.iter().any(|j| j.id == o.id)) {
            page.insert(0, oldest);
            page.truncate(limit);
        }
    }
    let items: Vec<Value> = page
        .iter()
        .map(|j| j.to_json(now, &sim.files_url))
        .collect();
    Json(json!({ "items": items, "next_cursor": next_cursor })).into_response()
}

fn job_id(id: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(id).map_err(|_| {
        error(
            StatusCode::NOT_FOUND,
            "No job with this id for this token (GET /jobs lists them)",
        )
    })
}

pub async fn get(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let now = Instant::now();
    let mut st = sim.lock();
    st.settle(now);
    match st.jobs.get(&id).filter(|j| !j.deleted) {
        Some(job) => Json(job.to_json(now, &sim.files_url)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "No job with this id for this token (GET /jobs lists them)",
        ),
    }
}

/// Cancels a pending job (refunded, webhook sent); deletes a finished one.
pub async fn delete(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let id = match job_id(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let now = Instant::now();
    let cancelled = {
        let mut st = sim.lock();
        let Some(job) = st.jobs.get(&id).filter(|j| !j.deleted) else {
            return error(
                StatusCode::NOT_FOUND,
                "No job with this id for this token (GET /jobs lists them)",
            );
        };
        if job.ended(now).is_some() {
            if let Some(job) = st.jobs.get_mut(&id) {
                job.deleted = true;
            }
            None
        } else {
            st.cancel(id, now);
            st.jobs.get(&id).cloned()
        }
    };
    if let Some(job) = cancelled {
        webhook::cancelled(&sim, &job);
    }
    StatusCode::OK.into_response()
}
