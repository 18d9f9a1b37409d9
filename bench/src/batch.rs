//! Batch: 200 image prompts against a server that runs at most 8 jobs at once and refuses the
//! rest with 429. Makespan against the ideal (sum of run times / 8) and 429s received, for our
//! limiter, the skill's "one submission every 10 s", and a client that submits everything at
//! once and retries 429s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use krea::{Krea, PollPolicy, RetryPolicy, StatePath};
use krea_sim::{Overflow, Simulator};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::polling::{request, timed_image_models};

/// One strategy's results (times unscaled).
#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub strategy: String,
    pub jobs: usize,
    pub makespan_s: f64,
    pub ideal_s: f64,
    pub ratio: f64,
    pub rate_limited: u64,
    /// 429 answers per job, in percent (a strategy that retries blindly passes 100).
    pub rate_limited_pct: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Ours,
    EveryTenSeconds,
    Unlimited,
}

impl Strategy {
    fn name(&self) -> &'static str {
        match self {
            Strategy::Ours => "ours (adaptive limiter)",
            Strategy::EveryTenSeconds => "one submission every 10 s",
            Strategy::Unlimited => "unlimited, retry 429s",
        }
    }
}

/// A plain client for the baselines: POST until accepted, then poll with a fixed interval.
struct Plain {
    http: reqwest::Client,
    base: String,
    token: String,
    scale: f64,
}

impl Plain {
    async fn submit(&self, path: &str, body: &Value, retry_wait: Duration) -> anyhow::Result<Uuid> {
        loop {
            let r = self
                .http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await?;
            if r.status().as_u16() == 429 {
                tokio::time::sleep(retry_wait.mul_f64(self.scale)).await;
                continue;
            }
            let job: Value = r.error_for_status()?.json().await?;
            return Ok(job["job_id"].as_str().unwrap_or_default().parse()?);
        }
    }

    async fn wait(&self, id: Uuid, every: Duration) -> anyhow::Result<Instant> {
        loop {
            tokio::time::sleep(every.mul_f64(self.scale)).await;
            let job: Value = self
                .http
                .get(format!("{}/jobs/{id}", self.base))
                .bearer_auth(&self.token)
                .send()
                .await?
                .json()
                .await?;
            if matches!(
                job["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                return Ok(Instant::now());
            }
        }
    }
}

pub async fn run(
    strategy: Strategy,
    jobs: usize,
    cap: usize,
    scale: f64,
) -> anyhow::Result<BatchRow> {
    let sim = Simulator::builder()
        .time_scale(scale)
        .seed(7)
        .concurrency(cap, Overflow::Reject)
        .start()
        .await?;
    let models = timed_image_models();
    let krea = Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .poll_policy(PollPolicy::default().scaled(scale))
        .retry_policy(
            RetryPolicy::default()
                .with_delays(
                    Duration::from_millis(250).mul_f64(scale),
                    Duration::from_secs(10).mul_f64(scale),
                )
                .with_retry_after_cap(Duration::from_secs(60).mul_f64(scale))
                .with_max_rate_limited(1000),
        )
        .journal(StatePath::Disabled)
        .timings(StatePath::Disabled)
        .build()?;
    let plain = Arc::new(Plain {
        http: krea_gen::net::client_builder()
            .build()
            .expect("http client"),
        base: sim.api_url().to_string(),
        token: sim.token().to_string(),
        scale,
    });
    let ended = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    if strategy == Strategy::Ours {
        // The library's batch: a window of pending jobs adapting to the cap, one wait loop.
        let mut batch = krea.batch();
        for i in 0..jobs {
            batch = batch.item(i.to_string(), request(&krea, models[i % models.len()], i));
        }
        let mut times = Vec::new();
        let report = batch
            .run(|e| {
                if let krea::BatchEvent::Ended { .. } = e {
                    times.push(Instant::now());
                }
            })
            .await?;
        anyhow::ensure!(report.completed() == jobs, "every job completed");
        ended.lock().await.extend(times);
    }
    for i in (0..jobs).filter(|_| strategy != Strategy::Ours) {
        let model = models[i % models.len()];
        let (plain, ended) = (plain.clone(), ended.clone());
        let spec = krea::models::resolve(model)?;
        let json_body = krea_gen::validate::example_body(spec, &format!("batch prompt {i}"));
        let path = spec.path.as_str();
        match strategy {
            Strategy::Ours => unreachable!("run as a batch above"),
            Strategy::EveryTenSeconds => {
                // The skill: one submission every 10 s, wait 30 s after a 429, poll every 6 s.
                let id = plain
                    .submit(path, &json_body, Duration::from_secs(30))
                    .await?;
                tasks.push(tokio::spawn(async move {
                    let at = plain.wait(id, Duration::from_secs(6)).await?;
                    ended.lock().await.push(at);
                    anyhow::Ok(())
                }));
                tokio::time::sleep(Duration::from_secs(10).mul_f64(scale)).await;
            }
            Strategy::Unlimited => tasks.push(tokio::spawn(async move {
                let id = plain
                    .submit(path, &json_body, Duration::from_secs(1))
                    .await?;
                let at = plain.wait(id, Duration::from_secs(2)).await?;
                ended.lock().await.push(at);
                anyhow::Ok(())
            })),
        }
    }
    for t in tasks {
        t.await??;
    }
    let last = ended.lock().await.iter().max().copied().unwrap_or(started);
    let control = sim.control();
    let total_run: f64 = control
        .job_ids()
        .iter()
        .filter_map(|id| control.run_time(*id))
        .map(|d| d.as_secs_f64())
        .sum();
    let ideal = total_run / cap as f64 / scale;
    let makespan = last.duration_since(started).as_secs_f64() / scale;
    let c = control.counters();
    let limited: u64 = c
        .requests
        .iter()
        .filter(|(r, _)| r.starts_with("POST /generate/"))
        .map(|(_, by)| by.get(&429).copied().unwrap_or(0))
        .sum();
    Ok(BatchRow {
        strategy: strategy.name().into(),
        jobs,
        makespan_s: makespan,
        ideal_s: ideal,
        ratio: makespan / ideal,
        rate_limited: limited,
        rate_limited_pct: 100.0 * limited as f64 / jobs as f64,
    })
}
