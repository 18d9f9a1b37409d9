//! Pacing paid sends. Krea's jobs do not carry the request that made them, so a lost answer is
//! settled by where its job's stamp falls ([`crate::settle`]). Paid requests go out
//! concurrently, each a measured *spacing* after the one before (the spread of Krea's
//! send-to-stamp lag, milliseconds on a steady link): the windows where two requests' jobs are
//! usually stamped then never overlap, and a job found in one window is that request's. After a
//! lost answer, the next send waits until that request's whole window has passed, so a second
//! lost answer can never share it.
//!
//! Sends are paced per client, and across every process sharing a journal (the journal keeps
//! the last send of any of them).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::evidence::Evidence;

/// The least spacing: even a perfectly steady link leaves the client's own scheduling.
pub(crate) const FLOOR: Duration = Duration::from_millis(2);
/// The most spacing in normal sending: where stamps are coarse (whole seconds), windows would
/// need a second each; sends then share windows and only a second lost answer in the same one
/// would be ambiguous (the send after a lost answer still waits out its whole window).
pub(crate) const CAP: Duration = Duration::from_millis(40);
/// The window to wait out after a lost answer before anything is measured: a whole-second
/// stamp and some network.
const UNMEASURED_WINDOW: Duration = Duration::from_millis(1_200);
/// Longest wait after a lost answer, however wide the measured window.
const CAREFUL_CAP: Duration = Duration::from_secs(3);

/// The next instant a paid attempt may go out from this client.
#[derive(Debug)]
pub(crate) struct Pacer {
    next: tokio::sync::Mutex<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }
}

impl Pacer {
    /// Waits for this client's next send slot and takes it (`spacing` after the last one).
    pub async fn slot(&self, spacing: Duration) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + spacing;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// A request sent at `sent` (client clock) lost its answer: nothing else goes out until
    /// the window where its job would usually be stamped has passed.
    pub async fn lost(&self, sent: DateTime<Utc>, evidence: &Evidence) {
        // The window as measured now, and a precision more: later samples may widen it.
        let window = evidence
            .lag()
            .and_then(|l| (l.width() + l.precision).to_std().ok())
            .unwrap_or(UNMEASURED_WINDOW)
            .min(CAREFUL_CAP);
        let since = (Utc::now() - sent).to_std().unwrap_or_default();
        let until = Instant::now() + window.saturating_sub(since);
        let mut next = self.next.lock().await;
        *next = (*next).max(until);
    }
}
