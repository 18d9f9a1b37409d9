//! Pagination of `GET /jobs`, its filters, and the other collections: assets, styles, node apps.

use crate::support;

use std::collections::HashSet;

use krea_sim::Simulator;
use serde_json::{Value, json};
use support::{delete, get, http, job_id, post, start, upload, wait};

#[tokio::test]
async fn two_hundred_fifty_jobs_page_newest_first_without_gaps_or_repeats() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let mut created = Vec::new();
    for i in 0..250 {
        let r = post(
            &sim,
            "/generate/image/bfl/flux-1-dev",
            &json!({"prompt": format!("prompt {i}")}),
        )
        .await;
        created.push(job_id(&r.body));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/jobs?limit=100&cursor={}", urlencode(c)),
            None => "/jobs?limit=100".into(),
        };
        let page = get(&sim, &path).await.body;
        pages += 1;
        seen.extend(page["items"].as_array().expect("items").iter().map(job_id));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "newest first, every job once");
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn filters_and_limits_are_checked() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    post(
        &sim,
        "/generate/image/bfl/flux-1-dev",
        &json!({"prompt": "a"}),
    )
    .await;
    post(
        &sim,
        "/generate/image/google/imagen-4",
        &json!({"prompt": "b"}),
    )
    .await;
    let by_type = get(&sim, "/jobs?types=externalImage").await.body;
    assert_eq!(by_type["items"].as_array().expect("items").len(), 1);
    let by_type = get(&sim, "/jobs?types=flux,externalVideo").await.body;
    assert_eq!(by_type["items"].as_array().expect("items").len(), 1);
    let by_slug = get(&sim, "/jobs?types=imagen-4").await.body;
    assert_eq!(
        by_slug["items"].as_array().expect("items").len(),
        0,
        "a model slug is not a job type"
    );
    let completed = get(&sim, "/jobs?status=completed").await.body;
    assert_eq!(completed["items"].as_array().expect("items").len(), 2);
    assert_eq!(
        get(&sim, "/jobs?status=queued").await.body["items"]
            .as_array()
            .expect("items")
            .len(),
        0
    );
    for bad in [
        "/jobs?limit=0",
        "/jobs?limit=1001",
        "/jobs?status=done",
        "/jobs?cursor=yesterday",
    ] {
        let r = get(&sim, bad).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

fn png_bytes() -> Vec<u8> {
    krea_sim::render_png(32, 16, 5)
}

#[tokio::test]
async fn an_asset_upload_round_trips() {
    let sim = start(Simulator::builder()).await;
    let r = upload(&sim, png_bytes(), "tiny.png").await;
    assert_eq!(r.status(), 200);
    let asset: Value = r.json().await.expect("asset");
    assert_eq!(
        (asset["width"].as_u64(), asset["height"].as_u64()),
        (Some(32), Some(16))
    );
    assert_eq!(asset["mime_type"], "image/png");
    assert_eq!(asset["description"], "a test upload");
    let url = asset["image_url"].as_str().expect("url");
    assert!(url.starts_with(sim.files_url()));
    let served = support::download(url).await;
    assert_eq!(served.to_vec(), png_bytes());

    let id = asset["id"].as_str().expect("id");
    assert_eq!(get(&sim, &format!("/assets/{id}")).await.body["id"], id);
    let list = get(&sim, "/assets").await.body;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    assert_eq!(
        delete(&sim, &format!("/assets/{id}")).await.body["success"],
        true
    );
    assert_eq!(get(&sim, &format!("/assets/{id}")).await.status, 404);
}

#[tokio::test]
async fn unsupported_and_oversized_uploads_are_refused() {
    let sim = start(Simulator::builder()).await;
    let r = upload(&sim, b"%PDF-1.7 not an image".to_vec(), "doc.pdf").await;
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .expect("text")
            .contains("Unsupported file type")
    );
    let mut big = png_bytes();
    big.resize(75 * 1024 * 1024 + 1, 0);
    let r = upload(&sim, big, "big.png").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("text").contains("75 MB"));
    assert!(
        get(&sim, "/assets").await.body["items"]
            .as_array()
            .expect("items")
            .is_empty()
    );
}

#[tokio::test]
async fn a_trained_style_appears_when_its_job_completes_and_can_be_shared() {
    let sim = start(Simulator::builder().time_scale(0.0005)).await;
    let train = post(
        &sim,
        "/styles/train",
        &json!({"name": "my style", "urls": ["https://example.com/1.png"], "max_train_steps": 100}),
    )
    .await;
    assert_eq!(train.status, 200, "{:?}", train.body);
    let (job, _) = wait(&sim, &job_id(&train.body)).await;
    let style_id = job["result"]["style_id"]
        .as_str()
        .expect("style_id")
        .to_string();
    let style = get(&sim, &format!("/styles/{style_id}")).await;
    assert_eq!(style.status, 200);
    assert_eq!(style.body["title"], "my style");
    assert_eq!(style.body["public"], false);
    let mine = get(&sim, "/styles?filter=user").await.body;
    assert_eq!(mine["items"].as_array().expect("items").len(), 1);

    let patched = http()
        .patch(format!("{}/styles/{style_id}", sim.api_url()))
        .bearer_auth(sim.token())
        .json(&json!({"public": true, "title": "renamed"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let empty = http()
        .patch(format!("{}/styles/{style_id}", sim.api_url()))
        .bearer_auth(sim.token())
        .json(&json!({}))
        .send()
        .await
        .expect("patch");
    assert_eq!(empty.status(), 400);

    let first = get(&sim, &format!("/styles/{style_id}/share/link")).await;
    assert_eq!(
        (first.status.as_u16(), first.body["is_new"].clone()),
        (201, Value::Bool(true))
    );
    let again = get(&sim, &format!("/styles/{style_id}/share/link")).await;
    assert_eq!(
        (again.status.as_u16(), again.body["share_link"].clone()),
        (200, first.body["share_link"].clone())
    );

    assert_eq!(
        post(
            &sim,
            &format!("/styles/{style_id}/share/workspace"),
            &json!({})
        )
        .await
        .body["success"],
        true
    );
    assert_eq!(
        get(&sim, "/styles?filter=shared").await.body["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );
    assert_eq!(
        delete(&sim, &format!("/styles/{style_id}/share/workspace"))
            .await
            .status,
        200
    );
    assert_eq!(
        delete(&sim, &format!("/styles/{style_id}/share/workspace"))
            .await
            .status,
        404
    );
    // A Krea-official style cannot be shared by this account.
    assert_eq!(
        post(&sim, "/styles/krea-watercolor/share/workspace", &json!({}))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_training_with_a_bad_body_is_refused() {
    let sim = start(Simulator::builder()).await;
    let r = post(&sim, "/styles/train", &json!({"name": "x", "urls": []})).await;
    assert_eq!(r.status, 400);
    let r = post(
        &sim,
        "/styles/train",
        &json!({"name": "x", "urls": ["https://e.com/a.png"], "model": "qwen", "type": "Default"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().expect("error").contains("type"));
    assert_eq!(sim.control().counters().jobs_created, 0);
}

#[tokio::test]
async fn a_node_app_runs_as_a_job() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let app = get(&sim, &format!("/node-apps/{}", krea_sim::DEMO_APP)).await;
    assert_eq!(
        app.body["input_openapi_schema"]["required"],
        json!(["prompt"])
    );
    let jobs = post(
        &sim,
        &format!("/node-apps/{}/execute", krea_sim::DEMO_APP),
        &json!({"prompt": "a cat"}),
    )
    .await;
    assert_eq!(jobs.status, 200);
    let id = job_id(&jobs.body[0]);
    let (job, _) = wait(&sim, &id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(
        post(
            &sim,
            &format!("/node-apps/{}/execute", krea_sim::DEMO_APP),
            &json!({})
        )
        .await
        .status,
        400
    );
    assert_eq!(get(&sim, "/node-apps/nope").await.status, 404);
    let ids: HashSet<String> = sim
        .control()
        .job_ids()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(ids.contains(&id));
}
