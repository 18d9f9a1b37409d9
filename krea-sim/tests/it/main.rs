//! The simulator's tests, as an outside client sees it, in one binary.

mod support;

mod capacity_and_credits;
mod every_operation;
mod faults;
mod lifecycle;
mod listing;
mod outside;
mod retirement;
mod third_pass;
mod validation;
mod webhooks;
