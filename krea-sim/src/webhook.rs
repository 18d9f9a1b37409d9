//! Webhook delivery: when a job with `X-Webhook-URL` reaches a terminal state, POST the job
//! JSON there (3 attempts, backing off), as Krea does. Unsigned, like Krea's.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::job::SimJob;
use crate::state::Sim;

/// Schedules delivery at the job's finish (if it has a webhook and will finish).
pub fn watch(sim: &Arc<Sim>, job: &SimJob) {
    let (Some(url), Some(finish)) = (job.webhook.clone(), job.finish) else {
        return;
    };
    let sim = sim.clone();
    let id = job.id;
    tokio::spawn(async move {
        tokio::time::sleep_until(finish).await;
        // A cancelled job was delivered when it was cancelled.
        let body = {
            let st = sim.lock();
            match st.jobs.get(&id) {
                Some(job) if job.cancelled.is_none() => {
                    job.to_json(Instant::now().max(finish), &sim.files_url)
                }
                _ => return,
            }
        };
        deliver(&sim, &url, body).await;
    });
}

/// Delivers a cancellation now.
pub fn cancelled(sim: &Arc<Sim>, job: &SimJob) {
    let Some(url) = job.webhook.clone() else {
        return;
    };
    let sim = sim.clone();
    let body = job.to_json(Instant::now(), &sim.files_url);
    tokio::spawn(async move { deliver(&sim, &url, body).await });
}

async fn deliver(sim: &Sim, url: &str, body: serde_json::Value) {
    let backoff = Duration::from_secs_f64((0.5 * sim.config.time_scale).clamp(0.01, 2.0));
    // Accepted as Krea accepts any https URL, but never sent off this machine: the attempts
    // are made (and waited for) like failed ones, then counted as undeliverable.
    let reachable = sim.delivers_to(url);
    for attempt in 0..3u32 {
        if reachable {
            let sent = sim.http.post(url).json(&body).send().await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                sim.lock().counters.webhooks_delivered += 1;
                return;
            }
        }
        tokio::time::sleep(backoff * 2u32.pow(attempt)).await;
    }
    let mut st = sim.lock();
    if reachable {
        st.counters.webhooks_failed += 1;
    } else {
        st.counters.webhooks_undeliverable += 1;
    }
}
