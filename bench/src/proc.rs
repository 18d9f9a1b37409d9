//! Reading this process's CPU time and memory from /proc, and running the simulator as a
//! separate process so its work is not counted as the client's.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds used by this process so far.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / TICKS_PER_SECOND
}

/// A field of `/proc/PROCESS/status` (`self`, or a pid), in KiB.
pub fn status_kb(process: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Peak resident memory so far, in KiB.
pub fn peak_rss_kb() -> u64 {
    status_kb("self", "VmHWM:")
}

/// Resident memory now, in KiB.
pub fn rss_kb() -> u64 {
    status_kb("self", "VmRSS:")
}

/// `krea-sim` running as a child process.
pub struct SimProcess {
    child: Child,
    pub base_url: String,
    pub token: String,
}

impl SimProcess {
    /// Starts the `krea-sim` binary built next to this one.
    pub fn start(args: &[&str]) -> anyhow::Result<SimProcess> {
        let exe = std::env::current_exe()?;
        let bin: PathBuf = exe.with_file_name("krea-sim");
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: build it with `cargo build --release -p krea-sim` (cargo xtask bench does)",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut base_url, mut token) = (String::new(), String::new());
        for line in lines.by_ref().take(5) {
            let line = line?;
            if let Some(v) = line.trim().strip_prefix("KREA_BASE_URL=") {
                base_url = v.into();
            }
            if let Some(v) = line.trim().strip_prefix("KREA_API_TOKEN=") {
                token = v.into();
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        anyhow::ensure!(!base_url.is_empty(), "krea-sim did not print its address");
        Ok(SimProcess {
            child,
            base_url,
            token,
        })
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs this binary with `args` (a scenario that must measure itself alone) and parses the
/// JSON it prints.
pub fn run_child(args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    anyhow::ensure!(out.status.success(), "child {args:?} failed");
    Ok(serde_json::from_slice(&out.stdout)?)
}
