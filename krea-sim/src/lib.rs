//! A local Krea-compatible API server (being built).

pub use krea_gen::catalog;
