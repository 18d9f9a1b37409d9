//! Every operation of Krea's document answers, with a status the document lists for it and a body
//! of the shape it documents; and the
//! same seed and requests give the same responses and file bytes.

use crate::support;

use std::collections::BTreeSet;

use krea_gen::catalog;
use krea_sim::Simulator;
use serde_json::{Value, json};
use support::{get, http, job_id, post, start, wait};

/// The whole API as the vendored description has it (hand-written operations included, submit
/// answers spelled out as the pending job Krea's document describes).
fn whole_api() -> Value {
    let vendored = serde_json::from_str(krea_gen::OPENAPI_DOCUMENT).expect("vendored JSON");
    krea_openapi::publish::served(&vendored)
}

/// Checks `value` against a response schema of the document (the keywords its responses use:
/// `$ref`, `type`, `nullable`, `enum`, `format`, `required`, `properties`, `items`), naming
/// each difference by its JSON path.
fn conform(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .expect("$ref resolves"),
        None => schema,
    };
    let Some(ty) = schema["type"].as_str() else {
        return; // `{}`: anything
    };
    if value.is_null() {
        if schema["nullable"] != true {
            problems.push(format!("{at}: null where the document has a non-null {ty}"));
        }
        return;
    }
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        problems.push(format!("{at}: {value} is not a {ty}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(text) = value.as_str() {
        let format_ok = match schema["format"].as_str() {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            Some("uuid") => uuid::Uuid::parse_str(text).is_ok(),
            Some("uri") => reqwest::Url::parse(text).is_ok(),
            _ => true,
        };
        if !format_ok {
            problems.push(format!("{at}: {text:?} is not a {}", schema["format"]));
        }
    }
    if let Some(map) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().expect("name");
            if !map.contains_key(name) {
                problems.push(format!("{at}.{name}: required, missing"));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (name, field) in props {
                if let Some(v) = map.get(name) {
                    conform(doc, field, v, &format!("{at}.{name}"), problems);
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            conform(doc, &schema["items"], item, &format!("{at}[{i}]"), problems);
        }
    }
}

#[tokio::test]
async fn openapi_json_is_served_without_a_token_and_lists_every_model() {
    let sim = start(Simulator::builder()).await;
    let response = http()
        .get(format!("{}/openapi.json", sim.api_url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("JSON");
    let served: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .filter(|p| p.starts_with("/generate/"))
        .cloned()
        .collect();
    let catalog: BTreeSet<String> = catalog::MODELS.iter().map(|m| m.path.to_string()).collect();
    assert_eq!(served, catalog);
    assert!(doc["paths"]["/assets"]["post"].is_object(), "the whole API");
    assert_eq!(
        doc["servers"][0]["url"],
        sim.api_url(),
        "servers point here"
    );

    let upstream = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}});
    let other = start(Simulator::builder().openapi_document(upstream)).await;
    let doc: Value = support::openapi(&other).await;
    assert_eq!(doc["openapi"], "3.1.0", "the document it was started with");
}

#[tokio::test]
async fn all_72_operations_answer_with_a_documented_status_and_shape() {
    let doc = whole_api();
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    // Things for the {id}s to point at.
    let job = job_id(
        &post(
            &sim,
            "/generate/image/bfl/flux-1-dev",
            &json!({"prompt": "x"}),
        )
        .await
        .body,
    );
    let part = reqwest::multipart::Part::bytes(krea_sim::render_png(8, 8, 1)).file_name("a.png");
    let asset: Value = http()
        .post(format!("{}/assets", sim.api_url()))
        .bearer_auth(sim.token())
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("asset");
    let asset = asset["id"].as_str().expect("asset id").to_string();
    let train = post(
        &sim,
        "/styles/train",
        &json!({"name": "s", "urls": ["https://example.com/a.png"]}),
    )
    .await;
    let (trained, _) = wait(&sim, &job_id(&train.body)).await;
    let style = trained["result"]["style_id"]
        .as_str()
        .expect("style id")
        .to_string();

    let mut operations = krea_openapi::normalize::operations(&doc);
    // Deletions last, so the other operations still find what they point at.
    operations.sort_by_key(|(method, _, _)| method == "delete");
    let mut answered = BTreeSet::new();
    let mut pending_answers = 0;
    for (method, path, op) in &operations {
        let documented: BTreeSet<u16> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect();
        let id = if path.starts_with("/jobs") {
            &job
        } else if path.starts_with("/assets") {
            &asset
        } else if path.starts_with("/styles") {
            &style
        } else {
            krea_sim::DEMO_APP
        };
        let url = format!("{}{}", sim.api_url(), path.replace("{id}", id));
        let request = match (method.as_str(), path.as_str()) {
            ("post", "/assets") => {
                let part = reqwest::multipart::Part::bytes(krea_sim::render_png(8, 8, 2))
                    .file_name("b.png");
                http()
                    .post(&url)
                    .multipart(reqwest::multipart::Form::new().part("file", part))
            }
            ("post", p) if p.starts_with("/generate/") => {
                let model = catalog::by_path(p).expect("every generation path is in the catalog");
                http().post(&url).json(&krea_gen::validate::example_body(
                    model,
                    "a lighthouse at dusk",
                ))
            }
            ("post", "/styles/train") => http()
                .post(&url)
                .json(&json!({"name": "t", "urls": ["https://example.com/b.png"]})),
            ("post", "/node-apps/{id}/execute") => {
                http().post(&url).json(&json!({"prompt": "a cat"}))
            }
            ("post", _) => http().post(&url),
            ("patch", _) => http().patch(&url).json(&json!({"title": "renamed"})),
            ("delete", _) => http().delete(&url),
            _ => http().get(&url),
        };
        let response = request
            .bearer_auth(sim.token())
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
        if !schema.is_null() {
            let value: Value = serde_json::from_str(&body).expect("a JSON answer");
            let mut problems = Vec::new();
            conform(&doc, schema, &value, "", &mut problems);
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            if required.contains(&json!("completed_at")) && required.contains(&json!("result")) {
                pending_answers += 1;
            }
            assert!(
                problems.is_empty(),
                "{} {path}: the answer differs from the document: {problems:?}\n{body}",
                method.to_uppercase()
            );
        }
        assert!(
            documented.contains(&status),
            "{} {path}: {status} is not documented ({documented:?}): {body}",
            method.to_uppercase()
        );
        assert!(
            status < 300,
            "{} {path}: {status}: {body}",
            method.to_uppercase()
        );
        answered.insert(format!("{} {path}", method.to_uppercase()));
    }
    assert_eq!(answered.len(), 72);
    assert_eq!(
        pending_answers, 57,
        "every generation and the style training answered with the pending job, nulls included"
    );
}

/// The run of requests the determinism test repeats: returns the responses (timestamps and the
/// port-specific origins masked) and the bytes of every result file.
async fn a_fixed_run(seed: u64) -> (Vec<Value>, Vec<Vec<u8>>) {
    let sim = start(
        Simulator::builder()
            .seed(seed)
            .time_scale(0.0)
            .video_bytes(4096),
    )
    .await;
    let mask = |mut v: Value| {
        for key in ["created_at", "completed_at"] {
            if v.get(key).is_some_and(Value::is_string) {
                v[key] = json!("<time>");
            }
        }
        serde_json::from_str::<Value>(&v.to_string().replace(sim.files_url(), "<files>"))
            .expect("json")
    };
    let bodies = [
        (
            "/generate/image/bfl/flux-1-dev",
            json!({"prompt": "a lighthouse", "seed": 7}),
        ),
        (
            "/generate/image/google/nano-banana-2",
            json!({"prompt": "a red bicycle", "aspect_ratio": "16:9"}),
        ),
        (
            "/generate/video/kling/kling-2.1",
            json!({"prompt": "waves"}),
        ),
    ];
    let mut responses = Vec::new();
    let mut files = Vec::new();
    for (path, body) in bodies {
        let created = post(&sim, path, &body).await.body;
        responses.push(mask(created.clone()));
        let (done, _) = wait(&sim, &job_id(&created)).await;
        for url in done["result"]["urls"].as_array().expect("urls") {
            files.push(
                http()
                    .get(url.as_str().expect("url"))
                    .send()
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes")
                    .to_vec(),
            );
        }
        responses.push(mask(done));
    }
    (responses, files)
}

#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_responses_and_bytes() {
    let (a, files_a) = a_fixed_run(11).await;
    let (b, files_b) = a_fixed_run(11).await;
    assert_eq!(a, b);
    assert_eq!(files_a, files_b);
    let (c, files_c) = a_fixed_run(12).await;
    assert_ne!(
        a[0]["job_id"], c[0]["job_id"],
        "another seed gives other ids"
    );
    assert_ne!(files_a[0], files_c[0], "and other pixels");
}

#[tokio::test]
async fn list_answers_for_the_counters_endpoint_too() {
    let sim = start(Simulator::builder()).await;
    get(&sim, "/jobs").await;
    let counters: Value = http()
        .get(format!("{}/_sim/counters", sim.api_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["requests"]["GET /jobs"]["200"], 1);
}

/// Reads a description's table the way Krea's scripts do: the first Markdown table whose header
/// names `Compute Units`; per row, the number in that column and in `Average Completion Time`.
fn figures_in(description: &str) -> Vec<(f64, Option<f64>)> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let number = |cell: &str| -> Option<f64> {
        let digits: String = cell
            .trim_start_matches('~')
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits.parse().ok()
    };
    let mut lines = description
        .lines()
        .skip_while(|l| !l.contains("Compute Units"));
    let Some(header) = lines.next().map(cells) else {
        return Vec::new();
    };
    let cu = header.iter().position(|h| h == "Compute Units");
    let time = header.iter().position(|h| h == "Average Completion Time");
    lines
        .skip(1) // the separator
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let row = cells(l);
            let units = number(row.get(cu?)?)?;
            Some((units, time.and_then(|t| number(row.get(t)?))))
        })
        .collect()
}

#[tokio::test]
async fn the_served_document_gives_prices_and_times_where_krea_scripts_read_them() {
    let sim = start(Simulator::builder()).await;
    let served: Value = support::openapi(&sim).await;
    let vendored: Value = serde_json::from_str(krea_gen::OPENAPI_DOCUMENT).expect("vendored");
    let mut priced = 0;
    for model in catalog::MODELS.iter() {
        let facts = &vendored["paths"][model.path.as_str()]["post"]["x-krea-pricing"];
        let op = &served["paths"][model.path.as_str()]["post"];
        let read = figures_in(op["description"].as_str().unwrap_or_default());
        let Some(rows) = facts.as_array() else {
            assert!(read.is_empty(), "{}: no price in the facts", model.id);
            continue;
        };
        priced += 1;
        let expected: Vec<(f64, Option<f64>)> = rows
            .iter()
            .map(|r| {
                (
                    r["compute_units"].as_f64().expect("units"),
                    r["seconds"].as_f64(),
                )
            })
            .collect();
        assert_eq!(read, expected, "{}: {}", model.id, op["description"]);
        assert_eq!(
            op["summary"],
            vendored["paths"][model.path.as_str()]["post"]["x-krea-title"]
        );
    }
    assert_eq!(priced, 51, "the models the vendored description prices");
    // Timed where Krea gives a time.
    assert_eq!(
        figures_in(
            served["paths"]["/generate/image/bfl/flux-1-dev"]["post"]["description"]
                .as_str()
                .expect("flux")
        ),
        vec![(3.0, Some(7.0))]
    );
}
