//! Requests Krea refuses: each validation class answers 400 `{error}` naming the field, a bad
//! or missing token 401, and none of them creates a job.

use crate::support;

use krea_sim::Simulator;
use serde_json::{Value, json};
use support::{http, post, start};

async fn refused(body: Value, path: &str) -> String {
    let sim = start(Simulator::builder()).await;
    let r = post(&sim, path, &body).await;
    assert_eq!(r.status, 400, "{body} -> {:?}", r.body);
    assert_eq!(sim.control().counters().jobs_created, 0);
    r.body["error"].as_str().expect("{error}").to_string()
}

const FLUX: &str = "/generate/image/bfl/flux-1-dev";

#[tokio::test]
async fn an_unknown_field_is_named() {
    let e = refused(json!({"prompt": "x", "colour": "red"}), FLUX).await;
    assert!(
        e.contains("colour") && e.contains("not a known field"),
        "{e}"
    );
}

#[tokio::test]
async fn a_missing_required_field_is_named() {
    let e = refused(json!({"width": 1024}), FLUX).await;
    assert!(e.contains("prompt: is required"), "{e}");
}

#[tokio::test]
async fn an_out_of_range_number_is_named_with_the_range() {
    let e = refused(json!({"prompt": "x", "steps": 500}), FLUX).await;
    assert!(e.contains("steps: 500 is above the maximum 100"), "{e}");
}

#[tokio::test]
async fn a_bad_enum_value_lists_the_allowed_ones() {
    let e = refused(
        json!({"prompt": "x", "aspect_ratio": "7:3"}),
        "/generate/image/google/nano-banana-2",
    )
    .await;
    assert!(e.contains("aspect_ratio") && e.contains("16:9"), "{e}");
}

#[tokio::test]
async fn a_string_outside_its_length_is_named() {
    let e = refused(
        json!({"prompt": "ab"}),
        "/generate/image/google/nano-banana-2",
    )
    .await;
    assert!(e.contains("prompt: is 2 characters; at least 3"), "{e}");
    let e = refused(json!({"prompt": "x".repeat(1801)}), FLUX).await;
    assert!(e.contains("at most 1800"), "{e}");
}

#[tokio::test]
async fn a_wrong_type_and_invalid_json_are_refused() {
    let e = refused(json!({"prompt": "x", "width": "wide"}), FLUX).await;
    assert!(e.contains("width: must be a number"), "{e}");
    let sim = start(Simulator::builder()).await;
    let r = http()
        .post(format!("{}{FLUX}", sim.api_url()))
        .bearer_auth(sim.token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("not valid JSON"));
}

#[tokio::test]
async fn deprecated_camel_case_is_refused_after_its_sunset() {
    // The document's aliases (imageUrl...) were accepted until 2026-06-19.
    let e = refused(
        json!({"prompt": "x", "imageUrl": "https://example.com/a.png"}),
        FLUX,
    )
    .await;
    assert!(e.contains("imageUrl"), "{e}");
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401() {
    let sim = start(Simulator::builder()).await;
    let url = format!("{}/jobs", sim.api_url());
    let none = http().get(&url).send().await.expect("send");
    assert_eq!(none.status(), 401);
    let body: Value = none.json().await.expect("json");
    assert!(body["error"].as_str().is_some());
    let wrong = http()
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    let right = http()
        .get(&url)
        .bearer_auth(sim.token())
        .send()
        .await
        .expect("send");
    assert_eq!(right.status(), 200);
    let c = sim.control().counters();
    assert_eq!(c.responses("GET /jobs", 401), 2);
    assert_eq!(c.responses("GET /jobs", 200), 1);
}

#[tokio::test]
async fn an_unknown_route_says_so() {
    let sim = start(Simulator::builder()).await;
    let r = post(
        &sim,
        "/generate/image/nobody/nothing",
        &json!({"prompt": "x"}),
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(
        r.body["error"]
            .as_str()
            .expect("error")
            .contains("/generate/image/nobody/nothing")
    );
}
