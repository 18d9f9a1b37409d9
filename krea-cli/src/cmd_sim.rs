//! `krea sim`: the simulator in the foreground.

use crate::cli::SimArgs;
use crate::exit::{self, Usage};
use crate::output::Out;

pub async fn run(out: &Out, a: &SimArgs) -> anyhow::Result<u8> {
    let mut builder = krea_sim::Simulator::builder()
        .port(a.port)
        .time_scale(a.time_scale);
    if let Some(seed) = a.seed {
        builder = builder.seed(seed);
    }
    if let Some(path) = &a.openapi {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Usage(format!("--openapi {}: {e}", path.display())))?;
        let doc = serde_json::from_str(&text)
            .map_err(|e| Usage(format!("--openapi {}: not JSON ({e})", path.display())))?;
        builder = builder.openapi_document(doc);
    }
    if let Some(day) = a.today {
        builder = builder.today(day);
    }
    for host in &a.webhook_host {
        builder = builder.webhook_host(host.clone());
    }
    if !a.clock_skew.is_finite() {
        return Err(Usage("--clock-skew takes a number of seconds".into()).into());
    }
    builder = builder
        .latency(std::time::Duration::from_millis(a.latency))
        .clock_skew(chrono::Duration::milliseconds(
            (a.clock_skew * 1000.0) as i64,
        ))
        .whole_second_stamps(a.whole_second_stamps)
        .listing_lag(std::time::Duration::from_millis(a.listing_lag));
    if let Some(ms) = a.foreign_every {
        builder = builder.foreign_every(std::time::Duration::from_millis(ms));
    }
    for text in &a.fault {
        let rule: krea_sim::FaultRule = text.parse().map_err(Usage)?;
        builder = builder.fault(rule.route, rule.fault, rule.rate);
    }
    if let Some(cap) = a.concurrency {
        builder = builder.concurrency(cap, krea_sim::Overflow::Reject);
    }
    let sim = builder.start().await?;
    out.line("krea simulator (a simulated Krea API) is running; Ctrl-C stops it");
    out.line(format!("export KREA_BASE_URL={}", sim.api_url()));
    out.line(format!("export KREA_API_TOKEN={}", sim.token()));
    out.line(format!(
        "# files: {}   counters: {}/_sim/counters",
        sim.files_url(),
        sim.api_url()
    ));
    out.json(&serde_json::json!({"base_url": sim.api_url(), "token": sim.token(), "files_url": sim.files_url(), "simulated": true}));
    tokio::signal::ctrl_c().await?;
    Ok(exit::OK)
}
