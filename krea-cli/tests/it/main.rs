//! The `krea` binary's tests against a simulator in this process, in one binary (on two cores,
//! linking a binary per file cost minutes). The fault suite runs here too: it spends its
//! minutes mostly waiting out settling windows, beside the rest (which must hold under its
//! load: a timing test that fails beside it is a defect). Its module's name sorts first on
//! purpose, and the terminal's (whose tests watch clocks tick for seconds) next: tests start
//! in name order, and the longest started first keep the binary's wall time near the longest
//! one's length instead of adding a tail after it.

mod support;

mod against_faults;
mod at_a_terminal;
mod bad_input;
mod batch;
mod bounds;
mod commands;
mod exit_codes;
mod generate;
mod golden;
mod json_output;
mod mcp;
mod mcp_http;
mod replicas;
mod security;
mod shared_batch;
mod shared_pipeline;
