//! The library's integration tests against the simulator over loopback, in one binary (on two
//! cores, linking a binary per file cost minutes).

mod support;

mod api;
mod faults;
mod image_run;
mod models_and_validation;
#[cfg(feature = "postgres")]
mod postgres_journal;
mod resume_and_downloads;
mod secrets;
mod settling;
