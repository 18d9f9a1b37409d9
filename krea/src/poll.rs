//! When to look at a job again: a policy as plain data, so strategies can run side by side.
//!
//! The default polls first near the job's expected duration (what this client has observed for
//! the model, else the catalog's "Average Completion Time", else a per-kind default), then at
//! short intervals that grow, with jitter, toward a cap. That finds a completion within about a
//! second while spending few requests before it.

use std::time::Duration;

use krea_gen::catalog::{Kind, ModelSpec};

/// When the first poll happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FirstPoll {
    /// At this fraction of the expected duration (lower when the expectation is a guess).
    Expected {
        /// Fraction of a well-founded expectation (catalog time or observed durations).
        fraction: f64,
        /// Fraction of a per-kind guess.
        guess_fraction: f64,
    },
    /// After a fixed delay.
    After(Duration),
}

/// How [`crate::JobHandle::wait`] polls. Built from [`PollPolicy::default`] or
/// [`PollPolicy::fixed`] and the setters (fields may be added; each can also be set directly).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PollPolicy {
    /// When the first poll happens.
    pub first: FirstPoll,
    /// The interval after the first poll.
    pub interval: Duration,
    /// Each interval is the previous times this (1.0: fixed).
    pub growth: f64,
    /// Longest interval.
    pub max_interval: Duration,
    /// Random spread of each delay, 0.0..1.0 (0.1: +-10%).
    pub jitter: f64,
    /// Give up after this long ([`crate::Error::Timeout`], the job id kept); `None`: 10 min for
    /// images and enhancements, 30 min for videos.
    pub deadline: Option<Duration>,
    /// Multiplies every duration above and every expected duration. 1.0 against Krea; a
    /// simulator running 100x faster than real time pairs with 0.01.
    pub time_scale: f64,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first: FirstPoll::Expected {
                fraction: 0.8,
                guess_fraction: 0.4,
            },
            interval: Duration::from_millis(500),
            growth: 1.3,
            max_interval: Duration::from_secs(2),
            jitter: 0.1,
            deadline: None,
            time_scale: 1.0,
        }
    }
}

/// What the client expects a job to take.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Expectation {
    /// Seconds, unscaled.
    pub seconds: f64,
    /// From observations or the catalog, rather than a per-kind guess.
    pub founded: bool,
}

impl Expectation {
    /// A job expected to take `seconds` (unscaled); `founded` when that comes from
    /// observations or the catalog rather than a guess.
    pub fn new(seconds: f64, founded: bool) -> Expectation {
        Expectation { seconds, founded }
    }
}

/// The per-kind guess when nothing better is known (seconds).
pub fn kind_default(kind: Kind) -> f64 {
    match kind {
        Kind::Image => 20.0,
        Kind::Enhance => 30.0,
        Kind::Video => 120.0,
    }
}

impl PollPolicy {
    /// Polls every `interval`, first after one `interval` (the skill polls every 6 s; Krea's
    /// documentation every 2 s).
    pub fn fixed(interval: Duration) -> PollPolicy {
        PollPolicy {
            first: FirstPoll::After(interval),
            interval,
            growth: 1.0,
            max_interval: interval,
            jitter: 0.0,
            deadline: None,
            time_scale: 1.0,
        }
    }

    /// The same policy with every duration multiplied by `scale`.
    pub fn scaled(mut self, scale: f64) -> PollPolicy {
        self.time_scale = scale;
        self
    }

    /// The same policy with this deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> PollPolicy {
        self.deadline = Some(deadline);
        self
    }

    fn scale(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }

    /// How long to wait for a job of `model` (scaled).
    pub fn deadline_for(&self, kind: Kind) -> Duration {
        let unscaled = self.deadline.unwrap_or(match kind {
            Kind::Video => Duration::from_secs(30 * 60),
            Kind::Image | Kind::Enhance => Duration::from_secs(10 * 60),
        });
        self.scale(unscaled)
    }

    /// The delays between submission and each poll, in order (scaled, jittered).
    pub fn schedule(&self, expected: Expectation) -> PollSchedule {
        let first = match self.first {
            FirstPoll::Expected {
                fraction,
                guess_fraction,
            } => {
                let f = if expected.founded {
                    fraction
                } else {
                    guess_fraction
                };
                Duration::from_secs_f64((expected.seconds * f).max(0.0))
            }
            FirstPoll::After(d) => d,
        };
        PollSchedule {
            policy: self.clone(),
            next: Some(self.scale(first)),
            interval: self.scale(self.interval),
        }
    }
}

/// The successive delays between polls of one job under a [`PollPolicy`]: the first from the
/// job's expected duration, then growing by the policy's factor up to its longest interval,
/// each jittered. Also an endless iterator of those delays.
///
/// ```
/// use krea::{Expectation, PollPolicy};
///
/// let expected = Expectation::new(20.0, true);
/// let mut delays = PollPolicy::default().schedule(expected);
/// let first = delays.upcoming();
/// assert!(first > std::time::Duration::ZERO);
/// assert_eq!(delays.by_ref().take(3).count(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct PollSchedule {
    policy: PollPolicy,
    next: Option<Duration>,
    interval: Duration,
}

impl PollSchedule {
    /// The next delay (with jitter).
    pub fn next_delay(&mut self) -> Duration {
        let base = match self.next.take() {
            Some(first) => first,
            None => {
                let d = self.interval;
                let cap = self.policy.scale(self.policy.max_interval);
                self.interval = self.interval.mul_f64(self.policy.growth.max(1.0)).min(cap);
                d
            }
        };
        let j = self.policy.jitter.clamp(0.0, 0.9);
        if j == 0.0 {
            base
        } else {
            base.mul_f64(1.0 + j * (2.0 * fastrand::f64() - 1.0))
        }
    }

    /// The delay `next_delay` would give next, without jitter.
    pub fn upcoming(&self) -> Duration {
        self.next.unwrap_or(self.interval)
    }
}

impl Iterator for PollSchedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

/// What the catalog says about a model's duration.
pub fn catalog_expectation(model: &ModelSpec) -> Expectation {
    match model.typical_seconds {
        Some(seconds) => Expectation {
            seconds,
            founded: true,
        },
        None => Expectation {
            seconds: kind_default(model.kind),
            founded: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> PollPolicy {
        PollPolicy {
            jitter: 0.0,
            ..PollPolicy::default()
        }
    }

    #[test]
    fn the_default_polls_first_near_the_expected_time_then_at_growing_intervals() {
        let mut s = no_jitter().schedule(Expectation {
            seconds: 20.0,
            founded: true,
        });
        let delays: Vec<f64> = (0..8).map(|_| s.next_delay().as_secs_f64()).collect();
        assert_eq!(delays[0], 16.0);
        assert_eq!(delays[1], 0.5);
        assert!((delays[2] - 0.65).abs() < 1e-9);
        assert!(delays.windows(2).skip(1).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().expect("last"), 2.0, "capped");
    }

    #[test]
    fn a_guess_polls_earlier() {
        let mut s = no_jitter().schedule(Expectation {
            seconds: 120.0,
            founded: false,
        });
        assert_eq!(s.next_delay(), Duration::from_secs(48));
    }

    #[test]
    fn fixed_polls_every_interval_and_scaling_shrinks_everything() {
        let mut s = PollPolicy::fixed(Duration::from_secs(6)).schedule(Expectation {
            seconds: 30.0,
            founded: true,
        });
        assert!((0..5).all(|_| s.next_delay() == Duration::from_secs(6)));
        let mut fast = PollPolicy::fixed(Duration::from_secs(2))
            .scaled(0.01)
            .schedule(Expectation {
                seconds: 30.0,
                founded: true,
            });
        assert_eq!(fast.next_delay(), Duration::from_millis(20));
        assert_eq!(
            PollPolicy::default().scaled(0.01).deadline_for(Kind::Video),
            Duration::from_secs(18)
        );
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let mut s = PollPolicy::fixed(Duration::from_secs(10)).schedule(Expectation {
            seconds: 1.0,
            founded: true,
        });
        s.policy.jitter = 0.1;
        for _ in 0..100 {
            let d = s.next_delay().as_secs_f64();
            assert!((9.0..=11.0).contains(&d), "{d}");
        }
    }
}
