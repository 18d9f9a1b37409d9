//! Runs the `krea` binary against a simulator in this process, with its local state (journal,
//! timings) in a scratch directory.
#![allow(dead_code)] // each test file uses a different subset

#[path = "../../../../krea/tests/it/support/pg.rs"]
pub mod pg;

use std::path::{Path, PathBuf};
use std::process::Output;

use krea_sim::{SimBuilder, Simulator};

pub struct Env {
    pub sim: Simulator,
    pub dir: PathBuf,
}

/// A passing test leaves nothing behind (a fault-suite run writes ~75 MB); a failing one keeps
/// its directory to look at.
impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn scratch(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "krea-cli-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

pub async fn env(name: &str, builder: SimBuilder) -> Env {
    env_scaled(name, builder, 0.01).await
}

pub async fn env_scaled(name: &str, builder: SimBuilder, scale: f64) -> Env {
    let sim = builder.time_scale(scale).start().await.expect("simulator");
    Env {
        sim,
        dir: scratch(name),
    }
}

/// The binary as a machine of its own: its disk at `home` (made if missing: home, state,
/// cache and config there), its journal at `journal` (a `postgres://` address shared with
/// the other machines).
pub fn machine(env: &Env, home: &std::path::Path, journal: &str) -> std::process::Command {
    std::fs::create_dir_all(home).expect("the machine's disk");
    let mut cmd = command(env);
    cmd.current_dir(home)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("KREA_JOURNAL", journal);
    cmd
}

/// The binary with its environment pointed at the simulator and the scratch directory.
pub fn command(env: &Env) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("krea"));
    cmd.current_dir(&env.dir)
        .env("KREA_BASE_URL", env.sim.api_url())
        .env("KREA_API_TOKEN", env.sim.token())
        .env("XDG_STATE_HOME", env.dir.join("state"))
        .env("XDG_CACHE_HOME", env.dir.join("cache"))
        .env("XDG_CONFIG_HOME", env.dir.join("config"))
        .env_remove("KREA_PROFILE")
        .env_remove("COLUMNS")
        .env("HOME", &env.dir)
        .env_remove("RUST_LOG")
        // Never the test runner's terminal: a run that would ask before spending must not wait
        // for someone at it (a test that wants a terminal gives one).
        .stdin(std::process::Stdio::null());
    cmd
}

/// Runs `krea ARGS` (polling every 20 ms, the simulator being 100x fast) off the async runtime.
pub async fn krea(env: &Env, args: &[&str]) -> Output {
    let mut cmd = command(env);
    cmd.args(["--poll", "0.02"]).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run krea"))
        .await
        .expect("join")
}

/// A child process killed (and reaped) when the test ends, even by a panic: a leftover would
/// hold the test harness's pipes open.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}

pub fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
