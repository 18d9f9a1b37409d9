//! One failure, one exit code: met directly, as a batch line or as a pipeline job, the code
//! comes from the library's one table. And a job whose outcome is not known has an unknown
//! cost, never 0.

use std::time::Duration;

use krea_sim::{Fault, Simulator};

use crate::support::{code, env, json, krea, stderr, stdout};

const FLUX: &str = "POST /generate/image/bfl/flux-1-dev";

/// The exit codes of `krea image`, `krea batch` and `krea pipeline` when every Flux request
/// meets `fault`.
async fn three_ways(fault: Fault) -> [i32; 3] {
    let e = env("exit-codes", Simulator::builder().fault(FLUX, fault, 1.0)).await;
    std::fs::write(
        e.dir.join("lines.jsonl"),
        r#"{"model": "flux", "params": {"prompt": "a cat"}}"#,
    )
    .expect("write");
    std::fs::write(
        e.dir.join("steps.json"),
        r#"{"steps": [{"id": "draw", "model": "flux", "params": {"prompt": "a cat"}}]}"#,
    )
    .expect("write");
    let direct = krea(&e, &["image", "a cat", "-m", "flux", "-o", "direct"]).await;
    let batch = krea(&e, &["batch", "lines.jsonl", "-o", "batch"]).await;
    let pipeline = krea(&e, &["pipeline", "steps.json", "-o", "pipeline"]).await;
    for o in [&direct, &batch, &pipeline] {
        assert!(!stderr(o).is_empty(), "says why: {}", stdout(o));
    }
    [code(&direct), code(&batch), code(&pipeline)]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_exits_the_same_directly_in_a_batch_and_in_a_pipeline() {
    for (fault, expected) in [
        (Fault::Status(401), 3),
        (Fault::Status(403), 3),
        (Fault::Status(402), 3),
        (Fault::Status(413), 2),
        (Fault::FailJob, 1),
    ] {
        let codes = three_ways(fault.clone()).await;
        assert_eq!(codes, [expected; 3], "{fault:?}: image, batch, pipeline");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_outcome_is_not_known_has_an_unknown_cost() {
    // The connection drops before the request is read: nothing is created, but only time can
    // tell, and the run ends (--timeout) before the settle grace has passed.
    let e = env(
        "unknown-cost",
        Simulator::builder().fault(FLUX, Fault::ResetBeforeBody, 1.0),
    )
    .await;
    std::fs::write(e.dir.join("lines.txt"), "a cat\n").expect("write");
    let started = std::time::Instant::now();
    let o = krea(
        &e,
        &[
            "--json",
            "--settle-grace",
            "60",
            "--timeout",
            "3",
            "batch",
            "lines.txt",
            "-m",
            "flux",
            "-o",
            "out",
        ],
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(30), "bounded wait");
    assert_eq!(code(&o), 4, "unknown is the timeout code: {}", stderr(&o));
    let out = json(&o);
    let jobs = out["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{out}");
    assert!(
        jobs[0]["cost_cu"].is_null(),
        "cost of an unknown outcome: {out}"
    );
}
