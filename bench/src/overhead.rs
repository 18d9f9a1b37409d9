//! Overhead: zero-duration jobs (and no backend pause before a job exists) through submit +
//! wait with the default client (journal and timings on, as a user has them): client CPU time
//! per job and peak RSS, the simulator running in another process. Beside it, the same jobs
//! sent by a naive script (reqwest alone: POST, then GET the job until it completed) show what
//! any HTTP client spends on them.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use krea::{Krea, PollPolicy, StatePath};
use serde_json::{Value, json};

use crate::proc::{SimProcess, cpu_seconds, peak_rss_kb};

/// Runs in a child process; prints its measurements as JSON.
/// `who`: `krea`, `naive` (64 jobs at once) or `naive1` (one request at a time).
pub async fn measure(jobs: usize, who: &str) -> anyhow::Result<serde_json::Value> {
    match who {
        "naive" => measure_naive(jobs, 64).await,
        "naive1" => measure_naive(jobs, 1).await,
        _ => measure_krea(jobs).await,
    }
}

async fn measure_krea(jobs: usize) -> anyhow::Result<serde_json::Value> {
    let sim = SimProcess::start(&["--time-scale", "0", "--commit-delay", "0"])?;
    let dir = std::env::temp_dir().join(format!("krea-bench-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let krea = Krea::builder()
        .token(sim.token.clone())
        .base_url(sim.base_url.clone())
        .poll_policy(
            // Polls with no pause (the jobs take no time), within a deadline no run reaches;
            // a scaled policy would scale the deadline to nothing too.
            PollPolicy::fixed(Duration::ZERO).with_deadline(Duration::from_secs(120)),
        )
        .journal(StatePath::At(dir.join("journal.jsonl")))
        .timings(StatePath::At(dir.join("timings.json")))
        .build()?;
    // Warm up connections and lazy statics outside the measurement.
    krea.image("flux")
        .prompt("warm up")
        .submit()
        .await?
        .wait()
        .await?;
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let done: Vec<krea::Result<()>> = futures_util::stream::iter(0..jobs)
        .map(|i| {
            let krea = krea.clone();
            async move {
                krea.image("flux")
                    .prompt(format!("job {i}"))
                    .submit()
                    .await?
                    .wait()
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let failures = done.iter().filter(|r| r.is_err()).count();
    anyhow::ensure!(failures == 0, "{failures} jobs failed");
    let _ = std::fs::remove_dir_all(&dir);
    figures(jobs, cpu0, wall, &sim).await
}

/// A script's loop: POST, then GET the job until it completed; nothing kept, nothing paced;
/// `at_once` jobs at a time.
async fn measure_naive(jobs: usize, at_once: usize) -> anyhow::Result<serde_json::Value> {
    let sim = SimProcess::start(&["--time-scale", "0", "--commit-delay", "0"])?;
    let http = krea_gen::net::client_builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let one = |i: usize| {
        let (http, sim) = (&http, &sim);
        async move {
            let job: Value = http
                .post(format!("{}/generate/image/bfl/flux-1-dev", sim.base_url))
                .bearer_auth(&sim.token)
                .json(&json!({"prompt": format!("job {i}")}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = job["job_id"].as_str().unwrap_or_default().to_string();
            loop {
                let job: Value = http
                    .get(format!("{}/jobs/{id}", sim.base_url))
                    .bearer_auth(&sim.token)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                if job["status"] == "completed" {
                    return anyhow::Ok(());
                }
            }
        }
    };
    one(0).await?;
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let done: Vec<anyhow::Result<()>> = futures_util::stream::iter(0..jobs)
        .map(one)
        .buffer_unordered(at_once)
        .collect()
        .await;
    let failures = done.iter().filter(|r| r.is_err()).count();
    anyhow::ensure!(failures == 0, "{failures} jobs failed");
    figures(jobs, cpu0, wall, &sim).await
}

async fn figures(
    jobs: usize,
    cpu0: f64,
    wall: Instant,
    sim: &SimProcess,
) -> anyhow::Result<serde_json::Value> {
    let cpu = cpu_seconds() - cpu0;
    let wall = wall.elapsed();
    // What the client asked of the server, per job (the warm-up job included, counted once).
    let counters: Value = krea_gen::net::client_builder()
        .build()?
        .get(format!("{}/_sim/counters", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let requests: u64 = counters["requests"]
        .as_object()
        .map(|routes| {
            routes
                .values()
                .filter_map(Value::as_object)
                .flat_map(|by_status| by_status.values().filter_map(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    Ok(json!({
        "jobs": jobs,
        "cpu_us_per_job": cpu * 1e6 / jobs as f64,
        "peak_rss_mb": peak_rss_kb() as f64 / 1024.0,
        "wall_s": wall.as_secs_f64(),
        "jobs_per_second": jobs as f64 / wall.as_secs_f64().max(Duration::from_millis(1).as_secs_f64()),
        "requests_per_job": requests as f64 / (jobs + 1) as f64,
        "requests": counters["requests"],
    }))
}
