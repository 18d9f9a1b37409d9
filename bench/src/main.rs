//! `cargo xtask bench`: scenarios against krea-sim, a table on stdout, JSON under target/bench/.
#![allow(clippy::print_stdout)] // a measurement tool: stdout is its report

use std::time::Duration;

use serde_json::json;

mod polling;
mod stats;

const USAGE: &str = "usage: cargo xtask bench [--quick] [polling]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let wanted =
        |name: &str| args.iter().all(|a| a.starts_with("--")) || args.iter().any(|a| a == name);
    let mut report = serde_json::Map::new();

    if wanted("polling") {
        let jobs = if quick { 60 } else { 300 };
        let scale = 0.05;
        println!(
            "== Polling: {jobs} jobs across {:?} (time scale {scale}; times in unscaled seconds)",
            polling::timed_image_models()
        );
        println!(
            "{:28} {:>10} {:>10} {:>12}",
            "policy", "mean lag", "p95 lag", "GETs/job"
        );
        let strategies = [
            polling::Strategy::OursTogether,
            polling::Strategy::OursEach,
            polling::Strategy::Fixed(Duration::from_secs(6)),
            polling::Strategy::Fixed(Duration::from_secs(3)),
            polling::Strategy::Fixed(Duration::from_secs(2)),
            polling::Strategy::Fixed(Duration::from_millis(500)),
            polling::Strategy::Webhook,
        ];
        let mut rows = Vec::new();
        for s in strategies {
            let row = polling::run(s, jobs, scale, 42).await?;
            println!(
                "{:28} {:>9.2}s {:>9.2}s {:>12.2}",
                row.policy, row.mean_lag_s, row.p95_lag_s, row.gets_per_job
            );
            rows.push(row);
        }
        report.insert("polling".into(), json!(rows));
    }

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!(
        "bench-{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, serde_json::to_vec_pretty(&report)?)?;
    std::fs::write(dir.join("latest.json"), serde_json::to_vec_pretty(&report)?)?;
    println!("\nwrote {}", file.display());
    Ok(())
}
