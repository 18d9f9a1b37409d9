//! The API's objects as this crate exposes them. They are this crate's own (not the generated
//! ones, which change with every document Krea publishes): `#[non_exhaustive]`, decoded
//! leniently (a field Krea adds later is ignored, a state it adds later is kept as
//! [`JobStatus::Other`]). The generated types stay reachable under [`crate::raw`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use krea_gen::JobStatus;

/// What a finished job produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobResult {
    /// The result files' URLs.
    #[serde(default)]
    pub urls: Vec<String>,
    /// The trained style, for a style-training job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_id: Option<String>,
    /// Why a job failed, where Krea says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A job: a generation, a style training or a node app run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// Its id.
    #[serde(rename = "job_id")]
    pub id: Uuid,
    /// Where it is.
    pub status: JobStatus,
    /// When Krea created it.
    pub created_at: DateTime<Utc>,
    /// When it ended, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// What it produced, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
}

impl Job {
    /// The result URLs (empty until completed).
    pub fn urls(&self) -> &[String] {
        self.result.as_ref().map_or(&[], |r| r.urls.as_slice())
    }

    /// A job in `status` created at `created_at`, with nothing else known yet.
    pub(crate) fn placeholder(id: Uuid, status: JobStatus, created_at: DateTime<Utc>) -> Job {
        Job {
            id,
            status,
            created_at,
            completed_at: None,
            result: None,
        }
    }
}

/// An uploaded file, usable as an input by URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Asset {
    /// Its id.
    pub id: Uuid,
    /// Where generations can read it.
    pub image_url: String,
    /// When it was uploaded.
    pub uploaded_at: DateTime<Utc>,
    /// The description given at upload.
    #[serde(default)]
    pub description: Option<String>,
    /// Its type, as Krea detected it.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Its size in bytes.
    #[serde(default)]
    pub size_bytes: Option<f64>,
    /// Width in pixels, for images.
    #[serde(default)]
    pub width: Option<f64>,
    /// Height in pixels, for images.
    #[serde(default)]
    pub height: Option<f64>,
}

/// Who owns a style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StyleOwner {
    /// Their id.
    pub id: String,
    /// Their name.
    pub name: String,
}

/// A trained style (LoRA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Style {
    /// Its id (used in `styles` parameters).
    pub id: String,
    /// Its title.
    #[serde(default)]
    pub title: Option<String>,
    /// Whether anyone can use it.
    #[serde(default)]
    pub public: bool,
    /// Models it can be used with.
    #[serde(default)]
    pub models: Vec<String>,
    /// Its cover image.
    #[serde(default)]
    pub cover_url: Option<String>,
    /// Training images.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Who owns it.
    #[serde(default)]
    pub owner: Option<StyleOwner>,
    /// When it was made (as Krea writes it).
    #[serde(default)]
    pub created_at: Option<String>,
    /// How many people liked it.
    #[serde(default)]
    pub like_count: Option<f64>,
}

/// A link that shares a style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StyleShareLink {
    /// The link.
    pub share_link: String,
    /// Whether it was made by this request.
    #[serde(default)]
    pub is_new: bool,
}

/// A node app (a saved Krea workflow) at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeApp {
    /// The version id (what runs).
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// Its version number.
    #[serde(default)]
    pub version: Option<f64>,
    /// The JSON Schema of its inputs, where published.
    #[serde(default)]
    pub input_openapi_schema: Option<serde_json::Value>,
    /// The JSON Schema of its outputs, where published.
    #[serde(default)]
    pub output_openapi_schema: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_states_and_fields_are_tolerated() {
        let job: Job = serde_json::from_str(
            r#"{"job_id":"4d0e5f97-9721-4422-b88c-73a9032d7de1","status":"warming-up","created_at":"2026-11-21T12:00:00Z","new_field":1}"#,
        )
        .expect("decodes");
        assert_eq!(job.status, JobStatus::Other("warming-up".into()));
        assert!(!job.status.is_terminal());
        let back = serde_json::to_value(&job).expect("encodes");
        assert_eq!(back["status"], "warming-up");
        assert_eq!(back["job_id"], "4d0e5f97-9721-4422-b88c-73a9032d7de1");
    }

    #[test]
    fn every_known_state_round_trips() {
        for s in krea_openapi::JOB_STATES {
            let status: JobStatus = s.parse().expect("infallible");
            assert_eq!(status.as_str(), s);
            assert!(!matches!(status, JobStatus::Other(_)), "{s}");
        }
    }
}
