//! Durations this client has observed per model (Krea's own `created_at` -> `completed_at`, so
//! polling lag does not bias them), kept in a small JSON file so the next run's first poll
//! lands near the completion.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use krea_gen::catalog::ModelSpec;
use serde::{Deserialize, Serialize};

use crate::poll::{Expectation, catalog_expectation};

/// How often the file is rewritten at most.
const SAVE_EVERY: Duration = Duration::from_secs(2);
/// Weight of a new observation once a model has a few.
const ALPHA: f64 = 0.2;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
struct Stat {
    mean_seconds: f64,
    samples: u64,
}

#[derive(Debug)]
struct Inner {
    stats: HashMap<String, Stat>,
    dirty: bool,
    saved: Option<Instant>,
}

/// Observed durations (optionally persisted).
#[derive(Debug)]
pub struct Timings {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl Timings {
    /// Loads `path` if it exists (a missing or unreadable file starts empty).
    pub fn load(path: Option<PathBuf>) -> Timings {
        let stats = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Timings {
            path,
            inner: Mutex::new(Inner {
                stats,
                dirty: false,
                saved: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What to expect from `model`: observed, else the catalog, else a per-kind guess.
    /// `time_scale` converts observations made against a faster simulator back to real seconds.
    pub fn expect(&self, model: &ModelSpec, time_scale: f64) -> Expectation {
        match self.lock().stats.get(&model.id) {
            Some(s) if s.samples > 0 && time_scale > 0.0 => Expectation {
                seconds: s.mean_seconds / time_scale,
                founded: true,
            },
            _ => catalog_expectation(model),
        }
    }

    /// Records that a job of `model_id` took `seconds` (as measured by Krea).
    pub fn observe(&self, model_id: &str, seconds: f64) {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return;
        }
        let mut inner = self.lock();
        let stat = inner.stats.entry(model_id.to_string()).or_default();
        stat.samples += 1;
        let weight = (1.0 / stat.samples as f64).max(ALPHA);
        stat.mean_seconds += weight * (seconds - stat.mean_seconds);
        inner.dirty = true;
        let due = inner.saved.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
        if due {
            self.save_locked(&mut inner);
        }
    }

    fn save_locked(&self, inner: &mut Inner) {
        let Some(path) = &self.path else { return };
        if !inner.dirty {
            return;
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Write a sibling and rename, so a crash never leaves half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Ok(bytes) = serde_json::to_vec_pretty(&inner.stats) {
            if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, path).is_ok() {
                inner.dirty = false;
                inner.saved = Some(Instant::now());
            } else {
                let _ = std::fs::remove_file(&tmp);
            }
        }
    }

    /// Writes pending observations now.
    pub fn flush(&self) {
        let mut inner = self.lock();
        self.save_locked(&mut inner);
    }
}

impl Drop for Timings {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flux() -> &'static ModelSpec {
        krea_gen::catalog::model("bfl/flux-1-dev").expect("flux")
    }

    #[test]
    fn observations_replace_the_catalog_figure_and_persist() {
        let path = std::env::temp_dir().join(format!("krea-timings-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let t = Timings::load(Some(path.clone()));
        assert_eq!(t.expect(flux(), 1.0).seconds, 7.0, "the catalog first");
        t.observe(&flux().id, 10.0);
        t.observe(&flux().id, 12.0);
        assert_eq!(t.expect(flux(), 1.0).seconds, 11.0);
        drop(t);
        let again = Timings::load(Some(path.clone()));
        assert_eq!(again.expect(flux(), 1.0).seconds, 11.0);
        assert_eq!(
            again.expect(flux(), 0.01).seconds,
            1100.0,
            "scaled back to real seconds"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_corrupt_file_starts_empty() {
        let path =
            std::env::temp_dir().join(format!("krea-timings-bad-{}.json", std::process::id()));
        std::fs::write(&path, b"{not json").expect("write");
        assert_eq!(
            Timings::load(Some(path.clone()))
                .expect(flux(), 1.0)
                .seconds,
            7.0
        );
        let _ = std::fs::remove_file(&path);
    }
}
