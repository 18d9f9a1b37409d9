//! What a client written from Krea's documents alone sends, byte for byte: whole-number floats,
//! null-only fields, deprecated camelCase fields around their sunset, broken multipart bodies,
//! loosely typed query strings, pagination edges, and model discovery through `/openapi.json`.

use crate::support;

use chrono::NaiveDate;
use krea_sim::Simulator;
use serde_json::{Map, Value, json};
use support::{get, http, job_id, post, start, wait};

const FLUX: &str = "/generate/image/bfl/flux-1-dev";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

fn error_text(body: &Value) -> &str {
    body["error"].as_str().expect("a JSON {error} body")
}

#[tokio::test]
async fn whole_number_floats_are_integers_and_fractions_are_refused_in_plain_words() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let r = post(
        &sim,
        FLUX,
        &json!({"prompt": "x", "steps": 41.0, "seed": 7.0}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let video = "/generate/video/kling/kling-2.1";
    let r = post(&sim, video, &json!({"prompt": "x", "duration": 5.0})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = post(&sim, FLUX, &json!({"prompt": "x", "steps": 41.5})).await;
    assert_eq!(r.status, 400);
    let e = error_text(&r.body);
    assert!(e.contains("steps"), "{e}");
    assert!(
        !e.contains("invalid type") && !e.contains("expected i64"),
        "{e}"
    );
    assert_eq!(sim.control().counters().jobs_created, 2);
}

#[tokio::test]
async fn a_camera_movement_without_settings_refuses_a_config_object() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    for model in ["kling-1", "kling-1.5", "kling-1.6"] {
        let path = format!("/generate/video/kling/{model}");
        let with_config =
            json!({"prompt": "x", "camera_control": {"type": "left_turn_forward", "config": {}}});
        let r = post(&sim, &path, &with_config).await;
        assert_eq!(r.status, 400, "{model}: {:?}", r.body);
        assert!(error_text(&r.body).contains("config"), "{:?}", r.body);
        let null_config =
            json!({"prompt": "x", "camera_control": {"type": "left_turn_forward", "config": null}});
        assert_eq!(post(&sim, &path, &null_config).await.status, 200, "{model}");
        let simple =
            json!({"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 2}}});
        assert_eq!(post(&sim, &path, &simple).await.status, 200, "{model}");
    }
    assert_eq!(sim.control().counters().jobs_created, 6);

    // A client reading the served document learns the same rule.
    let doc: Value = get(&sim, "/openapi.json").await.body;
    let schema = &doc["paths"]["/generate/video/kling/kling-1"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    let forms = schema["properties"]["camera_control"]["oneOf"]
        .as_array()
        .expect("alternatives");
    let left = forms
        .iter()
        .find(|f| f["properties"]["type"]["enum"] == json!(["left_turn_forward"]))
        .expect("the left_turn_forward form");
    assert_eq!(left["properties"]["config"]["enum"], json!([null]));
}

#[tokio::test]
async fn a_deprecated_field_is_renamed_with_headers_before_its_sunset_and_refused_after() {
    let body = json!({"prompt": "x", "imageUrl": "https://example.com/a.png"});
    let before = start(
        Simulator::builder()
            .time_scale(0.0)
            .today(day("2026-06-18")),
    )
    .await;
    let r = post(&before, FLUX, &body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.headers["deprecation"], "true");
    assert_eq!(r.headers["sunset"], "Fri, 19 Jun 2026 00:00:00 GMT");
    let link = r.headers["link"].to_str().expect("text");
    assert!(link.contains("imageUrl is now image_url"), "{link}");
    assert!(link.contains("rel=\"deprecation\""), "{link}");
    let (job, _) = wait(&before, &job_id(&r.body)).await;
    assert_eq!(job["status"], "completed");

    let plain = post(&before, FLUX, &json!({"prompt": "x"})).await;
    assert!(plain.headers.get("deprecation").is_none());

    let after = start(
        Simulator::builder()
            .time_scale(0.0)
            .today(day("2026-06-19")),
    )
    .await;
    let r = post(&after, FLUX, &body).await;
    assert_eq!(r.status, 400);
    let e = error_text(&r.body);
    assert!(
        e.contains("imageUrl") && e.contains("send image_url instead"),
        "{e}"
    );
    assert_eq!(r.body["fields"][0]["replacement"], "image_url");
    assert!(
        r.body["fields"][0]["migration_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://docs.krea.ai/")),
        "{:?}",
        r.body
    );
    assert_eq!(after.control().counters().jobs_created, 0);
}

#[tokio::test]
async fn a_broken_or_empty_upload_form_answers_json() {
    let sim = start(Simulator::builder()).await;
    let url = format!("{}/assets", sim.api_url());
    let cases: [(Option<&str>, &[u8]); 4] = [
        (Some("multipart/form-data; boundary=XyZ"), b""),
        (Some("multipart/form-data"), b"--XyZ\r\n"),
        (Some("multipart/form-data; boundary=XyZ"), b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n\x89PNG"),
        (None, b"not a form"),
    ];
    for (content_type, body) in cases {
        let mut request = http()
            .post(&url)
            .bearer_auth(sim.token())
            .body(body.to_vec());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let r = request.send().await.expect("answered");
        assert_eq!(r.status(), 400, "{content_type:?}");
        let ct = r.headers()["content-type"]
            .to_str()
            .expect("text")
            .to_string();
        assert!(ct.starts_with("application/json"), "{content_type:?}: {ct}");
        let body: Value = r.json().await.expect("JSON");
        let e = error_text(&body);
        assert!(
            e.contains("multipart/form-data") || e.contains("`file`"),
            "{e}"
        );
        assert!(
            !e.contains("boundary ") || e.contains("Content-Type"),
            "{e}"
        );
    }
    let assets = get(&sim, "/assets").await;
    assert_eq!(assets.body["items"], json!([]));
}

#[tokio::test]
async fn an_unsupported_method_answers_json_too() {
    let sim = start(Simulator::builder()).await;
    let r = http()
        .put(format!("{}/jobs", sim.api_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"));
    let body: Value = r.json().await.expect("JSON");
    assert!(error_text(&body).contains("method"), "{body}");
}

#[tokio::test]
async fn query_parameters_are_checked_against_their_documented_types() {
    let sim = start(Simulator::builder()).await;
    for (query, named) in [
        ("/styles?liked=null", "liked"),
        ("/styles?liked=1", "liked"),
        ("/styles?limit=ten", "limit"),
        ("/styles?filter=mine", "filter"),
        ("/jobs?limit=0", "limit"),
        ("/jobs?limit=1001", "limit"),
        ("/jobs?limit=2.5", "limit"),
        ("/jobs?status=done", "status"),
        ("/jobs?cursor=yesterday", "cursor"),
        ("/assets?limit=-1", "limit"),
        ("/assets?cursor=2026-13-01T00:00:00Z", "cursor"),
    ] {
        let r = get(&sim, query).await;
        assert_eq!(r.status, 400, "{query}: {:?}", r.body);
        let e = error_text(&r.body);
        assert!(e.starts_with(&format!("Invalid {named} ")), "{query}: {e}");
    }
    for ok in [
        "/styles?liked=false",
        "/styles?liked=true",
        "/jobs?limit=1",
        "/jobs?limit=1000",
        "/jobs?status=completed",
        "/assets?limit=1000",
        "/jobs?unknown=kept-quiet",
    ] {
        assert_eq!(get(&sim, ok).await.status, 200, "{ok}");
    }
    assert_eq!(
        get(&sim, "/styles?liked=true").await.body["items"],
        json!([])
    );
}

#[tokio::test]
async fn pagination_edges_one_a_thousand_and_cursors_out_of_range() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    for _ in 0..3 {
        assert_eq!(post(&sim, FLUX, &json!({"prompt": "x"})).await.status, 200);
    }
    let one = get(&sim, "/jobs?limit=1").await.body;
    assert_eq!(one["items"].as_array().expect("items").len(), 1);
    let cursor = one["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let rest = get(&sim, &format!("/jobs?limit=1000&cursor={cursor}"))
        .await
        .body;
    assert_eq!(rest["items"].as_array().expect("items").len(), 2);
    assert_eq!(rest["next_cursor"], Value::Null);

    let future = get(&sim, "/jobs?cursor=2999-01-01T00:00:00Z").await.body;
    assert_eq!(future["items"].as_array().expect("items").len(), 3);
    let past = get(&sim, "/jobs?cursor=2000-01-01T00:00:00Z").await.body;
    assert_eq!(past["items"], json!([]));
    assert_eq!(past["next_cursor"], Value::Null);
}

/// A request body built from a model's schema in the served document: every required field,
/// from its enum, bounds or type, as a client that knows nothing else would.
fn body_from_schema(doc: &Value, schema: &Value) -> Value {
    let schema = match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .expect("$ref resolves"),
        None => schema,
    };
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut body = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().expect("name");
                let value = match name {
                    "prompt" => json!("a lighthouse at dusk, oil painting"),
                    _ => body_from_schema(doc, &schema["properties"][name]),
                };
                body.insert(name.into(), value);
            }
            Value::Object(body)
        }
        Some("integer" | "number") => schema.get("minimum").cloned().unwrap_or(json!(1)),
        Some("boolean") => json!(false),
        Some("array") => json!([body_from_schema(doc, &schema["items"])]),
        _ if schema["format"] == "uri" => json!("https://example.com/in.png"),
        _ => json!("x"),
    }
}

#[tokio::test]
async fn three_image_models_found_in_openapi_json_generate_from_the_document_alone() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let doc: Value = http()
        .get(format!("{}/openapi.json", sim.api_url()))
        .send()
        .await
        .expect("answered without a token")
        .json()
        .await
        .expect("JSON");
    let base = doc["servers"][0]["url"]
        .as_str()
        .expect("servers")
        .to_string();
    let wanted = [
        "/generate/image/bfl/flux-1-dev",
        "/generate/image/google/nano-banana-2",
        "/generate/image/openai/gpt-image",
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for path in wanted {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} listed"))["post"];
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        let body = body_from_schema(&doc, schema);
        let r = http()
            .post(format!("{base}{path}"))
            .bearer_auth(sim.token())
            .json(&body)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), 200, "{path} with {body}");
        let job: Value = r.json().await.expect("job");
        let (done, _) = wait(&sim, &job_id(&job)).await;
        assert_eq!(done["status"], "completed", "{path}");
        let url = done["result"]["urls"][0].as_str().expect("a result URL");
        let bytes = support::download(url).await;
        assert!(bytes.starts_with(b"\x89PNG"), "{path}: an image");
    }
    let counters = sim.control().counters();
    for path in wanted {
        assert_eq!(
            counters.requests[&format!("POST {path}")].get(&200),
            Some(&1),
            "{path}: one POST"
        );
    }
    assert_eq!(counters.jobs_created, 3);
}

#[tokio::test]
async fn a_pending_job_leaves_out_what_does_not_exist_yet() {
    // The document types completed_at as a date-time and result as an object, neither nullable.
    let sim = start(Simulator::builder().time_scale(1.0)).await;
    let job = post(&sim, FLUX, &json!({"prompt": "x"})).await.body;
    let pending = get(&sim, &format!("/jobs/{}", job_id(&job))).await.body;
    assert_ne!(pending["status"], "completed");
    let fields = pending.as_object().expect("a job object");
    assert!(!fields.contains_key("completed_at"), "{pending}");
    assert!(!fields.contains_key("result"), "{pending}");
    let listed = get(&sim, "/jobs").await.body;
    assert!(listed["items"][0].get("completed_at").is_none(), "{listed}");
}
