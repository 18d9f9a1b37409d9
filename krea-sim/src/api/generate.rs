//! `POST /generate/{kind}/{provider}/{model}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use krea_gen::catalog::{self, ModelSpec};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::api::error;
use crate::config::{Fault, Retirement};
use crate::job::{Origin, timestamp};
use crate::state::{NewJob, Refusal, Sim};
use crate::webhook;

/// 410 for a retired model, naming its replacement.
pub fn gone(r: &Retirement) -> Response {
    let replacement_path = catalog::model(&r.replacement).map(|m| m.path);
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

/// `X-Webhook-URL` must be an absolute http(s) URL; the simulator only delivers to loopback.
pub fn webhook_url(headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(value) = headers.get("x-webhook-url") else {
        return Ok(None);
    };
    let bad = |why: &str| {
        error(
            StatusCode::BAD_REQUEST,
            format!("Invalid X-Webhook-URL: {why}"),
        )
    };
    let text = value.to_str().map_err(|_| bad("not valid text"))?;
    let url = reqwest::Url::parse(text).map_err(|_| bad("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    let loopback = krea_gen::net::is_loopback_host(url.host_str());
    if !loopback {
        return Err(bad(
            "the simulator delivers webhooks to loopback addresses only",
        ));
    }
    Ok(Some(text.to_string()))
}

/// Renames deprecated camelCase fields Krea still accepts (until their sunset) to snake_case.
fn apply_aliases(model: &ModelSpec, body: &mut Map<String, Value>) {
    let today = Utc::now().format("%Y-%m-%d").to_string();
    for alias in model.deprecated_aliases {
        let accepted = alias.sunset_date.is_none_or(|d| today.as_str() <= d);
        if accepted
            && !body.contains_key(alias.to)
            && let Some(v) = body.remove(alias.from)
        {
            body.insert(alias.to.to_string(), v);
        }
    }
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
    matches!(f, Fault::FailJob | Fault::StuckJob | Fault::HostileUrls)
}

pub async fn generate(
    model: &'static ModelSpec,
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut notice = HeaderMap::new();
    if let Some(r) = sim.config.retirements.iter().find(|r| r.path == model.path) {
        if Utc::now() >= r.sunset {
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
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("Invalid JSON body: {e}")),
    };
    apply_aliases(model, &mut body);
    let cost = cost(model, &body);
    let request = Value::Object(body);
    let violations = krea_gen::validate::validate(model, &request);
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        return error(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body: {}", list.join("; ")),
        );
    }
    if let Some(Err(e)) = catalog::decode_body(model.operation_id, &request) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("Invalid request body: {e}"),
        );
    }
    let route = format!("POST {}", model.path);
    let fault = sim.lock().draw_fault(sim.config.seed, &route, is_job_fault);
    let new = NewJob {
        origin: Origin::Generation(model),
        outputs: sim.outputs_for(model, &request),
        request,
        seconds: Sim::model_seconds(model),
        cost,
        webhook,
        fails: fault == Some(Fault::FailJob),
        stuck: fault == Some(Fault::StuckJob),
        hostile: fault == Some(Fault::HostileUrls),
    };
    match sim.create_job(new) {
        Ok(job) => {
            webhook::watch(&sim, &job);
            let mut response = Json(job.to_json(Instant::now(), &sim.files_url)).into_response();
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
            format!("You have reached the maximum number of concurrent jobs ({cap})."),
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
