//! The batch's run loop: sends as the window allows (paced, concurrent), waits for every
//! submitted job in one loop, and settles lost answers while the rest goes on: a line whose
//! request may have created a job is never sent again until settling says it did not.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::future::Future;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use uuid::Uuid;

use super::shared::Shared;
use super::{BatchEvent, ItemStatus, Manifest};
use crate::client::Krea;
use crate::error::{Error, Result};
use crate::job::{JobHandle, JobUpdate};
use crate::journal::KeyOutcome;
use crate::limiter::Permit;
use crate::models;
use crate::poll::{FirstPoll, PollPolicy};
use crate::request::GenerationRequest;
use crate::settle::{Pass, Settlement};
use crate::types::{Job, JobStatus};
use crate::wait::Waiter;

/// Settle passes are at least this far apart while lines wait on one.
const SETTLE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// One item while the run goes on.
pub(super) struct Slot {
    pub request: GenerationRequest,
    pub permit: Option<Permit>,
}

/// What the run loop woke up for.
enum Next {
    Sent(usize, Box<Result<JobHandle>>),
    Ended(Vec<(usize, Box<JobHandle>, Result<crate::job::Finished>)>),
    Downloaded(Box<Done>),
    Settled(Result<Pass>),
    Tick,
}

/// A job's end, its files written (or why not).
struct Done {
    index: usize,
    job_id: Uuid,
    /// The job's created and completed times, when it was seen ended.
    times: Option<(
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    )>,
    urls: Vec<String>,
    outcome: Result<Vec<PathBuf>>,
}

/// Writes a finished job's files (or notes in the journal that there are none to write).
async fn fetch(index: usize, job_id: Uuid, result: Result<crate::job::Finished>) -> Done {
    let mut times = None;
    let (urls, outcome) = match result {
        Ok(finished) => {
            times = Some((finished.job().created_at, finished.job().completed_at));
            let urls = finished.urls().to_vec();
            let outcome = match finished.output() {
                Some(_) => finished.download().await,
                None => finished.close_journal(&[]).map(|()| Vec::new()),
            };
            (urls, outcome)
        }
        Err(e) => (Vec::new(), Err(e)),
    };
    Done {
        index,
        job_id,
        times,
        urls,
        outcome,
    }
}

type Settling = Pin<Box<dyn Future<Output = Result<Pass>> + Send>>;

pub(super) struct Run {
    pub(super) krea: Krea,
    concurrency: usize,
    /// An error that stops further submissions.
    pub stopped: Option<Error>,
    dir: Option<PathBuf>,
    pub manifest: Manifest,
    slots: Vec<Slot>,
    /// Lines handed back by the cap, to go first when a slot frees up.
    requeue: Vec<usize>,
    /// The last refusal that handed a line back (what stopped the run, if the deadline comes).
    refused: Option<Error>,
    /// This worker's part in a batch shared with others, if it is one.
    pub(super) shared: Option<Shared>,
}

impl Run {
    pub fn new(
        krea: Krea,
        concurrency: usize,
        dir: Option<PathBuf>,
        manifest: Manifest,
        slots: Vec<Slot>,
    ) -> Run {
        Run {
            krea,
            concurrency,
            stopped: None,
            dir,
            manifest,
            slots,
            requeue: Vec::new(),
            refused: None,
            shared: None,
        }
    }

    pub fn save(&self) -> Result<()> {
        match &self.dir {
            Some(dir) => self.manifest.save(dir),
            None => Ok(()),
        }
    }

    /// Items a previous run left being sent (or unknown) are matched with the journal: a job
    /// found is waited for, a request known to have created nothing (or never written down,
    /// so never sent) is sent again, and the rest stay unknown for this run to settle.
    pub fn reconcile(&mut self) -> Result<()> {
        let Some(journal) = self.krea.journal() else {
            return Ok(());
        };
        for item in &mut self.manifest.items {
            if !matches!(item.status, ItemStatus::Sending | ItemStatus::Unknown) {
                continue;
            }
            let Some(key) = item.key else {
                item.status = ItemStatus::Pending;
                continue;
            };
            match journal.outcome(key)? {
                KeyOutcome::Created(job_id) => {
                    item.job_id = Some(job_id);
                    item.status = ItemStatus::Submitted;
                    item.error = None;
                    item.uncertain = journal.uncertain(key);
                }
                KeyOutcome::NotCreated | KeyOutcome::Absent => {
                    item.status = ItemStatus::Pending;
                    item.uncertain = journal.uncertain(key);
                    item.key = None;
                    item.error = None;
                }
                _ => {
                    item.status = ItemStatus::Unknown;
                    item.error = Some(unknown_note());
                }
            }
        }
        Ok(())
    }

    pub async fn go(&mut self, on_event: &mut impl FnMut(BatchEvent<'_>)) -> Result<()> {
        let policy = PollPolicy {
            first: FirstPoll::After(std::time::Duration::ZERO),
            ..self.krea.poll_policy().clone()
        };
        let mut waiter: Waiter<Box<JobHandle>> = Waiter::new(self.krea.jobs());
        let mut queue: VecDeque<usize> = VecDeque::new();
        // Jobs a previous run submitted are waited for (no new request); pending lines queued.
        // A shared batch's lines come through claims instead.
        if self.shared.is_none() {
            let all: Vec<usize> = (0..self.manifest.items.len()).collect();
            self.enqueue(&all, &policy, &mut waiter, &mut queue, on_event);
        }
        let mut sending = FuturesUnordered::new();
        let mut downloading = FuturesUnordered::new();
        let mut settling: Option<Settling> = None;
        let mut next_pass = Instant::now();
        loop {
            // Fill the window (unless something account-wide stopped submissions).
            // Past the deadline nothing new goes out: it would only meet the deadline.
            let past_deadline = self.krea.deadline.is_some_and(|d| d <= Instant::now());
            if let Err(e) = self.renew() {
                self.stopped.get_or_insert(e);
            }
            // A shared batch: claim lines while the window has room and none waits to be sent.
            while self.shared.is_some()
                && queue.is_empty()
                && self.stopped.is_none()
                && !past_deadline
                && self.slots.iter().filter(|s| s.permit.is_some()).count() < self.concurrency
            {
                match self.claim() {
                    Ok(Some(index)) => {
                        self.save()?;
                        self.enqueue(&[index], &policy, &mut waiter, &mut queue, on_event);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.stopped = Some(e);
                    }
                }
            }
            while let Some(&index) = queue
                .front()
                .filter(|_| self.stopped.is_none() && !past_deadline)
            {
                let held = self.slots.iter().filter(|s| s.permit.is_some()).count();
                if held >= self.concurrency {
                    break;
                }
                let Some(permit) = self.krea.inner.limiter.try_acquire() else {
                    break;
                };
                queue.pop_front();
                let key = Uuid::new_v4();
                let item = &mut self.manifest.items[index];
                item.key = Some(key);
                item.status = ItemStatus::Sending;
                // Recorded before sending: a run killed now settles it instead of resending.
                self.save()?;
                let admission = permit.admission();
                self.slots[index].permit = Some(permit);
                let request = self.slots[index].request.clone();
                let line = self.shared.as_ref().map(|s| s.line(index));
                sending.push(async move {
                    let sent = request.submit_for_line(key, Some(admission), line).await;
                    (index, sent)
                });
            }
            let unknown = self
                .manifest
                .items
                .iter()
                .any(|i| i.status == ItemStatus::Unknown);
            if settling.is_none() && unknown && Instant::now() >= next_pass {
                let krea = self.krea.clone();
                settling = Some(Box::pin(async move { krea.settle_pass(None).await }));
            }
            if sending.is_empty()
                && waiter.is_empty()
                && settling.is_none()
                && downloading.is_empty()
            {
                let sendable = !queue.is_empty() && self.stopped.is_none();
                // A shared batch's worker stays while other workers have lines open: one of
                // them may die and leave its lines to be taken over.
                let others = self
                    .shared
                    .as_ref()
                    .is_some_and(|s| !s.finished && self.stopped.is_none());
                if !unknown && !sendable && !others {
                    break;
                }
                if self.krea.deadline.is_some_and(|d| d <= Instant::now()) {
                    // The deadline comes first: lines not sent stay pending, and the journal
                    // keeps the lost answers for the next run to settle.
                    if sendable {
                        self.stopped =
                            Some(
                                self.refused
                                    .take()
                                    .unwrap_or_else(|| Error::DeadlineExceeded {
                                        operation: "the batch".into(),
                                    }),
                            );
                    }
                    break;
                }
            }
            let wake = Instant::now() + std::time::Duration::from_millis(250);
            // With nothing else to wait for: the next settle pass if a line awaits one, the end
            // of the limiter's pause, the deadline if still ahead, or `wake`. Never a time
            // already past: a settle pass time past with nothing to settle once woke this loop
            // every millisecond through a 429's pause.
            let now = Instant::now();
            let ahead = |t: Option<Instant>| t.filter(|t| *t > now).unwrap_or(wake);
            let look = self.shared.as_ref().map(|s| s.look_at);
            let tick = if unknown { next_pass } else { wake }
                .min(ahead(look))
                .min(ahead(self.krea.inner.limiter.held_until()))
                .min(ahead(self.krea.deadline))
                .max(now);
            let mut report = |index, _: &JobHandle, u: &JobUpdate, changed: bool| {
                on_event(match changed {
                    true => BatchEvent::Update { index, update: u },
                    false => BatchEvent::Seen { index, update: u },
                });
            };
            let next = tokio::select! {
                Some((index, result)) = sending.next(), if !sending.is_empty() => {
                    Next::Sent(index, Box::new(result))
                }
                ended = waiter.step(Some(wake), &mut report), if !waiter.is_empty() => {
                    Next::Ended(ended)
                }
                Some(done) = downloading.next(), if !downloading.is_empty() => {
                    Next::Downloaded(Box::new(done))
                }
                pass = async { settling.as_mut().expect("checked").await }, if settling.is_some() => {
                    Next::Settled(pass)
                }
                _ = tokio::time::sleep_until(tick),
                    if waiter.is_empty() && settling.is_none() && downloading.is_empty() => Next::Tick,
            };
            match next {
                Next::Sent(index, result) => {
                    self.submitted(index, *result, &mut waiter, on_event)?;
                    self.line_ended(index)?;
                    for index in self.requeue.drain(..) {
                        queue.push_front(index);
                    }
                }
                Next::Ended(ended) => {
                    for (index, handle, result) in ended {
                        // Its slot on Krea is free once it ends; its files come meanwhile.
                        self.slots[index].permit = None;
                        downloading.push(fetch(index, handle.id(), result));
                    }
                }
                Next::Downloaded(done) => {
                    let index = done.index;
                    self.ended(*done);
                    self.save()?;
                    self.line_ended(index)?;
                    on_event(BatchEvent::Ended {
                        item: &self.manifest.items[index],
                    });
                }
                Next::Settled(pass) => {
                    settling = None;
                    next_pass = Instant::now() + SETTLE_EVERY;
                    match pass {
                        Ok(mut pass) => {
                            // Lines whose lost answer another client decided meanwhile.
                            pass.settled.extend(self.decided_elsewhere());
                            self.settled(&pass, &policy, &mut waiter, &mut queue, on_event)?
                        }
                        // The listing could not be read now: the next pass tries again.
                        Err(e) => {
                            tracing::info!(error = %e.report(), "settling: the jobs could not be listed")
                        }
                    }
                }
                Next::Tick => {}
            }
        }
        Ok(())
    }

    /// What the journal records for lines still waiting on a settlement that another client
    /// (another worker of a shared batch, a `krea jobs settle`) made: as if this one had.
    fn decided_elsewhere(&self) -> Vec<Settlement> {
        let Some(journal) = self.krea.journal() else {
            return Vec::new();
        };
        self.manifest
            .items
            .iter()
            .filter(|i| i.status == ItemStatus::Unknown)
            .filter_map(|i| i.key)
            .filter_map(|key| match journal.outcome_now(key) {
                KeyOutcome::Created(job_id) => Some(Settlement::Adopted {
                    key: Some(key),
                    job_id,
                    uncertain: journal.uncertain(key),
                }),
                KeyOutcome::NotCreated => Some(Settlement::NotCreated {
                    key: Some(key),
                    uncertain: journal.uncertain(key),
                }),
                _ => None,
            })
            .collect()
    }

    /// Applies what a settle pass decided to the lines it concerns.
    fn settled(
        &mut self,
        pass: &Pass,
        policy: &PollPolicy,
        waiter: &mut Waiter<Box<JobHandle>>,
        queue: &mut VecDeque<usize>,
        on_event: &mut impl FnMut(BatchEvent<'_>),
    ) -> Result<()> {
        let mut changed = Vec::new();
        for s in &pass.settled {
            let Some(index) = self.manifest.items.iter().position(|i| {
                i.status == ItemStatus::Unknown && i.key.is_some() && i.key == s.key()
            }) else {
                continue;
            };
            let item = &mut self.manifest.items[index];
            item.uncertain = s.uncertain().map(String::from);
            match s {
                Settlement::Adopted { job_id, .. } => {
                    item.job_id = Some(*job_id);
                    item.status = ItemStatus::Submitted;
                    item.error = None;
                    item.error_kind = None;
                }
                Settlement::NotCreated { .. } => {
                    self.slots[index].permit = None;
                    let item = &mut self.manifest.items[index];
                    item.status = ItemStatus::Pending;
                    item.key = None;
                    item.job_id = None;
                    item.error = None;
                    item.error_kind = None;
                }
                Settlement::StillUnknown { .. } => continue,
            }
            changed.push(index);
        }
        if !changed.is_empty() {
            self.save()?;
            self.enqueue(&changed, policy, waiter, queue, on_event);
        }
        Ok(())
    }

    /// Waits for the items in `indexes` whose job exists, and queues those not sent.
    fn enqueue(
        &mut self,
        indexes: &[usize],
        policy: &PollPolicy,
        waiter: &mut Waiter<Box<JobHandle>>,
        queue: &mut VecDeque<usize>,
        on_event: &mut impl FnMut(BatchEvent<'_>),
    ) {
        for &index in indexes {
            let item = &self.manifest.items[index];
            match (item.status, item.job_id) {
                (ItemStatus::Submitted | ItemStatus::TimedOut, Some(id)) => {
                    let model = models::resolve(&item.model).ok();
                    let placeholder = Job::placeholder(id, JobStatus::Queued, chrono::Utc::now());
                    let output = self.slots[index].request.output().cloned();
                    let handle = JobHandle::existing(&self.krea, placeholder, model, output)
                        .with_policy(policy.clone());
                    if self.slots[index].permit.is_none() {
                        self.slots[index].permit = Some(self.krea.inner.limiter.hold());
                    }
                    waiter.add(index, Box::new(handle));
                    on_event(BatchEvent::Submitted { item });
                }
                (ItemStatus::Pending, _) => queue.push_back(index),
                _ => {}
            }
        }
    }

    fn submitted(
        &mut self,
        index: usize,
        result: Result<JobHandle>,
        waiter: &mut Waiter<Box<JobHandle>>,
        on_event: &mut impl FnMut(BatchEvent<'_>),
    ) -> Result<()> {
        let item = &mut self.manifest.items[index];
        match result {
            Ok(handle) => {
                item.job_id = Some(handle.id());
                item.status = ItemStatus::Submitted;
                item.error = None;
                waiter.add(index, Box::new(handle));
                self.save()?;
                on_event(BatchEvent::Submitted {
                    item: &self.manifest.items[index],
                });
                return Ok(());
            }
            Err(Error::OutcomeUnknown(u)) => {
                // Settled while the rest goes on; it keeps its slot until then (it may run).
                item.status = ItemStatus::Unknown;
                item.job_id = u.job_id;
                let e = Error::OutcomeUnknown(u);
                item.error_kind = Some(e.kind());
                item.error = Some(unknown_note());
                self.save()?;
                on_event(BatchEvent::Ended {
                    item: &self.manifest.items[index],
                });
                return Ok(());
            }
            // The journal write failed after the job was created: keep the job id.
            Err(
                e @ Error::Journal {
                    job_id: Some(_), ..
                },
            ) => {
                item.job_id = e.job_id();
                item.status = ItemStatus::Submitted;
                item.error_kind = Some(e.kind());
                item.error = Some(e.to_string());
            }
            // The account's cap (429, or held back before sending): nothing was created; the
            // line goes back to the front of the queue and waits for a slot.
            Err(e @ Error::RateLimited { .. }) => {
                self.refused = Some(e);
                let item = &mut self.manifest.items[index];
                item.status = ItemStatus::Pending;
                item.key = None;
                self.slots[index].permit = None;
                self.save()?;
                self.requeue.push(index);
                return Ok(());
            }
            // Nothing was created, and the next request would meet the same refusal: stop
            // sending; this item stays pending for a later run.
            Err(
                e @ (Error::Unauthorized { .. }
                | Error::InsufficientCredits { .. }
                | Error::Transport { .. }
                | Error::MissingToken
                | Error::DeadlineExceeded { .. }),
            ) => {
                item.status = ItemStatus::Pending;
                item.key = None;
                item.error_kind = Some(e.kind());
                item.error = Some(e.to_string());
                self.stopped.get_or_insert(e);
            }
            // A shared batch's line whose claim passed to another worker (this one was taken
            // for gone): nothing was sent; that worker has the line now.
            Err(Error::Journal {
                job_id: None,
                source,
                ..
            }) if self.shared.is_some()
                && source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                item.status = ItemStatus::Pending;
                item.key = None;
                item.error = Some(source.to_string());
            }
            Err(e) => {
                item.status = ItemStatus::Error;
                item.key = None;
                item.error_kind = Some(e.kind());
                item.error = Some(e.to_string());
            }
        }
        self.slots[index].permit = None;
        self.save()?;
        on_event(BatchEvent::Ended {
            item: &self.manifest.items[index],
        });
        Ok(())
    }

    fn ended(&mut self, done: Done) {
        let Done {
            index,
            job_id,
            times,
            urls,
            outcome,
        } = done;
        let item = &mut self.manifest.items[index];
        item.urls = urls;
        if let Some((created, completed)) = times {
            item.created_at = Some(created);
            item.completed_at = completed;
        }
        item.job_id = Some(job_id);
        match outcome {
            Ok(files) => {
                item.status = ItemStatus::Completed;
                item.files = files;
                item.error = None;
                item.error_kind = None;
            }
            Err(e) => {
                item.status = match &e {
                    Error::JobFailed {
                        status: JobStatus::Cancelled,
                        ..
                    } => ItemStatus::Cancelled,
                    Error::JobFailed { .. } => ItemStatus::Failed,
                    Error::Timeout { .. } => ItemStatus::TimedOut,
                    // The job exists; a resume waits for it again.
                    _ => ItemStatus::TimedOut,
                };
                item.error_kind = Some(e.kind());
                item.error = Some(e.to_string());
            }
        }
    }
}

pub(super) fn unknown_note() -> String {
    "sent, and its answer was lost: it is not sent again until settling finds out whether it created a job".into()
}
