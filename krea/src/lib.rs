#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod api;
mod batch;
mod budget;
pub mod catalog;
mod client;
mod config;
mod cost;
pub mod credentials;
mod download;
mod error;
mod error_kind;
mod evidence;
mod input;
mod job;
pub mod journal;
mod limiter;
pub mod models;
mod options;
mod pacer;
pub mod pipeline;
mod poll;
mod probe;
mod problem;
pub mod redact;
mod request;
mod retry;
mod send;
mod settle;
mod sizes;
mod submit;
mod timings;
mod types;
mod wait;
pub mod webhook;

pub use api::assets::Assets;
pub use api::jobs::{JobQuery, Jobs, Page, Resumed};
pub use api::node_apps::NodeApps;
pub use api::styles::{StyleTraining, StyleUpdate, Styles};
pub use batch::{
    Batch, BatchEvent, BatchFile, BatchLine, BatchReport, ItemProblem, ItemState, ItemStatus,
    LineProblem, Manifest,
};
pub use budget::{Budget, OverBudget, Reservation};
pub use client::Krea;
pub use config::{BASE_URL_ENV, DEFAULT_BASE_URL, KreaBuilder, StatePath, TOKEN_ENV};
pub use cost::{Estimate, assumed_price, estimate};
pub use download::DownloadOptions;
pub use error::{Error, Result, UnknownOutcome};
pub use error_kind::{ErrorKind, ExitClass};
pub use input::Input;
pub use job::{Finished, JobHandle, JobUpdate};
pub use journal::OutputPlan;
pub use options::GenerationOptions;
pub use poll::{Expectation, FirstPoll, PollPolicy, PollSchedule};
pub use probe::Probe;
pub use problem::Problem;
pub use request::{Checked, GenerationRequest};
pub use retry::RetryPolicy;
pub use settle::Settlement;
pub use types::{Asset, Job, JobResult, JobStatus, NodeApp, Style, StyleOwner, StyleShareLink};

/// The generated client and its types (they change whenever Krea's document does), for
/// operations this crate does not wrap. [`Krea::raw`] gives a client that carries the token;
/// typed request bodies go through [`Krea::generate_body`]. Only the generated code: the
/// catalog, validation and pricing it is built with are this crate's ([`models`], [`estimate`]).
pub mod raw {
    pub use krea_gen::catalog::GenerationBody;
    pub use krea_gen::{
        ApiAuth, ByteStream, Client, ClientInfo, Error, InvalidToken, OPENAPI_DOCUMENT,
        ResponseValue, types,
    };
}
