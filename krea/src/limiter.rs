//! How many jobs a batch keeps pending at once, adapting to Krea's concurrency cap.
//!
//! Krea refuses a generation with 429 when the account already runs its maximum number of
//! jobs, so what matters is jobs running, not requests: a batch takes a permit before the
//! POST and gives it back when the job ends. A permit is *granted* (its request waits for its
//! send slot), *sent*, then *running* once Krea accepted the job. A job submitted on its own
//! holds none.
//!
//! The limit starts at 16 and grows by two per accepted job (the window doubles each round
//! trip) until the first 429. A 429 sets the limit to the jobs running (the cap just observed)
//! and remembers it as a ceiling; growth past it is tried again only after [`probe_after`]
//! accepted jobs. A granted request re-checks the limit as it is about to go out: one the
//! limit no longer admits is handed back unsent, so a lowered limit does not cost a 429 per
//! request already waiting to go.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Accepted jobs between two attempts to go past an observed cap of `ceiling`: several rounds
/// of the cap (at least 20, at most 200), so a steady batch meets few 429s.
pub fn probe_after(ceiling: usize) -> u32 {
    (ceiling as u32).saturating_mul(8).clamp(20, 200)
}

#[derive(Debug)]
struct State {
    limit: usize,
    max: usize,
    granted: usize,
    sent: usize,
    running: usize,
    ceiling: Option<usize>,
    since_limited: u32,
    /// No new permit before then (a `Retry-After`, or a pause when 429s come with nothing
    /// running).
    hold_until: Option<Instant>,
    /// 429s in a row while nothing of this client ran (a rate limit, not the cap).
    idle_refusals: u32,
}

impl State {
    fn held(&self) -> usize {
        self.granted + self.sent + self.running
    }

    fn grow(&mut self) {
        self.idle_refusals = 0;
        self.since_limited = self.since_limited.saturating_add(1);
        let (step, cap) = match self.ceiling {
            None => (2, self.max),
            Some(c) if self.since_limited < probe_after(c) => (1, c),
            Some(c) => (1, c + 1),
        };
        let target = (self.limit + step).min(cap.min(self.max));
        if target > self.limit {
            self.limit = target;
            if self.ceiling.is_some_and(|c| self.limit > c) {
                // Probing past the old cap: restart the count so the next probe waits again.
                self.ceiling = Some(self.limit);
                self.since_limited = 0;
            }
        }
    }
}

/// The adaptive limiter (cheap to clone).
#[derive(Debug, Clone)]
pub struct Limiter {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Granted,
    Sent,
    Running,
}

/// Holds one slot; released on drop.
#[derive(Debug)]
pub struct Permit {
    ticket: Admission,
}

/// The request side of a permit: marks it sent, running, or refused.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    limiter: Limiter,
    stage: Arc<Mutex<Stage>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let stage = *self.ticket.stage();
        let mut s = self.ticket.limiter.lock();
        match stage {
            Stage::Granted => s.granted -= 1,
            Stage::Sent => s.sent -= 1,
            Stage::Running => s.running -= 1,
        }
    }
}

impl Permit {
    /// What the request carries to report its progress.
    pub(crate) fn admission(&self) -> Admission {
        self.ticket.clone()
    }
}

impl Admission {
    fn stage(&self) -> std::sync::MutexGuard<'_, Stage> {
        self.stage.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn moved(&self, to: Stage, s: &mut State) {
        let mut stage = self.stage();
        match *stage {
            Stage::Granted => s.granted -= 1,
            Stage::Sent => s.sent -= 1,
            Stage::Running => s.running -= 1,
        }
        match to {
            Stage::Granted => s.granted += 1,
            Stage::Sent => s.sent += 1,
            Stage::Running => s.running += 1,
        }
        *stage = to;
    }

    /// The request is about to go out: `false` if the limit no longer admits it (hand it back
    /// unsent).
    pub fn send(&self) -> bool {
        let mut s = self.limiter.lock();
        if *self.stage() != Stage::Granted {
            return true;
        }
        if s.running + s.sent >= s.limit {
            return false;
        }
        self.moved(Stage::Sent, &mut s);
        true
    }

    /// Whether the limit would admit it now (without marking it sent).
    pub fn admits(&self) -> bool {
        let s = self.limiter.lock();
        *self.stage() != Stage::Granted || s.running + s.sent < s.limit
    }

    /// Krea accepted the job: it runs until the permit drops.
    pub fn accepted(&self) {
        let mut s = self.limiter.lock();
        self.moved(Stage::Running, &mut s);
        s.grow();
    }

    /// Refused with 429 (nothing created): back to waiting for a slot.
    pub fn refused(&self, retry_after: Option<Duration>) {
        let mut s = self.limiter.lock();
        self.moved(Stage::Granted, &mut s);
        s.limit_to_running(retry_after);
    }
}

impl State {
    /// Krea's cap is what runs now.
    fn limit_to_running(&mut self, retry_after: Option<Duration>) {
        self.limit = self.running.clamp(1, self.max);
        self.ceiling = Some(self.limit);
        self.since_limited = 0;
        // Refused with nothing of ours running: not our cap; back off before trying again.
        let idle = if self.running == 0 {
            self.idle_refusals = self.idle_refusals.saturating_add(1);
            Duration::from_millis(250) * 2u32.saturating_pow(self.idle_refusals.min(7))
        } else {
            self.idle_refusals = 0;
            Duration::ZERO
        };
        let wait = retry_after.unwrap_or_default().max(idle);
        if !wait.is_zero() {
            let until = Instant::now() + wait.min(Duration::from_secs(60));
            self.hold_until = self.hold_until.max(Some(until));
        }
    }
}

impl Limiter {
    /// A limiter starting at `initial` jobs, never above `max`.
    pub fn new(initial: usize, max: usize) -> Limiter {
        let max = max.max(1);
        let state = State {
            limit: initial.clamp(1, max),
            max,
            granted: 0,
            sent: 0,
            running: 0,
            ceiling: None,
            since_limited: 0,
            hold_until: None,
            idle_refusals: 0,
        };
        Limiter {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn permit(&self, stage: Stage) -> Permit {
        Permit {
            ticket: Admission {
                limiter: self.clone(),
                stage: Arc::new(Mutex::new(stage)),
            },
        }
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut s = self.lock();
        if s.hold_until.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        if s.held() >= s.limit {
            return None;
        }
        s.granted += 1;
        drop(s);
        Some(self.permit(Stage::Granted))
    }

    /// A slot for a job that already runs (resumed): counted, whatever the limit.
    pub fn hold(&self) -> Permit {
        self.lock().running += 1;
        self.permit(Stage::Running)
    }

    /// A job was accepted that holds no permit (submitted on its own).
    pub fn accepted(&self) {
        self.lock().grow();
    }

    /// A request holding no permit was refused with 429: what runs is the cap.
    pub fn rate_limited(&self) {
        self.lock().limit_to_running(None);
    }

    /// Current limit and slots held.
    #[cfg(test)]
    pub fn snapshot(&self) -> (usize, usize) {
        let s = self.lock();
        (s.limit, s.held())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(l: &Limiter) -> Permit {
        let p = l.try_acquire().expect("a slot");
        let a = p.admission();
        assert!(a.send());
        a.accepted();
        p
    }

    #[test]
    fn the_window_doubles_each_round_up_to_the_max() {
        let l = Limiter::new(4, 64);
        let mut held = Vec::new();
        for round in 0..5 {
            let free = l.snapshot().0 - l.snapshot().1;
            for _ in 0..free {
                held.push(run(&l));
            }
            assert!(
                held.len() >= 4 << round || held.len() == 64,
                "{}",
                held.len()
            );
        }
        assert_eq!(l.snapshot().0, 64);
    }

    #[test]
    fn a_429_sets_the_limit_to_what_runs_and_holds_back_requests_not_sent_yet() {
        let l = Limiter::new(16, 64);
        let running: Vec<Permit> = (0..8).map(|_| run(&l)).collect();
        let waiting: Vec<Permit> = (0..4).map(|_| l.try_acquire().expect("slot")).collect();
        let refused = l.try_acquire().expect("slot");
        assert!(refused.admission().send());
        refused.admission().refused(None);
        assert_eq!(l.snapshot().0, 8, "eight were running");
        assert!(
            waiting.iter().all(|p| !p.admission().send()),
            "granted before the 429, not admitted after it"
        );
        drop(waiting);
        drop(refused);
        assert!(l.try_acquire().is_none(), "full");
        drop(running);
        assert!(l.try_acquire().is_some());
    }

    #[test]
    fn probing_past_the_cap_waits_for_enough_accepted_jobs() {
        let l = Limiter::new(8, 64);
        let held: Vec<Permit> = (0..8).map(|_| run(&l)).collect();
        let p = l.try_acquire();
        assert!(p.is_none() || l.snapshot().0 > 8);
        let extra = l.try_acquire().expect("grown");
        extra.admission().send();
        extra.admission().refused(None);
        assert_eq!(l.snapshot().0, 8);
        drop(extra);
        drop(held);
        for _ in 0..(probe_after(8) - 1) {
            drop(run(&l));
        }
        assert_eq!(
            l.snapshot().0,
            8,
            "no probing before probe_after(8) accepted jobs"
        );
        drop(run(&l));
        assert_eq!(l.snapshot().0, 9);
    }

    #[test]
    fn retry_after_holds_new_permits_back() {
        let l = Limiter::new(4, 8);
        let p = l.try_acquire().expect("slot");
        p.admission().send();
        p.admission().refused(Some(Duration::from_secs(30)));
        drop(p);
        assert!(l.try_acquire().is_none(), "held for the Retry-After");
    }
}
