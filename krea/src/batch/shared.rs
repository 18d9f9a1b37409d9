//! A batch worked by several processes at once ([`crate::Batch::shared`]): this worker claims
//! lines one at a time from the journal's database, takes over what a dead worker left (its
//! job waited for, its lost answer settled first), renews its claims while it runs, and marks
//! lines done; lines done by others end [`ItemStatus::Elsewhere`].

use tokio::time::Instant;

use super::ItemStatus;
use super::run::Run;
use crate::error::Result;
use crate::journal::{KeyOutcome, LineEnd, LineRef};

/// How often a worker with nothing to claim looks again (another may die, or hang).
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// This worker's part in a shared batch.
#[derive(Debug)]
pub(super) struct Shared {
    pub name: String,
    /// How long this worker's claims hold without renewal.
    pub lease: std::time::Duration,
    /// No line was free at the last look: the next is not before this.
    pub look_at: Instant,
    /// When this worker's claims were last renewed.
    renewed: Instant,
    /// Every line is done (by anyone), or left by this worker: nothing more to claim.
    pub finished: bool,
    /// Lines this worker tried and left not done (their files could not be fetched, their
    /// request was refused): not claimed again in this run, whoever takes them next.
    left: Vec<u32>,
}

impl Shared {
    pub fn new(name: String, lease: std::time::Duration) -> Shared {
        Shared {
            name,
            lease,
            look_at: Instant::now(),
            renewed: Instant::now(),
            finished: false,
            left: Vec::new(),
        }
    }

    pub fn line(&self, index: usize) -> LineRef {
        LineRef {
            batch: self.name.clone(),
            line: index as u32,
        }
    }
}

impl Run {
    /// Lines a previous run of this worker left unfinished become pending: whichever worker
    /// claims them finds their requests in the shared journal.
    pub(super) fn forget_unfinished(&mut self) {
        for item in &mut self.manifest.items {
            if !item.status.is_done() {
                item.status = ItemStatus::Pending;
                item.key = None;
                item.job_id = None;
                item.error = None;
                item.error_kind = None;
            }
        }
    }

    /// Claims the next free line, if the last look found one, and sets it up from what the
    /// journal holds for it: a job to wait for (submitted), a lost answer to settle (unknown),
    /// or nothing sent that counts (pending). Returns the line claimed.
    pub(super) fn claim(&mut self) -> Result<Option<usize>> {
        let Some(shared) = self.shared.as_mut() else {
            return Ok(None);
        };
        if shared.finished || Instant::now() < shared.look_at {
            return Ok(None);
        }
        let Some(journal) = self.krea.journal() else {
            return Ok(None);
        };
        let Some(line) =
            journal.claim_line(&shared.name, shared.lease, &shared.left, self.krea.deadline)?
        else {
            // Nothing free: done everywhere, or held by workers still running (look again).
            shared.look_at = Instant::now() + LOOK_AGAIN;
            self.others_working()?;
            return Ok(None);
        };
        let index = line as usize;
        let line = shared.line(index);
        // Everything written before the claim was taken is in the journal now.
        journal.refresh_until(self.krea.deadline)?;
        let keys = journal.line_keys(&line);
        let outcomes = keys
            .iter()
            .map(|k| journal.outcome(*k).map(|o| (*k, o)))
            .collect::<Result<Vec<_>>>()?;
        let item = &mut self.manifest.items[index];
        item.error = None;
        item.error_kind = None;
        if let Some((key, KeyOutcome::Created(job))) = outcomes
            .iter()
            .find(|(_, o)| matches!(o, KeyOutcome::Created(_)))
        {
            item.key = Some(*key);
            item.job_id = Some(*job);
            item.status = ItemStatus::Submitted;
            item.uncertain = journal.uncertain(*key);
        } else if let Some((key, _)) = outcomes.iter().find(|(_, o)| *o == KeyOutcome::Unresolved) {
            // Sent by a worker that is gone, answer lost: settled before anything is resent.
            item.key = Some(*key);
            item.job_id = None;
            item.status = ItemStatus::Unknown;
            item.error = Some(super::run::unknown_note());
        } else {
            item.key = None;
            item.job_id = None;
            item.status = ItemStatus::Pending;
        }
        tracing::debug!(line = index, status = ?item.status, "claimed");
        Ok(Some(index))
    }

    /// Renews this worker's claims when a third of the lease has passed.
    pub(super) fn renew(&mut self) -> Result<()> {
        let Some(shared) = self.shared.as_mut() else {
            return Ok(());
        };
        if shared.renewed.elapsed() < shared.lease / 3 {
            return Ok(());
        }
        shared.renewed = Instant::now();
        match self.krea.journal() {
            Some(j) => j.renew_claims(&shared.name, shared.lease, self.krea.deadline),
            None => Ok(()),
        }
    }

    /// After line `index` ended here: marks it done in the store with its status and result
    /// URLs (a later step of a shared pipeline, on another worker, builds on them); or, when
    /// it ended not done and nothing of it is in flight here (its files could not be fetched,
    /// its request was refused), frees it for another worker and does not take it again.
    pub(super) fn line_ended(&mut self, index: usize) -> Result<()> {
        let (Some(shared), Some(journal)) = (self.shared.as_mut(), self.krea.journal()) else {
            return Ok(());
        };
        let item = &self.manifest.items[index];
        if !item.status.is_done() {
            let left = match item.status {
                ItemStatus::TimedOut | ItemStatus::Error => true,
                // Its job exists but is not waited for here (its journal write failed).
                ItemStatus::Submitted => item.error.is_some(),
                _ => false,
            };
            if left && self.stopped.is_none() {
                tracing::info!(line = index, status = ?item.status, "left to other workers");
                shared.left.push(index as u32);
                journal.release_line(&shared.name, index as u32, self.krea.deadline)?;
            }
            return Ok(());
        }
        let end = LineEnd {
            job_id: item.job_id,
            status: status_name(item.status),
            urls: item.urls.clone(),
        };
        journal.line_done(&shared.name, index as u32, &end, self.krea.deadline)
    }

    /// Whether this worker has anything left to wait for: lines not done that it could still
    /// claim or that another live worker holds. Lines done elsewhere are noted as such.
    pub(super) fn others_working(&mut self) -> Result<bool> {
        let Some(shared) = self.shared.as_mut() else {
            return Ok(false);
        };
        let Some(journal) = self.krea.journal() else {
            return Ok(false);
        };
        let lines = journal.batch_lines(&shared.name, self.krea.deadline)?;
        // A line this worker left is waited for only while another works on it (a pipeline's
        // next step needs it done; nobody else may ever take it).
        let open = lines
            .iter()
            .any(|l| !l.done && (!shared.left.contains(&l.line) || l.held_elsewhere));
        shared.finished = !open;
        for l in lines.iter().filter(|l| l.done) {
            // Lines never taken here, and those this worker left (another finished them).
            if let Some(item) = self.manifest.items.get_mut(l.line as usize)
                && !item.status.is_done()
                && (item.status == ItemStatus::Pending || shared.left.contains(&l.line))
            {
                item.status = ItemStatus::Elsewhere;
                item.job_id = l.job_id;
                item.key = None;
                item.error = None;
                item.error_kind = None;
                if let Some(end) = &l.end {
                    item.urls = end.urls.clone();
                    if end.status != status_name(ItemStatus::Completed) {
                        item.error = Some(format!("its job ended {} (another worker)", end.status));
                    }
                }
            }
        }
        Ok(open)
    }

    /// Runs the batch as one of its workers: every line through a claim.
    pub async fn go_shared(
        &mut self,
        name: String,
        lease: std::time::Duration,
        on_event: &mut impl FnMut(super::BatchEvent<'_>),
    ) -> Result<()> {
        self.shared = Some(Shared::new(name, lease));
        self.forget_unfinished();
        self.save()?;
        let result = self.go(on_event).await;
        // What others finished meanwhile; and what this worker leaves is free at once.
        let looked = self.others_working().map(drop);
        let released = self.release();
        self.save()?;
        result.and(looked).and(released)
    }

    /// Frees the claims this worker still holds (it stops before finishing them).
    pub(super) fn release(&self) -> Result<()> {
        let (Some(shared), Some(journal)) = (&self.shared, self.krea.journal()) else {
            return Ok(());
        };
        journal.release_claims(&shared.name, self.krea.deadline)
    }
}

/// A status as the manifest and the store spell it (`completed`).
fn status_name(status: ItemStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
