//! The generated client's catalog and wire types, in one binary.

mod support;

mod catalog;
mod wire_types;
