//! Styles (LoRAs): `POST /styles/train` (a job; the style exists once it completes), search,
//! get, update, share link, workspace share/unshare.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use krea_gen::JobStatus;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::api::error;
use crate::api::generate::{refused, webhook_url};
use crate::api::jobs::page_limit;
use crate::job::{Origin, timestamp};
use crate::render::Output;
use crate::state::{NewJob, Sim, State as SimState, Style};
use crate::webhook;

/// Compute units per training step, by base model (from the document's description).
const UNITS_PER_STEP: [(&str, f64); 6] = [
    ("qwen", 8.3),
    ("wan22", 5.3),
    ("flux_schnell", 3.4),
    ("wan", 3.4),
    ("flux_dev", 3.0),
    ("z-image", 2.4),
];
/// Steps when `max_train_steps` is not given.
const DEFAULT_STEPS: u64 = 1000;
/// Typical training time in seconds, before the time scale.
const TRAINING_SECONDS: f64 = 600.0;

/// Krea-official styles every account sees.
pub fn builtin_styles() -> BTreeMap<String, Style> {
    let created = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    [
        ("krea-watercolor", "Watercolor", "soft watercolor wash"),
        ("krea-neon-noir", "Neon Noir", "neon-lit noir scene"),
    ]
    .into_iter()
    .map(|(id, title, prompt)| {
        let style = Style {
            id: id.into(),
            title: Some(title.into()),
            urls: vec![],
            public: true,
            cover_url: None,
            prompt: prompt.into(),
            models: vec!["flux_dev".into()],
            owned: false,
            created_at: created,
            training_job: None,
            share_token: None,
            shared_with_workspace: false,
        };
        (id.to_string(), style)
    })
    .collect()
}

/// A style is visible once its training (if any) has completed.
fn visible(st: &SimState, style: &Style, now: Instant) -> bool {
    match style.training_job {
        None => true,
        Some(job) => st
            .jobs
            .get(&job)
            .is_some_and(|j| j.status(now) == JobStatus::Completed),
    }
}

fn style_json(style: &Style) -> Value {
    let owner = style
        .owned
        .then(|| json!({ "id": OWNER_ID, "name": "Simulated user", "avatar_url": null }));
    json!({
        "id": style.id,
        "title": style.title,
        "urls": style.urls,
        "public": style.public,
        "cover_url": style.cover_url,
        "prompt": style.prompt,
        "models": style.models,
        "owner": owner,
        "like_count": 0,
        "created_at": timestamp(style.created_at),
    })
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// Checks a training body against the two forms the document allows.
fn training_request(body: &Map<String, Value>) -> Result<(String, u64), Response> {
    let model = body
        .get("model")
        .map_or(Some("flux_dev"), Value::as_str)
        .ok_or_else(|| bad("model: must be a string"))?;
    let base = UNITS_PER_STEP.iter().find(|(m, _)| *m == model).map(|(m, _)| *m).ok_or_else(|| {
        bad(format!("model: {model:?} is not allowed (one of: flux_dev, flux_schnell, wan, wan22, qwen, z-image)"))
    })?;
    match body.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => {}
        _ => return Err(bad("name: is required (a non-empty string)")),
    }
    let urls = body
        .get("urls")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("urls: is required (an array of image URLs)"))?;
    if urls.is_empty()
        || !urls
            .iter()
            .all(|u| u.as_str().is_some_and(|u| reqwest::Url::parse(u).is_ok()))
    {
        return Err(bad(
            "urls: must be a non-empty array of absolute image URLs",
        ));
    }
    let types: &[&str] = if matches!(base, "qwen" | "z-image") {
        &["Style", "Object", "Character"]
    } else {
        &["Style", "Object", "Character", "Default"]
    };
    if let Some(t) = body.get("type")
        && !t.as_str().is_some_and(|t| types.contains(&t))
    {
        return Err(bad(format!(
            "type: {t} is not allowed for {base} (one of: {})",
            types.join(", ")
        )));
    }
    let steps = match body.get("max_train_steps") {
        None => DEFAULT_STEPS,
        // A whole-number float (`5.0`) is a whole number, as in generation bodies.
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && (1.0..=2000.0).contains(f))
                    .map(|f| f as u64)
            })
            .filter(|s| (1..=2000).contains(s))
            .ok_or_else(|| bad("max_train_steps: must be a whole number from 1 to 2000"))?,
    };
    Ok((base.to_string(), steps))
}

pub async fn train(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let webhook = match webhook_url(&headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let body = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => return bad("Invalid request body: expected a JSON object"),
    };
    let (base, steps) = match training_request(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let units_per_step = UNITS_PER_STEP
        .iter()
        .find(|(m, _)| *m == base)
        .map_or(3.0, |(_, u)| *u);
    let style_id = {
        let mut st = sim.lock();
        st.id_seq += 1;
        sim.uuid("style", st.id_seq).to_string()
    };
    let new = NewJob {
        origin: Origin::StyleTraining {
            style_id: style_id.clone(),
        },
        request: Value::Object(body.clone()),
        seconds: TRAINING_SECONDS,
        cost: units_per_step * steps as f64,
        outputs: Vec::<Output>::new(),
        webhook,
        fails: false,
        stuck: false,
        hostile: false,
        foreign: None,
        input: None,
    };
    sim.commit_pause().await;
    let job = match sim.create_job(new) {
        Ok(job) => job,
        Err(refusal) => return refused(refusal),
    };
    let style = Style {
        id: style_id.clone(),
        title: body.get("name").and_then(Value::as_str).map(String::from),
        urls: body
            .get("urls")
            .and_then(Value::as_array)
            .map(|u| {
                u.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        public: false,
        cover_url: None,
        prompt: body
            .get("trigger_word")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        models: vec![base],
        owned: true,
        created_at: job.created_at,
        training_job: Some(job.id),
        share_token: None,
        shared_with_workspace: false,
    };
    sim.lock().styles.insert(style_id, style);
    webhook::watch(&sim, &job);
    Json(job.submitted_json(&sim.files_url)).into_response()
}

/// The simulated account's user id, the owner of its own styles.
const OWNER_ID: &str = "00000000-0000-4000-8000-000000000001";

pub async fn list(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let limit = match page_limit(&query) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let filter = query.get("filter").map_or("all", String::as_str);
    let known = [
        "all",
        "user",
        "community",
        "krea",
        "shared",
        "unapproved",
        "editor",
        "gallery",
        "public",
    ];
    if !known.contains(&filter) {
        return bad(format!(
            "Invalid filter {filter:?}: one of {}",
            known.join(", ")
        ));
    }
    let ids: Option<Vec<&str>> = query
        .get("ids")
        .map(|i| i.split(',').map(str::trim).collect());
    let now = Instant::now();
    let st = sim.lock();
    let mut styles: Vec<&Style> = st
        .styles
        .values()
        .filter(|s| visible(&st, s, now))
        .filter(|s| match filter {
            "user" => s.owned,
            "shared" => s.shared_with_workspace,
            "krea" | "community" | "public" | "gallery" => s.public,
            "unapproved" | "editor" => false,
            _ => s.owned || s.public,
        })
        .filter(|s| ids.as_ref().is_none_or(|ids| ids.contains(&s.id.as_str())))
        .filter(|s| query.get("model").is_none_or(|m| s.models.contains(m)))
        // No style has a like here (every like_count is 0), so none is in the liked list.
        .filter(|_| query.get("liked").is_none_or(|l| l != "true"))
        .filter(|s| query.get("user").is_none_or(|u| s.owned && u == OWNER_ID))
        .filter(|s| {
            query
                .get("cursor")
                .is_none_or(|c| timestamp(s.created_at) < *c)
        })
        .collect();
    styles.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items: Vec<Value> = styles.iter().take(limit).map(|s| style_json(s)).collect();
    let next_cursor = match styles.get(limit) {
        Some(_) => items
            .last()
            .map_or(Value::Null, |s| s["created_at"].clone()),
        None => Value::Null,
    };
    Json(json!({ "items": items, "next_cursor": next_cursor })).into_response()
}

/// The style `id` if this account may see it.
fn find(sim: &Sim, id: &str) -> Option<Style> {
    let st = sim.lock();
    st.styles
        .get(id)
        .filter(|s| (s.owned || s.public) && visible(&st, s, Instant::now()))
        .cloned()
}

/// The style `id` if this account owns it.
fn owned(sim: &Sim, id: &str, not_found: &str) -> Result<Style, Response> {
    find(sim, id)
        .filter(|s| s.owned)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, not_found))
}

pub async fn get(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match find(&sim, &id) {
        Some(s) => Json(style_json(&s)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "No style with this id that the account can see (GET /styles lists them)",
        ),
    }
}

pub async fn update(State(sim): State<Arc<Sim>>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = owned(&sim, &id, "No style with this id belongs to this account") {
        return r;
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return bad("Invalid request body: expected a JSON object");
    };
    let mut st = sim.lock();
    let Some(style) = st.styles.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "No style with this id that the account can see (GET /styles lists them)",
        );
    };
    let mut changed = false;
    if let Some(public) = body.get("public").and_then(Value::as_bool) {
        style.public = public;
        changed = true;
    }
    if let Some(title) = body.get("title").and_then(Value::as_str) {
        style.title = Some(title.to_string());
        changed = true;
    }
    if let Some(cover) = body.get("cover_url").and_then(Value::as_str) {
        style.cover_url = Some(cover.to_string());
        changed = true;
    }
    if let Some(urls) = body.get("urls").and_then(Value::as_array) {
        style.urls = urls
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        changed = true;
    }
    if !changed {
        return bad("No valid fields to update: send public, title, cover_url or urls");
    }
    Json(style_json(style)).into_response()
}

pub async fn share_link(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    if let Err(r) = owned(&sim, &id, "No style with this id belongs to this account") {
        return r;
    }
    let mut st = sim.lock();
    st.id_seq += 1;
    let fresh = sim.uuid("share", st.id_seq).simple().to_string();
    let Some(style) = st.styles.get_mut(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "No style with this id that the account can see (GET /styles lists them)",
        );
    };
    let is_new = style.share_token.is_none();
    let token = style.share_token.get_or_insert(fresh).clone();
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let link = format!("{}/styles/shared/{token}", sim.files_url);
    (
        status,
        Json(json!({ "share_link": link, "is_new": is_new })),
    )
        .into_response()
}

fn workspace_access(sim: &Sim, id: &str) -> Result<(), Response> {
    match find(sim, id) {
        None => Err(error(
            StatusCode::NOT_FOUND,
            "No style with this id that the account can see (GET /styles lists them)",
        )),
        Some(s) if !s.owned => Err(error(
            StatusCode::FORBIDDEN,
            "Only the owner of a style can change who it is shared with",
        )),
        Some(_) => Ok(()),
    }
}

pub async fn share(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    if let Err(r) = workspace_access(&sim, &id) {
        return r;
    }
    if let Some(style) = sim.lock().styles.get_mut(&id) {
        style.shared_with_workspace = true;
    }
    let workspace =
        json!({ "id": "sim-workspace", "name": "Simulated workspace", "is_default": true });
    Json(json!({ "success": true, "style_id": id, "workspace": workspace })).into_response()
}

pub async fn unshare(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    if let Err(r) = workspace_access(&sim, &id) {
        return r;
    }
    let mut st = sim.lock();
    match st.styles.get_mut(&id) {
        Some(style) if style.shared_with_workspace => {
            style.shared_with_workspace = false;
            Json(json!({ "success": true })).into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "This style is not shared with the workspace",
        ),
    }
}
