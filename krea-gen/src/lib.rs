//! Raw bindings to the Krea API, generated at build time by progenitor from the vendored
//! description `spec/krea-api.json` (Krea's OpenAPI document in this project's own form: its
//! structure and figures, none of its prose), plus the model catalog as static data.
//!
//! Most people want the `krea` crate, which wraps this one. Use this crate directly for an
//! operation the wrapper does not cover:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let http = krea_gen::net::client_builder().timeout(std::time::Duration::from_secs(30)).build()?;
//! let client = krea_gen::Client::new_with_client(
//!     "https://api.krea.ai",
//!     http,
//!     krea_gen::ApiAuth::bearer(&std::env::var("KREA_API_TOKEN")?)?,
//! );
//! let body: krea_gen::types::GenerateImageBflFlux1DevBody =
//!     serde_json::from_value(serde_json::json!({"prompt": "a lighthouse at dusk"}))?;
//! let job = client.generate_image_bfl_flux_1_dev(None, &body).await?;
//! println!("job {} is {}", job.job_id, job.status);
//! # Ok(()) }
//! ```
//!
//! Every operation's error body is [`types::Error`]; jobs are [`types::Job`] with a
//! [`JobStatus`] that tolerates states added later. `POST /assets` (multipart) is not generated:
//! the `krea` crate implements it. Build the HTTP client with [`net::client_builder`] (TLS is
//! set up there; the generated `Client::new` would need a process-wide rustls provider).

mod auth;
pub mod catalog;
pub mod media;
pub mod net;
pub mod pricing;
mod status;
pub mod validate;

pub use auth::{ApiAuth, InvalidToken};
pub use status::JobStatus;

// Generated code: it is not edited, so the workspace's hand-written-code lints do not apply.
#[allow(
    missing_debug_implementations,
    clippy::all,
    clippy::unwrap_used,
    unused_qualifications
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
}

pub use generated::*;

/// The vendored description this crate was generated from (OpenAPI 3.0.3 JSON), as served by
/// the simulator at `GET /openapi.json`.
pub const OPENAPI_DOCUMENT: &str = include_str!("../spec/krea-api.json");
