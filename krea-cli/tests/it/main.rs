//! The `krea` binary's tests against a simulator in this process, in one binary (on two cores,
//! linking a binary per file cost minutes). The fault suite stays a binary of its own: it runs
//! for minutes and would crowd the timing tests here.

mod support;

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
mod security;
mod terminal;
