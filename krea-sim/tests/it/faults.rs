//! Every injected fault, observed from the client side, with the counters that prove what the
//! server did (or did not do).

use crate::support;

use std::time::{Duration, Instant};

use krea_sim::{Fault, Simulator};
use serde_json::{Value, json};
use support::{get, http, job_id, post, start, wait};

const FLUX: &str = "/generate/image/bfl/flux-1-dev";
const FLUX_ROUTE: &str = "POST /generate/image/bfl/flux-1-dev";

async fn a_job(sim: &Simulator) -> String {
    job_id(&post(sim, FLUX, &json!({"prompt": "x"})).await.body)
}

#[tokio::test]
async fn a_status_fault_answers_that_status_instead_of_handling() {
    let sim = start(Simulator::builder().time_scale(0.0).fault(
        "GET /jobs/{id}",
        Fault::Status(503),
        1.0,
    ))
    .await;
    let id = a_job(&sim).await;
    let r = get(&sim, &format!("/jobs/{id}")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["error"], "simulated 503");
    assert_eq!(sim.control().counters().responses("GET /jobs/{id}", 503), 1);
}

#[tokio::test]
async fn a_rate_limit_burst_is_several_429s_in_a_row_with_retry_after() {
    let sim = start(Simulator::builder().seed(3).fault(
        "GET /jobs",
        Fault::RateLimitBurst {
            burst: 3,
            retry_after: Duration::from_millis(250),
        },
        0.05,
    ))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..200 {
        let r = get(&sim, "/jobs").await;
        if r.status == 429 {
            assert_eq!(r.headers["retry-after-ms"], "250");
            assert_eq!(r.headers["retry-after"], "1");
        }
        statuses.push(r.status.as_u16());
    }
    // A burst still under way when the loop ends is cut short: leave it out.
    while statuses.last() == Some(&429) {
        statuses.pop();
    }
    let runs: Vec<usize> = statuses
        .split(|s| *s != 429)
        .map(<[u16]>::len)
        .filter(|n| *n > 0)
        .collect();
    assert!(!runs.is_empty(), "the burst fired at 5% over 200 requests");
    assert!(
        runs.iter().all(|n| *n >= 3),
        "bursts come three at a time: {runs:?}"
    );
}

#[tokio::test]
async fn a_reset_before_the_body_creates_no_job() {
    let sim = start(Simulator::builder().fault(FLUX_ROUTE, Fault::ResetBeforeBody, 1.0)).await;
    let err = http()
        .post(format!("{}{FLUX}", sim.api_url()))
        .bearer_auth(sim.token())
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .expect_err("the connection is closed without an answer");
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );
    let c = sim.control().counters();
    assert_eq!((c.jobs_created, c.connections_reset), (0, 1));
    assert_eq!(c.responses(FLUX_ROUTE, 0), 1);
}

#[tokio::test]
async fn a_reset_after_the_body_leaves_a_paid_job_the_client_never_heard_of() {
    let sim = start(Simulator::builder().fault(FLUX_ROUTE, Fault::ResetAfterBody, 1.0)).await;
    let before = sim.control().credits();
    let sent = http()
        .post(format!("{}{FLUX}", sim.api_url()))
        .bearer_auth(sim.token())
        .json(&json!({"prompt": "x"}))
        .send()
        .await;
    assert!(sent.is_err(), "no answer");
    let c = sim.control().counters();
    assert_eq!(c.jobs_created, 1, "the job exists and is paid for");
    assert!(sim.control().credits() < before);
    let listed = get(&sim, "/jobs").await.body;
    assert_eq!(
        listed["items"].as_array().expect("items").len(),
        1,
        "GET /jobs finds it"
    );
}

#[tokio::test]
async fn a_slow_response_takes_at_least_the_delay() {
    let sim = start(Simulator::builder().fault(
        "GET /jobs",
        Fault::Slow(Duration::from_millis(300)),
        1.0,
    ))
    .await;
    let started = Instant::now();
    assert_eq!(get(&sim, "/jobs").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_served_there_and_the_token_does_not_follow() {
    let sim = start(Simulator::builder().time_scale(0.0).fault(
        "GET /jobs/{id}",
        Fault::RedirectToOtherHost,
        1.0,
    ))
    .await;
    let id = a_job(&sim).await;
    // A client that does not follow redirects sees where it would go.
    let manual = krea_gen::net::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = manual
        .get(format!("{}/jobs/{id}", sim.api_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with(sim.files_url()), "{location}");
    // reqwest follows it and drops Authorization across origins; the other host answers anyway.
    let followed = get(&sim, &format!("/jobs/{id}")).await;
    assert_eq!(followed.status, 200, "{:?}", followed.body);
    assert_eq!(followed.body["job_id"], id.as_str());
    assert_eq!(sim.control().counters().file_authorization_headers, 0);
    // A client that forwards the token anyway is seen by the counter.
    let leaky = http()
        .get(&location)
        .bearer_auth(sim.token())
        .send()
        .await
        .expect("send");
    assert_eq!(leaky.status(), 200);
    assert_eq!(sim.control().counters().file_authorization_headers, 1);
}

#[tokio::test]
async fn a_truncated_file_ends_early_under_a_full_content_length() {
    let sim = start(Simulator::builder().time_scale(0.0).fault(
        "GET /files/*",
        Fault::TruncateBody,
        1.0,
    ))
    .await;
    let (job, _) = wait(&sim, &a_job(&sim).await).await;
    let url = job["result"]["urls"][0].as_str().expect("url");
    let r = http().get(url).send().await.expect("headers arrive");
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .expect("len")
        .parse()
        .expect("number");
    let body = r.bytes().await;
    assert!(
        body.is_err(),
        "the body is cut short (declared {declared} bytes)"
    );
}

#[tokio::test]
async fn failing_and_stuck_jobs_are_observed_by_polling() {
    let sim = start(
        Simulator::builder()
            .time_scale(0.0)
            .fault(FLUX_ROUTE, Fault::FailJob, 1.0),
    )
    .await;
    let (job, _) = wait(&sim, &a_job(&sim).await).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["result"]["error"], krea_sim::FAILURE_REASON);
    assert_eq!(job["result"]["urls"], Value::Null, "no files");

    let sim = start(
        Simulator::builder()
            .time_scale(0.0)
            .fault(FLUX_ROUTE, Fault::StuckJob, 1.0),
    )
    .await;
    let id = a_job(&sim).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get(&sim, &format!("/jobs/{id}")).await.body["status"],
        "processing"
    );
}

#[tokio::test]
async fn faults_can_be_changed_while_running() {
    let sim = start(Simulator::builder()).await;
    assert_eq!(get(&sim, "/jobs").await.status, 200);
    sim.control().set_faults(vec![krea_sim::FaultRule {
        route: "*".into(),
        fault: Fault::Status(500),
        rate: 1.0,
        body_contains: None,
    }]);
    assert_eq!(get(&sim, "/jobs").await.status, 500);
    sim.control().set_faults(vec![]);
    assert_eq!(get(&sim, "/jobs").await.status, 200);
}

#[tokio::test]
async fn hostile_urls_are_served_where_they_reach_the_file_origin() {
    let sim = start(Simulator::builder().time_scale(0.0).fault(
        FLUX_ROUTE,
        Fault::HostileUrls,
        1.0,
    ))
    .await;
    let mut served = 0;
    for _ in 0..8 {
        let (job, _) = wait(&sim, &a_job(&sim).await).await;
        let url = job["result"]["urls"][0].as_str().expect("url").to_string();
        assert!(url.contains("escape"), "{url}");
        let r = http().get(&url).send().await.expect("answered");
        if r.status() == 200 {
            served += 1;
        }
    }
    assert!(served > 0, "some hostile URLs reach a file");
}
