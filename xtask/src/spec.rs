//! `cargo xtask spec refresh | check | diff`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use krea_openapi::catalog::{self, Kind};
use krea_openapi::diff::{self, SpecDiff};
use krea_openapi::lock::Lock;
use krea_openapi::normalize::{self, Report};
use krea_openapi::{LOCK_PATH, opid};

/// Where `refresh` fetches from by default.
pub const DEFAULT_URL: &str = "https://api.krea.ai/openapi.json";

/// What `spec check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The pinned document's path.
    pub path: PathBuf,
    /// The pin it matched.
    pub lock: Lock,
    /// Operations in the upstream document.
    pub operations: usize,
    /// Operations progenitor generates.
    pub generated: usize,
    /// Models in the catalog, and per kind.
    pub models: usize,
    /// `(image, video, enhance)` model counts.
    pub by_kind: (usize, usize, usize),
    /// Models whose description has a pricing table / a typical time.
    pub priced: usize,
    /// Models with a typical completion time.
    pub timed: usize,
    /// What normalization did.
    pub report: Report,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        writeln!(
            f,
            "pin ok: {} (sha256 {}, from {}, {})",
            self.path.display(),
            self.lock.sha256,
            self.lock.source,
            self.lock.date
        )?;
        let hand: Vec<String> = r
            .hand_written
            .iter()
            .map(|o| format!("{} {}", o.method, o.path))
            .collect();
        writeln!(
            f,
            "{} operations, {} models, {} generated + {} hand-written ({})",
            self.operations,
            self.models,
            self.generated,
            r.hand_written.len(),
            hand.join(", ")
        )?;
        writeln!(
            f,
            "models: {} image, {} video, {} enhance; {} with pricing, {} with a typical time",
            self.by_kind.0, self.by_kind.1, self.by_kind.2, self.priced, self.timed
        )?;
        writeln!(
            f,
            "normalization: {} operation ids, {} nullable, {} const -> enum, {} anyOf -> enum, {} optional nulls dropped, {} request defaults stripped",
            r.operation_ids,
            r.nullable,
            r.consts,
            r.any_of_enums,
            r.optional_nulls,
            r.defaults_stripped
        )?;
        let hoisted: Vec<String> = r.hoisted.iter().map(|(n, c)| format!("{n} x{c}")).collect();
        writeln!(f, "hoisted: {}", hoisted.join(", "))?;
        writeln!(
            f,
            "invariants ok: unique operation ids, no type-name collisions, no 3.1 constructs left"
        )
    }
}

/// The pin matches, normalization succeeds and its invariants hold; counts what is there.
pub fn check(root: &Path) -> Result<CheckReport> {
    let pinned = krea_openapi::load_pinned(root)?;
    let normalized = normalize::normalize(&pinned.document)?;
    let models = catalog::extract(&pinned.document)?;
    let operations = normalize::operations(&pinned.document).len();
    let generated = normalize::operations(&normalized.document).len();
    // typify names request and response types `{OpId}Body` / `{OpId}Response`: none may equal a
    // shared component name.
    let components: BTreeSet<String> = normalized
        .document
        .pointer("/components/schemas")
        .and_then(|s| s.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (_, _, op) in normalize::operations(&normalized.document) {
        let id = op["operationId"].as_str().unwrap_or_default();
        for suffix in ["Body", "Response"] {
            let name = format!("{}{suffix}", opid::pascal(id));
            if components.contains(&name) {
                bail!("type-name collision: `{name}` is both a component and derived from `{id}`");
            }
        }
    }
    if generated + normalized.report.hand_written.len() != operations {
        bail!(
            "{operations} operations, but {generated} generated and {} hand-written",
            normalized.report.hand_written.len()
        );
    }
    let count = |k: Kind| models.iter().filter(|m| m.kind == k).count();
    Ok(CheckReport {
        path: pinned.path,
        lock: pinned.lock,
        operations,
        generated,
        models: models.len(),
        by_kind: (count(Kind::Image), count(Kind::Video), count(Kind::Enhance)),
        priced: models
            .iter()
            .filter(|m| !m.compute_units.is_empty())
            .count(),
        timed: models
            .iter()
            .filter(|m| m.typical_seconds.is_some())
            .count(),
        report: normalized.report,
    })
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// The API changes between the documents at `old` and `new`.
pub fn diff_files(old: &Path, new: &Path) -> Result<SpecDiff> {
    Ok(diff::diff(&read_json(old)?, &read_json(new)?)?)
}

/// What `refresh` did.
#[derive(Debug)]
pub struct RefreshOutcome {
    /// Where the new document was written.
    pub written: PathBuf,
    /// The new pin.
    pub lock: Lock,
    /// The API changes against the previously pinned document, when it could be found.
    pub changes: Option<SpecDiff>,
}

impl fmt::Display for RefreshOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wrote {}", self.written.display())?;
        writeln!(f, "pinned sha256 {} in {LOCK_PATH}", self.lock.sha256)?;
        match &self.changes {
            Some(d) => write!(f, "API changes since the previous pin:\n{d}"),
            None => writeln!(
                f,
                "(the previously pinned document was not found, so no changelog)"
            ),
        }
    }
}

fn fetch(source: &str) -> Result<Vec<u8>> {
    if !(source.starts_with("https://") || source.starts_with("http://")) {
        return std::fs::read(source).with_context(|| format!("read {source}"));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .build()?;
        let response = client.get(source).send().await?.error_for_status()?;
        Ok(response.bytes().await?.to_vec())
    })
}

/// The document the current lock pins, looked for where it may still be.
fn previously_pinned(root: &Path, candidates: &[PathBuf]) -> Option<serde_json::Value> {
    let lock = krea_openapi::read_lock(root).ok()?;
    candidates.iter().find_map(|p| {
        krea_openapi::load_checked(p, lock.clone())
            .ok()
            .map(|p| p.document)
    })
}

/// Fetches a new upstream document from `from` (URL or path; default [`DEFAULT_URL`]), writes it
/// to `to` (default: the spec location), prints what changed against the previous pin and
/// updates the lock. The document is written outside the repository; never commit it.
pub fn refresh(root: &Path, from: Option<&str>, to: Option<&Path>) -> Result<RefreshOutcome> {
    let source = from.unwrap_or(DEFAULT_URL);
    let bytes = fetch(source)?;
    let new: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{source} is not JSON"))?;
    if new.get("openapi").is_none() || new.get("paths").is_none() {
        bail!("{source} is not an OpenAPI document (no `openapi` or `paths`)");
    }
    // Refuse a document the build could not use, before touching the pin.
    normalize::normalize(&new).map_err(|e| anyhow!("{source}: {e}"))?;
    let dest = to
        .map(Path::to_path_buf)
        .unwrap_or_else(|| krea_openapi::spec_path(root));
    if dest.starts_with(root) && !dest.starts_with(root.join("target")) {
        bail!(
            "{} is inside the repository: the upstream document is never committed; write it to ../shared/openapi or set KREA_OPENAPI_SPEC",
            dest.display()
        );
    }
    let default_location = root.join(krea_openapi::DEFAULT_SPEC);
    let previous = previously_pinned(
        root,
        &[
            dest.clone(),
            krea_openapi::spec_path(root),
            default_location,
        ],
    );
    let changes = previous.map(|old| diff::diff(&old, &new)).transpose()?;
    let same_file = Path::new(source)
        .canonicalize()
        .ok()
        .zip(dest.canonicalize().ok())
        .is_some_and(|(a, b)| a == b);
    if !same_file {
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        std::fs::write(&dest, &bytes).with_context(|| format!("write {}", dest.display()))?;
    }
    let lock = Lock {
        sha256: krea_openapi::sha256_hex(&bytes),
        source: source.to_string(),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
    };
    std::fs::write(root.join(LOCK_PATH), lock.to_string()).context("write the lock")?;
    Ok(RefreshOutcome {
        written: dest,
        lock,
        changes,
    })
}
