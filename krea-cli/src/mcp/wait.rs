//! One bounded wait on a job, with MCP progress notifications when the client asked for them.
//! When the time is up the wait just stops: the job runs on, and is still in the journal.

use std::time::Duration;

use krea::{Finished, JobHandle};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};

/// How often progress is reported while waiting.
const TICK: Duration = Duration::from_secs(1);

/// The longest wait a call may ask for (clients give up on calls that take longer).
pub const MAX_WAIT: f64 = 600.0;

/// Where progress notifications go: the client and the token it gave with the call.
pub struct Reporter {
    pub peer: Peer<RoleServer>,
    pub token: ProgressToken,
}

/// `wait_seconds` as a duration, or why not.
pub fn seconds(given: Option<f64>, default: f64) -> Result<Duration, String> {
    match given {
        None => Ok(Duration::from_secs_f64(default)),
        Some(s) if s.is_finite() && (0.0..=MAX_WAIT).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(format!(
            "wait_seconds must be between 0 and {MAX_WAIT}, not {s} (nothing was sent); a longer job answers `pending`: then call wait_job"
        )),
    }
}

/// Waits for `handle` at most `limit`, reporting state, elapsed and expected seconds every
/// second: how the job ended, or `None` while it runs on. `time_scale` turns the expected duration into wall time (the simulator runs fast).
pub async fn bounded(
    handle: &JobHandle,
    limit: Duration,
    reporter: Option<&Reporter>,
    time_scale: f64,
) -> Option<krea::Result<Finished>> {
    let wait = handle.wait();
    tokio::pin!(wait);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let expected = handle.expected().seconds * time_scale;
    loop {
        tokio::select! {
            result = &mut wait => return Some(result),
            _ = &mut deadline => return None,
            _ = tick.tick() => {
                if let Some(r) = reporter {
                    let elapsed = handle.elapsed().as_secs_f64();
                    let status = handle.status();
                    let mut message = format!("{}, {} s", status.as_str(), seconds_text(elapsed));
                    let mut param = ProgressNotificationParam::new(r.token.clone(), elapsed);
                    if expected.is_finite() && expected > elapsed {
                        message.push_str(&format!(" of ~{} s", seconds_text(expected)));
                        param = param.with_total(expected);
                    }
                    // A client that went away is not a reason to stop waiting.
                    let _ = r.peer.notify_progress(param.with_message(message)).await;
                }
            }
        }
    }
}

/// `42`, or `0.4` under ten seconds.
fn seconds_text(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}
