//! Shared by the examples: a client from the environment, or, with `--sim`, one pointed at an
//! in-process simulator (running 100x faster than real time) so the example runs anywhere.
#![allow(dead_code)] // each example uses a different subset

use krea::{Krea, PollPolicy, StatePath};
use krea_sim::Simulator;

/// Keeps the simulator (if any) alive as long as the client is used.
pub struct Session {
    pub krea: Krea,
    pub sim: Option<Simulator>,
}

pub async fn session() -> Result<Session, Box<dyn std::error::Error>> {
    if !std::env::args().any(|a| a == "--sim") {
        return Ok(Session {
            krea: Krea::from_env()?,
            sim: None,
        });
    }
    let scale = 0.01;
    let sim = Simulator::builder().time_scale(scale).start().await?;
    eprintln!("(simulated Krea API at {})", sim.api_url());
    let krea = Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .poll_policy(PollPolicy::default().scaled(scale))
        .journal(StatePath::Disabled)
        .timings(StatePath::Disabled)
        .build()?;
    Ok(Session {
        krea,
        sim: Some(sim),
    })
}

/// The output directory: the first argument that is not a flag, else `out`.
pub fn out_dir() -> std::path::PathBuf {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "out".into())
        .into()
}
