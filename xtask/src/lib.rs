//! Maintainer tasks behind `cargo xtask`, as a library so tests can drive them directly.

pub mod generate;
pub mod public_api;
pub mod spec;
