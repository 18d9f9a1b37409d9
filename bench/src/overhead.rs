//! Overhead: zero-duration jobs through submit + wait with the default client (journal and
//! timings on, as a user has them): client CPU time per job and peak RSS, the simulator running
//! in another process.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use krea::{Krea, PollPolicy, StatePath};
use serde_json::json;

use crate::proc::{SimProcess, cpu_seconds, peak_rss_kb};

/// Runs in a child process; prints its measurements as JSON.
pub async fn measure(jobs: usize) -> anyhow::Result<serde_json::Value> {
    let sim = SimProcess::start(&["--time-scale", "0"])?;
    let dir = std::env::temp_dir().join(format!("krea-bench-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let krea = Krea::builder()
        .token(sim.token.clone())
        .base_url(sim.base_url.clone())
        .poll_policy(PollPolicy::default().scaled(0.0))
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
    let cpu = cpu_seconds() - cpu0;
    let wall = wall.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "jobs": jobs,
        "cpu_us_per_job": cpu * 1e6 / jobs as f64,
        "peak_rss_mb": peak_rss_kb() as f64 / 1024.0,
        "wall_s": wall.as_secs_f64(),
        "jobs_per_second": jobs as f64 / wall.as_secs_f64().max(Duration::from_millis(1).as_secs_f64()),
    }))
}
