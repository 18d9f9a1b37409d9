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
//! and remembers it as a ceiling; growth past it is tried again (one job more) only after
//! [`probe_after`] accepted jobs. A probe that is accepted proves the ceiling stale (the
//! account's other programs ended jobs, or the 429 was a gateway's and not the cap): it is
//! dropped and the window doubles again, so one stray 429 does not hold a batch at a few jobs
//! for the rest of its run. A probe refused keeps the ceiling, and costs one 429 per
//! [`probe_after`] jobs. A 429 with a `Retry-After` (a gateway's rate limit: Krea's cap
//! answer has none), or while none of this client's jobs runs (the account's other programs),
//! sets no ceiling: it is a pause (growing while 429s come with nothing running) and the limit
//! set to what runs, growing again from there.
//!
//! A granted request re-checks the limit as it is about to go out: one the limit no longer
//! admits is handed back unsent, so a lowered limit does not cost a 429 per request already
//! waiting to go.

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
        self.limit = self.limit.max((self.limit + step).min(cap.min(self.max)));
    }

    /// A job was accepted with `running` jobs of this client running: more than the ceiling
    /// means the cap moved (another program on the account ended its jobs) or the 429 that
    /// set it was not the cap (a gateway's burst). Either way the ceiling no longer holds,
    /// and the window doubles again until the next 429.
    fn proven(&mut self) {
        if self.ceiling.is_some_and(|c| self.running > c) {
            self.ceiling = None;
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
        s.proven();
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
        // Krea's cap answer carries no `Retry-After`; one that does is a rate limit (a
        // gateway's), which asks for time, not fewer jobs. Refused with nothing of ours
        // running measures the account's other programs, not our cap. Neither sets a ceiling:
        // after the pause the window grows as before, and what was learned of the cap stands.
        if self.running > 0 && retry_after.is_none() {
            self.ceiling = Some(self.limit);
            self.since_limited = 0;
        }
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

    /// Until when no new permit is given (a `Retry-After`, or a pause after 429s with nothing
    /// running); `None` when none is held back.
    pub fn held_until(&self) -> Option<Instant> {
        self.lock().hold_until.filter(|t| Instant::now() < *t)
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

    /// `running` jobs run while one more is refused with a 429; then they all end.
    fn refused_with(l: &Limiter, running: usize, retry_after: Option<Duration>) {
        let held: Vec<Permit> = (0..running).map(|_| run(l)).collect();
        let refused = l.try_acquire().expect("a slot");
        assert!(refused.admission().send());
        refused.admission().refused(retry_after);
        drop(refused);
        drop(held);
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
    fn an_accepted_probe_drops_the_ceiling_and_a_refused_one_keeps_it() {
        // A stray 429 with two jobs running: the ceiling is 2.
        let l = Limiter::new(16, 64);
        refused_with(&l, 2, None);
        assert_eq!(l.snapshot().0, 2);
        for _ in 0..probe_after(2) {
            drop(run(&l));
        }
        assert_eq!(l.snapshot().0, 3, "the probe");
        // The probe refused with two running: back to 2, and the next probe waits again.
        refused_with(&l, 2, None);
        assert_eq!(l.snapshot().0, 2);
        drop(run(&l));
        assert_eq!(l.snapshot().0, 2, "the ceiling held");
        for _ in 0..probe_after(2) {
            drop(run(&l));
        }
        // Accepted: three ran at once, so 2 was not the cap; the window doubles again.
        let mut held: Vec<Permit> = (0..3).map(|_| run(&l)).collect();
        assert_eq!(l.snapshot().1, 3);
        let before = l.snapshot().0;
        assert!(before > 3, "the ceiling is gone: {before}");
        for _ in 0..before - 3 {
            held.push(run(&l));
        }
        assert!(
            l.snapshot().0 >= 2 * before - 3,
            "two more per accepted job: {} from {before}",
            l.snapshot().0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_or_a_429_with_nothing_running_is_a_pause_not_a_cap() {
        let grown_from_4 = |retry_after: Option<Duration>, running: usize| {
            let l = Limiter::new(4, 64);
            refused_with(&l, running, retry_after);
            assert_eq!(l.snapshot().0, running.max(1), "what runs, for now");
            (l.clone(), move || {
                let more: Vec<Permit> = (0..4).map(|_| run(&l)).collect();
                let limit = l.snapshot().0;
                drop(more);
                limit
            })
        };
        let (l, grow) = grown_from_4(Some(Duration::from_millis(100)), 4);
        assert!(l.try_acquire().is_none(), "held for the Retry-After");
        tokio::time::advance(Duration::from_millis(101)).await;
        assert_eq!(grow(), 12, "two more per accepted job: no ceiling");
        let (l, grow) = grown_from_4(None, 0);
        assert!(l.try_acquire().is_none(), "a pause");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(grow() > 4, "no ceiling at one job");
        // Krea's cap answer: what ran is the ceiling.
        let (_, grow) = grown_from_4(None, 4);
        assert_eq!(grow(), 4);
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
