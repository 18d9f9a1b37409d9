//! `POST /generate/{kind}/{provider}/{model}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use krea_gen::catalog::{self, ModelSpec};
use serde_json::{Map, Value, json};

use crate::api::error;
use crate::config::{Fault, Retirement};
use crate::job::{Origin, timestamp};
use crate::state::{NewJob, Refusal, Sim};
use crate::webhook;

/// 410 for a retired model, naming its replacement.
pub fn gone(r: &Retirement) -> Response {
    let replacement_path = catalog::model(&r.replacement).map(|m| m.path.as_str());
    let body = json!({
        "error": "model_unavailable",
        "message": format!(
            "This model was retired on {}; use {} instead.",
            r.sunset.format("%Y-%m-%d"),
            r.replacement
        ),
        "replacement": r.replacement,
        "replacement_path": replacement_path,
        "sunset": timestamp(r.sunset),
    });
    (StatusCode::GONE, Json(body)).into_response()
}

/// `X-Webhook-URL`: any absolute https URL, as Krea accepts (http only to a loopback host).
/// Where it is really delivered is decided at delivery ([`Sim::delivers_to`]).
pub fn webhook_url(headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(value) = headers.get("x-webhook-url") else {
        return Ok(None);
    };
    let bad = |why: &str| error(StatusCode::BAD_REQUEST, format!("X-Webhook-URL {why}"));
    let text = value.to_str().map_err(|_| bad("is not valid text"))?;
    let url = reqwest::Url::parse(text).map_err(|_| bad("must be an absolute https URL"))?;
    let loopback = krea_gen::net::is_loopback_host(url.host_str());
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(Some(text.to_string())),
        "http" if loopback => Ok(Some(text.to_string())),
        _ => Err(bad("must be an absolute https URL")),
    }
}

/// Deprecated camelCase fields: before their sunset, renamed to the new field, and the answer
/// names each in `Deprecation`, `Sunset` and `Link` headers; from the sunset on, refused naming
/// every such field of the request, the field to send instead and where the change is explained.
/// A deprecated field sent beside its new name with another value is refused naming both.
fn deprecated_fields(
    sim: &Sim,
    model: &ModelSpec,
    body: &mut Map<String, Value>,
) -> Result<HeaderMap, Response> {
    let today = sim.now().date_naive();
    let sent: Vec<_> = model
        .deprecated_aliases
        .iter()
        .filter(|a| body.contains_key(&a.from))
        .map(|alias| {
            let sunset = alias
                .sunset_date
                .as_deref()
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            (alias, sunset)
        })
        .collect();
    let retired: Vec<_> = sent
        .iter()
        .filter(|(_, sunset)| sunset.is_some_and(|s| today >= s))
        .collect();
    if !retired.is_empty() {
        let each: Vec<String> = retired
            .iter()
            .map(|(a, sunset)| {
                let when = sunset.map_or(String::new(), |s| format!(" since {s}"));
                format!(
                    "{} (no longer accepted{when}; send {} instead)",
                    a.from, a.to
                )
            })
            .collect();
        let see: Vec<&str> = retired
            .iter()
            .filter_map(|(a, _)| a.migration_url.as_deref())
            .collect();
        let see = see.first().map_or(String::new(), |u| format!(" See {u}."));
        let fields: Vec<Value> = retired
            .iter()
            .map(|(a, sunset)| {
                json!({
                    "field": a.from,
                    "replacement": a.to,
                    "sunset": sunset.map(|s| s.to_string()),
                    "migration_url": a.migration_url,
                })
            })
            .collect();
        return Err((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": format!("Retired request fields: {}.{see}", each.join(", ")),
                "fields": fields,
            })),
        )
            .into_response());
    }
    let conflicts: Vec<String> = sent
        .iter()
        .filter(|(a, _)| {
            body.get(&a.to)
                .is_some_and(|new| Some(new) != body.get(&a.from))
        })
        .map(|(a, _)| format!("{} and {}", a.from, a.to))
        .collect();
    if !conflicts.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid request body: {} are the same field (the first is its deprecated name) with different values; send only the second",
                conflicts.join(", ")
            ),
        ));
    }
    let mut notice = HeaderMap::new();
    let mut links = Vec::new();
    for (alias, _) in &sent {
        if let Some(v) = body.remove(&alias.from) {
            body.entry(alias.to.to_string()).or_insert(v);
        }
        let url = alias
            .migration_url
            .as_deref()
            .unwrap_or("https://docs.krea.ai");
        links.push(format!(
            "<{url}>; rel=\"deprecation\"; title=\"{} is now {}\"",
            alias.from, alias.to
        ));
    }
    if !links.is_empty() {
        notice.insert("deprecation", HeaderValue::from_static("true"));
        if let Some(first) = sent.iter().filter_map(|(_, s)| *s).min()
            && let Some(t) = first.and_hms_opt(0, 0, 0)
            && let Ok(v) =
                HeaderValue::try_from(t.and_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        {
            notice.insert("sunset", v);
        }
        if let Ok(v) = HeaderValue::try_from(links.join(", ")) {
            notice.insert("link", v);
        }
    }
    Ok(notice)
}

/// Compute units: what the client's estimate says (the cheapest row the request may meet),
/// else the model's cheapest row, else a per-kind figure.
pub fn cost(model: &ModelSpec, body: &Map<String, Value>) -> f64 {
    krea_gen::pricing::compute_units(model, &Value::Object(body.clone()))
        .map(|(low, _)| low)
        .or_else(|| model.min_compute_units())
        .unwrap_or(match model.kind {
            catalog::Kind::Image => 10.0,
            catalog::Kind::Enhance => 20.0,
            catalog::Kind::Video => 100.0,
        })
}

fn is_job_fault(f: &Fault) -> bool {
    matches!(
        f,
        Fault::FailJob | Fault::StuckJob | Fault::HostileUrls | Fault::ForeignTwin { .. }
    )
}

/// What another program on the same account asks for.
pub const FOREIGN_PROMPT: &str = "another program on this account";

/// Creates another program's job of `model`, stamped `offset` from now.
pub fn create_foreign(sim: &Arc<Sim>, model: &'static ModelSpec, offset: chrono::Duration) {
    let request = json!({ "prompt": FOREIGN_PROMPT });
    let new = NewJob {
        origin: Origin::Generation(model),
        outputs: sim.outputs_for(model, &request),
        cost: cost(model, request.as_object().unwrap_or(&Map::new())),
        request,
        seconds: Sim::model_seconds(model),
        webhook: None,
        fails: false,
        stuck: false,
        hostile: false,
        foreign: Some(offset),
        input: None,
    };
    if let Err(refusal) = sim.create_job(new) {
        tracing::debug!(?refusal, "the foreign job was refused");
    }
}

pub async fn generate(
    model: &'static ModelSpec,
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut notice = HeaderMap::new();
    if let Some(r) = sim.config.retirements.iter().find(|r| r.path == model.path) {
        if sim.now() >= r.sunset {
            return gone(r);
        }
        notice.insert("deprecation", HeaderValue::from_static("true"));
        if let Ok(v) =
            HeaderValue::try_from(r.sunset.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        {
            notice.insert("sunset", v);
        }
        if let Some(m) = catalog::model(&r.replacement)
            && let Ok(v) = HeaderValue::try_from(format!("<{}>; rel=\"successor-version\"", m.path))
        {
            notice.insert("link", v);
        }
    }
    let webhook = match webhook_url(&headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut body: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid request body: expected a JSON object",
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "The body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    match deprecated_fields(&sim, model, &mut body) {
        Ok(headers) => notice.extend(headers),
        Err(refused) => return refused,
    }
    let mut request = Value::Object(body);
    krea_gen::validate::normalize_integers(model, &mut request);
    let cost = cost(model, request.as_object().unwrap_or(&Map::new()));
    let violations = krea_gen::validate::validate(model, &request);
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return error(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body: {}", list.join("; ")),
        );
    }
    if let Some(Err(_)) = catalog::decode_body(&model.operation_id, &request) {
        // The checks above say why in the project's words; this is the typed last word.
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid request body: it does not match the model's schema",
        );
    }
    let route = format!("POST {}", model.path);
    let fault = {
        let body = serde_json::to_vec(&request).unwrap_or_default();
        sim.lock()
            .draw_fault_for(sim.config.seed, &route, Some(&body), is_job_fault)
    };
    let input = (model.kind == catalog::Kind::Enhance)
        .then(|| crate::upscale::resolve(&sim, &request))
        .flatten();
    let new = NewJob {
        origin: Origin::Generation(model),
        outputs: sim.outputs_for(model, &request),
        input,
        request,
        seconds: Sim::model_seconds(model),
        cost,
        webhook,
        fails: fault == Some(Fault::FailJob),
        stuck: fault == Some(Fault::StuckJob),
        hostile: fault == Some(Fault::HostileUrls),
        foreign: None,
    };
    sim.commit_pause().await;
    match sim.create_job(new) {
        Ok(job) => {
            if let Some(Fault::ForeignTwin { offset_ms }) = fault {
                create_foreign(&sim, model, chrono::Duration::milliseconds(offset_ms));
            }
            webhook::watch(&sim, &job);
            let mut response = Json(job.submitted_json(&sim.files_url)).into_response();
            response.headers_mut().extend(notice);
            response
        }
        Err(refusal) => refused(refusal),
    }
}

/// 402 or 429 for a generation that was not accepted.
pub fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Credits { cost, balance } => error(
            StatusCode::PAYMENT_REQUIRED,
            format!(
                "Not enough credits: this job costs {cost} compute units and the balance is {balance:.1}."
            ),
        ),
        Refusal::Capacity { cap } => error(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many concurrent jobs (the limit is {cap}); try again when one ends"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn cost_follows_the_pricing_row_the_request_meets() {
        let veo = catalog::model("google/veo-3").expect("veo 3");
        assert_eq!(
            cost(veo, &object(json!({"prompt": "x"}))),
            916.0,
            "defaults: 720p, no audio, 8s"
        );
        let with_audio = object(
            json!({"prompt": "x", "duration": 6, "generate_audio": true, "resolution": "1080p"}),
        );
        assert_eq!(cost(veo, &with_audio), 1375.0);
        let unpriced = object(json!({"prompt": "x", "duration": 4}));
        assert_eq!(
            cost(veo, &unpriced),
            573.0,
            "no row for 4 s: the cheapest row"
        );
        let flux = catalog::model("bfl/flux-1-dev").expect("flux");
        assert_eq!(cost(flux, &object(json!({"prompt": "x"}))), 3.0);
    }
}
