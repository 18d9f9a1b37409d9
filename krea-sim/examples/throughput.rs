//! How many `GET /jobs/{id}` per second the simulator answers on this machine, so benchmarks
//! know it is not their bottleneck. Client and server share the machine, so this is a floor.
//!
//! ```text
//! cargo run --release -p krea-sim --example throughput [-- SECONDS CONNECTIONS]
//! ```
#![allow(clippy::print_stdout)] // a measurement tool: stdout is its output

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5);
    let connections: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
    let sim = krea_sim::Simulator::builder()
        .time_scale(1.0)
        .start()
        .await?;
    let http = krea_gen::net::client_builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    // A few hundred jobs, so lookups happen in a realistically filled table.
    let mut ids = Vec::new();
    for i in 0..500 {
        let job: serde_json::Value = http
            .post(format!("{}/generate/image/bfl/flux-1-dev", sim.api_url()))
            .bearer_auth(sim.token())
            .json(&serde_json::json!({"prompt": format!("prompt {i}")}))
            .send()
            .await?
            .json()
            .await?;
        ids.push(job["job_id"].as_str().unwrap_or_default().to_string());
    }
    let ids = Arc::new(ids);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..connections {
        let (http, ids, done, errors) = (http.clone(), ids.clone(), done.clone(), errors.clone());
        let (base, token) = (sim.api_url().to_string(), sim.token().to_string());
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let url = format!("{base}/jobs/{}", ids[i % ids.len()]);
                match http.get(url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += connections;
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "GET /jobs/{{id}}: {n} answered in {elapsed:.1} s over {connections} connections = {:.0} requests/s ({} errors)",
        n as f64 / elapsed,
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}
