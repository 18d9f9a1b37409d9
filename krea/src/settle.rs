//! Settling unknown outcomes: a paid request was sent and no usable answer came back (a reset,
//! a gateway's 502, a timeout, a kill -9 while it was in flight). Either Krea created the job
//! or it did not; this finds out, so nothing is lost and nothing is paid twice.
//!
//! How: once the request can no longer be in flight (its send time plus the settle grace), list
//! the account's jobs created around its send time; a job there that no journal entry accounts
//! for is adopted (oldest request first, each taking the earliest such job in its window); if
//! there is none, the request created nothing and may be sent again. A client sends its paid
//! requests one at a time, so its unknown outcomes are ordered in time like the jobs they
//! created, and time alone tells which job is whose. Krea's job objects do not carry the
//! request, so a job created in the same moments by another program on the same account could
//! be adopted in its place: that can cost a wrong file, never a second payment.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::jobs::JobQuery;
use crate::client::Krea;
use crate::error::{Error, Result, UnknownOutcome};
use crate::journal::{Entry, FileLock, Unresolved};

/// How far apart the client's clock and Krea's may be, when nothing tells.
const CLOCK_SKEW: Duration = Duration::from_secs(10);
/// Most jobs looked at in one settling.
const MAX_LISTED: usize = 20_000;

/// What settling found for one request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Settlement {
    /// The request created this job (now journaled as submitted: wait for it).
    Adopted {
        /// The request's journal key, when journaled.
        key: Option<Uuid>,
        /// The job.
        job_id: Uuid,
    },
    /// The request created nothing: it may be sent again.
    NotCreated {
        /// The request's journal key, when journaled.
        key: Option<Uuid>,
    },
    /// Still not known (it may still be in flight, or the jobs could not be listed): do not
    /// send it again yet.
    StillUnknown {
        /// The request's journal key, when journaled.
        key: Option<Uuid>,
        /// Why.
        reason: String,
    },
}

impl Settlement {
    /// The journal key of the request it is about.
    pub fn key(&self) -> Option<Uuid> {
        match self {
            Settlement::Adopted { key, .. }
            | Settlement::NotCreated { key }
            | Settlement::StillUnknown { key, .. } => *key,
        }
    }
}

/// One request to settle.
struct Pending {
    key: Option<Uuid>,
    /// When it was written down (before its first attempt).
    sent_at: DateTime<Utc>,
    /// When its last attempt went out, if the client lived to note it.
    last_sent: Option<DateTime<Utc>>,
    /// When the client gave up on it, if it lived to note it.
    given_up_at: Option<DateTime<Utc>>,
    /// Whether Krea may still have been working on it then (the client timed out).
    in_flight: bool,
    entry: Option<Unresolved>,
}

/// When a request can no longer create a job, and when (client clock) its job can have been
/// created: in `[from, to]`.
struct Window {
    ready_at: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// Krea's clock minus ours lies in `[lo, hi]`: from exchanges whose job the journal has, each
/// job having been created after its request was written down and before its answer was.
fn clock_offset(
    exchanges: &[(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)],
) -> (chrono::Duration, chrono::Duration) {
    let lo = exchanges
        .iter()
        .map(|(_, answered, created)| *created - *answered)
        .max();
    let hi = exchanges
        .iter()
        .map(|(sent, _, created)| *created - *sent)
        .min();
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
        // None measured, or the clocks drifted: any sane difference.
        _ => (-to_chrono(CLOCK_SKEW), to_chrono(CLOCK_SKEW)),
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Krea {
    /// Settles one unknown outcome (from [`Error::OutcomeUnknown`]). With a journal, the
    /// answer is written there too (an adopted job then resumes like any other).
    pub async fn settle(&self, outcome: &UnknownOutcome) -> Result<Settlement> {
        if let Some(job_id) = outcome.job_id {
            return Ok(Settlement::Adopted { key: None, job_id });
        }
        // The journal's own entry for this request, if it has one, so the answer is recorded.
        let entry = match self.journal() {
            Some(j) => j.unresolved()?.into_iter().find(|u| {
                u.fingerprint == outcome.fingerprint
                    && (u.sent_at - outcome.sent_at).num_seconds().abs() <= 1
            }),
            None => None,
        };
        let pending = vec![Pending {
            key: entry.as_ref().map(|e| e.key),
            sent_at: entry.as_ref().map_or(outcome.sent_at, |e| e.sent_at),
            last_sent: Some(outcome.sent_at),
            given_up_at: entry.as_ref().and_then(|e| e.given_up_at),
            // Without the journal's note, assume the worst: it may still have been in flight.
            in_flight: entry.as_ref().is_none_or(|e| e.in_flight),
            entry,
        }];
        let mut out = self.settle_pending(pending).await?;
        Ok(out.pop().unwrap_or(Settlement::StillUnknown {
            key: None,
            reason: "nothing to settle".into(),
        }))
    }

    /// Settles every request the journal holds as sent with an unknown outcome (oldest first).
    /// One settling at a time per journal: a second one waits for the first.
    pub async fn settle_all(&self) -> Result<Vec<Settlement>> {
        let Some(journal) = self.journal() else {
            return Ok(Vec::new());
        };
        let lock_path = journal.path().with_extension("settle.lock");
        let _lock = tokio::task::spawn_blocking(move || FileLock::acquire(&lock_path, true))
            .await
            .map_err(|e| Error::Config(format!("settling stopped: {e}")))?
            .map_err(|e| Error::io(journal.path(), e))?;
        let unresolved = journal.unresolved()?;
        if unresolved.is_empty() {
            return Ok(Vec::new());
        }
        tracing::info!(
            count = unresolved.len(),
            "settling requests with unknown outcomes"
        );
        let pending = unresolved
            .into_iter()
            .map(|u| Pending {
                key: Some(u.key),
                sent_at: u.sent_at,
                last_sent: u.last_sent,
                given_up_at: u.given_up_at,
                in_flight: u.in_flight,
                entry: Some(u),
            })
            .collect();
        self.settle_pending(pending).await
    }

    /// Where `p`'s job can be, and when that is final:
    /// - given up after an answer or a reset: the exchange was over, so the job (if any) was
    ///   created between the last attempt and the giving up;
    /// - given up on a timeout: Krea may have gone on; created within the grace of the last
    ///   attempt;
    /// - its client died with it in flight: sent before the next request written down after it
    ///   (one at a time per client; a later run starts after the earlier one ended), within the
    ///   call timeout of being written, before this settling began; created within the grace.
    fn window(&self, p: &Pending, started: DateTime<Utc>) -> Window {
        let grace = to_chrono(self.inner.settle_grace);
        match (p.last_sent, p.given_up_at) {
            (Some(last), Some(gave_up)) if !p.in_flight => Window {
                ready_at: gave_up,
                from: last,
                to: gave_up,
            },
            (Some(last), _) => Window {
                ready_at: last + grace,
                from: last,
                to: last + grace,
            },
            (None, _) => {
                let next = self.journal().and_then(|j| j.next_sent_after(p.sent_at));
                let sent_by = [
                    Some(p.sent_at + to_chrono(self.inner.call_timeout)),
                    next,
                    Some(started),
                ]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(started);
                Window {
                    ready_at: sent_by + grace,
                    from: p.sent_at,
                    to: sent_by + grace,
                }
            }
        }
    }

    async fn settle_pending(&self, mut pending: Vec<Pending>) -> Result<Vec<Settlement>> {
        pending.sort_by_key(|p| p.sent_at);
        let started = Utc::now();
        let windows: Vec<Window> = pending.iter().map(|p| self.window(p, started)).collect();
        // Wait until none can still be in flight (as far as the deadline allows).
        let ready_at = windows.iter().map(|w| w.ready_at).max().unwrap_or(started);
        let wait = (ready_at - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "waiting for requests that may still be in flight"
            );
        }
        let limit = self.deadline.unwrap_or_else(|| Instant::now() + wait);
        tokio::time::sleep_until((Instant::now() + wait).min(limit)).await;
        let now = Utc::now();
        let oldest = pending.first().map_or(now, |p| p.sent_at) - to_chrono(CLOCK_SKEW * 2);
        let known: HashSet<Uuid> = self.journal().map(|j| j.known_jobs()).unwrap_or_default();
        let mut candidates: Vec<(DateTime<Utc>, Uuid)> = Vec::new();
        // Krea's clock against ours, from jobs whose exchange the journal has.
        let mut exchanges = Vec::new();
        let mut listing = std::pin::pin!(self.jobs().list(JobQuery::all().page_size(1000)));
        let mut seen = 0;
        let listed: Result<()> = async {
            while let Some(job) = listing.next().await {
                let job = job?;
                seen += 1;
                if job.created_at < oldest || seen > MAX_LISTED {
                    break;
                }
                if !known.contains(&job.id) {
                    candidates.push((job.created_at, job.id));
                } else if let Some((sent, answered)) =
                    self.journal().and_then(|j| j.exchange(job.id))
                {
                    exchanges.push((sent, answered, job.created_at));
                }
            }
            Ok(())
        }
        .await;
        let (offset_lo, offset_hi) = clock_offset(&exchanges);
        let mut out = Vec::new();
        let mut claimed: HashSet<Uuid> = HashSet::new();
        for (p, w) in pending.iter().zip(&windows) {
            let settlement = if let Err(e) = &listed {
                Settlement::StillUnknown {
                    key: p.key,
                    reason: format!("the jobs could not be listed: {e}"),
                }
            } else {
                let lo = w.from + offset_lo;
                let hi = w.to + offset_hi;
                // The earliest unclaimed job in the window: requests and jobs pair up in order.
                let nearest = candidates
                    .iter()
                    .filter(|(at, id)| *at >= lo && *at <= hi && !claimed.contains(id))
                    .min_by_key(|(at, _)| *at);
                match nearest {
                    Some((_, id)) => {
                        claimed.insert(*id);
                        Settlement::Adopted {
                            key: p.key,
                            job_id: *id,
                        }
                    }
                    None if now >= w.ready_at => Settlement::NotCreated { key: p.key },
                    None => Settlement::StillUnknown {
                        key: p.key,
                        reason: "the request may still be in flight".into(),
                    },
                }
            };
            self.record_settlement(p, &settlement)?;
            tracing::info!(settlement = ?settlement, "settled");
            out.push(settlement);
        }
        Ok(out)
    }

    fn record_settlement(&self, p: &Pending, s: &Settlement) -> Result<()> {
        let (Some(journal), Some(entry)) = (self.journal(), &p.entry) else {
            return Ok(());
        };
        let line = match s {
            Settlement::Adopted { job_id, .. } => Entry::Submitted {
                key: Some(entry.key),
                at: Utc::now(),
                scope: journal.scope().clone(),
                job_id: *job_id,
                model: entry.model.clone(),
                request: entry.request.clone(),
                output: entry.output.clone(),
            },
            Settlement::NotCreated { .. } => Entry::NotCreated {
                key: entry.key,
                at: Utc::now(),
                reason: "settled: no job was created".into(),
            },
            Settlement::StillUnknown { .. } => return Ok(()),
        };
        journal.record(&line)
    }
}
