//! The batch's items as `manifest.json` records them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cost::Estimate;
use crate::error::{Error, Result};
use crate::error_kind::ExitClass;

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
    /// Done by another worker of a shared batch ([`crate::Batch::shared`]); its files are in
    /// that worker's directory.
    Elsewhere,
}

impl ItemStatus {
    /// The item needs nothing more.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            ItemStatus::Completed
                | ItemStatus::Failed
                | ItemStatus::Cancelled
                | ItemStatus::Elsewhere
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
    /// When Krea created its job (Krea's clock), once the job was seen ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When its job ended (Krea's clock), once seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
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
    pub error_kind: Option<crate::ErrorKind>,
    /// Its cost estimate in compute units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<Estimate>,
    /// Its request's answer was lost and settling could not be sure which job (if any) is
    /// its own: why. Its file may be another line's, or another program's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertain: Option<String>,
}

impl ItemState {
    /// How a program reports this item, by the same table as an error met directly
    /// ([`crate::ErrorKind::exit_class`]): a line refused with 403 exits as a refused `krea image`.
    pub fn exit_class(&self) -> ExitClass {
        match (self.status, self.error_kind) {
            (ItemStatus::Completed | ItemStatus::Elsewhere, _) => ExitClass::Ok,
            (_, Some(kind)) => kind.exit_class(),
            (ItemStatus::Failed | ItemStatus::Cancelled, None) => ExitClass::JobFailed,
            (ItemStatus::TimedOut | ItemStatus::Unknown, None) => ExitClass::Timeout,
            _ => ExitClass::Network,
        }
    }

    /// What the item was charged, in compute units: its estimate once completed, nothing for a
    /// job that failed or was cancelled or a request that created none; `None` while it is not
    /// known (a job still running, timed out, or a lost answer not yet settled may still be
    /// charged).
    pub fn charged(&self) -> Option<Estimate> {
        match self.status {
            ItemStatus::Completed => self.estimate,
            // Another worker's line is in that worker's account of the run.
            ItemStatus::Failed | ItemStatus::Cancelled | ItemStatus::Elsewhere => {
                Some(Estimate::zero())
            }
            ItemStatus::Pending | ItemStatus::Error if self.job_id.is_none() => {
                Some(Estimate::zero())
            }
            _ => None,
        }
    }
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

/// What `items` were charged in all ([`ItemState::charged`]); `None` while any item's charge
/// is not known.
pub(crate) fn charged_in_all<'a>(
    items: impl IntoIterator<Item = &'a ItemState>,
) -> Option<Estimate> {
    items
        .into_iter()
        .map(ItemState::charged)
        .try_fold(Estimate::zero(), |sum, c| c.map(|c| sum.plus(c)))
}

impl Manifest {
    /// What the batch was charged so far ([`ItemState::charged`]); `None` while any item's
    /// charge is not known.
    pub fn charged(&self) -> Option<Estimate> {
        charged_in_all(&self.items)
    }

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

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("manifest.json");
        let tmp = dir.join(".manifest.json.tmp");
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}
