//! The model catalog: every generation model of the vendored description. The types are
//! krea-openapi's (one set, whether the catalog is built in or read from a newer document); the
//! built-in catalog is generated JSON (`generated/catalog.json`), read once at first use.

use std::sync::LazyLock;

use serde_json::Value;

pub use krea_openapi::catalog::{
    value_text, CostRow, FieldAlias, Kind, ModelSpec, ParamSpec, ParamType,
};

/// Every generation model of the vendored description, sorted by id. Read from the generated
/// JSON on first use; `cargo xtask spec check` (and this crate's tests) prove it reads whole.
pub static MODELS: LazyLock<Vec<ModelSpec>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("generated/catalog.json")).unwrap_or_else(|e| {
        debug_assert!(false, "generated/catalog.json does not read: {e}");
        Vec::new()
    })
});

/// The model with id `provider/model`: built in, else added at run time ([`register`]).
pub fn model(id: &str) -> Option<&'static ModelSpec> {
    all().find(|m| m.id == id)
}

/// The model served at `path` (`/generate/image/bfl/flux-1-dev`), built in or added.
pub fn by_path(path: &str) -> Option<&'static ModelSpec> {
    all().find(|m| m.path == path)
}

/// Every model: the built-in ones ([`MODELS`]), then those added at run time.
pub fn all() -> impl Iterator<Item = &'static ModelSpec> {
    MODELS.iter().chain(added())
}

/// The models added at run time, in the order they were added.
pub fn added() -> Vec<&'static ModelSpec> {
    registry().read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn registry() -> &'static std::sync::RwLock<Vec<&'static ModelSpec>> {
    static ADDED: std::sync::OnceLock<std::sync::RwLock<Vec<&'static ModelSpec>>> =
        std::sync::OnceLock::new();
    ADDED.get_or_init(Default::default)
}

/// Adds the models of a catalog read at run time (a newer document than the build's) that are
/// not built in; returns those added. Process-wide: every client and simulator in the process
/// sees them. A model id is added once; later definitions of it are ignored.
pub fn register(models: &[ModelSpec]) -> Vec<&'static ModelSpec> {
    let mut added = registry().write().unwrap_or_else(|p| p.into_inner());
    let mut new = Vec::new();
    for m in models {
        let known = MODELS
            .iter()
            .chain(added.iter().copied())
            .any(|k| k.id == m.id);
        if !known {
            // Kept for the life of the process, once per model id: built-in models live as long.
            let spec: &'static ModelSpec = Box::leak(Box::new(m.clone()));
            added.push(spec);
            new.push(spec);
        }
    }
    new
}

/// A stand-in for a generation endpoint no catalog lists (`/generate/{kind}/{provider}/{model}`):
/// no parameters known, any body accepted. Not added to the catalog; made once per path.
pub fn unlisted(path: &str) -> Option<&'static ModelSpec> {
    static MADE: std::sync::OnceLock<std::sync::Mutex<Vec<&'static ModelSpec>>> =
        std::sync::OnceLock::new();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["generate", kind, provider, slug] = segments.as_slice() else {
        return None;
    };
    let kind = match *kind {
        "image" => Kind::Image,
        "video" => Kind::Video,
        "enhance" => Kind::Enhance,
        _ => return None,
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !valid(provider) || !valid(slug) {
        return None;
    }
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let spec = ModelSpec::unlisted(kind, provider, slug);
    if let Some(m) = made.iter().find(|m| m.path == spec.path) {
        return Some(m);
    }
    let spec: &'static ModelSpec = Box::leak(Box::new(spec));
    made.push(spec);
    Some(spec)
}

/// A generated request body of one generation model, and the path it is sent to: lets a body
/// built with the generated types go through a higher-level client.
pub trait GenerationBody: serde::Serialize {
    /// `/generate/{kind}/{provider}/{model}`.
    const PATH: &'static str;
}

fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<(), String> {
    T::deserialize(body).map(drop).map_err(|e| e.to_string())
}

include!("generated/bodies.rs");
