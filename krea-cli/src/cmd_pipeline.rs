//! `krea pipeline FILE`: the library's pipeline with the batch's progress display, a plan
//! printed before anything is paid, and `index.html` showing each output beside its inputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use krea::pipeline::{PipelineEvent, PipelineFile, PipelineManifest, Plan, manifest_path};
use serde_json::{Value, json};

use crate::cli::PipelineArgs;
use crate::cmd_batch::escape;
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};
use crate::output::shown;
use crate::progress::Progress;

/// `-o`, else the file's name without its extension.
fn output_dir(a: &PipelineArgs) -> PathBuf {
    a.output.clone().unwrap_or_else(|| {
        let stem = a
            .file
            .file_stem()
            .map_or("krea-pipeline".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(stem)
    })
}

/// The plan as a table: step, model, jobs, estimate.
fn plan_table(plan: &Plan) -> String {
    let mut out = format!(
        "{:<16} {:<28} {:>5}  {}\n",
        "step", "model", "jobs", "estimate"
    );
    for s in &plan.steps {
        out.push_str(&format!(
            "{:<16} {:<28} {:>5}  {}{}\n",
            s.id,
            s.model.id,
            s.jobs,
            s.estimate,
            if s.unpriced > 0 {
                format!(" ({} with no published price)", s.unpriced)
            } else {
                String::new()
            }
        ));
    }
    out.push_str(&format!(
        "{:<16} {:<28} {:>5}  {}",
        "total",
        "",
        plan.jobs(),
        plan.total
    ));
    out
}

pub async fn run(ctx: &Ctx, a: &PipelineArgs) -> anyhow::Result<u8> {
    let file = PipelineFile::load(&a.file)?;
    let dir = output_dir(a);
    let mut pipeline = ctx
        .krea
        .pipeline(file)
        .dir(&dir)
        .resume(a.resume)
        .concurrency(a.concurrency.max(1))
        .claim_lease(a.sharing.lease()?);
    pipeline = match a.sharing.name() {
        None => pipeline,
        Some("") => pipeline.shared_by_content(),
        Some(name) => pipeline.shared(name),
    };
    for pair in &a.vars {
        let (name, raw) = pair
            .split_once('=')
            .ok_or_else(|| Usage(format!("--var takes NAME=VALUE, not {pair:?}")))?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
        pipeline = pipeline.var(name.trim(), value);
    }
    let plan = pipeline.plan()?;
    let table = plan_table(&plan);
    let over = |max: &f64| {
        krea::Budget::new(None, Some(*max))
            .reserve(plan.total)
            .is_err()
    };
    if let Some(max) = a.max_cu.filter(over) {
        ctx.out.note(&table);
        return Err(Usage(format!(
            "the run may cost up to {}, above --max-cu {max}: drop steps or fan-out values, choose cheaper models, or raise --max-cu",
            plan.total
        ))
        .into());
    }
    let steps_json: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            json!({"id": s.id, "model": s.model.id, "jobs": s.jobs,
                        "estimate_cu": {"low": s.estimate.low, "high": s.estimate.high},
                        "unpriced": s.unpriced})
        })
        .collect();
    if a.dry_run {
        ctx.out.line(format!("{table}\ndry run: nothing sent"));
        ctx.out.json(&json!({
            "dry_run": true, "steps": steps_json, "job_count": plan.jobs(),
            "estimate_cu": {"low": plan.total.low, "high": plan.total.high},
            "unpriced": plan.unpriced,
        }));
        return Ok(exit::OK);
    }
    ctx.out.note(&table);
    crate::confirm::spend(
        &ctx.out,
        plan.total,
        &format!("the pipeline's {} jobs", plan.jobs()),
    )
    .await?;
    let resume = format!(
        "krea pipeline {} -o {} --resume{}",
        a.file.display(),
        dir.display(),
        a.sharing.flags()
    );
    if let Ok(mut b) = context::batch_in_progress().lock() {
        *b = Some((dir.clone(), resume.clone()));
    }
    let mut progress: Option<Progress> = None;
    let report = pipeline
        .run(|event| match event {
            PipelineEvent::StepStarted { step, model, jobs } => {
                ctx.out.note(format!(
                    "step {step}: {jobs} job(s) with {} ({})",
                    model.title, model.id
                ));
                progress = Some(Progress::new(&ctx.out, jobs));
            }
            PipelineEvent::Batch { event, .. } => {
                if let Some(p) = progress.as_mut() {
                    p.follow(&event, |item| {
                        let expected = krea::models::resolve(&item.model)
                            .ok()
                            .and_then(|m| context::expected(ctx, m));
                        (item.label.clone(), expected)
                    });
                }
            }
            PipelineEvent::StepEnded { step, report } => {
                if let Some(mut p) = progress.take() {
                    p.clear();
                }
                ctx.out.note(format!(
                    "step {step}: {} of {} completed",
                    report.completed(),
                    report.items.len()
                ));
            }
            _ => {}
        })
        .await?;
    write_report(&report.dir, &report.manifest)?;
    let mut code = exit::OK;
    for (_, r) in &report.steps {
        for item in &r.items {
            item.files.iter().for_each(|f| ctx.out.line(shown(f)));
            if !matches!(
                item.status,
                krea::ItemStatus::Completed
                    | krea::ItemStatus::Pending
                    | krea::ItemStatus::Elsewhere
            ) {
                code = code.max(exit::code_of_item(item));
                exit::report_item(item);
            }
        }
        if let Some(e) = &r.stopped {
            code = code.max(exit::code_of(e));
            exit::report_error(e);
        }
    }
    let cost = cost_of(&report.manifest);
    let elsewhere = report
        .steps
        .iter()
        .flat_map(|(_, r)| &r.items)
        .filter(|i| i.status == krea::ItemStatus::Elsewhere)
        .count();
    let elsewhere = match elsewhere {
        0 => String::new(),
        n => format!(" here ({n} by other workers)"),
    };
    ctx.out.note(format!(
        "{} job(s) completed{elsewhere} in {} step(s), cost {cost}{}; report in {}",
        report.completed(),
        report.steps.len(),
        ctx.out.sim_tag(),
        report.dir.join("index.html").display()
    ));
    if let Some(step) = &report.manifest.stopped_at {
        ctx.out.note(format!(
            "stopped at step {step}: to finish, {resume} (nothing is paid twice)"
        ));
        // A run that stopped for a reason already counted exits for that reason (a 401 is
        // the auth code here as for `krea image`); one stopped by nothing else ran out of time.
        if code == exit::OK {
            code = exit::TIMEOUT;
        }
    }
    ctx.out.json(&json!({
        "output": report.dir,
        "finished": report.finished(),
        "manifest": manifest_path(&report.dir),
        "plan": steps_json,
        "steps": report.manifest.steps,
    }));
    Ok(code)
}

/// A file's path relative to `dir`, for the report's links.
/// What a run's completed jobs cost, and how many of them have no known cost (a model with
/// no published price): those are named, never counted as 0. The terminal and the report say
/// the same.
fn cost_of(m: &PipelineManifest) -> String {
    let done = m
        .steps
        .iter()
        .flat_map(|s| &s.jobs)
        .filter(|j| j.status == krea::ItemStatus::Completed);
    let known: f64 = done.clone().filter_map(|j| j.cost_cu).sum();
    match done.filter(|j| j.cost_cu.is_none()).count() {
        0 => format!("~{}", cu(known)),
        n => format!("~{} and {n} job(s) with no published price", cu(known)),
    }
}

/// Compute units as `Estimate` writes them: whole, or tenths.
fn cu(v: f64) -> String {
    krea::Estimate::exactly(v).to_string()
}

fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

fn media(src: &str, alt: &str) -> String {
    let src = escape(src);
    if [".mp4", ".webm", ".mov"].iter().any(|e| src.ends_with(e)) {
        // `#t=0.1` and preloaded metadata: the box shows the video's first frame, not grey.
        format!("<video src=\"{src}#t=0.1\" preload=\"metadata\" controls muted></video>")
    } else {
        format!(
            "<a href=\"{src}\"><img src=\"{src}\" alt=\"{}\" loading=\"lazy\"></a>",
            escape(alt)
        )
    }
}

/// `index.html`: the steps in order, each job's outputs beside the inputs it came from.
pub fn report_html(dir: &Path, m: &PipelineManifest) -> String {
    // (step, label) -> the files that job wrote, to show inputs as pictures.
    let files: HashMap<(&str, &str), &[PathBuf]> = m
        .steps
        .iter()
        .flat_map(|s| {
            s.jobs
                .iter()
                .map(move |j| ((s.id.as_str(), j.label.as_str()), j.files.as_slice()))
        })
        .collect();
    let mut html = String::from(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>krea pipeline</title>\n<style>body{font-family:sans-serif;margin:1em}section{margin-bottom:2em}.job{display:flex;gap:1em;align-items:flex-start;margin:.5em 0;padding:.5em;border-bottom:1px solid #eee}.in,.out{display:flex;gap:.5em}img,video{width:200px;border-radius:4px;background:#eee}figure{margin:0}figcaption,code{font-size:.8em;color:#666}.failed{color:#a00}.note{color:#666}</style>\n<h1>krea pipeline</h1>\n",
    );
    let jobs = m.steps.iter().flat_map(|s| &s.jobs);
    let completed = jobs
        .clone()
        .filter(|j| j.status == krea::ItemStatus::Completed)
        .count();
    let cost = cost_of(m);
    let simulated = jobs.clone().any(|j| {
        j.urls
            .iter()
            .any(|u| u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost"))
    });
    html.push_str(&format!(
        "<p>{completed} of {} jobs completed, cost {}{}</p>\n",
        jobs.count(),
        cost,
        if simulated {
            " <span class=\"note\">(simulated: made by the local simulator, not by Krea)</span>"
        } else {
            ""
        }
    ));
    if let Some(step) = &m.stopped_at {
        html.push_str(&format!(
            "<p class=\"failed\">stopped at step {}: resume the run to finish it</p>\n",
            escape(step)
        ));
    }
    for s in &m.steps {
        let done = s
            .jobs
            .iter()
            .filter(|j| j.status == krea::ItemStatus::Completed)
            .count();
        html.push_str(&format!(
            "<section><h2>{} <code>{}</code></h2><p>{done} of {} completed</p>\n",
            escape(&s.id),
            escape(&s.model),
            s.jobs.len()
        ));
        for j in &s.jobs {
            html.push_str("<div class=\"job\"><div class=\"in\">");
            for i in &j.inputs {
                let shown = files
                    .get(&(i.step.as_str(), i.from.as_str()))
                    .and_then(|f| f.first())
                    .map_or_else(
                        || format!("<a href=\"{0}\">{0}</a>", escape(&i.url)),
                        |f| media(&relative(dir, f), &i.from),
                    );
                html.push_str(&format!(
                    "<figure>{shown}<figcaption>{} ← {}</figcaption></figure>",
                    escape(&i.param),
                    escape(&i.from)
                ));
            }
            // The arrow only where something came in.
            let arrow = if j.inputs.is_empty() {
                ""
            } else {
                "<div>→</div>"
            };
            html.push_str(&format!("</div>{arrow}<div class=\"out\">"));
            // Another worker's job: its outputs where Krea keeps them.
            let remote: &[String] =
                match j.status == krea::ItemStatus::Elsewhere && j.error.is_none() {
                    true => &j.urls,
                    false => &[],
                };
            for u in remote {
                html.push_str(&format!("<figure>{}</figure>", media(u, &j.label)));
            }
            if j.files.is_empty() && remote.is_empty() {
                html.push_str(&format!(
                    "<div class=\"failed\">{}{}</div>",
                    escape(&crate::progress::item_word(j.status)),
                    j.error
                        .as_deref()
                        .map_or(String::new(), |e| format!(": {}", escape(e)))
                ));
            }
            for f in &j.files {
                html.push_str(&format!(
                    "<figure>{}</figure>",
                    media(&relative(dir, f), &j.label)
                ));
            }
            let vars: Vec<String> = j
                .vars
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), String::from)
                    )
                })
                .collect();
            html.push_str(&format!(
                "</div><figcaption>{}<br>{}<br><code>{}</code></figcaption></div>\n",
                escape(&j.label),
                escape(&vars.join(", ")),
                j.job_id
                    .map_or_else(|| "not submitted".to_string(), |id| id.to_string())
            ));
        }
        html.push_str("</section>\n");
    }
    html
}

fn write_report(dir: &Path, m: &PipelineManifest) -> anyhow::Result<()> {
    std::fs::write(dir.join("index.html"), report_html(dir, m))?;
    Ok(())
}
