//! Job states, tolerant of states Krea adds later.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The state of a job. A state this crate does not know decodes as [`JobStatus::Other`] and
/// counts as pending, so a new Krea state never breaks decoding a job. One type for the
/// generated client and the `krea` crate (which re-exports it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting for capacity on the account.
    Backlogged,
    /// Waiting for a worker.
    Queued,
    /// Assigned to run.
    Scheduled,
    /// Running.
    Processing,
    /// Sampling (running).
    Sampling,
    /// Partial results are available; still running.
    IntermediateComplete,
    /// Finished; `result.urls` holds the files.
    Completed,
    /// Finished without a result; not billed.
    Failed,
    /// Cancelled; not billed.
    Cancelled,
    /// A state Krea added after this crate was built; treated as pending.
    Other(String),
}

impl JobStatus {
    /// Every documented state, in lifecycle order.
    pub const KNOWN: [JobStatus; 9] = [
        JobStatus::Backlogged,
        JobStatus::Queued,
        JobStatus::Scheduled,
        JobStatus::Processing,
        JobStatus::Sampling,
        JobStatus::IntermediateComplete,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The wire name (`intermediate-complete`).
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Backlogged => "backlogged",
            JobStatus::Queued => "queued",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Processing => "processing",
            JobStatus::Sampling => "sampling",
            JobStatus::IntermediateComplete => "intermediate-complete",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Other(s) => s,
        }
    }

    /// Completed, failed or cancelled: the job will not change again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// Not terminal (unknown states included).
    pub fn is_pending(&self) -> bool {
        !self.is_terminal()
    }

    /// Parses a wire name; unknown names become [`JobStatus::Other`].
    pub fn parse(s: &str) -> JobStatus {
        JobStatus::KNOWN
            .iter()
            .find(|k| k.as_str() == s)
            .cloned()
            .unwrap_or_else(|| JobStatus::Other(s.to_string()))
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(JobStatus::parse(s))
    }
}

impl From<&str> for JobStatus {
    fn from(s: &str) -> Self {
        JobStatus::parse(s)
    }
}

impl Serialize for JobStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        Ok(JobStatus::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_states_round_trip() {
        for s in JobStatus::KNOWN {
            let json = serde_json::to_string(&s).expect("serialize");
            assert_eq!(
                serde_json::from_str::<JobStatus>(&json).expect("deserialize"),
                s
            );
        }
    }

    #[test]
    fn an_unknown_state_is_kept_and_pending() {
        let s: JobStatus = serde_json::from_str("\"warming-up\"").expect("deserialize");
        assert_eq!(s, JobStatus::Other("warming-up".into()));
        assert!(s.is_pending());
        assert_eq!(
            serde_json::to_string(&s).expect("serialize"),
            "\"warming-up\""
        );
    }

    #[test]
    fn terminal_states_are_the_three_documented() {
        let terminal: Vec<&str> = JobStatus::KNOWN
            .iter()
            .filter(|s| s.is_terminal())
            .map(JobStatus::as_str)
            .collect();
        assert_eq!(terminal, ["completed", "failed", "cancelled"]);
    }
}
