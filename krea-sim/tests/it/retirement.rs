//! Retired models: `Deprecation`/`Sunset` headers before the sunset, 410 naming the
//! replacement after it.

use crate::support;

use chrono::{Duration, Utc};
use krea_sim::Simulator;
use serde_json::json;
use support::{post, start};

#[tokio::test]
async fn seedream_3_is_gone_and_names_seedream_4() {
    let sim = start(Simulator::builder()).await;
    let r = post(
        &sim,
        "/generate/image/bytedance/seedream-3",
        &json!({"prompt": "x"}),
    )
    .await;
    assert_eq!(r.status, 410);
    assert_eq!(r.body["error"], "model_unavailable");
    assert_eq!(r.body["replacement"], "bytedance/seedream-4");
    assert_eq!(
        r.body["replacement_path"],
        "/generate/image/bytedance/seedream-4"
    );
    assert_eq!(sim.control().counters().jobs_created, 0);
}

#[tokio::test]
async fn a_model_past_its_sunset_answers_410_and_one_before_it_warns() {
    let later = Utc::now() + Duration::days(30);
    let sim = start(
        Simulator::builder()
            .retire("/generate/image/bfl/flux-1-dev", later, "bfl/flux-1.1-pro")
            .retire(
                "/generate/image/google/imagen-3",
                Utc::now() - Duration::days(1),
                "google/imagen-4",
            ),
    )
    .await;
    let warned = post(
        &sim,
        "/generate/image/bfl/flux-1-dev",
        &json!({"prompt": "x"}),
    )
    .await;
    assert_eq!(warned.status, 200);
    assert_eq!(warned.headers["deprecation"], "true");
    assert!(
        warned.headers["sunset"]
            .to_str()
            .expect("sunset")
            .ends_with("GMT")
    );
    assert!(
        warned.headers["link"]
            .to_str()
            .expect("link")
            .contains("/generate/image/bfl/flux-1.1-pro")
    );
    let gone = post(
        &sim,
        "/generate/image/google/imagen-3",
        &json!({"prompt": "x"}),
    )
    .await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["replacement"], "google/imagen-4");
}
