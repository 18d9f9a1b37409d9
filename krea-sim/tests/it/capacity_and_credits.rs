//! Credits (402), the concurrency cap (429 or backlog) and cancellation.

use crate::support;

use std::time::Duration;

use krea_sim::{Overflow, Simulator};
use serde_json::json;
use support::{delete, get, job_id, post, start, wait};

const FLUX: &str = "/generate/image/bfl/flux-1-dev";

#[tokio::test]
async fn generations_are_refused_with_402_once_the_balance_runs_out() {
    // Flux costs ~3 compute units.
    let sim = start(Simulator::builder().credits(10.0).time_scale(0.0)).await;
    for _ in 0..3 {
        assert_eq!(post(&sim, FLUX, &json!({"prompt": "x"})).await.status, 200);
    }
    let r = post(&sim, FLUX, &json!({"prompt": "x"})).await;
    assert_eq!(r.status, 402);
    assert!(r.body["error"].as_str().expect("error").contains("credits"));
    assert_eq!(sim.control().counters().jobs_created, 3);
    assert!((sim.control().credits() - 1.0).abs() < 1e-9);
}

#[tokio::test]
async fn jobs_already_running_finish_after_the_balance_runs_out() {
    let sim = start(Simulator::builder().credits(7.0).time_scale(0.3)).await;
    let first = job_id(&post(&sim, FLUX, &json!({"prompt": "x"})).await.body);
    let second = job_id(&post(&sim, FLUX, &json!({"prompt": "x"})).await.body);
    let refused = post(&sim, FLUX, &json!({"prompt": "x"})).await;
    assert_eq!(refused.status, 402);
    assert_ne!(
        get(&sim, &format!("/jobs/{first}")).await.body["status"],
        "completed",
        "still running when the 402 came"
    );
    for id in [first, second] {
        let (job, _) = wait(&sim, &id).await;
        assert_eq!(job["status"], "completed");
    }
    assert_eq!(sim.control().counters().jobs_created, 2);
}

#[tokio::test]
async fn failed_and_cancelled_jobs_cost_nothing() {
    let sim = start(Simulator::builder().credits(100.0).time_scale(0.0).fault(
        "POST /generate/image/bfl/flux-1-dev",
        krea_sim::Fault::FailJob,
        1.0,
    ))
    .await;
    let failed = post(&sim, FLUX, &json!({"prompt": "x"})).await;
    let (job, _) = wait(&sim, &job_id(&failed.body)).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["result"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "a failed job says why in result.error: {job}"
    );
    assert!(
        (sim.control().credits() - 100.0).abs() < 1e-9,
        "{}",
        sim.control().credits()
    );

    let sim = start(Simulator::builder().credits(100.0).time_scale(1.0)).await;
    let job = post(&sim, FLUX, &json!({"prompt": "x"})).await;
    assert!(sim.control().credits() < 100.0);
    let id = job_id(&job.body);
    assert_eq!(delete(&sim, &format!("/jobs/{id}")).await.status, 200);
    assert_eq!(
        get(&sim, &format!("/jobs/{id}")).await.body["status"],
        "cancelled"
    );
    assert!((sim.control().credits() - 100.0).abs() < 1e-9);
}

#[tokio::test]
async fn the_cap_rejects_with_429_when_configured_to() {
    let sim = start(
        Simulator::builder()
            .concurrency(2, Overflow::Reject)
            .time_scale(1.0),
    )
    .await;
    assert_eq!(post(&sim, FLUX, &json!({"prompt": "1"})).await.status, 200);
    assert_eq!(post(&sim, FLUX, &json!({"prompt": "2"})).await.status, 200);
    let third = post(&sim, FLUX, &json!({"prompt": "3"})).await;
    assert_eq!(third.status, 429);
    assert!(
        third.body["error"]
            .as_str()
            .expect("error")
            .contains("concurrent")
    );
    let c = sim.control().counters();
    assert_eq!(c.jobs_created, 2, "a refused job is not created");
    assert_eq!(c.responses(&format!("POST {FLUX}"), 429), 1);
}

#[tokio::test]
async fn the_cap_backlogs_when_configured_to_and_the_backlog_drains() {
    let sim = start(
        Simulator::builder()
            .concurrency(1, Overflow::Backlog)
            .time_scale(0.02),
    )
    .await;
    let first = post(&sim, FLUX, &json!({"prompt": "1"})).await;
    let second = post(&sim, FLUX, &json!({"prompt": "2"})).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body["status"], "backlogged");
    let (a, _) = wait(&sim, &job_id(&first.body)).await;
    let (b, seen) = wait(&sim, &job_id(&second.body)).await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("completed"), Some("completed"))
    );
    assert!(seen.len() >= 2, "it left the backlog: {seen:?}");
    assert!(b["completed_at"].as_str() > a["completed_at"].as_str());
}

#[tokio::test]
async fn cancel_works_while_pending_and_deleting_an_ended_job_removes_it() {
    let sim = start(Simulator::builder().time_scale(1.0)).await;
    let id = job_id(
        &post(
            &sim,
            "/generate/video/kling/kling-2.1",
            &json!({"prompt": "waves"}),
        )
        .await
        .body,
    );
    assert_eq!(delete(&sim, &format!("/jobs/{id}")).await.status, 200);
    let job = get(&sim, &format!("/jobs/{id}")).await.body;
    assert_eq!(job["status"], "cancelled");
    assert!(job["completed_at"].as_str().is_some());
    assert_eq!(job["result"], serde_json::Value::Null);
    // Ended: a second DELETE removes it.
    assert_eq!(delete(&sim, &format!("/jobs/{id}")).await.status, 200);
    assert_eq!(get(&sim, &format!("/jobs/{id}")).await.status, 404);
    assert_eq!(delete(&sim, &format!("/jobs/{id}")).await.status, 404);
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(
        sim.control().counters().jobs_by_state.get("cancelled"),
        Some(&1)
    );
}
