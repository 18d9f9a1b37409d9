//! `POST /assets` (multipart), `GET /assets`, `GET /assets/{id}`, `DELETE /assets/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::error;
use crate::api::jobs::{cursor, page_limit};
use crate::job::timestamp;
use crate::state::{Asset, Sim};
use krea_gen::media::{ACCEPTED, MAX_UPLOAD_BYTES, sniff};

/// A file name safe to put in a URL path.
fn url_safe(name: &str) -> String {
    let cleaned: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

pub fn asset_json(asset: &Asset, files_url: &str) -> Value {
    json!({
        "id": asset.id,
        "image_url": format!("{files_url}/assets/{}/{}", asset.id, asset.file_name),
        "uploaded_at": timestamp(asset.uploaded_at),
        "width": asset.dimensions.map(|d| d.0),
        "height": asset.dimensions.map(|d| d.1),
        "size_bytes": asset.bytes.len(),
        "mime_type": asset.mime,
        "description": asset.description.clone().unwrap_or_default(),
        "metadata": {},
    })
}

/// Said of any multipart body that cannot be read, whatever the parser's own complaint.
const UNREADABLE_FORM: &str = "The body is not a readable multipart/form-data form: send the image as a field named `file`, with the boundary the Content-Type header names";

/// A form that breaks off or outgrows the limit, in this project's words (the parser's own
/// text is not shown).
fn unreadable(e: &MultipartError) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "File too large: the maximum is 75 MB",
        );
    }
    error(StatusCode::BAD_REQUEST, UNREADABLE_FORM)
}

pub async fn upload(
    State(sim): State<Arc<Sim>>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let Ok(mut form) = form else {
        return error(StatusCode::BAD_REQUEST, UNREADABLE_FORM);
    };
    let mut file = None;
    let mut description = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return unreadable(&e),
        };
        match field.name() {
            Some("file") => {
                let name = field
                    .file_name()
                    .map(url_safe)
                    .unwrap_or_else(|| "file".into());
                match field.bytes().await {
                    Ok(bytes) => file = Some((name, bytes)),
                    Err(e) => return unreadable(&e),
                }
            }
            Some("description") => description = field.text().await.ok(),
            _ => {}
        }
    }
    let Some((name, bytes)) = file else {
        return error(
            StatusCode::BAD_REQUEST,
            "Missing `file`: send the upload as multipart/form-data field `file`",
        );
    };
    if bytes.len() as u64 > MAX_UPLOAD_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "File too large: {} bytes; the maximum is 75 MB",
                bytes.len()
            ),
        );
    }
    let Some(mime) = sniff(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("Unsupported file type: upload {ACCEPTED}"),
        );
    };
    let asset = {
        let mut st = sim.lock();
        st.id_seq += 1;
        let asset = Asset {
            id: sim.uuid("asset", st.id_seq),
            file_name: name,
            mime,
            dimensions: krea_gen::media::image_dimensions(&bytes),
            bytes,
            description,
            uploaded_at: Utc::now(),
        };
        st.assets.insert(asset.id, asset.clone());
        asset
    };
    Json(asset_json(&asset, &sim.files_url)).into_response()
}

pub async fn list(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (limit, before) = match (page_limit(&query), cursor(&query)) {
        (Ok(l), Ok(c)) => (l, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let st = sim.lock();
    let mut newest: Vec<&Asset> = st
        .assets
        .values()
        .filter(|a| before.is_none_or(|c| a.uploaded_at < c))
        .collect();
    newest.sort_by(|a, b| b.uploaded_at.cmp(&a.uploaded_at).then(b.id.cmp(&a.id)));
    let items: Vec<Value> = newest
        .iter()
        .take(limit)
        .map(|a| asset_json(a, &sim.files_url))
        .collect();
    let next_cursor = match newest.get(limit) {
        Some(_) => items
            .last()
            .map_or(Value::Null, |a| a["uploaded_at"].clone()),
        None => Value::Null,
    };
    Json(json!({ "items": items, "next_cursor": next_cursor })).into_response()
}

fn find(sim: &Sim, id: &str) -> Result<Asset, Response> {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "No asset with this id in the account (GET /assets lists them)",
        )
    };
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    sim.lock().assets.get(&id).cloned().ok_or_else(not_found)
}

pub async fn get(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match find(&sim, &id) {
        Ok(asset) => Json(asset_json(&asset, &sim.files_url)).into_response(),
        Err(r) => r,
    }
}

pub async fn delete(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match find(&sim, &id) {
        Ok(asset) => {
            sim.lock().assets.remove(&asset.id);
            Json(json!({ "success": true, "message": "Asset deleted" })).into_response()
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_url_safe() {
        assert_eq!(url_safe("../../etc/passwd"), "passwd");
        assert_eq!(url_safe("my photo (1).png"), "my_photo__1_.png");
        assert_eq!(url_safe(".."), "file");
    }
}
