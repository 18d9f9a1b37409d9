//! A simulator and a client pointed at it, with local state in a scratch directory.
#![allow(dead_code)] // each test file uses a different subset

pub mod pg;

use std::path::PathBuf;
use std::time::Duration;

use krea::{Krea, PollPolicy, RetryPolicy, StatePath};
use krea_sim::{SimBuilder, Simulator};

/// The simulator runs this much faster than real time in these tests.
pub const SCALE: f64 = 0.01;

pub struct Setup {
    pub sim: Simulator,
    pub krea: Krea,
    pub dir: PathBuf,
}

/// A passing test leaves nothing behind; a failing one keeps its directory to look at.
impl Drop for Setup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Setup {
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    /// Another client on the same simulator and journal (a second run of a program).
    pub fn second_client(&self) -> Krea {
        client(&self.sim, &self.dir, PollPolicy::default().scaled(SCALE))
    }
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "krea-test-{name}-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn fastrand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub fn client(sim: &Simulator, dir: &std::path::Path, poll: PollPolicy) -> Krea {
    Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .journal(StatePath::At(dir.join("journal.jsonl")))
        .timings(StatePath::Disabled)
        .poll_policy(poll)
        .retry_policy(
            RetryPolicy::default()
                .with_delays(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .settle_grace(Duration::from_millis(200))
        .build()
        .expect("client")
}

pub async fn setup(name: &str, builder: SimBuilder) -> Setup {
    setup_scaled(name, builder, SCALE).await
}

/// [`setup`] with another time scale (style training takes 600 s of simulated time).
pub async fn setup_scaled(name: &str, builder: SimBuilder, scale: f64) -> Setup {
    let sim = builder.time_scale(scale).start().await.expect("simulator");
    let dir = scratch(name);
    let krea = client(&sim, &dir, PollPolicy::default().scaled(scale));
    Setup { sim, krea, dir }
}

/// Files in `dir` whose name starts with `.` (temporaries).
pub fn hidden_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}
