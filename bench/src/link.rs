//! Batch over a slow link: 128 Flux jobs of real duration against a simulator that runs at
//! most 64 at once (429 beyond) and adds a network round trip to every answer. The library's
//! batch (journaled, settled, paced) against a naive concurrent client (POST every prompt at
//! once, retry 429s after 0.5 s, poll each job every 0.5 s, download its files), in the same
//! run: makespan from the first POST to the last file on disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use krea::{Krea, StatePath};
use krea_sim::{Overflow, Simulator};
use serde::Serialize;
use serde_json::{Value, json};

const FLUX: &str = "/generate/image/bfl/flux-1-dev";

/// One client's run.
#[derive(Debug, Clone, Serialize)]
pub struct LinkRow {
    pub client: String,
    pub latency_ms: u64,
    pub jobs: usize,
    pub makespan_s: f64,
    pub posts: u64,
    pub rate_limited: u64,
    pub peak_concurrent_posts: u64,
    /// When the last job was created, from the start.
    pub last_created_s: f64,
    /// When the last job ended on the server, from the start.
    pub last_finished_s: f64,
}

async fn simulator(latency: Duration, seed: u64) -> anyhow::Result<Simulator> {
    Ok(Simulator::builder()
        .seed(seed)
        .time_scale(1.0)
        .latency(latency)
        .concurrency(64, Overflow::Reject)
        .start()
        .await?)
}

fn row(
    client: &str,
    latency: Duration,
    jobs: usize,
    started: Instant,
    took: Duration,
    sim: &Simulator,
) -> LinkRow {
    let control = sim.control();
    let c = control.counters();
    let since = |at: Instant| at.saturating_duration_since(started).as_secs_f64();
    let finishes: Vec<Instant> = control
        .job_ids()
        .iter()
        .filter_map(|id| control.finish_instant(*id))
        .collect();
    let starts: Vec<Instant> = control
        .job_ids()
        .iter()
        .filter_map(|id| Some(control.finish_instant(*id)? - control.run_time(*id)?))
        .collect();
    let route = format!("POST {FLUX}");
    LinkRow {
        client: client.into(),
        latency_ms: latency.as_millis() as u64,
        jobs,
        makespan_s: took.as_secs_f64(),
        posts: c.requests_to(&route),
        rate_limited: c.responses(&route, 429),
        peak_concurrent_posts: c.peak_concurrent_generations,
        last_created_s: starts.into_iter().max().map_or(0.0, since),
        last_finished_s: finishes.into_iter().max().map_or(0.0, since),
    }
}

/// The library's batch, as `krea batch` runs it (journal and files in a scratch directory).
pub async fn ours(jobs: usize, latency: Duration) -> anyhow::Result<LinkRow> {
    let sim = simulator(latency, 11).await?;
    let dir = std::env::temp_dir().join(format!("krea-bench-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let krea = Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .journal(StatePath::At(dir.join("journal.jsonl")))
        .timings(StatePath::Disabled)
        .build()?;
    let mut batch = krea.batch().dir(dir.join("out"));
    for i in 0..jobs {
        batch = batch.item(
            format!("line {i}"),
            krea.image("flux").prompt(format!("a lighthouse, take {i}")),
        );
    }
    let started = Instant::now();
    let report = batch.run(|_| {}).await?;
    let took = started.elapsed();
    anyhow::ensure!(report.completed() == jobs, "every job completed");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(row("krea batch", latency, jobs, started, took, &sim))
}

/// What a short script does: everything at once, fixed polling.
pub async fn naive(jobs: usize, latency: Duration) -> anyhow::Result<LinkRow> {
    let sim = simulator(latency, 11).await?;
    let dir = std::env::temp_dir().join(format!("krea-bench-naive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let http = krea_gen::net::client_builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let base = sim.api_url().to_string();
    let token = sim.token().to_string();
    let started = Instant::now();
    let shared = Arc::new((http, base, token, dir.clone()));
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(0..jobs)
        .map(|i| {
            let shared = shared.clone();
            async move {
                let (http, base, token, dir) = &*shared;
                let body = json!({"prompt": format!("a lighthouse, take {i}")});
                let id = loop {
                    let r = http
                        .post(format!("{base}{FLUX}"))
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await?;
                    if r.status().as_u16() == 429 {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    let job: Value = r.error_for_status()?.json().await?;
                    break job["job_id"].as_str().unwrap_or_default().to_string();
                };
                let urls = loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let job: Value = http
                        .get(format!("{base}/jobs/{id}"))
                        .bearer_auth(token)
                        .send()
                        .await?
                        .json()
                        .await?;
                    if job["status"] == "completed" {
                        break job["result"]["urls"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                    }
                };
                for (n, url) in urls.iter().enumerate() {
                    let bytes = http
                        .get(url.as_str().unwrap_or_default())
                        .send()
                        .await?
                        .bytes()
                        .await?;
                    std::fs::write(dir.join(format!("{id}-{n}.png")), bytes)?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    let took = started.elapsed();
    for r in results {
        r?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(row("naive script", latency, jobs, started, took, &sim))
}
