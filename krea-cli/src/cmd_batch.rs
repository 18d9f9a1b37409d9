//! `krea batch FILE`: many prompts, a limited number of jobs in flight, a manifest written after
//! every submission and completion (so `--resume` never submits a line twice), and an HTML
//! contact sheet.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use krea::models;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::cli::BatchArgs;
use crate::cmd_generate::params;
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};

/// One line of the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// 1-based line number in the input file.
    pub line: usize,
    pub prompt: String,
    /// Model id.
    pub model: String,
    /// Parameters besides the prompt.
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// `pending` (not submitted), `submitted`, `completed`, `failed`...
    pub status: String,
    #[serde(default)]
    pub files: Vec<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `manifest.json` in the output directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub source: String,
    pub items: Vec<Item>,
}

impl Manifest {
    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join("manifest.json");
        let tmp = dir.join(".manifest.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// Reads the input: plain prompts, or JSON Lines with `prompt`, `model`, `params` (other keys
/// are parameters too). Blank lines and `#` comments are skipped.
pub fn parse(
    text: &str,
    default_model: &str,
    common: &Map<String, Value>,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (prompt, model, own) = if line.starts_with('{') {
            let Value::Object(mut obj) = serde_json::from_str(line)
                .map_err(|e| Usage(format!("line {}: not valid JSON: {e}", i + 1)))?
            else {
                return Err(Usage(format!("line {}: expected a JSON object", i + 1)).into());
            };
            let prompt = match obj.remove("prompt") {
                Some(Value::String(p)) => p,
                None => String::new(),
                Some(_) => {
                    return Err(Usage(format!("line {}: prompt must be a string", i + 1)).into());
                }
            };
            let model = match obj.remove("model") {
                Some(Value::String(m)) => m,
                None => default_model.to_string(),
                Some(_) => {
                    return Err(Usage(format!("line {}: model must be a string", i + 1)).into());
                }
            };
            let mut own = match obj.remove("params") {
                Some(Value::Object(p)) => p,
                None => Map::new(),
                Some(_) => {
                    return Err(Usage(format!("line {}: params must be an object", i + 1)).into());
                }
            };
            own.extend(obj);
            (prompt, model, own)
        } else {
            (line.to_string(), default_model.to_string(), Map::new())
        };
        let id = models::resolve(&model)
            .map_err(|e| Usage(format!("line {}: {e}", i + 1)))?
            .id
            .to_string();
        let mut params = common.clone();
        params.extend(own);
        items.push(Item {
            line: i + 1,
            prompt,
            model: id,
            params,
            job_id: None,
            status: "pending".into(),
            files: Vec::new(),
            error: None,
        });
    }
    if items.is_empty() {
        return Err(Usage("the batch file has no prompts".into()).into());
    }
    Ok(items)
}

fn body(item: &Item) -> Value {
    let mut b = item.params.clone();
    if !item.prompt.is_empty() {
        b.insert("prompt".into(), Value::String(item.prompt.clone()));
    }
    Value::Object(b)
}

/// Job ids the journal has for this output directory, by request body (jobs created right
/// before a previous run was killed, too late to reach the manifest).
fn journaled(ctx: &Ctx, dir: &Path) -> Vec<(Uuid, String, Value)> {
    let Some(journal) = ctx.krea.journal() else {
        return Vec::new();
    };
    journal
        .entries()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e {
            krea::journal::Entry::Submitted {
                job_id,
                model,
                request,
                output: Some(plan),
                ..
            } if plan.dir == dir => Some((job_id, model, request)),
            _ => None,
        })
        .collect()
}

pub async fn batch(ctx: &Ctx, a: &BatchArgs) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| Usage(format!("cannot read {}: {e}", a.file.display())))?;
    let common = params(&a.params, models::resolve(&a.model).ok())?;
    let mut items = parse(&text, &a.model, &common)?;
    // Every line is checked before the first request.
    let mut problems = Vec::new();
    for item in &items {
        if let Err(e) = ctx.krea.generate(&item.model, body(item)).check() {
            problems.push(format!("line {}: {e}", item.line));
        }
    }
    if !problems.is_empty() {
        return Err(Usage(format!(
            "{} invalid line(s), nothing was sent:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
        .into());
    }
    std::fs::create_dir_all(&a.output)?;
    let dir = a.output.canonicalize()?;
    let manifest_path = dir.join("manifest.json");
    if manifest_path.exists() {
        if !a.resume {
            return Err(Usage(format!(
                "{} already holds a batch: continue it with --resume, or choose another --output",
                dir.display()
            ))
            .into());
        }
        let old: Manifest = serde_json::from_slice(&std::fs::read(&manifest_path)?)
            .map_err(|e| Usage(format!("cannot read {}: {e}", manifest_path.display())))?;
        for item in &mut items {
            if let Some(prev) = old
                .items
                .iter()
                .find(|p| p.line == item.line && p.prompt == item.prompt && p.model == item.model)
            {
                item.job_id = prev.job_id;
                item.status = prev.status.clone();
                item.files = prev.files.clone();
                item.error = prev.error.clone();
            }
        }
    }
    if a.resume {
        let mut known: Vec<Uuid> = items.iter().filter_map(|i| i.job_id).collect();
        for (job_id, model, request) in journaled(ctx, &dir) {
            if known.contains(&job_id) {
                continue;
            }
            if let Some(item) = items
                .iter_mut()
                .find(|i| i.job_id.is_none() && i.model == model && body(i) == request)
            {
                item.job_id = Some(job_id);
                item.status = "submitted".into();
                known.push(job_id);
            }
        }
        // Sent when a previous run died, and not in the journal: it may have created a job.
        for item in items
            .iter_mut()
            .filter(|i| i.status == "submitting" && i.job_id.is_none())
        {
            item.status = "unknown".into();
            item.error = Some("the previous run stopped while this line's request was in flight; it may have created a job".into());
        }
    }
    let manifest = Arc::new(Mutex::new(Manifest {
        source: a.file.display().to_string(),
        items: items.clone(),
    }));
    manifest
        .lock()
        .map_err(|_| anyhow::anyhow!("manifest lock"))?
        .save(&dir)?;

    let slots = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let todo: Vec<usize> = items
        .iter()
        .enumerate()
        // Ended lines are done. A line whose request got no answer may have created a paid
        // job, so it is sent again only when asked.
        .filter(|(_, i)| {
            !matches!(i.status.as_str(), "completed" | "failed" | "cancelled")
                && (i.status != "unknown" || a.resubmit_unknown)
        })
        .map(|(n, _)| n)
        .collect();
    let already = items.len() - todo.len();
    if already > 0 {
        ctx.out
            .note(format!("{already} of {} lines already done", items.len()));
    }
    let runs = todo.into_iter().map(|n| {
        let (manifest, slots, dir, item) = (
            manifest.clone(),
            slots.clone(),
            dir.clone(),
            items[n].clone(),
        );
        async move {
            let _slot = slots.acquire().await;
            let outcome = run_item(ctx, &item, &dir, &manifest, n).await;
            let mut m = manifest
                .lock()
                .map_err(|_| anyhow::anyhow!("manifest lock"))?;
            let entry = &mut m.items[n];
            match outcome {
                Ok(files) => {
                    entry.status = "completed".into();
                    entry.files = files
                        .iter()
                        .map(|f| f.strip_prefix(&dir).unwrap_or(f).to_path_buf())
                        .collect();
                    entry.error = None;
                }
                Err(e) => {
                    entry.status = match &e {
                        krea::Error::JobFailed { reason, .. } => reason.clone(),
                        krea::Error::Timeout { .. } => "timed_out".into(),
                        krea::Error::OutcomeUnknown { .. } => "unknown".into(),
                        _ if entry.job_id.is_some() => "submitted".into(),
                        _ => "pending".into(),
                    };
                    entry.error = Some(e.to_string());
                }
            }
            m.save(&dir)?;
            anyhow::Ok(())
        }
    });
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(runs)
        .buffer_unordered(a.concurrency.max(1) * 2)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let m = manifest
        .lock()
        .map_err(|_| anyhow::anyhow!("manifest lock"))?
        .clone();
    std::fs::write(dir.join("index.html"), contact_sheet(&m))?;
    let mut code = exit::OK;
    for item in &m.items {
        for f in &item.files {
            ctx.out.line(dir.join(f).display());
        }
        if item.status != "completed" {
            code = code.max(match item.status.as_str() {
                "timed_out" => exit::TIMEOUT,
                "failed" | "cancelled" => exit::JOB_FAILED,
                _ => exit::NETWORK,
            });
            crate::output::error(format!(
                "line {} ({}): {}",
                item.line,
                item.status,
                item.error.as_deref().unwrap_or("not finished")
            ));
        }
    }
    let done = m.items.iter().filter(|i| i.status == "completed").count();
    ctx.out.note(format!(
        "{done} of {} lines completed{}; manifest and contact sheet in {}",
        m.items.len(),
        ctx.out.sim_tag(),
        dir.display()
    ));
    if code != exit::OK {
        ctx.out.note(
            "run the same command with --resume to finish the rest (no line is submitted twice)",
        );
    }
    if m.items.iter().any(|i| i.status == "unknown") {
        ctx.out.note("lines marked `unknown` were sent but got no answer: check `krea jobs list` for jobs they may have created, then add --resubmit-unknown to send them again");
    }
    ctx.out
        .json(&serde_json::json!({"simulated": ctx.out.simulated, "output": dir, "manifest": m}));
    Ok(code)
}

/// Submits (unless already submitted), waits and downloads one line.
async fn run_item(
    ctx: &Ctx,
    item: &Item,
    dir: &Path,
    manifest: &Mutex<Manifest>,
    n: usize,
) -> krea::Result<Vec<PathBuf>> {
    let handle = match item.job_id.filter(|_| item.status != "unknown") {
        Some(id) => ctx
            .krea
            .jobs()
            .handle_for(id)
            .await?
            .with_policy(krea::PollPolicy {
                first: krea::FirstPoll::After(std::time::Duration::ZERO),
                ..ctx.poll.clone()
            }),
        None => {
            // Noted before sending: if this process dies with the request in flight, the next
            // --resume knows the line may have created a job and does not send it again.
            if let Ok(mut m) = manifest.lock() {
                m.items[n].status = "submitting".into();
                if let Err(e) = m.save(dir) {
                    tracing::warn!(error = %e, "could not write the manifest");
                }
            }
            let handle = ctx
                .krea
                .generate(&item.model, body(item))
                .output_dir(dir)
                .submit()
                .await?;
            context::track(handle.id());
            if let Ok(mut m) = manifest.lock() {
                m.items[n].job_id = Some(handle.id());
                m.items[n].status = "submitted".into();
                // The job exists: record it before waiting.
                if let Err(e) = m.save(dir) {
                    tracing::warn!(error = %e, "could not write the manifest");
                }
            }
            handle
        }
    };
    let done = handle.wait().await;
    if !matches!(done, Err(krea::Error::Timeout { .. })) {
        context::untrack(handle.id());
    }
    // Names carry the job id and the batch owns its directory: a file already there is this
    // job's, from a run killed before the manifest caught up, so replacing it is idempotent.
    done?
        .download_with(
            dir,
            krea::DownloadOptions {
                overwrite: true,
                durable: false,
            },
        )
        .await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `index.html`: every result with its prompt, model and job id.
pub fn contact_sheet(m: &Manifest) -> String {
    let mut html = String::from(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>krea batch</title>\n<style>body{font-family:sans-serif;margin:1em}main{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:1em}figure{margin:0}img,video{width:100%;border-radius:4px;background:#eee}figcaption{font-size:.85em}code{font-size:.8em;color:#666}</style>\n<main>\n",
    );
    for item in &m.items {
        let caption = format!(
            "<figcaption>{}<br><code>{} · {}</code></figcaption>",
            escape(&item.prompt),
            escape(&item.model),
            item.job_id
                .map_or_else(|| "not submitted".to_string(), |id| id.to_string())
        );
        if item.files.is_empty() {
            html.push_str(&format!(
                "<figure><div>{}</div>{caption}</figure>\n",
                escape(&item.status)
            ));
        }
        for f in &item.files {
            let src = escape(&f.to_string_lossy());
            let media = if src.ends_with(".mp4") || src.ends_with(".webm") || src.ends_with(".mov")
            {
                format!("<video src=\"{src}\" controls muted></video>")
            } else {
                format!(
                    "<img src=\"{src}\" alt=\"{}\" loading=\"lazy\">",
                    escape(&item.prompt)
                )
            };
            html.push_str(&format!("<figure>{media}{caption}</figure>\n"));
        }
    }
    html.push_str("</main>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_and_json_lines_become_items() {
        let text = "# a comment\na lighthouse\n\n{\"prompt\": \"a fox\", \"model\": \"flux\", \"params\": {\"steps\": 20}, \"seed\": 3}\n";
        let items = parse(text, "nano banana 2", &Map::new()).expect("parsed");
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].line, items[0].model.as_str()),
            (2, "google/nano-banana-2")
        );
        assert_eq!(
            (items[1].line, items[1].model.as_str()),
            (4, "bfl/flux-1-dev")
        );
        assert_eq!(items[1].params["steps"], 20);
        assert_eq!(items[1].params["seed"], 3);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = parse("ok\n{\"prompt\": 5}\n", "flux", &Map::new()).expect_err("bad");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse(
            "{\"prompt\": \"x\", \"model\": \"fluxx\"}",
            "flux",
            &Map::new(),
        )
        .expect_err("unknown model");
        assert!(err.to_string().contains("did you mean"), "{err}");
    }

    #[test]
    fn the_contact_sheet_escapes_prompts() {
        let m = Manifest {
            source: "f".into(),
            items: vec![Item {
                line: 1,
                prompt: "<script>".into(),
                model: "bfl/flux-1-dev".into(),
                params: Map::new(),
                job_id: None,
                status: "completed".into(),
                files: vec!["a.png".into()],
                error: None,
            }],
        };
        let html = contact_sheet(&m);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("<img src=\"a.png\""));
    }
}
