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
use krea_openapi::vendor::{self, to_canonical_json};
use krea_openapi::{LOCK_PATH, VENDORED_PATH, opid};

/// Where `refresh` fetches from by default.
pub const DEFAULT_URL: &str = "https://api.krea.ai/openapi.json";

/// What `spec check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// The vendored description's path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// The lock beside it.
    pub lock: Lock,
    /// Operations of the API (generated + hand-written).
    pub operations: usize,
    /// Operations progenitor generates.
    pub generated: usize,
    /// Operations implemented by hand (`METHOD /path`).
    pub hand_written: Vec<String>,
    /// Models in the catalog.
    pub models: usize,
    /// `(image, video, enhance)` model counts.
    pub by_kind: (usize, usize, usize),
    /// Models with a pricing table.
    pub priced: usize,
    /// Models with a typical completion time.
    pub timed: usize,
    /// When an upstream copy matching the lock was found: its path, and what vendoring it did
    /// (the result was compared with the committed file byte for byte).
    pub reproduced: Option<(PathBuf, Report, usize)>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "vendored description ok: {} ({} bytes, canonical, no prose), from upstream sha256 {} ({}, {})",
            self.path.display(),
            self.bytes,
            self.lock.sha256,
            self.lock.source,
            self.lock.date
        )?;
        writeln!(
            f,
            "{} operations, {} models, {} generated + {} hand-written ({})",
            self.operations,
            self.models,
            self.generated,
            self.hand_written.len(),
            self.hand_written.join(", ")
        )?;
        writeln!(
            f,
            "models: {} image, {} video, {} enhance; {} with pricing, {} with a typical time",
            self.by_kind.0, self.by_kind.1, self.by_kind.2, self.priced, self.timed
        )?;
        match &self.reproduced {
            Some((path, r, prose)) => {
                writeln!(
                    f,
                    "reproduced byte for byte from {}: {} operation ids, {} nullable, {} const -> enum, {} anyOf -> enum, {} optional nulls dropped, {} request defaults moved to x-krea-default, {prose} prose fields removed",
                    path.display(),
                    r.operation_ids,
                    r.nullable,
                    r.consts,
                    r.any_of_enums,
                    r.optional_nulls,
                    r.defaults_moved
                )?;
                let hoisted: Vec<String> =
                    r.hoisted.iter().map(|(n, c)| format!("{n} x{c}")).collect();
                writeln!(f, "hoisted: {}", hoisted.join(", "))?;
            }
            None => writeln!(
                f,
                "(no upstream copy matching the lock at ${} or {}: reproduction not checked)",
                krea_openapi::SPEC_ENV,
                krea_openapi::DEFAULT_SPEC
            )?,
        }
        writeln!(
            f,
            "invariants ok: unique operation ids, no type-name collisions, no 3.1 constructs left"
        )
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// The invariants progenitor relies on hold in the vendored description, it is canonical and
/// prose-free, and (when an upstream copy matching the lock is at hand) vendoring that copy
/// gives exactly the committed file.
pub fn check(root: &Path) -> Result<CheckReport> {
    let path = root.join(VENDORED_PATH);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "read {}: run `cargo xtask spec refresh --from <upstream copy>`",
            path.display()
        )
    })?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if to_canonical_json(&doc) != text {
        bail!(
            "{} is not in canonical form (sorted keys, two-space indentation): it was edited by hand; run `cargo xtask spec refresh`",
            path.display()
        );
    }
    if let Some(at) = vendor::prose_left(&doc) {
        bail!(
            "{} holds prose at {at}: run `cargo xtask spec refresh`",
            path.display()
        );
    }
    normalize::check_invariants(&doc)?;
    let lock = krea_openapi::read_lock(root)?;
    let models = catalog::extract(&doc)?;
    let generated = normalize::operations(&doc).len();
    let hand_written: Vec<String> = vendor::hand_written(&doc)
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    // typify names request and response types `{OpId}Body` / `{OpId}Response`: none may equal a
    // shared component name.
    let components: BTreeSet<String> = doc
        .pointer("/components/schemas")
        .and_then(|s| s.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for (_, _, op) in normalize::operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default();
        for suffix in ["Body", "Response"] {
            let name = format!("{}{suffix}", opid::pascal(id));
            if components.contains(&name) {
                bail!("type-name collision: `{name}` is both a component and derived from `{id}`");
            }
        }
    }
    let reproduced = match krea_openapi::load_pinned(root) {
        Ok(upstream) => {
            let again = vendor::vendor(&upstream.document)?;
            if to_canonical_json(&again.document) != text {
                bail!(
                    "vendoring {} (the upstream copy the lock names) does not give {}: the file or the vendoring code changed; run `cargo xtask spec refresh --from {}` and review the diff",
                    upstream.path.display(),
                    path.display(),
                    upstream.path.display()
                );
            }
            Some((upstream.path, again.report, again.prose_removed))
        }
        Err(krea_openapi::SpecError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let count = |k: Kind| models.iter().filter(|m| m.kind == k).count();
    Ok(CheckReport {
        path,
        bytes: text.len(),
        lock,
        operations: generated + hand_written.len(),
        generated,
        hand_written,
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
        reproduced,
    })
}

/// The API changes between the documents at `old` and `new` (each upstream or vendored).
pub fn diff_files(old: &Path, new: &Path) -> Result<SpecDiff> {
    Ok(diff::diff(&read_json(old)?, &read_json(new)?)?)
}

/// What `refresh` did.
#[derive(Debug)]
pub struct RefreshOutcome {
    /// The vendored description written.
    pub written: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// The new lock.
    pub lock: Lock,
    /// The API changes against the previously vendored description, when there was one.
    pub changes: Option<SpecDiff>,
}

impl fmt::Display for RefreshOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wrote {} ({} bytes)", self.written.display(), self.bytes)?;
        writeln!(
            f,
            "upstream sha256 {} recorded in {LOCK_PATH}",
            self.lock.sha256
        )?;
        match &self.changes {
            Some(d) => write!(f, "API changes since the previous description:\n{d}"),
            None => writeln!(f, "(no previous description, so no changelog)"),
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
    // A binary of its own: installing the process-wide TLS provider is this tool's call.
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .build()?;
        let response = client.get(source).send().await?.error_for_status()?;
        Ok(response.bytes().await?.to_vec())
    })
}

/// Reads an upstream document from `from` (URL or path; default [`DEFAULT_URL`]), writes the
/// vendored description and the lock into the workspace at `root`, and reports what changed in
/// the API against the previous description.
pub fn refresh(root: &Path, from: Option<&str>) -> Result<RefreshOutcome> {
    let source = from.unwrap_or(DEFAULT_URL);
    let bytes = fetch(source)?;
    let upstream: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{source} is not JSON"))?;
    if upstream.get("openapi").is_none() || upstream.get("paths").is_none() {
        bail!("{source} is not an OpenAPI document (no `openapi` or `paths`)");
    }
    if !vendor::is_upstream(&upstream) {
        bail!(
            "{source} is not an upstream document (OpenAPI 3.1): refresh reads what Krea publishes"
        );
    }
    // Refuse a document the build could not use, before touching anything.
    let vendored = vendor::vendor(&upstream).map_err(|e| anyhow!("{source}: {e}"))?;
    let dest = root.join(VENDORED_PATH);
    let previous = std::fs::read(&dest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let changes = previous
        .map(|old| diff::diff(&old, &vendored.document))
        .transpose()?;
    let text = to_canonical_json(&vendored.document);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&dest, &text).with_context(|| format!("write {}", dest.display()))?;
    let lock = Lock {
        sha256: krea_openapi::sha256_hex(&bytes),
        source: source.to_string(),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
    };
    std::fs::write(root.join(LOCK_PATH), lock.to_string()).context("write the lock")?;
    Ok(RefreshOutcome {
        written: dest,
        bytes: text.len(),
        lock,
        changes,
    })
}
