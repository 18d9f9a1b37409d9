//! Checking a request before anything is sent: the body with its inputs placed, every
//! problem at once, the values chosen for what was left out, and the cost.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::Problem;
use crate::cost::{Estimate, estimate};
use crate::error::{Error, Result};
use crate::journal::OutputPlan;
use crate::models::{self, Kind, ModelSpec};
use crate::sizes;

use super::{Checked, GenerationRequest, Slot};

impl GenerationRequest {
    /// The parameters with each input's URL (`urls`, in input order) placed into its field.
    pub(super) fn placed(&self, urls: &[String]) -> Map<String, Value> {
        let mut params = self.params.clone();
        for ((slot, _), url) in self.inputs.iter().zip(urls) {
            let url = Value::String(url.clone());
            match slot {
                Slot::Field(f) => {
                    params.insert(f.clone(), url);
                }
                Slot::Append(f) => {
                    if let Value::Array(list) = params.entry(f.clone()).or_insert_with(|| json!([]))
                    {
                        list.push(url);
                    }
                }
                Slot::StyleImage(strength) => {
                    if let Value::Array(list) =
                        params.entry("style_images").or_insert_with(|| json!([]))
                    {
                        list.push(json!({ "url": url, "strength": strength }));
                    }
                }
            }
        }
        params
    }

    /// Every check, and what would be sent (local inputs as placeholders), the values chosen
    /// for what the model requires and the request left out, and the cost.
    pub fn check(&self) -> Result<Checked> {
        let placeholders: Vec<String> = self.inputs.iter().map(|(_, i)| i.placeholder()).collect();
        self.check_with(&self.placed(&placeholders))
    }

    /// What the request will cost in compute units (`None` where Krea publishes no pricing).
    pub fn estimate(&self) -> Result<Option<Estimate>> {
        Ok(self.check()?.estimate)
    }

    pub(super) fn check_with(&self, params: &Map<String, Value>) -> Result<Checked> {
        let Some(model) = self.model else {
            if !self.problems.is_empty() {
                return Err(Error::InvalidRequest {
                    subject: self.name.clone(),
                    problems: self.problems.clone(),
                });
            }
            // Resolving again gives the typed error (UnknownModel with suggestions, ModelRetired).
            return Err(models::resolve(&self.name)
                .err()
                .unwrap_or(Error::UnknownModel {
                    name: self.name.clone(),
                    suggestions: Vec::new(),
                }));
        };
        let mut problems = self.problems.clone();
        problems.extend(self.inputs.iter().filter_map(|(slot, input)| {
            let field = match slot {
                Slot::Field(f) | Slot::Append(f) => f.as_str(),
                Slot::StyleImage(_) => "style_images",
            };
            input.problem().map(|p| Problem::at(field, p))
        }));
        if self.unchecked {
            return if problems.is_empty() {
                Ok(Checked {
                    model,
                    body: Value::Object(params.clone()),
                    notes: Vec::new(),
                    estimate: None,
                    worst_case: crate::cost::worst_case(
                        model,
                        &Value::Object(params.clone()),
                        self.krea.inner.assumed_price,
                    ),
                })
            } else {
                Err(Error::InvalidRequest {
                    subject: model.id.clone(),
                    problems,
                })
            };
        }
        if let Some(kind) = self.kind.filter(|k| *k != model.kind) {
            problems.push(Problem::whole(format!(
                "{} is {} model, not {}",
                model.id,
                models::kind_with_article(model.kind),
                models::kind_with_article(kind)
            )));
        }
        let mut params = params.clone();
        let source = self.inputs.iter().find_map(|(_, i)| i.dimensions());
        let (mut notes, unfilled) = sizes::fill(
            model,
            &mut params,
            self.ratio_hint.as_deref(),
            source,
            self.scale,
        );
        // A size the fill could not make is said once, not again as two missing parameters.
        let size_explained = unfilled
            .iter()
            .any(|p| p.field.as_deref() == Some(sizes::SIZE));
        problems.extend(unfilled);
        // A ratio given to a model that takes a size: say once what size it became.
        if let Some(ratio) = &self.ratio_hint
            && model.parameter("aspect_ratio").is_none()
            && let (Some(w), Some(h)) = (params.get("width"), params.get("height"))
        {
            notes.push(format!(
                "aspect ratio {ratio} sent as {w}x{h}: {} takes a width and a height",
                model.id
            ));
        }
        let mut body = Value::Object(params);
        krea_gen::validate::normalize_integers(model, &mut body);
        problems.extend(
            krea_gen::validate::validate(model, &body)
                .into_iter()
                .map(Problem::from)
                .filter(|p| {
                    let a_size = matches!(p.field.as_deref(), Some("width" | "height"));
                    !(size_explained && a_size && p.message == "is required")
                }),
        );
        problems.extend(blank_prompt(model, &body));
        if problems.is_empty() {
            // The generated type is the last word: a body it refuses is not sent.
            if let Some(Err(e)) = krea_gen::catalog::decode_body(&model.operation_id, &body) {
                problems.push(Problem::whole(e));
            }
        }
        if let Some(url) = &self.webhook
            && let Err(why) = check_webhook_url(url)
        {
            problems.push(Problem::at("webhook", why));
        }
        if let Some(why) = self
            .output
            .as_ref()
            .and_then(|o| output_problem(o, model.kind))
        {
            problems.push(Problem::at("output", why));
        }
        problems.dedup();
        if !problems.is_empty() {
            return Err(Error::InvalidRequest {
                subject: model.id.clone(),
                problems,
            });
        }
        let estimate = estimate(model, &body);
        let worst_case = crate::cost::worst_case(model, &body, self.krea.inner.assumed_price);
        Ok(Checked {
            model,
            body,
            notes,
            estimate,
            worst_case,
        })
    }
}

/// Why `plan` cannot receive a `kind` model's output, if it cannot.
fn output_problem(plan: &OutputPlan, kind: Kind) -> Option<String> {
    if let Some(why) = dir_problem(&plan.dir) {
        return Some(why);
    }
    let name = plan.file_name.as_deref()?;
    let path = plan.dir.join(name);
    if path.is_dir() {
        return Some(format!("{} is a directory", path.display()));
    }
    if path.exists() && !plan.overwrite {
        return Some(format!(
            "{} exists (choose another name, or let it be replaced)",
            path.display()
        ));
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let fits: &[&str] = match kind {
        Kind::Image | Kind::Enhance => &["png", "jpg", "jpeg", "webp"],
        Kind::Video => &["mp4", "mov", "webm"],
    };
    match ext {
        Some(e) if fits.contains(&e.as_str()) => None,
        _ => Some(format!(
            "{name} needs one of the extensions {} for this model's results",
            fits.join(", ")
        )),
    }
}

/// A prompt the model generates from that holds only whitespace: Krea would take it and
/// charge for a picture of nothing in particular.
fn blank_prompt(model: &ModelSpec, body: &Value) -> Option<Problem> {
    let required = model
        .parameters
        .iter()
        .any(|p| p.name == "prompt" && p.required);
    let blank = body
        .get("prompt")
        .and_then(Value::as_str)
        .is_some_and(|p| p.trim().is_empty());
    (required && blank).then(|| Problem::at("prompt", "is empty; say what to generate"))
}

/// Why files cannot be written under `dir` (created where missing), found before anything is
/// paid: the nearest part of it that exists must be a directory this process can create files
/// in. Tried with a file, since permission bits alone are wrong for root, read-only mounts and
/// ACLs.
fn dir_problem(dir: &std::path::Path) -> Option<String> {
    // By components: `taken/` names `taken` (a file there must not pass for "missing").
    let dir: PathBuf = dir.components().collect();
    let existing = dir
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_ok())
        .unwrap_or(std::path::Path::new("."));
    if !existing.is_dir() {
        return Some(format!(
            "{} is a file, not a directory (choose another output directory)",
            existing.display()
        ));
    }
    // A batch checks every line, each more than once: a directory found writable is not
    // tried again in this process (one that stops being so fails at the download, and the
    // journal keeps the job to download again).
    static WRITABLE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let known = |w: &Vec<PathBuf>| w.iter().any(|d| d == existing);
    if WRITABLE.lock().is_ok_and(|w| known(&w)) {
        return None;
    }
    let probe = existing.join(format!(".krea-write-check-{}", uuid::Uuid::new_v4()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            if let Ok(mut w) = WRITABLE.lock()
                && !known(&w)
                && w.len() < 64
            {
                w.push(existing.to_path_buf());
            }
            None
        }
        Err(e) => Some(format!(
            "cannot write in {} ({e}); choose a directory you can write to",
            existing.display()
        )),
    }
}

/// Absolute https, or http to a loopback host.
pub fn check_webhook_url(url: &str) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| format!("{url:?} is not an absolute URL"))?;
    let loopback = krea_gen::net::is_loopback_host(parsed.host_str());
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "{url} must use https:// (http:// only for loopback hosts)"
        )),
        _ => Err(format!("{url} must be an https:// URL")),
    }
}
