//! A job's whole life, for an image and a video model: pending job, states, completion, files.

use crate::support;

use std::time::Duration;

use krea_sim::Simulator;
use serde_json::json;
use support::{get, http, job_id, post, start, wait};

#[tokio::test]
async fn an_image_job_moves_through_the_states_and_serves_a_real_png() {
    let sim = start(Simulator::builder().time_scale(0.1).seed(1)).await;
    let created = post(
        &sim,
        "/generate/image/bfl/flux-1-dev",
        &json!({"prompt": "a lighthouse", "width": 768, "height": 576}),
    )
    .await;
    assert_eq!(created.status, 200);
    assert_eq!(created.body["status"], "queued");
    assert_eq!(created.body["completed_at"], serde_json::Value::Null);
    assert_eq!(created.body["result"], serde_json::Value::Null);
    let (done, seen) = wait(&sim, &job_id(&created.body)).await;
    assert!(
        seen.contains(&"processing".to_string()) || seen.contains(&"sampling".to_string()),
        "{seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("completed"));
    assert!(done["completed_at"].as_str().is_some());
    let url = done["result"]["urls"][0].as_str().expect("url");
    assert!(
        url.starts_with(sim.files_url()),
        "results come from the other origin: {url}"
    );

    let file = http().get(url).send().await.expect("download");
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.expect("bytes");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        u32::from_be_bytes(bytes[16..20].try_into().expect("4")),
        768
    );
    assert_eq!(
        u32::from_be_bytes(bytes[20..24].try_into().expect("4")),
        576
    );
    let id = uuid::Uuid::parse_str(&job_id(&done)).expect("uuid");
    assert_eq!(
        sim.control().result_bytes(id, 0).as_deref(),
        Some(&bytes[..])
    );

    let c = sim.control().counters();
    assert_eq!(c.jobs_created, 1);
    assert_eq!(c.jobs_by_state.get("completed"), Some(&1));
    assert_eq!(c.file_authorization_headers, 0);
    assert!(c.responses("GET /jobs/{id}", 200) >= 2);
}

#[tokio::test]
async fn a_video_job_completes_with_an_mp4_of_the_configured_size() {
    let sim = start(Simulator::builder().time_scale(0.001).video_bytes(300_000)).await;
    let created = post(
        &sim,
        "/generate/video/kling/kling-2.1",
        &json!({"prompt": "waves at night", "duration": 10}),
    )
    .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let (done, _) = wait(&sim, &job_id(&created.body)).await;
    let url = done["result"]["urls"][0].as_str().expect("url");
    assert!(url.ends_with(".mp4"), "{url}");
    let file = http().get(url).send().await.expect("download");
    assert_eq!(file.headers()["content-type"], "video/mp4");
    let bytes = file.bytes().await.expect("bytes");
    assert_eq!(bytes.len(), 300_000);
    assert_eq!(&bytes[4..8], b"ftyp");
}

#[tokio::test]
async fn the_generated_client_drives_the_simulator() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let client = krea_gen::Client::new_with_client(
        sim.api_url(),
        http(),
        krea_gen::ApiAuth::bearer(sim.token()).expect("token"),
    );
    let body: krea_gen::types::GenerateImageGoogleNanoBanana2Body =
        serde_json::from_value(serde_json::json!({"prompt": "a red bicycle"})).expect("body");
    let job = client
        .generate_image_google_nano_banana_2(None, &body)
        .await
        .expect("created")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let job = client
        .get_job(&job.job_id.to_string())
        .await
        .expect("job")
        .into_inner();
    assert_eq!(job.status, krea_gen::JobStatus::Completed);
    assert_eq!(job.result.expect("result").urls.len(), 1);
    let page = client
        .list_jobs(None, std::num::NonZeroU64::new(10), None, None)
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next_cursor, None);
}

#[tokio::test]
async fn a_job_that_is_not_finished_has_no_files() {
    let sim = start(Simulator::builder().time_scale(1.0)).await;
    let created = post(
        &sim,
        "/generate/image/bfl/flux-1-dev",
        &json!({"prompt": "slow"}),
    )
    .await;
    let id = job_id(&created.body);
    let r = http()
        .get(format!("{}/files/{id}/0.png", sim.files_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    assert_eq!(
        get(&sim, &format!("/jobs/{id}")).await.body["status"],
        "queued"
    );
}
