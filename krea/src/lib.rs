//! The Krea API client. The hand-written layer (models, typed requests, polling, retries,
//! downloads) is being built; until then this crate re-exports the generated bindings.

pub use krea_gen as raw;
