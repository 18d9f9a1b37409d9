//! Where the vendored description and its lock live, and finding the upstream document it was
//! made from (only maintainers' tools need that: the build reads the vendored file alone).

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::lock::Lock;

/// Environment variable that points at an upstream document (for `cargo xtask spec`).
pub const SPEC_ENV: &str = "KREA_OPENAPI_SPEC";
/// Where an upstream copy may sit when `KREA_OPENAPI_SPEC` is unset, relative to the workspace.
pub const DEFAULT_SPEC: &str = "../shared/openapi/krea-api-openapi.json";
/// The vendored description, relative to the workspace root (inside krea-gen's package).
pub const VENDORED_PATH: &str = "krea-gen/spec/krea-api.json";
/// The lock: which upstream document the vendored description was made from.
pub const LOCK_PATH: &str = "krea-gen/spec/krea-api.lock";

/// An upstream document, read and checked against the lock.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// Where it was read from.
    pub path: PathBuf,
    /// The parsed document (OpenAPI 3.1, as published).
    pub document: serde_json::Value,
    /// The lock it matched.
    pub lock: Lock,
}

/// Why the pinned document could not be loaded. Every message says how to fix it.
#[derive(Debug)]
pub enum SpecError {
    /// No file at the spec path.
    Missing { path: PathBuf },
    /// The file exists but could not be read.
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The lock file is missing or malformed.
    Lock { path: PathBuf, message: String },
    /// The document's hash is not the pinned one.
    Mismatch {
        path: PathBuf,
        pinned: String,
        actual: String,
    },
    /// The document is not JSON.
    Json { path: PathBuf, message: String },
}

const FIX: &str = "run `cargo xtask spec refresh` (or `cargo xtask spec refresh --from <file>` offline) \
to vendor the document you mean to build against";

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Missing { path } => write!(
                f,
                "Krea OpenAPI document not found at {}: set {SPEC_ENV} to its path, or {FIX}",
                path.display()
            ),
            SpecError::Unreadable { path, error } => {
                write!(
                    f,
                    "cannot read Krea OpenAPI document {}: {error}",
                    path.display()
                )
            }
            SpecError::Lock { path, message } => {
                write!(f, "bad lock file {}: {message}; {FIX}", path.display())
            }
            SpecError::Mismatch {
                path,
                pinned,
                actual,
            } => write!(
                f,
                "Krea OpenAPI document {} is not the one {LOCK_PATH} records:\n  locked sha256: {pinned}\n  actual sha256: {actual}\nIf the API changed on purpose, {FIX}; it prints what changed.",
                path.display()
            ),
            SpecError::Json { path, message } => {
                write!(
                    f,
                    "Krea OpenAPI document {} is not valid JSON: {message}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for SpecError {}

/// The path of the upstream document: `$KREA_OPENAPI_SPEC`, else [`DEFAULT_SPEC`] under `root`.
pub fn spec_path(root: &Path) -> PathBuf {
    match std::env::var_os(SPEC_ENV) {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { root.join(p) }
        }
        _ => root.join(DEFAULT_SPEC),
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads the lock under `root`.
pub fn read_lock(root: &Path) -> Result<Lock, SpecError> {
    let path = root.join(LOCK_PATH);
    let text = std::fs::read_to_string(&path).map_err(|e| SpecError::Lock {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Lock::parse(&text).map_err(|message| SpecError::Lock { path, message })
}

/// Reads the document at `path` and checks it against `lock`.
pub fn load_checked(path: &Path, lock: Lock) -> Result<Pinned, SpecError> {
    let bytes = std::fs::read(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => SpecError::Missing {
            path: path.to_path_buf(),
        },
        _ => SpecError::Unreadable {
            path: path.to_path_buf(),
            error,
        },
    })?;
    let actual = sha256_hex(&bytes);
    if actual != lock.sha256 {
        return Err(SpecError::Mismatch {
            path: path.to_path_buf(),
            pinned: lock.sha256,
            actual,
        });
    }
    let document = serde_json::from_slice(&bytes).map_err(|e| SpecError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Pinned {
        path: path.to_path_buf(),
        document,
        lock,
    })
}

/// Locates the upstream document for the workspace at `root` and checks it against the pin.
pub fn load_pinned(root: &Path) -> Result<Pinned, SpecError> {
    let lock = read_lock(root)?;
    load_checked(&spec_path(root), lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory that goes when the test ends.
    fn temp_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("krea-openapi-{name}-"))
            .tempdir()
            .expect("create temp dir")
    }

    #[test]
    fn a_modified_document_fails_with_both_hashes_and_the_fix() {
        let scratch = temp_dir("mismatch");
        let dir = scratch.path();
        let doc = dir.join("spec.json");
        std::fs::write(&doc, br#"{"openapi":"3.1.0"}"#).expect("write");
        let lock = Lock {
            sha256: "0".repeat(64),
            source: "x".into(),
            date: "d".into(),
        };
        let err = load_checked(&doc, lock).unwrap_err().to_string();
        assert!(err.contains(&doc.display().to_string()), "{err}");
        assert!(err.contains(&"0".repeat(64)), "{err}");
        assert!(
            err.contains(&sha256_hex(br#"{"openapi":"3.1.0"}"#)),
            "{err}"
        );
        assert!(err.contains("cargo xtask spec refresh"), "{err}");
    }

    #[test]
    fn a_missing_document_names_the_path_and_the_variable() {
        let lock = Lock {
            sha256: "0".repeat(64),
            source: "x".into(),
            date: "d".into(),
        };
        let err = load_checked(Path::new("/nonexistent/krea.json"), lock)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/krea.json") && err.contains(SPEC_ENV),
            "{err}"
        );
    }

    #[test]
    fn a_matching_document_loads() {
        let scratch = temp_dir("match");
        let dir = scratch.path();
        let doc = dir.join("spec.json");
        let bytes = br#"{"openapi":"3.1.0","paths":{}}"#;
        std::fs::write(&doc, bytes).expect("write");
        let lock = Lock {
            sha256: sha256_hex(bytes),
            source: "x".into(),
            date: "d".into(),
        };
        let pinned = load_checked(&doc, lock).expect("pinned");
        assert_eq!(pinned.document["openapi"], "3.1.0");
    }
}
