//! Many generations as one run: every request checked before the first is sent, a window of
//! pending jobs that adapts to Krea's concurrency cap (a job submitted holds a slot only until
//! it ends, and waiting never holds the submissions back), one wait loop for all, downloads as
//! jobs finish. With a directory, a manifest records every item and its job, the directory is
//! locked against a second run, and [`Batch::resume`] continues an interrupted run: finished
//! items are not redone, submitted jobs are waited for, requests whose outcome is unknown are
//! settled (adopted, or sent again only once known not to have created anything).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

use crate::api::jobs::Waiter;
use crate::client::Krea;
use crate::cost::Estimate;
use crate::error::{Error, Result};
use crate::job::{JobHandle, JobUpdate};
use crate::journal::{FileLock, Journal, KeyOutcome, fingerprint};
use crate::limiter::Permit;
use crate::models;
use crate::poll::{FirstPoll, PollPolicy};
use crate::request::GenerationRequest;
use crate::types::{Job, JobStatus};

/// Where one item of a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemStatus {
    /// Not sent yet.
    Pending,
    /// Being sent (a run that stops here leaves it to be settled).
    Sending,
    /// Its job exists and is not finished.
    Submitted,
    /// Done, files downloaded.
    Completed,
    /// Its job failed (not charged).
    Failed,
    /// Its job was cancelled (not charged).
    Cancelled,
    /// Sent, and whether it created a job is not known yet: never sent again until settled.
    Unknown,
    /// Its job did not finish before the deadline (it may still: resume waits for it).
    TimedOut,
    /// Something else went wrong (see its error).
    Error,
}

impl ItemStatus {
    /// The item needs nothing more.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            ItemStatus::Completed | ItemStatus::Failed | ItemStatus::Cancelled
        )
    }
}

/// One item of a batch, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemState {
    /// Its position (0-based).
    pub index: usize,
    /// What the caller calls it (`line 3`).
    pub label: String,
    /// The model id.
    pub model: String,
    /// Identifies the request (model and body): a changed request is a new item.
    pub fingerprint: String,
    /// The body (local inputs as `https://uploads.invalid/...` until uploaded).
    #[serde(default)]
    pub request: serde_json::Value,
    /// Its journal key while sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Uuid>,
    /// Its job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// Where it is.
    pub status: ItemStatus,
    /// The result URLs, once completed (as Krea sent them: clean them before showing them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Files written (absolute).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Why it is not completed, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kind of that error ([`Error::kind`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// Its cost estimate in compute units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
}

/// `manifest.json` in a batch directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Every item.
    pub items: Vec<ItemState>,
}

impl Manifest {
    /// Reads the manifest of batch directory `dir`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join("manifest.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("manifest.json");
        let tmp = dir.join(".manifest.json.tmp");
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// Something that happened in a batch, for progress displays.
#[derive(Debug)]
#[non_exhaustive]
pub enum BatchEvent<'a> {
    /// An item's job was created (or found again when resuming).
    Submitted {
        /// The item.
        item: &'a ItemState,
    },
    /// A job's state changed.
    Update {
        /// The item.
        index: usize,
        /// The change.
        update: &'a JobUpdate,
    },
    /// An item reached its final state for this run.
    Ended {
        /// The item.
        item: &'a ItemState,
    },
}

/// What a batch run did.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchReport {
    /// Every item, in order.
    pub items: Vec<ItemState>,
    /// The batch directory, if any.
    pub dir: Option<PathBuf>,
    /// What stopped further submissions (a refused token, no credits left...), if anything:
    /// the items not sent are still pending, for a later run.
    pub stopped: Option<Error>,
}

impl BatchReport {
    /// Items completed.
    pub fn completed(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.status == ItemStatus::Completed)
            .count()
    }

    /// Whether every item is done (completed, failed or cancelled).
    pub fn all_done(&self) -> bool {
        self.items.iter().all(|i| i.status.is_done())
    }
}

/// Many generations as one run; see the module documentation.
///
/// ```no_run
/// # async fn run(krea: krea::Krea) -> krea::Result<()> {
/// let mut batch = krea.batch().dir("out/foxes");
/// for prompt in ["a red fox", "a fox in snow", "a fox at night"] {
///     batch = batch.item(prompt, krea.image("flux").prompt(prompt));
/// }
/// println!("about {}", batch.estimate()?.0);
/// let report = batch.run(|_| {}).await?;
/// println!("{} of {} completed", report.completed(), report.items.len());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Batch {
    krea: Krea,
    items: Vec<(String, GenerationRequest)>,
    dir: Option<PathBuf>,
    resume: bool,
    concurrency: Option<usize>,
}

impl Krea {
    /// A new, empty batch.
    pub fn batch(&self) -> Batch {
        Batch {
            krea: self.clone(),
            items: Vec::new(),
            dir: None,
            resume: false,
            concurrency: None,
        }
    }
}

/// One item while the run goes on.
struct Slot {
    request: GenerationRequest,
    permit: Option<Permit>,
}

impl Batch {
    /// Adds a request, called `label` in reports.
    pub fn item(mut self, label: impl Into<String>, request: GenerationRequest) -> Batch {
        self.items.push((label.into(), request));
        self
    }

    /// The batch directory: results go there (unless a request plans otherwise), with
    /// `manifest.json`; the directory is locked while the batch runs.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Batch {
        let dir = dir.into();
        self.dir = Some(std::path::absolute(&dir).unwrap_or(dir));
        self
    }

    /// Continue the batch already in the directory (without it, a directory that holds one is
    /// refused).
    pub fn resume(mut self, yes: bool) -> Batch {
        self.resume = yes;
        self
    }

    /// At most `n` of its jobs pending at once (the client also adapts to the account's cap).
    pub fn concurrency(mut self, n: usize) -> Batch {
        self.concurrency = Some(n.max(1));
        self
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The total estimate in compute units (items whose model publishes no pricing count 0),
    /// and how many items have no estimate. Checks every item (the error lists every problem).
    pub fn estimate(&self) -> Result<(Estimate, usize)> {
        let checked = self.check()?;
        let total = checked
            .iter()
            .filter_map(|c| c.estimate)
            .fold(Estimate::zero(), Estimate::plus);
        let unpriced = checked.iter().filter(|c| c.estimate.is_none()).count();
        Ok((total, unpriced))
    }

    /// Every item checked; all problems reported at once, each naming its item.
    fn check(&self) -> Result<Vec<crate::request::Checked>> {
        let mut checked = Vec::new();
        let mut problems = Vec::new();
        for (label, request) in &self.items {
            let request = self.planned(request.clone());
            match request.check() {
                Ok(c) => checked.push(c),
                Err(Error::InvalidRequest { problems: p, .. }) => {
                    problems.extend(p.into_iter().map(|p| format!("{label}: {p}")))
                }
                Err(e) => problems.push(format!("{label}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(checked)
        } else {
            Err(Error::InvalidRequest {
                model: "batch".into(),
                problems,
            })
        }
    }

    /// A request with the batch directory as its output, unless it plans its own.
    fn planned(&self, request: GenerationRequest) -> GenerationRequest {
        match (&self.dir, request.output()) {
            (Some(dir), None) => request.output_dir(dir).overwrite(true),
            _ => request,
        }
    }

    /// Runs the batch; `on_event` hears of each submission, change of state and ending.
    pub async fn run(self, mut on_event: impl FnMut(BatchEvent<'_>)) -> Result<BatchReport> {
        let checked = self.check()?;
        let _lock = match &self.dir {
            Some(dir) => Some(lock_dir(dir)?),
            None => None,
        };
        let old = match &self.dir {
            Some(dir) => {
                let old = Manifest::read(dir)?;
                if old.is_some() && !self.resume {
                    return Err(Error::InvalidRequest {
                        model: "batch".into(),
                        problems: vec![format!(
                            "{} already holds a batch: resume it, or choose another directory",
                            dir.display()
                        )],
                    });
                }
                old
            }
            None => None,
        };
        // The journal: the client's, else one in the batch directory (so resuming works for
        // library users who keep none).
        let krea = match (self.krea.journal(), &self.dir) {
            (Some(_), _) | (None, None) => self.krea.clone(),
            (None, Some(dir)) => {
                let journal = Journal::open(dir.join("journal.jsonl"), self.krea.scope().clone())?;
                self.krea.with_journal(Arc::new(journal))
            }
        };
        let mut manifest = Manifest {
            version: 1,
            items: Vec::new(),
        };
        let mut slots = Vec::new();
        for (index, ((label, request), c)) in self.items.iter().zip(&checked).enumerate() {
            let fp = fingerprint(format!("{} {}", c.model.id, c.body).as_bytes());
            let mut state = ItemState {
                index,
                label: label.clone(),
                model: c.model.id.to_string(),
                fingerprint: fp,
                request: c.body.clone(),
                key: None,
                job_id: None,
                status: ItemStatus::Pending,
                urls: Vec::new(),
                files: Vec::new(),
                error: None,
                error_kind: None,
                estimate: c.estimate,
            };
            if let Some(prev) = old
                .as_ref()
                .and_then(|m| m.items.get(index))
                .filter(|p| p.fingerprint == state.fingerprint)
            {
                state = ItemState {
                    label: label.clone(),
                    estimate: c.estimate,
                    ..prev.clone()
                };
            }
            manifest.items.push(state);
            slots.push(Slot {
                request: self.planned(request.clone()).with_client(&krea),
                permit: None,
            });
        }
        let mut run = Run {
            krea,
            stopped: None,
            concurrency: self.concurrency.unwrap_or(usize::MAX),
            dir: self.dir.clone(),
            manifest,
            slots,
        };
        run.reconcile().await?;
        run.save()?;
        run.go(&mut on_event).await?;
        Ok(BatchReport {
            items: run.manifest.items,
            dir: self.dir,
            stopped: run.stopped,
        })
    }
}

/// Takes the batch directory for this process, or says who has it.
fn lock_dir(dir: &Path) -> Result<FileLock> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(".krea-batch.lock");
    match FileLock::try_exclusive(&path).map_err(|e| Error::io(&path, e))? {
        Ok(lock) => Ok(lock),
        Err(holder) => Err(Error::Busy {
            path: dir.to_path_buf(),
            holder,
        }),
    }
}

/// What the run loop woke up for.
enum Next {
    Sent(usize, Box<Result<JobHandle>>),
    Ended(Vec<(usize, Box<JobHandle>, Result<crate::job::Finished>)>),
}

struct Run {
    krea: Krea,
    concurrency: usize,
    /// An error that stops further submissions.
    stopped: Option<Error>,
    dir: Option<PathBuf>,
    manifest: Manifest,
    slots: Vec<Slot>,
}

impl Run {
    fn save(&self) -> Result<()> {
        match &self.dir {
            Some(dir) => self.manifest.save(dir),
            None => Ok(()),
        }
    }

    /// Items a previous run left being sent (or unknown) are matched with the journal: a job
    /// found is waited for, a request known to have created nothing is sent again, the rest
    /// are settled.
    async fn reconcile(&mut self) -> Result<Vec<usize>> {
        let Some(journal) = self.krea.journal() else {
            return Ok(Vec::new());
        };
        let before: Vec<ItemStatus> = self.manifest.items.iter().map(|i| i.status).collect();
        let mut settle = false;
        for pass in 0..2 {
            for item in &mut self.manifest.items {
                if !matches!(item.status, ItemStatus::Sending | ItemStatus::Unknown) {
                    continue;
                }
                let Some(key) = item.key else {
                    // Never written to the journal: never sent.
                    item.status = ItemStatus::Pending;
                    continue;
                };
                match journal.outcome(key)? {
                    KeyOutcome::Created(job_id) => {
                        item.job_id = Some(job_id);
                        item.status = ItemStatus::Submitted;
                        item.error = None;
                    }
                    KeyOutcome::NotCreated | KeyOutcome::Absent => {
                        item.status = ItemStatus::Pending;
                        item.key = None;
                        item.error = None;
                    }
                    KeyOutcome::Unresolved if pass == 0 => settle = true,
                    _ => {
                        item.status = ItemStatus::Unknown;
                        item.error = Some(
                            "sent, and whether it created a job is not known yet: it is not sent again until that is settled".into(),
                        );
                    }
                }
            }
            if pass == 0 && settle {
                self.krea.settle_all().await?;
            } else if pass == 0 {
                break;
            }
        }
        Ok(self
            .manifest
            .items
            .iter()
            .zip(before)
            .filter(|(i, b)| i.status != *b)
            .map(|(i, _)| i.index)
            .collect())
    }

    async fn go(&mut self, on_event: &mut impl FnMut(BatchEvent<'_>)) -> Result<()> {
        let policy = PollPolicy {
            first: FirstPoll::After(std::time::Duration::ZERO),
            ..self.krea.poll_policy().clone()
        };
        let mut waiter: Waiter<Box<JobHandle>> = Waiter::new(self.krea.jobs());
        let mut queue: VecDeque<usize> = VecDeque::new();
        // Jobs a previous run submitted are waited for (no new request); pending lines queued.
        let all: Vec<usize> = (0..self.manifest.items.len()).collect();
        self.enqueue(&all, &policy, &mut waiter, &mut queue, on_event);
        let mut settlings = 0;
        let mut sending = FuturesUnordered::new();
        loop {
            // Fill the window (unless something account-wide stopped submissions).
            while let Some(&index) = queue.front().filter(|_| self.stopped.is_none()) {
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
                self.slots[index].permit = Some(permit);
                let request = self.slots[index].request.clone();
                sending.push(async move { (index, request.submit_keyed(key).await) });
            }
            if sending.is_empty() && waiter.is_empty() {
                // Requests this run could not hear the answer to: settled now (after the
                // grace), so the run ends with every line accounted for where possible.
                let unknown = self
                    .manifest
                    .items
                    .iter()
                    .any(|i| i.status == ItemStatus::Unknown);
                if !unknown || settlings == 2 || self.stopped.is_some() {
                    break;
                }
                settlings += 1;
                let changed = self.reconcile().await?;
                self.save()?;
                self.enqueue(&changed, &policy, &mut waiter, &mut queue, on_event);
                if queue.is_empty() && waiter.is_empty() {
                    break;
                }
                continue;
            }
            let wake = Instant::now() + std::time::Duration::from_millis(250);
            let mut report = |index, _: &JobHandle, u: &JobUpdate| {
                on_event(BatchEvent::Update { index, update: u });
            };
            let next = tokio::select! {
                Some((index, result)) = sending.next(), if !sending.is_empty() => {
                    Next::Sent(index, Box::new(result))
                }
                ended = waiter.step(Some(wake), &mut report), if !waiter.is_empty() => {
                    Next::Ended(ended)
                }
            };
            match next {
                Next::Sent(index, result) => {
                    self.submitted(index, *result, &mut waiter, on_event)?
                }
                Next::Ended(ended) => {
                    for (index, handle, result) in ended {
                        self.ended(index, &handle, result).await?;
                        self.slots[index].permit = None;
                        self.save()?;
                        on_event(BatchEvent::Ended {
                            item: &self.manifest.items[index],
                        });
                    }
                }
            }
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
                    self.slots[index].permit = Some(self.krea.inner.limiter.hold());
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
                item.status = ItemStatus::Unknown;
                item.job_id = u.job_id;
                let e = Error::OutcomeUnknown(u);
                item.error_kind = Some(e.kind().into());
                item.error = Some(e.to_string());
            }
            // The journal write failed after the job was created: keep the job id.
            Err(
                e @ Error::Journal {
                    job_id: Some(_), ..
                },
            ) => {
                item.job_id = e.job_id();
                item.status = ItemStatus::Submitted;
                item.error_kind = Some(e.kind().into());
                item.error = Some(e.to_string());
            }
            // Nothing was created, and the next request would meet the same refusal: stop
            // sending; this item stays pending for a later run.
            Err(
                e @ (Error::Unauthorized { .. }
                | Error::InsufficientCredits { .. }
                | Error::RateLimited { .. }
                | Error::Transport { .. }
                | Error::MissingToken
                | Error::DeadlineExceeded { .. }),
            ) => {
                item.status = ItemStatus::Pending;
                item.key = None;
                item.error_kind = Some(e.kind().into());
                item.error = Some(e.to_string());
                self.stopped.get_or_insert(e);
            }
            Err(e) => {
                item.status = ItemStatus::Error;
                item.key = None;
                item.error_kind = Some(e.kind().into());
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

    async fn ended(
        &mut self,
        index: usize,
        handle: &JobHandle,
        result: Result<crate::job::Finished>,
    ) -> Result<()> {
        let mut urls = Vec::new();
        let outcome = match result {
            Ok(finished) => {
                urls = finished.urls().to_vec();
                match finished.output() {
                    Some(_) => finished.download().await,
                    None => finished.close_journal(&[]).map(|()| Vec::new()),
                }
            }
            Err(e) => Err(e),
        };
        let item = &mut self.manifest.items[index];
        item.urls = urls;
        item.job_id = Some(handle.id());
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
                item.error_kind = Some(e.kind().into());
                item.error = Some(e.to_string());
            }
        }
        Ok(())
    }
}
