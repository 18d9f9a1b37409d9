//! Krea's OpenAPI document, from the pinned upstream file to what progenitor reads.
//!
//! - [`load_pinned`] finds the document (`$KREA_OPENAPI_SPEC`, else
//!   `../shared/openapi/krea-api-openapi.json` beside the workspace) and checks its sha256
//!   against `openapi/krea-api.lock`. The document is never copied into the repository.
//! - [`normalize::normalize`] turns the published OpenAPI 3.1 into the 3.0 dialect progenitor
//!   0.15 accepts, one tested step at a time, and reports what each step did.
//! - [`catalog::extract`] reads the model catalog; [`diff::diff`] compares two documents.

pub mod catalog;
pub mod diff;
pub mod emit;
mod hoist;
mod locate;
pub mod lock;
pub mod normalize;
pub mod opid;

pub use hoist::JOB_STATES;
pub use locate::{
    DEFAULT_SPEC, LOCK_PATH, Pinned, SPEC_ENV, SpecError, load_checked, load_pinned, read_lock,
    sha256_hex, spec_path,
};
