//! `krea mcp` as an assistant uses it: calls to `generate_image` one after another against
//! `krea mcp --sim`, each timed from `tools/call` to its result (the simulated job itself takes
//! ~0.2 s), and the server's resident memory after them all.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use serde_json::{Value, json};

use crate::proc::status_kb;
use crate::stats::{mean, percentile};

pub async fn run(calls: usize) -> anyhow::Result<Value> {
    let bin: PathBuf = std::env::current_exe()?.with_file_name("krea");
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p krea-cli` (cargo xtask bench does)",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("krea-bench-mcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("out");
    let command = tokio::process::Command::new(&bin).configure(|c| {
        c.args(["mcp", "--sim", "--output-dir"])
            .arg(&out)
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .kill_on_drop(true);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()?;
    let pid = transport
        .id()
        .map(|p| p.to_string())
        .ok_or_else(|| anyhow::anyhow!("no server pid"))?;
    let client = ().serve(transport).await?;
    let rss_start_kb = status_kb(&pid, "VmRSS:");
    let mut seconds = Vec::with_capacity(calls);
    for n in 0..calls {
        let Value::Object(args) =
            json!({"prompt": format!("lighthouse number {n}"), "model": "flux"})
        else {
            unreachable!("an object")
        };
        let start = Instant::now();
        let result = client
            .call_tool(CallToolRequestParams::new("generate_image").with_arguments(args))
            .await?;
        seconds.push(start.elapsed().as_secs_f64());
        let status = result
            .structured_content
            .as_ref()
            .and_then(|s| s["status"].as_str().map(String::from));
        anyhow::ensure!(
            result.is_error != Some(true) && status.as_deref() == Some("completed"),
            "call {n} did not complete: {:?}",
            result.content
        );
    }
    let rss_after_kb = status_kb(&pid, "VmRSS:");
    let peak_kb = status_kb(&pid, "VmHWM:");
    client.cancel().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "calls": calls,
        "mean_s": mean(&seconds),
        "p50_s": percentile(&seconds, 50.0),
        "p95_s": percentile(&seconds, 95.0),
        "max_s": percentile(&seconds, 100.0),
        "rss_start_mb": rss_start_kb as f64 / 1024.0,
        "rss_after_mb": rss_after_kb as f64 / 1024.0,
        "peak_rss_mb": peak_kb as f64 / 1024.0,
    }))
}
