//! `cargo xtask bench`: scenarios against krea-sim, a table on stdout, JSON under target/bench/.
//! Times are in the jobs' own (unscaled) seconds.
#![allow(clippy::print_stdout)] // a measurement tool: stdout is its report

use std::time::Duration;

use serde_json::json;

mod batch;
mod download;
mod journal;
mod link;
mod mcp;
mod overhead;
mod polling;
mod proc;
mod stats;

const USAGE: &str = "usage: cargo xtask bench [--quick] [polling] [batch] [link] [overhead] [journal] [download] [mcp]";

/// The runtime a measuring child runs on: `current` (one thread, as the `krea` binary runs)
/// or `multi` (tokio's default, the future on the main thread and a worker per core).
fn runtime(flavour: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match flavour {
        "current" => tokio::runtime::Builder::new_current_thread(),
        "multi" => tokio::runtime::Builder::new_multi_thread(),
        other => anyhow::bail!("unknown runtime {other:?}: current or multi"),
    };
    Ok(builder.enable_all().build()?)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Scenarios that measure their own process run as children of this one, on the runtime
    // named fourth (`__overhead JOBS WHO RUNTIME`, `__journal LINES STORE RUNTIME`).
    let flavour = args.get(3).map_or("multi", String::as_str);
    match args.first().map(String::as_str) {
        Some("__overhead") => {
            let jobs = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5000);
            let who = args.get(2).map_or("krea", String::as_str);
            println!(
                "{}",
                runtime(flavour)?.block_on(overhead::measure(jobs, who))?
            );
            return Ok(());
        }
        Some("__journal") => {
            let lines = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
            let store = args.get(2).map_or("file", String::as_str);
            println!(
                "{}",
                runtime(flavour)?.block_on(journal::measure(lines, store))?
            );
            return Ok(());
        }
        Some("__download") => {
            let [_, kind, base, token, id, url] = args.as_slice() else {
                anyhow::bail!("bad __download arguments")
            };
            println!(
                "{}",
                runtime("multi")?.block_on(download::measure(kind, base, token, id, url))?
            );
            return Ok(());
        }
        _ => {}
    }
    runtime("multi")?.block_on(scenarios(args))
}

async fn scenarios(args: Vec<String>) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let named: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| named.is_empty() || named.iter().any(|a| *a == name);
    let mut report = serde_json::Map::new();

    if wanted("polling") {
        let jobs = if quick { 60 } else { 300 };
        let scale = 0.05;
        println!(
            "== Polling: {jobs} jobs across {} image models with catalog timings (time scale {scale})",
            polling::timed_image_models().len()
        );
        println!(
            "{:28} {:>10} {:>10} {:>10}",
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
                "{:28} {:>9.2}s {:>9.2}s {:>10.2}",
                row.policy, row.mean_lag_s, row.p95_lag_s, row.gets_per_job
            );
            rows.push(row);
        }
        report.insert("polling".into(), json!(rows));
    }

    if wanted("batch") {
        let jobs = if quick { 60 } else { 200 };
        let (cap, scale) = (8, 0.02);
        println!(
            "\n== Batch: {jobs} image prompts, server cap {cap} concurrent jobs rejecting with 429 (time scale {scale})"
        );
        println!(
            "{:28} {:>11} {:>11} {:>7} {:>7} {:>7}",
            "strategy", "makespan", "ideal", "ratio", "429s", "per job"
        );
        let mut rows = Vec::new();
        for s in [
            batch::Strategy::Ours,
            batch::Strategy::EveryTenSeconds,
            batch::Strategy::Unlimited,
        ] {
            let row = batch::run(s, jobs, cap, scale).await?;
            println!(
                "{:28} {:>10.0}s {:>10.0}s {:>7.3} {:>7} {:>6.1}%",
                row.strategy,
                row.makespan_s,
                row.ideal_s,
                row.ratio,
                row.rate_limited,
                row.rate_limited_pct
            );
            rows.push(row);
        }
        report.insert("batch".into(), json!(rows));
    }

    if wanted("link") {
        let jobs = if quick { 64 } else { 128 };
        println!(
            "\n== Batch over a slow link: {jobs} Flux jobs of real duration, server cap 64 (429 beyond), krea against a naive concurrent script"
        );
        println!(
            "{:14} {:>8} {:>10} {:>7} {:>6} {:>10} {:>12} {:>12} {:>10}",
            "client",
            "latency",
            "makespan",
            "POSTs",
            "429s",
            "peak POSTs",
            "last start",
            "last finish",
            "krea/naive"
        );
        let mut rows = Vec::new();
        for latency in [Duration::from_millis(300), Duration::ZERO] {
            let naive = link::naive(jobs, latency).await?;
            let ours = link::ours(jobs, latency).await?;
            let ratio = ours.makespan_s / naive.makespan_s;
            for r in [&naive, &ours] {
                println!(
                    "{:14} {:>6}ms {:>9.1}s {:>7} {:>6} {:>10} {:>11.1}s {:>11.1}s {:>10}",
                    r.client,
                    r.latency_ms,
                    r.makespan_s,
                    r.posts,
                    r.rate_limited,
                    r.peak_concurrent_posts,
                    r.last_created_s,
                    r.last_finished_s,
                    if std::ptr::eq(r, &ours) {
                        format!("{ratio:.3}")
                    } else {
                        String::new()
                    }
                );
            }
            rows.push(json!({"latency_ms": latency.as_millis() as u64, "naive": naive, "krea": ours, "ratio": ratio}));
        }
        report.insert("link".into(), json!(rows));
    }

    if wanted("overhead") {
        let jobs = if quick { 1000 } else { 5000 };
        println!(
            "\n== Overhead: {jobs} zero-duration jobs through submit + wait (simulator in another process), median of 3 runs each, alternated"
        );
        // The naive script with one request at a time pays what krea pays for sending paid
        // requests one after another's answer on a link this fast (the pacer's rule). Each
        // client runs on two runtimes: one thread (as the `krea` binary runs) and tokio's
        // default (the future on the main thread, connections on a worker per core), where
        // every answer crosses threads.
        const WHO: [(&str, &str); 3] = [
            ("krea", "krea"),
            ("naive", "naive, 64 at once"),
            ("naive1", "naive, 1 at a time"),
        ];
        const RUNTIMES: [(&str, &str); 2] = [("current", "1 thread"), ("multi", "multi-thread")];
        let mut runs: Vec<Vec<serde_json::Value>> = vec![Vec::new(); WHO.len() * RUNTIMES.len()];
        for _ in 0..3 {
            for (r, (flavour, _)) in RUNTIMES.iter().enumerate() {
                for (w, (who, _)) in WHO.iter().enumerate() {
                    runs[r * WHO.len() + w].push(proc::run_child(&[
                        "__overhead",
                        &jobs.to_string(),
                        who,
                        flavour,
                    ])?);
                }
            }
        }
        let mut rows = serde_json::Map::new();
        for (r, (flavour, runtime)) in RUNTIMES.iter().enumerate() {
            for (w, (key, name)) in WHO.iter().enumerate() {
                let (median, all) =
                    stats::median_run(&mut runs[r * WHO.len() + w], "cpu_us_per_job", 0);
                println!(
                    "{:<33} client CPU {:.1} us/job (runs {all}), peak RSS {:.1} MB, {:.0} jobs/s, {:.2} requests/job",
                    format!("{name}, {runtime}"),
                    median["cpu_us_per_job"].as_f64().unwrap_or(0.0),
                    median["peak_rss_mb"].as_f64().unwrap_or(0.0),
                    median["jobs_per_second"].as_f64().unwrap_or(0.0),
                    median["requests_per_job"].as_f64().unwrap_or(0.0)
                );
                rows.insert(format!("{key}-{flavour}"), median);
            }
        }
        report.insert("overhead".into(), serde_json::Value::Object(rows));
    }

    if wanted("journal") {
        let lines = if quick { 300 } else { 1000 };
        println!(
            "\n== Journal store: a {lines}-line batch of zero-duration jobs (downloads included), the journal in a file and in PostgreSQL (loopback; pg-nosync: synchronous_commit off), median of 3 runs each, alternated"
        );
        let (_cluster, url) = journal::cluster();
        // The third: the same database, commits not waited for on disk (what the durable
        // commit costs; the file journal leaves its appends to the page cache).
        const STORES: [&str; 3] = ["file", "postgres", "pg-nosync"];
        let nosync = format!("{url}?options=-c%20synchronous_commit%3Doff");
        let mut runs: [Vec<serde_json::Value>; 3] = Default::default();
        for _ in 0..3 {
            for (i, store) in STORES.iter().enumerate() {
                let arg = match *store {
                    "file" => "file",
                    "postgres" => url.as_str(),
                    _ => nosync.as_str(),
                };
                runs[i].push(proc::run_child(&["__journal", &lines.to_string(), arg])?);
            }
        }
        let mut rows = serde_json::Map::new();
        for (i, store) in STORES.iter().enumerate() {
            let (median, all) = stats::median_run(&mut runs[i], "makespan_s", 2);
            println!(
                "{store:<10} makespan {:.2} s (runs {all}), client CPU {:.0} us/job, peak RSS {:.1} MB",
                median["makespan_s"].as_f64().unwrap_or(0.0),
                median["cpu_us_per_job"].as_f64().unwrap_or(0.0),
                median["peak_rss_mb"].as_f64().unwrap_or(0.0)
            );
            rows.insert((*store).into(), median);
        }
        report.insert("journal".into(), serde_json::Value::Object(rows));
    }

    if wanted("download") {
        let bytes: u64 = if quick { 64 << 20 } else { 256 << 20 };
        println!("\n== Download: a {} MB result, best of 3 each", bytes >> 20);
        let r = download::run(bytes, 3).await?;
        for (kind, label) in [
            ("plain", "plain streamed reqwest"),
            ("ours", "krea download_to"),
            ("durable", "krea, durable (fsync)"),
        ] {
            println!(
                "{label:28} {:>8.0} MB/s   RSS growth {:>6.1} MB",
                r[kind]["mb_per_s"].as_f64().unwrap_or(0.0),
                r[kind]["rss_growth_mb"].as_f64().unwrap_or(0.0)
            );
        }
        println!(
            "{:28} {:>8.2}x   (durable: {:.2}x)",
            "ours / plain",
            r["ratio"].as_f64().unwrap_or(0.0),
            r["durable_ratio"].as_f64().unwrap_or(0.0)
        );
        report.insert("download".into(), r);
    }

    if wanted("mcp") {
        let calls = if quick { 30 } else { 100 };
        println!(
            "\n== MCP: {calls} generate_image calls in a row to `krea mcp --sim` (its images take ~0.2 s)"
        );
        let r = mcp::run(calls).await?;
        println!(
            "tools/call to result: mean {:.3}s, p50 {:.3}s, p95 {:.3}s; server RSS {:.1} MB after (peak {:.1} MB, {:.1} MB at start)",
            r["mean_s"].as_f64().unwrap_or(0.0),
            r["p50_s"].as_f64().unwrap_or(0.0),
            r["p95_s"].as_f64().unwrap_or(0.0),
            r["rss_after_mb"].as_f64().unwrap_or(0.0),
            r["peak_rss_mb"].as_f64().unwrap_or(0.0),
            r["rss_start_mb"].as_f64().unwrap_or(0.0)
        );
        report.insert("mcp".into(), r);
    }

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&dir)?;
    let text = serde_json::to_vec_pretty(&report)?;
    let file = dir.join(format!(
        "bench-{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::write(&file, &text)?;
    std::fs::write(dir.join("latest.json"), &text)?;
    println!("\nwrote {}", file.display());
    Ok(())
}
