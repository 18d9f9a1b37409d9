//! The generated types against the wire: what a body serializes to, and what Krea's job and
//! error bodies decode into, through the real generated client over loopback.

use crate::support;

use krea_gen::types::{self, GenerateImageBflFlux1DevBody};
use krea_gen::JobStatus;
use serde_json::json;

#[test]
fn a_minimal_flux_body_sends_only_the_prompt() {
    let body: GenerateImageBflFlux1DevBody =
        serde_json::from_value(json!({"prompt": "a lighthouse at dusk"})).expect("valid body");
    assert_eq!(
        serde_json::to_value(&body).expect("json"),
        json!({"prompt": "a lighthouse at dusk"})
    );
}

#[tokio::test]
async fn generate_posts_the_body_with_bearer_auth_and_decodes_the_pending_job() {
    let server = support::serve_once(
        200,
        r#"{"job_id":"4d0e5f97-9721-4422-b88c-73a9032d7de1","status":"queued","created_at":"2026-11-21T10:00:00.000Z","completed_at":null,"result":null}"#,
    )
    .await;
    let client = support::client(&server.base_url, "test-token");
    let body: GenerateImageBflFlux1DevBody =
        serde_json::from_value(json!({"prompt": "a lighthouse"})).expect("body");
    let job = client
        .generate_image_bfl_flux_1_dev(None, &body)
        .await
        .expect("pending job")
        .into_inner();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.completed_at, None);
    assert_eq!(job.result, None);
    let request = server.request.await.expect("request");
    assert!(
        request.starts_with("POST /generate/image/bfl/flux-1-dev HTTP/1.1"),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: bearer test-token"),
        "{request}"
    );
    assert!(
        request.ends_with(r#"{"prompt":"a lighthouse"}"#),
        "{request}"
    );
}

#[tokio::test]
async fn a_completed_job_carries_its_result_urls() {
    let server = support::serve_once(
        200,
        r#"{"job_id":"4d0e5f97-9721-4422-b88c-73a9032d7de1","status":"completed","created_at":"2026-11-21T10:00:00Z","completed_at":"2026-11-21T10:00:07Z","result":{"urls":["https://files.example/a.png","https://files.example/b.png"]}}"#,
    )
    .await;
    let client = support::client(&server.base_url, "t");
    let job = client
        .get_job("4d0e5f97-9721-4422-b88c-73a9032d7de1")
        .await
        .expect("job")
        .into_inner();
    assert!(job.status.is_terminal());
    let urls = job.result.expect("result").urls;
    assert_eq!(
        urls,
        ["https://files.example/a.png", "https://files.example/b.png"]
    );
    let request = server.request.await.expect("request");
    assert!(
        request.starts_with("GET /jobs/4d0e5f97-9721-4422-b88c-73a9032d7de1 HTTP/1.1"),
        "{request}"
    );
}

#[tokio::test]
async fn an_unknown_status_decodes_and_counts_as_pending() {
    let server = support::serve_once(
        200,
        r#"{"job_id":"4d0e5f97-9721-4422-b88c-73a9032d7de1","status":"warming-up","created_at":"2026-11-21T10:00:00Z"}"#,
    )
    .await;
    let client = support::client(&server.base_url, "t");
    let job = client
        .get_job("4d0e5f97-9721-4422-b88c-73a9032d7de1")
        .await
        .expect("job")
        .into_inner();
    assert_eq!(job.status, JobStatus::Other("warming-up".into()));
    assert!(job.status.is_pending());
}

#[tokio::test]
async fn a_402_decodes_as_the_shared_error_body() {
    let server = support::serve_once(402, r#"{"error":"The balance is too low."}"#).await;
    let client = support::client(&server.base_url, "t");
    let body: types::GenerateVideoKlingKling21Body =
        serde_json::from_value(json!({"prompt": "waves"})).expect("body");
    let err = client
        .generate_video_kling_kling_2_1(None, &body)
        .await
        .expect_err("402");
    match err {
        progenitor_client::Error::ErrorResponse(response) => {
            assert_eq!(response.status().as_u16(), 402);
            let body: &types::Error = &response;
            assert_eq!(body.error, "The balance is too low.");
        }
        other => panic!("expected an error response, got {other:?}"),
    }
}

#[tokio::test]
async fn the_token_is_not_sent_to_another_origin() {
    // The client's base URL is one origin; a request built for another origin (as a result URL
    // would be) must not get the header from the hook.
    let server = support::serve_once(200, r#"{"items":[],"next_cursor":null}"#).await;
    let http = krea_gen::net::client_builder()
        .build()
        .expect("http client");
    let client = krea_gen::Client::new_with_client(
        "https://api.krea.ai",
        http,
        krea_gen::ApiAuth::bearer("t").expect("token"),
    );
    let mut request = reqwest::Request::new(
        reqwest::Method::GET,
        format!("{}/jobs", server.base_url).parse().expect("url"),
    );
    progenitor_client::ClientHooks::pre::<()>(
        &client,
        &mut request,
        &progenitor_client::OperationInfo {
            operation_id: "list_jobs",
        },
    )
    .await
    .expect("hook");
    assert!(request.headers().get("authorization").is_none());
}

#[test]
fn job_states_match_the_document() {
    let names: Vec<&str> = JobStatus::KNOWN.iter().map(JobStatus::as_str).collect();
    assert_eq!(names, krea_openapi::JOB_STATES);
}
