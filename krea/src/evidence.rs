//! What the client knows of Krea's clock, measured, never assumed: where a job created by a
//! request sent at a given instant (client clock) carries its `created_at` stamp (Krea's clock).
//!
//! Two kinds of samples:
//! - **Exchanges**: a paid request whose answer named its job. The job was stamped between the
//!   send and the answer, so `created_at - sent` (the *lag*) bounds where a job of a later
//!   request is stamped, and `created_at` within `[sent, answered]` bounds the offset between
//!   the clocks. This is the clock that stamps jobs, the one settling needs.
//! - **`Date` headers** of any answer: the offset of the clock that wrote them (usually the same
//!   machine room), in whole seconds. Used only while no exchange has been seen.
//!
//! Stamps may be in whole seconds, rounded or truncated: a stamp's precision is read off the
//! stamp itself (no fraction: 1 s; whole milliseconds: 1 ms) and every bound is widened by it.
//! Offsets of any size are measured the same way: nothing assumes the clocks agree.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};

/// Exchanges kept (the newest): enough to see the spread, recent enough to follow a change.
const EXCHANGES: usize = 128;
/// `Date` samples kept.
const DATES: usize = 32;
/// How far a `Date` header's clock may be from the clock that stamps jobs (a gateway in front
/// of the backend), when only `Date` headers are known.
const DATE_MARGIN: TimeDelta = TimeDelta::seconds(2);
/// The least margin around a measured lag: scheduling on a busy client moves a send by a few
/// milliseconds that the samples may not have caught yet.
const MIN_MARGIN: TimeDelta = TimeDelta::milliseconds(1);

/// How finely a stamp was written, from the stamp itself: no fraction is whole seconds, a
/// whole number of milliseconds is milliseconds. (A finer stamp that happens to fall on a
/// boundary only widens a window.)
pub(crate) fn precision(stamp: DateTime<Utc>) -> TimeDelta {
    let nanos = stamp.nanosecond() % 1_000_000_000;
    if nanos == 0 {
        TimeDelta::seconds(1)
    } else if nanos.is_multiple_of(1_000_000) {
        TimeDelta::milliseconds(1)
    } else {
        TimeDelta::microseconds(1)
    }
}

/// A paid request whose answer named its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exchange {
    /// When the attempt that created the job went out (client clock).
    pub sent: DateTime<Utc>,
    /// When its answer arrived (client clock).
    pub answered: DateTime<Utc>,
    /// The job's stamp (Krea's clock).
    pub created: DateTime<Utc>,
}

impl Exchange {
    /// `created - sent`.
    fn lag(&self) -> TimeDelta {
        self.created - self.sent
    }
}

/// Bounds on Krea's clock minus ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offset {
    pub lo: TimeDelta,
    pub hi: TimeDelta,
}

/// Where, relative to its send instant, a request's job is stamped when Krea creates it as
/// usual: `[lo, hi]` in stamps (a coarse stamp compared as written), margin included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lag {
    pub lo: TimeDelta,
    pub hi: TimeDelta,
    /// The coarsest precision among the stamps it was measured from.
    pub precision: TimeDelta,
}

impl Lag {
    /// How far apart two sends must be for their usual windows not to overlap.
    pub fn width(&self) -> TimeDelta {
        self.hi - self.lo
    }
}

/// The samples, shared by a client's clones.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    inner: Mutex<Samples>,
}

#[derive(Debug, Default, Clone)]
struct Samples {
    exchanges: VecDeque<Exchange>,
    dates: VecDeque<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>,
}

impl Evidence {
    fn lock(&self) -> std::sync::MutexGuard<'_, Samples> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes an exchange (from an answer, or read back from the journal).
    pub fn exchange(&self, e: Exchange) {
        if e.answered < e.sent {
            return;
        }
        let mut s = self.lock();
        if s.exchanges.len() == EXCHANGES {
            s.exchanges.pop_front();
        }
        s.exchanges.push_back(e);
    }

    /// Notes the `Date` header of an answer to a request sent at `sent` and answered at
    /// `answered` (client clock).
    pub fn date(&self, sent: DateTime<Utc>, answered: DateTime<Utc>, date: &str) {
        let Ok(at) = DateTime::parse_from_rfc2822(date) else {
            return;
        };
        let mut s = self.lock();
        if s.dates.len() == DATES {
            s.dates.pop_front();
        }
        s.dates.push_back((sent, answered, at.with_timezone(&Utc)));
    }

    /// Where a usual job of a request is stamped, relative to its send; `None` before the first
    /// exchange. Stamps written to a precision `p` (truncated or rounded) spread over `p` as
    /// the send's phase varies: a few samples at similar phases are widened to the whole `p`
    /// they may still cover (`[max - p, min + p]`).
    pub fn lag(&self) -> Option<Lag> {
        let s = self.lock();
        let min = s.exchanges.iter().map(Exchange::lag).min()?;
        let max = s.exchanges.iter().map(Exchange::lag).max()?;
        let p = s
            .exchanges
            .iter()
            .map(|e| precision(e.created))
            .max()
            .unwrap_or_default();
        let (lo, hi) = (min.min(max - p), max.max(min + p));
        let margin = MIN_MARGIN.max((max - min) / 4);
        Some(Lag {
            lo: lo - margin,
            hi: hi + margin,
            precision: p,
        })
    }

    /// Krea's clock minus ours, as far as the samples bound it; `None` when nothing tells.
    pub fn offset(&self) -> Option<Offset> {
        let s = self.lock();
        if !s.exchanges.is_empty() {
            // Stamped after the send and before the answer: within [created - answered,
            // created - sent], widened by the stamp's precision (rounded or truncated).
            let bound = |e: &Exchange| {
                let p = precision(e.created);
                (e.created - e.answered - p, e.created - e.sent + p)
            };
            return Some(intersect(s.exchanges.iter().map(bound)));
        }
        if s.dates.is_empty() {
            return None;
        }
        // A `Date` is written in whole seconds, between the send and the answer.
        let bound = |(sent, answered, date): &(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)| {
            let p = TimeDelta::seconds(1);
            (
                *date - *answered - p - DATE_MARGIN,
                *date - *sent + p + DATE_MARGIN,
            )
        };
        Some(intersect(s.dates.iter().map(bound)))
    }

    /// How far apart paid sends go: wide enough that the usual windows of two requests do not
    /// overlap, as measured, within `[floor, cap]` (before the first exchange: `cap`).
    pub fn spacing(&self, floor: Duration, cap: Duration) -> Duration {
        match self.lag() {
            Some(lag) => lag.width().to_std().unwrap_or(cap).clamp(floor, cap),
            None => cap,
        }
    }

    /// What the samples say, for logs and `krea doctor`.
    pub fn describe(&self) -> String {
        let exchanges = self.lock().exchanges.len();
        match (self.offset(), self.lag()) {
            (Some(o), Some(l)) => format!(
                "Krea's clock is {:+.3}..{:+.3} s from this one; its jobs are stamped {:.3}..{:.3} s after they are sent ({exchanges} exchanges)",
                secs(o.lo),
                secs(o.hi),
                secs(l.lo),
                secs(l.hi)
            ),
            (Some(o), None) => format!(
                "Krea's clock is {:+.1}..{:+.1} s from this one (from Date headers)",
                secs(o.lo),
                secs(o.hi)
            ),
            _ => "nothing is known of Krea's clock yet".into(),
        }
    }
}

fn secs(d: TimeDelta) -> f64 {
    d.num_microseconds().map_or(f64::NAN, |us| us as f64 / 1e6)
}

/// The intersection of `[lo, hi]` bounds; where they contradict each other (a clock stepped,
/// or samples from two clocks), the newest bound, widened by a second, stands alone.
fn intersect(bounds: impl Iterator<Item = (TimeDelta, TimeDelta)> + Clone) -> Offset {
    let lo = bounds.clone().map(|b| b.0).max().unwrap_or_default();
    let hi = bounds.clone().map(|b| b.1).min().unwrap_or_default();
    if lo <= hi {
        return Offset { lo, hi };
    }
    let (lo, hi) = bounds.last().unwrap_or_default();
    Offset {
        lo: lo - TimeDelta::seconds(1),
        hi: hi + TimeDelta::seconds(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + ms).unwrap_or_default()
    }

    #[test]
    fn the_precision_of_a_stamp_is_read_off_the_stamp() {
        assert_eq!(precision(at(0)), TimeDelta::seconds(1));
        assert_eq!(precision(at(250)), TimeDelta::milliseconds(1));
        assert_eq!(
            precision(at(250) + TimeDelta::microseconds(7)),
            TimeDelta::microseconds(1)
        );
    }

    #[test]
    fn exchanges_measure_any_offset_and_the_lag() {
        let e = Evidence::default();
        // Krea's clock 30 s ahead; jobs stamped 150 ms after the send, answers 300 ms after it.
        for i in 0..20 {
            let sent = at(i * 37 + 1);
            let created = sent + TimeDelta::milliseconds(30_150 + i % 3);
            e.exchange(Exchange {
                sent,
                answered: sent + TimeDelta::milliseconds(300),
                created,
            });
        }
        let o = e.offset().expect("measured");
        assert!(o.lo <= TimeDelta::milliseconds(30_000) && o.hi >= TimeDelta::milliseconds(30_000));
        assert!(o.hi - o.lo < TimeDelta::milliseconds(400), "{o:?}");
        let lag = e.lag().expect("measured");
        assert!(
            lag.lo <= TimeDelta::milliseconds(30_150) && lag.hi >= TimeDelta::milliseconds(30_152)
        );
        assert!(lag.width() < TimeDelta::milliseconds(20), "{lag:?}");
        assert!(
            e.spacing(Duration::from_millis(1), Duration::from_millis(250))
                < Duration::from_millis(20)
        );
    }

    #[test]
    fn whole_second_stamps_widen_the_windows_by_a_second() {
        let e = Evidence::default();
        for i in 0..10 {
            let sent = at(i * 100 + 10);
            let exact = sent + TimeDelta::milliseconds(50);
            // Truncated to the second.
            let created = DateTime::<Utc>::from_timestamp(exact.timestamp(), 0).unwrap_or_default();
            e.exchange(Exchange {
                sent,
                answered: sent + TimeDelta::milliseconds(100),
                created,
            });
        }
        let lag = e.lag().expect("measured");
        assert!(lag.width() >= TimeDelta::seconds(1), "{lag:?}");
        assert!(lag.width() <= TimeDelta::milliseconds(2_300), "{lag:?}");
    }

    #[test]
    fn date_headers_bound_the_offset_before_any_exchange() {
        let e = Evidence::default();
        assert!(e.offset().is_none());
        // Real time 2027-01-15T08:00:00.500Z, the server 45 s ahead.
        let sent = DateTime::parse_from_rfc3339("2027-01-15T08:00:00.500Z")
            .expect("time")
            .with_timezone(&Utc);
        e.date(
            sent,
            sent + TimeDelta::milliseconds(20),
            "Fri, 15 Jan 2027 08:00:45 GMT",
        );
        let o = e.offset().expect("from the Date header");
        assert!(
            o.lo <= TimeDelta::seconds(45) && o.hi >= TimeDelta::seconds(45),
            "{o:?}"
        );
        assert!(o.hi - o.lo <= TimeDelta::seconds(7), "{o:?}");
    }
}
