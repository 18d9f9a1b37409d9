//! Pacing paid sends. Krea's jobs do not carry the request that made them, so a lost answer is
//! settled by where its job's stamp falls ([`crate::settle`]). Two requests can only be
//! confused while both may still lose their answers: a request answered with its job has that
//! job claimed. So a paid request goes out at once when nothing else is awaiting its answer,
//! and otherwise a measured *spacing* after the latest send still awaiting one (the spread of
//! Krea's send-to-stamp lag, milliseconds on a steady link): the windows where two unanswered
//! requests' jobs are usually stamped never overlap, and a job found in one is that request's.
//! On a fast link sends follow each other's answers; on a slow one, many are in flight, a
//! spacing apart. After a lost answer, the next send waits until that request's whole window
//! has passed, so a second lost answer can never share it.
//!
//! Sends are paced per client, and across every process sharing a journal (the journal keeps
//! the last send of each of them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::evidence::Evidence;

/// The least spacing: even a perfectly steady link leaves the client's own scheduling.
pub(crate) const FLOOR: Duration = Duration::from_millis(1);
/// The most spacing in normal sending: where stamps are coarse (whole seconds), windows would
/// need a second each; sends then share windows and only a second lost answer in the same one
/// would be ambiguous (the send after a lost answer still waits out its whole window).
pub(crate) const CAP: Duration = Duration::from_millis(40);
/// The window to wait out after a lost answer before anything is measured: a whole-second
/// stamp and some network.
const UNMEASURED_WINDOW: Duration = Duration::from_millis(1_200);
/// Longest wait after a lost answer, however wide the measured window.
const CAREFUL_CAP: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct State {
    /// Sends awaiting their answers, by ticket.
    awaiting: HashMap<u64, Instant>,
    next_ticket: u64,
    /// Nothing goes out before then (a lost answer's window).
    careful_until: Instant,
}

/// When this client's paid attempts may go out.
#[derive(Debug)]
pub(crate) struct Pacer {
    state: Mutex<State>,
    answered: Notify,
    /// Attempts wait for their slot one at a time, in the order they came: each slot goes to
    /// the first in line, so only it sleeps on the next instant (a batch of 64 waiting would
    /// otherwise wake 64 times for every send, all at the same instant).
    line: tokio::sync::Mutex<()>,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            state: Mutex::new(State {
                awaiting: HashMap::new(),
                next_ticket: 0,
                careful_until: Instant::now(),
            }),
            answered: Notify::new(),
            line: tokio::sync::Mutex::new(()),
        }
    }
}

/// An attempt out and awaiting its answer, until dropped.
#[derive(Debug)]
pub(crate) struct Awaiting<'a> {
    pacer: &'a Pacer,
    ticket: u64,
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.pacer.lock().awaiting.remove(&self.ticket);
        self.pacer.answered.notify_one();
    }
}

impl Pacer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until an attempt may go out (`spacing` after the latest one still awaiting its
    /// answer, and past any lost answer's window), and marks it as out.
    pub async fn slot(&self, spacing: Duration) -> Awaiting<'_> {
        let _first = self.line.lock().await;
        loop {
            let answered = self.answered.notified();
            let at = {
                let mut s = self.lock();
                let now = Instant::now();
                let at = s
                    .awaiting
                    .values()
                    .max()
                    .map_or(now, |last| *last + spacing)
                    .max(s.careful_until);
                if at <= now {
                    let ticket = s.next_ticket;
                    s.next_ticket += 1;
                    s.awaiting.insert(ticket, now);
                    return Awaiting {
                        pacer: self,
                        ticket,
                    };
                }
                at
            };
            // An answer may free the way earlier.
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = answered => {}
            }
        }
    }

    /// A request sent at `sent` (client clock) lost its answer: nothing else goes out until
    /// the window where its job would usually be stamped has passed.
    pub fn lost(&self, sent: DateTime<Utc>, evidence: &Evidence) {
        // The window as measured now, and a precision more: later samples may widen it.
        let window = evidence
            .lag()
            .and_then(|l| (l.width() + l.precision).to_std().ok())
            .unwrap_or(UNMEASURED_WINDOW)
            .min(CAREFUL_CAP);
        let since = (Utc::now() - sent).to_std().unwrap_or_default();
        let until = Instant::now() + window.saturating_sub(since);
        let mut s = self.lock();
        s.careful_until = s.careful_until.max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sends_awaiting_answers_are_a_spacing_apart_and_an_answer_frees_the_next() {
        let pacer = Pacer::default();
        let spacing = Duration::from_millis(10);
        let start = Instant::now();
        let first = pacer.slot(spacing).await;
        let second = pacer.slot(spacing).await;
        assert_eq!(Instant::now() - start, spacing, "after the first, awaiting");
        drop(first);
        drop(second);
        let _third = pacer.slot(spacing).await;
        assert_eq!(Instant::now() - start, spacing, "nothing awaiting: at once");
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_lost_answer_nothing_goes_out_until_its_window_has_passed() {
        let pacer = Pacer::default();
        let start = Instant::now();
        pacer.lost(Utc::now(), &Evidence::default());
        let _next = pacer.slot(Duration::from_millis(1)).await;
        assert!(Instant::now() - start >= UNMEASURED_WINDOW);
    }
}
