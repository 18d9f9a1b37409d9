//! Settling lost answers on evidence. A paid request was sent and no usable answer came back
//! (a reset, a gateway's 502 or 504, a timeout, a `kill -9` while it was in flight): Krea may
//! have created the job, even after the error, and its listing may show it late. Krea has no
//! idempotency key and its jobs do not carry the request, so this finds out from the one
//! evidence there is, the jobs' `created_at` stamps, read against what the client measured of
//! Krea's clock ([`crate::evidence`]):
//!
//! - a job stamped where this request's jobs are usually stamped (the measured send-to-stamp
//!   lag; sends are paced so that no two requests share it) is adopted as soon as it is listed;
//! - otherwise the request waits until every job it could have created is listed (the settle
//!   grace after its exchange ended, for a late commit, plus the listing lag), then the jobs
//!   no journal entry claims are matched to the lost answers around them, in time order; a
//!   request left without a job created nothing and may be sent again;
//! - a success answer proves the job exists: such a request is never sent again;
//! - doubt is stated, never hidden: several lost answers sharing their windows, or another
//!   program's jobs in sight, make an adoption or a "not created" *uncertain*, recorded with
//!   the reason; never more requests are deemed not created than the jobs provably missing;
//! - a request another running client still waits on, or lost and still settles, is left to
//!   it.
//!
//! What stays impossible: telling this client's job from one another program created in the
//! same instant on the same account, when that program shares no journal with it.

mod matching;
mod scan;
mod window;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::client::Krea;
use crate::error::{Result, UnknownOutcome};
use crate::journal::{Entry, KeyOutcome, Unresolved};
use matching::{Candidate, Decision, Owner, Request};
use window::{Grace, Times};

/// How far before the lost answers the listing is read, to see whether another program is
/// creating jobs on the account.
const LOOKBACK: TimeDelta = TimeDelta::seconds(60);
/// Passes are at least this far apart while a job is awaited in a usual window.
const PASS_EVERY: Duration = Duration::from_millis(500);
/// Job ids remembered as this client's (for clients without a journal).
const REMEMBERED: usize = 20_000;

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
        /// Why it is not certain that this job is the request's, when it is not (another
        /// lost answer or another program could have created it).
        uncertain: Option<String>,
    },
    /// The request created nothing: it may be sent again.
    NotCreated {
        /// The request's journal key, when journaled.
        key: Option<Uuid>,
        /// Why it is not certain that it is this request (and not another one with a lost
        /// answer at the same time) that created nothing, when it is not.
        uncertain: Option<String>,
    },
    /// Still not known (its job may still appear, or another client settles it): do not send
    /// it again yet.
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
            | Settlement::NotCreated { key, .. }
            | Settlement::StillUnknown { key, .. } => *key,
        }
    }

    /// The doubt, when the settlement is not certain.
    pub fn uncertain(&self) -> Option<&str> {
        match self {
            Settlement::Adopted { uncertain, .. } | Settlement::NotCreated { uncertain, .. } => {
                uncertain.as_deref()
            }
            Settlement::StillUnknown { .. } => None,
        }
    }
}

/// What settling remembers between passes (shared by a client's clones).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    /// Jobs this client created or adopted (a client without a journal knows them only here).
    claimed: Mutex<(HashSet<Uuid>, VecDeque<Uuid>)>,
    /// This client's requests awaiting their answers, with their last attempt's send time.
    in_flight: Mutex<HashMap<Uuid, DateTime<Utc>>>,
    /// When a request with no recorded end was first seen no longer awaited.
    noticed: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

/// Marks a request as awaiting its answer until dropped.
pub(crate) struct Flight<'a> {
    memory: &'a Memory,
    key: Uuid,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.memory.in_flight.lock() {
            f.remove(&self.key);
        }
    }
}

impl Memory {
    pub fn claim(&self, job: Uuid) {
        if let Ok(mut c) = self.claimed.lock()
            && c.0.insert(job)
        {
            c.1.push_back(job);
            if c.1.len() > REMEMBERED
                && let Some(old) = c.1.pop_front()
            {
                c.0.remove(&old);
            }
        }
    }

    fn claimed(&self) -> HashSet<Uuid> {
        self.claimed.lock().map(|c| c.0.clone()).unwrap_or_default()
    }

    /// Request `key` is (again) about to go out at `sent`: awaited until the guard drops.
    pub fn flying(&self, key: Uuid, sent: DateTime<Utc>) -> Flight<'_> {
        if let Ok(mut f) = self.in_flight.lock() {
            f.insert(key, sent);
        }
        Flight { memory: self, key }
    }

    pub fn note_attempt(&self, key: Uuid, sent: DateTime<Utc>) {
        if let Ok(mut f) = self.in_flight.lock() {
            f.insert(key, sent);
        }
    }

    fn flights(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        self.in_flight
            .lock()
            .map(|f| f.iter().map(|(k, s)| (*k, *s)).collect())
            .unwrap_or_default()
    }

    fn is_flying(&self, key: Uuid) -> bool {
        self.in_flight.lock().is_ok_and(|f| f.contains_key(&key))
    }

    /// When request `key` was first seen no longer awaited (now, the first time).
    fn noticed(&self, key: Uuid) -> DateTime<Utc> {
        self.noticed
            .lock()
            .map(|mut n| *n.entry(key).or_insert_with(Utc::now))
            .unwrap_or_else(|_| Utc::now())
    }
}

/// One lost answer as a pass sees it.
struct Lost {
    key: Option<Uuid>,
    times: Times,
    owner: Owner,
    created: bool,
    /// The journal's entry, to record the settlement.
    entry: Option<Unresolved>,
}

/// What one pass decided, and what it left.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// Decided (and recorded) settlements.
    pub settled: Vec<Settlement>,
    /// Requests this client may decide that are not decided yet, with why.
    pub waiting: Vec<(Option<Uuid>, String)>,
    /// Requests left to another running client, or still awaiting their answer.
    pub elsewhere: Vec<(Option<Uuid>, String)>,
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Krea {
    /// Settles one unknown outcome (from [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown)), waiting (within this
    /// handle's deadline) until the evidence decides it. With a journal, the answer is written
    /// there too (an adopted job then resumes like any other).
    pub async fn settle(&self, outcome: &UnknownOutcome) -> Result<Settlement> {
        if let Some(job_id) = outcome.job_id {
            return Ok(Settlement::Adopted {
                key: outcome.key,
                job_id,
                uncertain: None,
            });
        }
        loop {
            let pass = self.settle_pass(Some(outcome)).await?;
            let mine = |k: Option<Uuid>| self.journal().is_none() || k == outcome.key;
            if let Some(s) = pass.settled.into_iter().find(|s| mine(s.key())) {
                return Ok(s);
            }
            let why = pass
                .waiting
                .into_iter()
                .chain(pass.elsewhere)
                .find(|(k, _)| mine(*k))
                .map(|(_, why)| why);
            match why {
                None => {
                    // Settled meanwhile by another client: say what the journal says.
                    return self.recorded(outcome.key);
                }
                Some(reason) if !self.pause().await => {
                    return Ok(Settlement::StillUnknown {
                        key: outcome.key,
                        reason,
                    });
                }
                Some(_) => {}
            }
        }
    }

    /// Settles every request the journal holds as sent with an unknown outcome, waiting
    /// (within this handle's deadline) until the evidence decides each one this client may
    /// decide. Requests another running client still waits on are reported as still unknown.
    pub async fn settle_all(&self) -> Result<Vec<Settlement>> {
        if self.journal().is_none() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        loop {
            let pass = self.settle_pass(None).await?;
            out.extend(pass.settled);
            let done = pass.waiting.is_empty();
            if done || !self.pause().await {
                out.extend(
                    pass.waiting
                        .into_iter()
                        .chain(pass.elsewhere)
                        .map(|(key, reason)| Settlement::StillUnknown { key, reason }),
                );
                return Ok(out);
            }
        }
    }

    /// Sleeps until the next pass is worth making; `false` if the deadline comes first.
    async fn pause(&self) -> bool {
        let wake = tokio::time::Instant::now() + PASS_EVERY;
        match self.deadline {
            Some(d) if d <= wake => {
                tokio::time::sleep_until(d).await;
                false
            }
            _ => {
                tokio::time::sleep_until(wake).await;
                true
            }
        }
    }

    /// What the journal records for `key` (after another client settled it).
    fn recorded(&self, key: Option<Uuid>) -> Result<Settlement> {
        let (Some(j), Some(k)) = (self.journal(), key) else {
            return Ok(Settlement::StillUnknown {
                key,
                reason: "nothing to settle".into(),
            });
        };
        Ok(match j.outcome(k)? {
            KeyOutcome::Created(job_id) => Settlement::Adopted {
                key,
                job_id,
                uncertain: j.uncertain(k),
            },
            KeyOutcome::NotCreated => Settlement::NotCreated {
                key,
                uncertain: j.uncertain(k),
            },
            _ => Settlement::StillUnknown {
                key,
                reason: "not recorded".into(),
            },
        })
    }

    /// The lost answers to look at: the journal's unresolved requests (or, without one, the
    /// given outcome), each with who may decide it.
    fn lost_answers(&self, extra: Option<&UnknownOutcome>) -> Result<Vec<Lost>> {
        let memory = &self.inner.settling;
        let timeout = to_delta(self.inner.request_timeout);
        let Some(journal) = self.journal() else {
            let Some(o) = extra else {
                return Ok(Vec::new());
            };
            let mut out = vec![Lost {
                key: o.key,
                times: Times {
                    sent: o.sent_at,
                    ended: o.ended_at.unwrap_or(o.sent_at + timeout),
                },
                owner: Owner::Us,
                created: o.created,
                entry: None,
            }];
            // This client's other requests in flight keep the jobs in their usual windows.
            out.extend(memory.flights().into_iter().map(|(key, sent)| Lost {
                key: Some(key),
                times: Times {
                    sent,
                    ended: Utc::now(),
                },
                owner: Owner::InFlight,
                created: false,
                entry: None,
            }));
            return Ok(out);
        };
        journal.refresh_until(self.deadline)?;
        let own = journal.run_id();
        let mut out = Vec::new();
        for u in journal.unresolved_now() {
            let sent = u.attempt_sent();
            let ours = u.run.is_some() && u.run == own;
            let (owner, ended) = match u.given_up_at {
                // The exchange ended (its client wrote so): whoever looks decides it on the
                // same evidence, its own client or another (several waiting on each other
                // would never decide); the journal records one decision per request and per
                // job (`record_if`).
                Some(end) => (Owner::Us, end),
                None if ours && memory.is_flying(u.key) => (Owner::InFlight, Utc::now()),
                None if !ours && journal.run_alive(u.run) => (Owner::InFlight, Utc::now()),
                // Its client is gone (or stopped awaiting it): the exchange ended by then, and
                // no later than the request timeout after the send.
                None => (Owner::Us, memory.noticed(u.key).min(sent + timeout)),
            };
            out.push(Lost {
                key: Some(u.key),
                times: Times { sent, ended },
                owner,
                created: u.created,
                entry: Some(u),
            });
        }
        Ok(out)
    }

    /// One look at the evidence: lists the jobs around the lost answers and records what they
    /// decide. Never waits for the grace itself.
    pub(crate) async fn settle_pass(&self, extra: Option<&UnknownOutcome>) -> Result<Pass> {
        let lost = self.lost_answers(extra)?;
        let mut pass = Pass::default();
        if !lost.iter().any(|l| l.owner == Owner::Us) {
            pass.elsewhere = lost
                .iter()
                .map(|l| (l.key, "another running client awaits its answer".into()))
                .collect();
            return Ok(pass);
        }
        let evidence = &self.inner.evidence;
        if evidence.offset().is_none() {
            // Any answer's Date header tells the clock apart from nothing.
            let _ = self
                .jobs()
                .page(&crate::JobQuery::all().page_size(1), None)
                .await;
        }
        let grace = Grace {
            commit: to_delta(self.inner.settle_grace),
            listing: to_delta(self.inner.listing_lag),
        };
        let (lag, offset) = (evidence.lag(), evidence.offset());
        tracing::debug!(clock = %evidence.describe(), lost = lost.len(), "settling");
        let now = Utc::now();
        let requests: Vec<Request> = lost
            .iter()
            .map(|l| {
                let w = window::windows(l.times, lag, offset, grace);
                Request {
                    usual: w.usual,
                    usual_in_stamps: lag.is_some(),
                    possible: w.possible,
                    ready: now >= w.ready_at,
                    owner: l.owner,
                    created: l.created,
                }
            })
            .collect();
        let spans = requests
            .iter()
            .flat_map(|r| r.usual.into_iter().chain(r.possible));
        let lo = spans.clone().map(|s| s.lo).min();
        let hi = spans.map(|s| s.hi).max();
        let (candidates, others, rate_known) = match (lo, hi) {
            (Some(lo), Some(hi)) => {
                let listed = scan::scan(&self.jobs(), lo - LOOKBACK, hi).await?;
                let first = listed.first;
                if !listed.complete {
                    for l in &lost {
                        pass.waiting
                            .push((l.key, "the listing was too long to read in full".into()));
                    }
                    return Ok(pass);
                }
                let mut claimed = self.inner.settling.claimed();
                if let Some(j) = self.journal() {
                    claimed.extend(j.known_jobs());
                }
                let near = |at: DateTime<Utc>| {
                    let slack = crate::evidence::precision(at);
                    requests.iter().any(|r| {
                        r.possible.is_some_and(|p| p.holds(at, slack))
                            || r.usual.is_some_and(|u| u.holds(at, slack))
                    })
                };
                let unclaimed = listed
                    .jobs
                    .into_iter()
                    .filter(|(id, _)| !claimed.contains(id));
                let (near, far): (Vec<_>, Vec<_>) = unclaimed.partition(|(_, at)| near(*at));
                // Other programs' jobs: those outside every window, or, where more jobs than
                // lost answers lie unclaimed, at least the surplus (each lost answer made one
                // job at most), over the stretch read (no longer than the account's history).
                let surplus = (near.len() + far.len()).saturating_sub(lost.len());
                let from = first.map_or(lo - LOOKBACK, |f| f.max(lo - LOOKBACK));
                let span = (hi - from).num_milliseconds().max(1_000) as f64 / 1000.0;
                let candidates: Vec<Candidate> = near
                    .into_iter()
                    .map(|(id, at)| Candidate { id, at })
                    .collect();
                let young = first.is_some_and(|f| f > lo - LOOKBACK);
                (candidates, far.len().max(surplus) as f64 / span, !young)
            }
            _ => (Vec::new(), 0.0, true),
        };
        let decisions = matching::decide_with(&requests, &candidates, others, rate_known);
        for (l, decision) in lost.iter().zip(decisions) {
            match decision {
                Decision::Wait(why) if l.owner == Owner::Us => {
                    tracing::debug!(key = ?l.key, %why, "still unknown");
                    pass.waiting.push((l.key, why))
                }
                Decision::Wait(why) => pass.elsewhere.push((l.key, why)),
                decided => {
                    let s = self.record_decision(l, decided, &candidates)?;
                    tracing::info!(settlement = ?s, "settled");
                    pass.settled.push(s);
                }
            }
        }
        Ok(pass)
    }

    /// Writes a decision to the journal, unless another client recorded the same request (or
    /// claimed the same job) meanwhile: then what the journal says stands.
    fn record_decision(
        &self,
        l: &Lost,
        decision: Decision,
        candidates: &[Candidate],
    ) -> Result<Settlement> {
        let settlement = match &decision {
            Decision::Adopt { job, doubt } => Settlement::Adopted {
                key: l.key,
                job_id: *job,
                uncertain: doubt.clone(),
            },
            Decision::NotCreated { doubt } => Settlement::NotCreated {
                key: l.key,
                uncertain: doubt.clone(),
            },
            Decision::Wait(why) => {
                return Ok(Settlement::StillUnknown {
                    key: l.key,
                    reason: why.clone(),
                });
            }
        };
        if let Settlement::Adopted { job_id, .. } = &settlement {
            self.inner.settling.claim(*job_id);
        }
        let (Some(journal), Some(entry)) = (self.journal(), &l.entry) else {
            return Ok(settlement);
        };
        let now = Utc::now();
        let line = match decision {
            Decision::Adopt { job, doubt } => Entry::Submitted {
                key: Some(entry.key),
                at: now,
                scope: journal.scope().clone(),
                job_id: job,
                model: entry.model.clone(),
                request: entry.request.clone(),
                output: entry.output.clone(),
                sent_at: Some(l.times.sent),
                created_at: candidates.iter().find(|c| c.id == job).map(|c| c.at),
                adopted: true,
                uncertain: doubt,
            },
            Decision::NotCreated { doubt } => Entry::NotCreated {
                key: entry.key,
                at: now,
                reason: format!(
                    "settled: no job it could have created was listed within {:.0} s of its exchange",
                    (self.inner.settle_grace + self.inner.listing_lag).as_secs_f64()
                ),
                uncertain: doubt,
            },
            Decision::Wait(_) => unreachable!("returned above"),
        };
        let job = line.job_id();
        let written = journal.record_if(
            std::slice::from_ref(&line),
            |view| {
                view.outcome(entry.key) == KeyOutcome::Unresolved
                    && job.is_none_or(|j| !view.claims(j))
            },
            self.deadline,
        )?;
        if written {
            Ok(settlement)
        } else {
            self.recorded(l.key)
        }
    }
}
