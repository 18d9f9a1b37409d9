#![doc = include_str!("../README.md")]

mod api;
pub mod catalog;
mod client;
mod config;
mod download;
mod error;
mod job;
pub mod journal;
mod limiter;
pub mod models;
mod poll;
mod request;
mod retry;
mod timings;
pub mod webhook;

pub use api::assets::Assets;
pub use api::jobs::{JobQuery, Jobs, Resumed};
pub use api::node_apps::NodeApps;
pub use api::styles::{StyleTraining, StyleUpdate, Styles};
pub use client::Krea;
pub use config::{BASE_URL_ENV, DEFAULT_BASE_URL, KreaBuilder, StatePath, TOKEN_ENV};
pub use download::{DownloadOptions, extension, sanitize};
pub use error::{Error, Result};
pub use job::{Finished, JobHandle, JobUpdate};
pub use krea_gen::JobStatus;
pub use krea_gen::types;
pub use poll::{Expectation, FirstPoll, PollPolicy};
pub use request::{GenerationRequest, check_webhook_url};
pub use retry::RetryPolicy;

/// The generated client and its types, for operations this crate does not wrap.
pub use krea_gen as raw;
