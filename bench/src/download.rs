//! Download: one large result (256 MB), with the client and with a plain streamed reqwest
//! download in the same run, each in its own child process so its memory is its own.

use std::time::Instant;

use krea::{Krea, StatePath};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::proc::{SimProcess, peak_rss_kb, rss_kb};

/// Parent: starts the simulator, creates the job, runs both downloads (best of `runs` each).
pub async fn run(bytes: u64, runs: usize) -> anyhow::Result<Value> {
    let sim = SimProcess::start(&["--time-scale", "0", "--video-bytes", &bytes.to_string()])?;
    let http = krea_gen::net::client_builder()
        .build()
        .expect("http client");
    let job: Value = http
        .post(format!("{}/generate/video/kling/kling-2.1", sim.base_url))
        .bearer_auth(&sim.token)
        .json(&json!({"prompt": "a large result"}))
        .send()
        .await?
        .json()
        .await?;
    let id = job["job_id"].as_str().unwrap_or_default().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let done: Value = http
        .get(format!("{}/jobs/{id}", sim.base_url))
        .bearer_auth(&sim.token)
        .send()
        .await?
        .json()
        .await?;
    let url = done["result"]["urls"][0]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no result URL: {done}"))?
        .to_string();
    let best = |kind: &str| -> anyhow::Result<Value> {
        let mut results: Vec<Value> = Vec::new();
        for _ in 0..runs {
            results.push(crate::proc::run_child(&[
                "__download",
                kind,
                &sim.base_url,
                &sim.token,
                &id,
                &url,
            ])?);
        }
        results.sort_by(|a, b| {
            b["mb_per_s"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&a["mb_per_s"].as_f64().unwrap_or(0.0))
        });
        Ok(results.remove(0))
    };
    let plain = best("plain")?;
    let ours = best("ours")?;
    let durable = best("durable")?;
    let ratio = ours["mb_per_s"].as_f64().unwrap_or(0.0)
        / plain["mb_per_s"].as_f64().unwrap_or(f64::INFINITY);
    let durable_ratio = durable["mb_per_s"].as_f64().unwrap_or(0.0)
        / plain["mb_per_s"].as_f64().unwrap_or(f64::INFINITY);
    Ok(
        json!({"bytes": bytes, "plain": plain, "ours": ours, "durable": durable, "ratio": ratio, "durable_ratio": durable_ratio}),
    )
}

/// Child: one download, measured.
pub async fn measure(
    kind: &str,
    base: &str,
    token: &str,
    job_id: &str,
    url: &str,
) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("krea-bench-download-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (started, rss_before, written) = match kind {
        "plain" => {
            let http = krea_gen::net::client_builder()
                .build()
                .expect("http client");
            let rss_before = rss_kb();
            let started = Instant::now();
            let mut response = http.get(url).send().await?.error_for_status()?;
            let mut file = tokio::fs::File::create(dir.join("plain.mp4")).await?;
            let mut n = 0u64;
            while let Some(chunk) = response.chunk().await? {
                file.write_all(&chunk).await?;
                n += chunk.len() as u64;
            }
            file.flush().await?;
            (started, rss_before, n)
        }
        _ => {
            let krea = Krea::builder()
                .token(token)
                .base_url(base)
                .journal(StatePath::Disabled)
                .timings(StatePath::Disabled)
                .durable_downloads(kind == "durable")
                .build()?;
            let done = krea.jobs().wait(job_id.parse()?).await?;
            let rss_before = rss_kb();
            let started = Instant::now();
            let files = done.download_to(&dir).await?;
            (started, rss_before, std::fs::metadata(&files[0])?.len())
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let growth_mb = peak_rss_kb().saturating_sub(rss_before) as f64 / 1024.0;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(
        json!({"bytes": written, "seconds": secs, "mb_per_s": written as f64 / 1_048_576.0 / secs, "rss_growth_mb": growth_mb}),
    )
}
