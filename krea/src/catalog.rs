//! Models Krea added after this crate was built: fetched from the API's own OpenAPI document
//! when asked ([`Krea::refresh_catalog`]), optionally kept in a cache file, and validated like
//! the built-in ones. Nothing is fetched unless asked.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use reqwest::Method;

use crate::client::Krea;
use crate::error::{Error, Result};
use crate::send::{Call, Class, read_capped};

/// The largest OpenAPI document accepted (Krea's is about 250 KB).
const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// A catalog read from a live document, as the cache file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedCatalog {
    fetched_at: DateTime<Utc>,
    source: String,
    models: Vec<krea_openapi::catalog::ModelSpec>,
}

/// What a refresh (or loading the cache) found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CatalogInfo {
    /// When the document was fetched.
    pub fetched_at: DateTime<Utc>,
    /// Where it came from (`https://api.krea.ai/openapi.json`).
    pub source: String,
    /// Models in the document.
    pub models: usize,
    /// Ids of models in the document that this build does not know, now usable.
    pub not_built_in: Vec<String>,
    /// Ids of built-in models the document no longer lists.
    pub gone: Vec<String>,
    /// The cache file written or read, if any.
    pub cache: Option<PathBuf>,
}

/// The default cache file: `krea/catalog.json` under the user's cache directory.
pub fn default_cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("krea").join("catalog.json"))
}

fn info(cached: &CachedCatalog, cache: Option<PathBuf>) -> CatalogInfo {
    let builtin = |id: &str| krea_gen::catalog::MODELS.iter().any(|m| m.id == id);
    CatalogInfo {
        fetched_at: cached.fetched_at,
        source: cached.source.clone(),
        models: cached.models.len(),
        not_built_in: cached
            .models
            .iter()
            .filter(|m| !builtin(&m.id))
            .map(|m| m.id.clone())
            .collect(),
        gone: krea_gen::catalog::MODELS
            .iter()
            .filter(|b| !cached.models.iter().any(|m| m.id == b.id))
            .map(|b| b.id.to_string())
            .collect(),
        cache,
    }
}

/// Reads the cache file at `path` and makes its models usable; `None` when there is none.
pub fn load_cache(path: &Path) -> Result<Option<CatalogInfo>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let cached: CachedCatalog = serde_json::from_slice(&bytes).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    krea_gen::catalog::register(&cached.models);
    Ok(Some(info(&cached, Some(path.to_path_buf()))))
}

impl Krea {
    /// Fetches the API's OpenAPI document (`GET /openapi.json` on the API origin, no token
    /// sent), reads its model catalog, and makes the models this build does not know usable by
    /// every client in the process (requests for them are validated against the document). With
    /// a [`crate::KreaBuilder::catalog_cache`], the catalog is kept there for later runs.
    pub async fn refresh_catalog(&self) -> Result<CatalogInfo> {
        let source = format!("{}/openapi.json", self.base_url());
        let operation = "GET /openapi.json";
        // Public: the token is not sent.
        let call = Call {
            auth: false,
            ..Call::api(self, Class::Read, Method::GET, "/openapi.json", operation)
        };
        let bytes = self
            .execute(&call, |response| async move {
                read_capped(response, MAX_DOCUMENT_BYTES).await
            })
            .await
            .map_err(|f| self.error(f, operation))?;
        let document: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
                operation: operation.into(),
                path: None,
                message: format!("not JSON: {e}"),
                body: String::new(),
            })?;
        let models = krea_openapi::catalog::extract(&document).map_err(|e| Error::Decode {
            operation: operation.into(),
            path: None,
            message: e.to_string(),
            body: String::new(),
        })?;
        let cached = CachedCatalog {
            fetched_at: Utc::now(),
            source,
            models,
        };
        krea_gen::catalog::register(&cached.models);
        let path = self.inner.catalog_cache.clone();
        if let Some(path) = &path {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let text = serde_json::to_vec(&cached)
                .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        }
        Ok(info(&cached, path))
    }
}
