//! Polling: 300 jobs across the image models with catalog timings, for several policies side
//! by side. Lag is the time between the simulator completing a job and the client seeing it, in
//! the jobs' own (unscaled) seconds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use krea::{Krea, PollPolicy, StatePath};
use krea_sim::Simulator;
use serde::Serialize;
use uuid::Uuid;

use crate::stats::{mean, percentile};

/// One policy's results.
#[derive(Debug, Clone, Serialize)]
pub struct PollingRow {
    pub policy: String,
    pub jobs: usize,
    pub mean_lag_s: f64,
    pub p95_lag_s: f64,
    pub gets_per_job: f64,
}

/// The image models whose documentation states an average completion time.
pub fn timed_image_models() -> Vec<&'static str> {
    krea::models::of_kind(krea::models::Kind::Image)
        .filter(|m| m.typical_seconds.is_some())
        .map(|m| m.id.as_str())
        .collect()
}

pub enum Strategy {
    /// The client's default policy, waiting on all jobs together (`wait_all`).
    OursTogether,
    /// The client's default policy, one `wait` per job.
    OursEach,
    /// A fixed interval, one `wait` per job.
    Fixed(Duration),
    /// No polling: Krea calls a webhook.
    Webhook,
}

impl Strategy {
    fn name(&self) -> String {
        match self {
            Strategy::OursTogether => "ours (default, wait_all)".into(),
            Strategy::OursEach => "ours (default, per job)".into(),
            Strategy::Fixed(d) => format!("fixed {} s", d.as_secs_f64()),
            Strategy::Webhook => "webhook".into(),
        }
    }
}

fn client(sim: &Simulator, poll: PollPolicy) -> anyhow::Result<Krea> {
    Ok(Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .poll_policy(poll)
        .journal(StatePath::Disabled)
        .timings(StatePath::Disabled)
        .max_jobs_in_flight(10_000)
        .build()?)
}

/// Runs `jobs` jobs with `strategy` on a fresh simulator at `scale`.
pub async fn run(
    strategy: Strategy,
    jobs: usize,
    scale: f64,
    seed: u64,
) -> anyhow::Result<PollingRow> {
    let sim = Simulator::builder()
        .time_scale(scale)
        .seed(seed)
        .start()
        .await?;
    let models = timed_image_models();
    let default = PollPolicy::default().scaled(scale);
    let poll = match &strategy {
        Strategy::Fixed(d) => PollPolicy::fixed(*d).scaled(scale),
        _ => default,
    };
    let krea = client(&sim, poll)?;
    let seen: Arc<Mutex<Vec<(Uuid, Instant)>>> = Arc::default();

    let webhook_url = match strategy {
        Strategy::Webhook => Some(webhook_receiver(seen.clone()).await?),
        _ => None,
    };
    let mut handles = Vec::new();
    for i in 0..jobs {
        let mut req = request(&krea, models[i % models.len()], i);
        if let Some(url) = &webhook_url {
            req = req.webhook(url.clone());
        }
        handles.push(req.submit().await?);
    }
    match strategy {
        Strategy::OursTogether => {
            let seen = seen.clone();
            krea.jobs()
                .wait_all_with(&handles.iter().collect::<Vec<_>>(), move |h, u| {
                    if u.status.is_terminal() {
                        seen.lock()
                            .map(|mut s| s.push((h.id(), Instant::now())))
                            .ok();
                    }
                })
                .await;
        }
        Strategy::OursEach | Strategy::Fixed(_) => {
            let waits = handles.iter().map(|h| {
                let seen = seen.clone();
                async move {
                    if h.wait().await.is_ok() {
                        seen.lock()
                            .map(|mut s| s.push((h.id(), Instant::now())))
                            .ok();
                    }
                }
            });
            futures_util::future::join_all(waits).await;
        }
        Strategy::Webhook => {
            let deadline = Instant::now() + Duration::from_secs_f64(200.0 * scale + 10.0);
            while seen.lock().map(|s| s.len()).unwrap_or(0) < jobs && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let control = sim.control();
    let lags: Vec<f64> = seen
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .iter()
        .filter_map(|(id, at)| {
            let finish = control.finish_instant(*id)?;
            Some(at.saturating_duration_since(finish).as_secs_f64() / scale)
        })
        .collect();
    anyhow::ensure!(
        lags.len() == jobs,
        "{}: {} of {jobs} jobs seen completing",
        strategy.name(),
        lags.len()
    );
    let c = control.counters();
    let gets = c.requests_to("GET /jobs/{id}") + c.requests_to("GET /jobs");
    Ok(PollingRow {
        policy: strategy.name(),
        jobs,
        mean_lag_s: mean(&lags),
        p95_lag_s: percentile(&lags, 95.0),
        gets_per_job: gets as f64 / jobs as f64,
    })
}

/// A valid request for `model`: its required parameters, with a distinct prompt.
pub fn request(krea: &Krea, model: &str, i: usize) -> krea::GenerationRequest {
    let spec = krea::models::resolve(model).expect("a catalog model");
    krea.generate(
        model,
        krea_gen::validate::example_body(spec, &format!("benchmark prompt {i}")),
    )
}

/// A loopback receiver that records when each job's webhook arrives.
async fn webhook_receiver(seen: Arc<Mutex<Vec<(Uuid, Instant)>>>) -> anyhow::Result<String> {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                if let Ok(job) = krea::webhook::parse(&body, |_| true) {
                    seen.lock()
                        .map(|mut s| s.push((job.id, Instant::now())))
                        .ok();
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
