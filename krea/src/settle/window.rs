//! Where on Krea's clock a lost answer's job can be, from what the client measured, and when
//! (on the client's clock) every job it could have created is listed.

use chrono::{DateTime, TimeDelta, Utc};

use super::matching::Span;
use crate::evidence::{Lag, Offset};

/// A lost answer's times (client clock).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    /// When its last attempt went out (written down just before).
    pub sent: DateTime<Utc>,
    /// When its exchange ended, as far as known: its answer or giving up; for a client that
    /// died with it in flight, when it can have ended at the latest.
    pub ended: DateTime<Utc>,
}

/// How long after the end of an exchange a job can be created and listed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grace {
    pub commit: TimeDelta,
    pub listing: TimeDelta,
}

/// The windows of one lost answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub usual: Option<Span>,
    pub possible: Option<Span>,
    /// From then on (client clock) its job, if any, is listed.
    pub ready_at: DateTime<Utc>,
}

pub(crate) fn windows(t: Times, lag: Option<Lag>, offset: Option<Offset>, grace: Grace) -> Windows {
    let usual = match (lag, offset) {
        (Some(lag), _) => Some(Span {
            lo: t.sent + lag.lo,
            hi: t.sent + lag.hi,
        }),
        // Only the clocks' offset: anywhere in the exchange.
        (None, Some(o)) => Some(Span {
            lo: t.sent + o.lo,
            hi: t.ended.max(t.sent) + o.hi,
        }),
        (None, None) => None,
    };
    // Never before it was sent; up to the grace after the exchange ended.
    let possible = offset.map(|o| Span {
        lo: t.sent + o.lo,
        hi: t.ended.max(t.sent) + o.hi + grace.commit,
    });
    Windows {
        usual,
        possible,
        ready_at: t.ended.max(t.sent) + grace.commit + grace.listing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_possible_window_covers_a_late_commit_on_a_skewed_clock() {
        let sent = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let t = Times {
            sent,
            ended: sent + TimeDelta::milliseconds(300),
        };
        let offset = Offset {
            lo: TimeDelta::seconds(30),
            hi: TimeDelta::milliseconds(30_300),
        };
        let grace = Grace {
            commit: TimeDelta::seconds(10),
            listing: TimeDelta::seconds(5),
        };
        let w = windows(t, None, Some(offset), grace);
        let late = sent + TimeDelta::milliseconds(30_000 + 2_300);
        let p = w.possible.expect("bounded");
        assert!(p.lo <= late && late <= p.hi, "{p:?}");
        assert_eq!(w.ready_at, t.ended + TimeDelta::seconds(15));
        assert!(windows(t, None, None, grace).possible.is_none());
    }
}
