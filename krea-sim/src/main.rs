//! `krea-sim`: runs the simulator in the foreground and prints where it listens.
#![allow(clippy::print_stdout)] // a command-line tool: stdout is its output

use std::process::ExitCode;

const USAGE: &str = "usage: krea-sim [--port N] [--time-scale F] [--concurrency N] [--backlog] [--seed N] [--credits F] [--token T] [--video-bytes N] [--commit-delay MS] [--openapi FILE] [--today YYYY-MM-DD] [--webhook-host HOST]...";

fn value<T: std::str::FromStr>(args: &[String], flag: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}")),
    }
}

fn builder(args: &[String]) -> Result<krea_sim::SimBuilder, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Err(USAGE.into());
    }
    let mut b = krea_sim::Simulator::builder();
    if let Some(p) = value(args, "--port")? {
        b = b.port(p);
    }
    if let Some(s) = value(args, "--time-scale")? {
        b = b.time_scale(s);
    }
    if let Some(s) = value(args, "--seed")? {
        b = b.seed(s);
    }
    if let Some(c) = value(args, "--credits")? {
        b = b.credits(c);
    }
    if let Some(n) = value(args, "--video-bytes")? {
        b = b.video_bytes(n);
    }
    if let Some(ms) = value::<u64>(args, "--commit-delay")? {
        b = b.commit_delay(std::time::Duration::from_millis(ms));
    }
    if let Some(t) = value::<String>(args, "--token")? {
        b = b.token(t);
    }
    if let Some(path) = value::<String>(args, "--openapi")? {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("--openapi {path}: {e}"))?;
        let doc =
            serde_json::from_str(&text).map_err(|e| format!("--openapi {path}: not JSON ({e})"))?;
        b = b.openapi_document(doc);
    }
    if let Some(day) = value::<String>(args, "--today")? {
        let date = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map_err(|_| format!("--today {day}: use a date such as 2026-06-19\n{USAGE}"))?;
        b = b.today(date);
    }
    for (i, _) in args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--webhook-host")
    {
        let host = args
            .get(i + 1)
            .ok_or_else(|| format!("--webhook-host needs a host name\n{USAGE}"))?;
        b = b.webhook_host(host.clone());
    }
    if let Some(cap) = value(args, "--concurrency")? {
        let overflow = if args.iter().any(|a| a == "--backlog") {
            krea_sim::Overflow::Backlog
        } else {
            krea_sim::Overflow::Reject
        };
        b = b.concurrency(cap, overflow);
    }
    Ok(b)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let builder = match builder(&args) {
        Ok(b) => b,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let sim = match builder.start().await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("krea-sim: cannot listen: {e}");
            return ExitCode::from(1);
        }
    };
    println!("krea-sim (simulated Krea API) listening");
    println!("  KREA_BASE_URL={}", sim.api_url());
    println!("  KREA_API_TOKEN={}", sim.token());
    println!("  files: {}", sim.files_url());
    println!("  counters: {}/_sim/counters", sim.api_url());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
