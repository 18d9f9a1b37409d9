//! Krea's OpenAPI document, from the upstream file to the project's vendored description.
//!
//! - [`vendor::vendor`] turns the published OpenAPI 3.1 document into the vendored description
//!   (`krea-gen/spec/krea-api.json`): normalized for progenitor 0.15 one tested step at a time
//!   ([`normalize`]), with Krea's prose removed and its figures kept as `x-krea-*` fields.
//! - [`catalog::extract`] reads the model catalog from it; [`glossary`] holds the project's own
//!   help line for each common parameter; [`diff::diff`] compares two documents;
//!   [`publish::served`] gives the whole API back in the form Krea publishes it.
//! - [`load_pinned`] finds an upstream copy (`$KREA_OPENAPI_SPEC`, else
//!   `../shared/openapi/krea-api-openapi.json`) and checks it against the lock. Only
//!   `cargo xtask spec` needs one: the build reads the vendored file alone.

pub mod catalog;
pub mod diff;
pub mod emit;
pub mod glossary;
mod hoist;
mod locate;
pub mod lock;
pub mod normalize;
pub mod opid;
pub mod publish;
pub mod vendor;

pub use hoist::JOB_STATES;
pub use locate::{
    DEFAULT_SPEC, LOCK_PATH, Pinned, SPEC_ENV, SpecError, VENDORED_PATH, load_checked, load_pinned,
    read_lock, sha256_hex, spec_path,
};
