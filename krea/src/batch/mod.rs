//! Many generations as one run: every request checked before the first is sent, a window of
//! pending jobs that adapts to Krea's concurrency cap (a job submitted holds a slot only until
//! it ends, and waiting never holds the submissions back), one wait loop for all, downloads as
//! jobs finish. With a directory, a manifest records every item and its job, the directory is
//! locked against a second run, and [`Batch::resume`] continues an interrupted run: finished
//! items are not redone, submitted jobs are waited for, requests whose outcome is unknown are
//! settled (adopted, or sent again only once known not to have created anything).

mod file;
mod manifest;
mod run;
mod shared;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::Problem;
use crate::client::Krea;
use crate::cost::Estimate;
use crate::error::{Error, Result};
use crate::job::JobUpdate;
use crate::journal::{FileLock, Journal, fingerprint};
use crate::request::GenerationRequest;

pub use file::{BatchFile, BatchLine, LineProblem};
pub use manifest::{ItemState, ItemStatus, Manifest};
use run::{Run, Slot};

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
    /// A job was looked at and its state had not changed (progress displays say how long
    /// ago a state was last confirmed).
    Seen {
        /// The item.
        index: usize,
        /// Its state as seen.
        update: &'a JobUpdate,
    },
    /// An item reached its final state for this run.
    Ended {
        /// The item.
        item: &'a ItemState,
    },
}

/// Why one item of a batch would be refused (nothing is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ItemProblem {
    /// The item's position, from 0.
    pub index: usize,
    /// The item's label (`line N` for the lines of a [`BatchFile`]).
    pub label: String,
    /// What is wrong, and the field where there is one.
    pub problem: Problem,
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
    /// What the run was charged in all ([`ItemState::charged`]); `None` while any item's
    /// charge is not known.
    pub fn charged(&self) -> Option<Estimate> {
        manifest::charged_in_all(&self.items)
    }

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
    shared: Option<SharedName>,
    lease: std::time::Duration,
}

/// How a shared batch is known in the store.
#[derive(Debug, Clone)]
enum SharedName {
    Named(String),
    ByContent,
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
            shared: None,
            lease: crate::journal::LEASE,
        }
    }
}

impl Batch {
    /// Adds a request, called `label` in reports.
    pub fn item(mut self, label: impl Into<String>, request: GenerationRequest) -> Batch {
        self.items.push((label.into(), request));
        self
    }

    /// Every line of a batch file, as an item labelled `line N`.
    pub fn lines(mut self, file: &BatchFile) -> Batch {
        for line in &file.lines {
            let request = self.krea.generate(&line.model, line.body());
            self.items.push((line.label(), request));
        }
        self
    }

    /// What is wrong with each item that would be refused, without sending anything: every
    /// problem of every item, each naming its item. Empty when the batch may run.
    pub fn problems(&self) -> Vec<ItemProblem> {
        self.checked()
            .into_iter()
            .enumerate()
            .flat_map(|(index, (_, result))| {
                let label = &self.items[index].0;
                let problems = match result {
                    Ok(_) => Vec::new(),
                    Err(Error::InvalidRequest { problems, .. }) => problems,
                    Err(e) => vec![Problem::whole(e.report())],
                };
                problems.into_iter().map(move |problem| ItemProblem {
                    index,
                    label: label.clone(),
                    problem,
                })
            })
            .collect()
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

    /// Work this batch together with other processes (on this machine or others) that run the
    /// same lines under the same `name`, on the same journal in PostgreSQL
    /// ([`crate::KreaBuilder::journal_postgres`]): each line is claimed by one worker at a
    /// time and paid for at most once; a worker that dies has its lines taken over (at once
    /// when its process is gone, after a 30 s lease when it hangs), its lost answers settled
    /// on evidence first. Each worker writes the files of the lines it finishes into its own
    /// directory; lines finished by others are [`ItemStatus::Elsewhere`]. A worker ends when
    /// every line is done (or at the deadline).
    ///
    /// ```no_run
    /// # async fn run(krea: krea::Krea, file: krea::BatchFile) -> krea::Result<()> {
    /// // The same on every worker: the lines, the name, the database (in `krea`).
    /// let report = krea.batch().lines(&file).shared("nightly-2026-12-04").dir("out").run(|_| {}).await?;
    /// println!("{} here, the rest elsewhere", report.completed());
    /// # Ok(()) }
    /// ```
    pub fn shared(mut self, name: impl Into<String>) -> Batch {
        self.shared = Some(SharedName::Named(name.into()));
        self
    }

    /// [`Batch::shared`], the batch known by its lines' content (every worker with the same
    /// lines works the same batch).
    pub fn shared_by_content(mut self) -> Batch {
        self.shared = Some(SharedName::ByContent);
        self
    }

    /// How long a line this worker of a shared batch claimed stays its own without renewal
    /// (default 30 s, at least 1 s; renewed every third of it while the worker runs). A worker
    /// whose process ends loses its claims at once; this frees those of one that hangs. Give
    /// every worker of a batch the same.
    pub fn claim_lease(mut self, lease: std::time::Duration) -> Batch {
        self.lease = lease.max(std::time::Duration::from_secs(1));
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

    /// The most the batch may cost in compute units (an item whose model publishes no price
    /// counts at the assumed price, and the estimate then says `assumed`), and how many items
    /// have no published price. Checks every item (the error lists every problem).
    pub fn estimate(&self) -> Result<(Estimate, usize)> {
        let checked = self.check()?;
        let total = checked
            .iter()
            .map(|c| c.worst_case)
            .fold(Estimate::zero(), Estimate::plus);
        let unpriced = checked.iter().filter(|c| c.estimate.is_none()).count();
        Ok((total, unpriced))
    }

    /// Each item and its check.
    fn checked(&self) -> Vec<(&str, Result<crate::request::Checked>)> {
        self.items
            .iter()
            .map(|(label, request)| (label.as_str(), self.planned(request.clone()).check()))
            .collect()
    }

    /// Every item checked; all problems reported at once, each naming its item.
    fn check(&self) -> Result<Vec<crate::request::Checked>> {
        let mut checked = Vec::new();
        let mut problems = Vec::new();
        for (label, result) in self.checked() {
            match result {
                Ok(c) => checked.push(c),
                Err(Error::InvalidRequest { problems: p, .. }) => {
                    problems.extend(p.into_iter().map(|p| p.within(label)))
                }
                Err(e) => problems.push(Problem::at(label, e.report())),
            }
        }
        if problems.is_empty() {
            Ok(checked)
        } else {
            Err(Error::InvalidRequest {
                subject: "batch".into(),
                problems,
            })
        }
    }

    /// A request with the batch directory as its output, unless it plans its own.
    fn planned(&self, request: GenerationRequest) -> GenerationRequest {
        // One listing refreshes every job of the batch at once: past its first poll, each job
        // is looked at every interval, for the price of one request per interval in all.
        let steady = crate::PollPolicy {
            max_interval: self.krea.poll_policy().interval,
            ..self.krea.poll_policy().clone()
        };
        let request = request.poll_or(&steady);
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
                        subject: "batch".into(),
                        problems: vec![Problem::at(
                            "dir",
                            format!(
                                "{} already holds a batch: resume it, or choose another directory",
                                dir.display()
                            ),
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
            (None, _) if self.shared.is_some() => {
                return Err(Error::Config(
                    "a batch shared by several workers needs the journal in PostgreSQL: \
                     --journal postgres://... (KreaBuilder::journal_postgres)"
                        .into(),
                ));
            }
            (Some(_), _) | (None, None) => self.krea.clone(),
            (None, Some(dir)) => {
                let journal = Journal::open_until(
                    dir.join("journal.jsonl"),
                    self.krea.scope().clone(),
                    self.krea.deadline,
                )?;
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
                created_at: None,
                completed_at: None,
                urls: Vec::new(),
                files: Vec::new(),
                error: None,
                error_kind: None,
                estimate: c.estimate,
                uncertain: None,
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
        let shared = match &self.shared {
            None => None,
            Some(name) => {
                let content = fingerprint(
                    manifest
                        .items
                        .iter()
                        .map(|i| i.fingerprint.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                        .as_bytes(),
                );
                let name = match name {
                    SharedName::Named(n) => n.clone(),
                    SharedName::ByContent => format!("content-{content}"),
                };
                let journal = krea
                    .journal()
                    .ok_or_else(|| Error::Config("no journal".into()))?;
                journal.batch_open(&name, &content, manifest.items.len() as u32, krea.deadline)?;
                Some(name)
            }
        };
        let mut run = Run::new(
            krea,
            self.concurrency.unwrap_or(usize::MAX),
            self.dir.clone(),
            manifest,
            slots,
        );
        let result = match shared {
            Some(name) => run.go_shared(name, self.lease, &mut on_event).await,
            None => {
                async {
                    run.reconcile()?;
                    run.save()?;
                    run.go(&mut on_event).await
                }
                .await
            }
        };
        result?;
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
