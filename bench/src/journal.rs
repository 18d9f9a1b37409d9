//! The journal's store: a 1,000-line batch (zero-duration jobs, downloads included) with the
//! journal in a file and in PostgreSQL (a throwaway cluster on loopback, started here), the
//! simulator in another process: client CPU per job and makespan, side by side. What the
//! database costs a worker is the difference.

use std::time::{Duration, Instant};

use krea::{Krea, PollPolicy, StatePath};
use serde_json::{Value, json};

use crate::proc::{SimProcess, cpu_seconds, peak_rss_kb};

#[path = "../../krea/tests/it/support/pg.rs"]
mod pg;

/// Starts the cluster the PostgreSQL runs use (stopped when dropped).
pub fn cluster() -> (pg::Cluster, String) {
    let cluster = pg::Cluster::start();
    let url = cluster.database("bench");
    (cluster, url)
}

/// Runs in a child process; prints its measurements as JSON. `store`: `file`, or a
/// `postgres://` address.
pub async fn measure(lines: usize, store: &str) -> anyhow::Result<Value> {
    let sim = SimProcess::start(&["--time-scale", "0", "--commit-delay", "0"])?;
    let dir = std::env::temp_dir().join(format!("krea-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut b = Krea::builder()
        .token(sim.token.clone())
        .base_url(sim.base_url.clone())
        .poll_policy(PollPolicy::fixed(Duration::ZERO).with_deadline(Duration::from_secs(300)))
        .timings(StatePath::Disabled);
    b = match store {
        "file" => b.journal(StatePath::At(dir.join("journal.jsonl"))),
        url => b.journal_postgres(url),
    };
    let krea = b.build()?;
    // Warm up connections and lazy statics outside the measurement.
    krea.image("flux")
        .prompt("warm up")
        .submit()
        .await?
        .wait()
        .await?;
    let mut batch = krea.batch().dir(dir.join("out")).concurrency(64);
    for i in 0..lines {
        let prompt = format!("line {i}");
        batch = batch.item(prompt.clone(), krea.image("flux").prompt(prompt));
    }
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let report = batch.run(|_| {}).await?;
    let wall = wall.elapsed();
    let cpu = cpu_seconds() - cpu0;
    anyhow::ensure!(
        report.completed() == lines,
        "{} of {lines} lines completed",
        report.completed()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "lines": lines,
        "cpu_us_per_job": cpu * 1e6 / lines as f64,
        "makespan_s": wall.as_secs_f64(),
        "peak_rss_mb": peak_rss_kb() as f64 / 1024.0,
    }))
}
