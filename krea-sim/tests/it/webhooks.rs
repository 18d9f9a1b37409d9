//! `X-Webhook-URL`: any https URL is accepted, as Krea accepts it; the terminal job is POSTed
//! there when the host is loopback or allowed, and counted undeliverable otherwise.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::routing::post as route_post;
use krea_sim::Simulator;
use serde_json::{Value, json};
use support::{delete, http, job_id, start};
use tokio::net::TcpListener;

/// A loopback receiver that records every body posted to it.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        route_post(move |Json(body): Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn submit(sim: &Simulator, hook: &str) -> reqwest::Response {
    http()
        .post(format!("{}/generate/image/bfl/flux-1-dev", sim.api_url()))
        .bearer_auth(sim.token())
        .header("X-Webhook-URL", hook)
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .expect("send")
}

async fn received(got: &Arc<Mutex<Vec<Value>>>, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let now = got.lock().expect("lock").clone();
        if now.len() >= n {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("webhook not delivered");
}

#[tokio::test]
async fn the_completed_job_is_posted_to_the_webhook() {
    let (hook, got) = receiver().await;
    let sim = start(Simulator::builder().time_scale(0.01)).await;
    let job: Value = submit(&sim, &hook).await.json().await.expect("job");
    let bodies = received(&got, 1).await;
    assert_eq!(bodies[0]["job_id"], job["job_id"]);
    assert_eq!(bodies[0]["status"], "completed");
    assert!(bodies[0]["result"]["urls"][0].as_str().is_some());
    assert_eq!(sim.control().counters().webhooks_delivered, 1);
}

#[tokio::test]
async fn a_cancelled_job_is_posted_at_once() {
    let (hook, got) = receiver().await;
    let sim = start(Simulator::builder().time_scale(1.0)).await;
    let job: Value = submit(&sim, &hook).await.json().await.expect("job");
    delete(&sim, &format!("/jobs/{}", job_id(&job))).await;
    let bodies = received(&got, 1).await;
    assert_eq!(bodies[0]["status"], "cancelled");
}

#[tokio::test]
async fn a_malformed_webhook_is_refused_before_a_job_exists() {
    let sim = start(Simulator::builder()).await;
    for bad in [
        "not a url",
        "ftp://127.0.0.1/hook",
        "http://hooks.example.com/plain-http",
        "https://",
    ] {
        let r = submit(&sim, bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.expect("json");
        let error = body["error"].as_str().expect("error");
        assert!(error.contains("X-Webhook-URL"), "{error}");
    }
    assert_eq!(sim.control().counters().jobs_created, 0);
}

#[tokio::test]
async fn any_https_webhook_is_accepted_and_one_off_this_machine_is_counted_undeliverable() {
    let sim = start(Simulator::builder().time_scale(0.001)).await;
    let r = submit(&sim, "https://hooks.example.com/x").await;
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.expect("job");
    assert_eq!(job["status"], "queued");
    for _ in 0..2000 {
        if sim.control().counters().webhooks_undeliverable == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let counters = sim.control().counters();
    assert_eq!(counters.webhooks_undeliverable, 1);
    assert_eq!(counters.webhooks_delivered + counters.webhooks_failed, 0);
    assert_eq!(counters.jobs_created, 1);
}
