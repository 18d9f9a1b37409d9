//! How many jobs a batch keeps pending at once, adapting to Krea's concurrency cap.
//!
//! Krea refuses a generation with 429 when the account already runs its maximum number of
//! jobs, so what matters is jobs in flight, not requests: a batch takes a permit before the
//! POST and gives it back when the job ends. A job submitted on its own holds none.
//!
//! The limit starts small and grows by one per accepted job (slow start) until the first 429.
//! A 429 sets the limit to the number of jobs that were in flight (the cap just observed) and
//! remembers it as a ceiling; growth past a ceiling is tried again only after
//! [`probe_after`] accepted jobs (more for a larger cap), so a steady batch sees few 429s and
//! a 429 that was only a passing burst does not hold a batch back for long.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Accepted jobs between two attempts to go past an observed cap of `ceiling`: a few rounds of
/// the cap (at least 10, at most 100).
pub fn probe_after(ceiling: usize) -> u32 {
    (ceiling as u32).saturating_mul(4).clamp(10, 100)
}

#[derive(Debug)]
struct State {
    limit: usize,
    max: usize,
    in_flight: usize,
    ceiling: Option<usize>,
    since_limited: u32,
}

/// The adaptive limiter (cheap to clone).
#[derive(Debug, Clone)]
pub struct Limiter {
    state: Arc<Mutex<State>>,
    freed: Arc<Notify>,
}

/// Holds one in-flight slot; released on drop.
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.lock().in_flight -= 1;
        self.limiter.freed.notify_waiters();
    }
}

impl Limiter {
    /// A limiter starting at `initial` jobs, never above `max`.
    pub fn new(initial: usize, max: usize) -> Limiter {
        let max = max.max(1);
        let state = State {
            limit: initial.clamp(1, max),
            max,
            in_flight: 0,
            ceiling: None,
            since_limited: 0,
        };
        Limiter {
            state: Arc::new(Mutex::new(state)),
            freed: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot.
    #[cfg(test)]
    pub async fn acquire(&self) -> Permit {
        loop {
            let freed = self.freed.notified();
            {
                let mut s = self.lock();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Permit {
                        limiter: self.clone(),
                    };
                }
            }
            freed.await;
        }
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut s = self.lock();
        (s.in_flight < s.limit).then(|| {
            s.in_flight += 1;
            Permit {
                limiter: self.clone(),
            }
        })
    }

    /// A slot for a job that already runs (resumed): counted, whatever the limit.
    pub fn hold(&self) -> Permit {
        self.lock().in_flight += 1;
        Permit {
            limiter: self.clone(),
        }
    }

    /// A job was accepted.
    pub fn accepted(&self) {
        let mut s = self.lock();
        s.since_limited = s.since_limited.saturating_add(1);
        let cap = match s.ceiling {
            Some(c) if s.since_limited < probe_after(c) => c,
            Some(c) => c + 1,
            None => s.max,
        };
        if s.limit < cap.min(s.max) {
            s.limit += 1;
            if s.ceiling.is_some_and(|c| s.limit > c) {
                // Probing past the old cap: restart the count so the next probe waits again.
                s.ceiling = Some(s.limit);
                s.since_limited = 0;
            }
        }
        drop(s);
        self.freed.notify_waiters();
    }

    /// A job was refused with 429 while `held` (the refused request's permit included) were in
    /// flight.
    pub fn rate_limited(&self) {
        let mut s = self.lock();
        // The refused request held a slot of its own: the cap is what was running besides it.
        let cap = s.in_flight.saturating_sub(1).max(1);
        s.limit = cap.min(s.limit).max(1);
        s.ceiling = Some(s.limit);
        s.since_limited = 0;
    }

    /// Current limit and jobs in flight.
    #[cfg(test)]
    pub fn snapshot(&self) -> (usize, usize) {
        let s = self.lock();
        (s.limit, s.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grows_by_one_per_accepted_job_up_to_the_max() {
        let l = Limiter::new(2, 5);
        for _ in 0..10 {
            let _p = l.acquire().await;
            l.accepted();
        }
        assert_eq!(l.snapshot(), (5, 0));
    }

    #[tokio::test]
    async fn a_429_sets_the_limit_to_what_was_running_and_probing_waits() {
        let l = Limiter::new(16, 64);
        let mut held = Vec::new();
        for _ in 0..9 {
            held.push(l.acquire().await);
        }
        l.rate_limited();
        assert_eq!(l.snapshot().0, 8, "eight others were running");
        held.pop();
        for _ in 0..(probe_after(8) - 1) {
            l.accepted();
        }
        assert_eq!(
            l.snapshot().0,
            8,
            "no probing before probe_after(8) accepted jobs"
        );
        l.accepted();
        assert_eq!(l.snapshot().0, 9);
    }

    #[tokio::test]
    async fn waiters_proceed_when_a_permit_is_released() {
        let l = Limiter::new(1, 1);
        let first = l.acquire().await;
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(first);
        let _second = tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("released")
            .expect("task");
    }
}
