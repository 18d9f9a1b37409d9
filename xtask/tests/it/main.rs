//! `cargo xtask spec`, run as a maintainer runs it, in one binary.

mod spec_diff;
mod spec_refresh;
