//! `krea batch FILE`: one line, one request, run as the library's batch (every line checked
//! first; a bounded window of pending jobs; a manifest in the output directory, locked while a
//! run uses it; `--resume` that never pays for a line twice), plus an HTML contact sheet.

use krea::models;
use krea::{ItemState, ItemStatus, Manifest};
use serde_json::Value;

use crate::cli::BatchArgs;
use crate::cmd_generate::params;
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};
use crate::progress::Progress;

/// `N bad line(s), nothing was sent:` and each problem, in line order.
fn bad_lines(problems: &[(usize, String)]) -> Usage {
    let mut sorted = problems.to_vec();
    sorted.sort_by_key(|(n, _)| *n);
    let lines: std::collections::BTreeSet<usize> = sorted.iter().map(|(n, _)| *n).collect();
    Usage(format!(
        "{} bad line(s), nothing was sent:\n  {}",
        lines.len(),
        sorted
            .iter()
            .map(|(n, p)| format!("line {n}: {p}"))
            .collect::<Vec<_>>()
            .join("\n  ")
    ))
}

pub async fn batch(ctx: &Ctx, a: &BatchArgs) -> anyhow::Result<u8> {
    let resume = format!(
        "krea batch {} -o {} --resume",
        a.file.display(),
        a.output.display()
    );
    if let Ok(mut b) = context::batch_in_progress().lock() {
        *b = Some((a.output.clone(), resume));
    }
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| Usage(format!("cannot read {}: {e}", a.file.display())))?;
    let common = params(&a.params, models::resolve(&a.model).ok())?;
    let file = krea::BatchFile::parse(&text, &a.model, &common);
    let lines = &file.lines;
    let batch = ctx
        .krea
        .batch()
        .dir(&a.output)
        .resume(a.resume)
        .concurrency(a.concurrency.max(1))
        .lines(&file);
    let lease = a.sharing.lease()?;
    let batch = match a.sharing.name() {
        None => batch,
        Some("") => batch.shared_by_content(),
        Some(name) => batch.shared(name),
    }
    .claim_lease(lease);
    // Every line is checked (and priced) before the first request, and every bad line is
    // reported at once: those that do not parse and those the model refuses.
    let mut problems: Vec<(usize, String)> = file
        .problems
        .iter()
        .map(|p| (p.line, p.message.clone()))
        .collect();
    problems.extend(
        batch
            .problems()
            .into_iter()
            .map(|p| (lines[p.index].number, p.problem.to_string())),
    );
    if !problems.is_empty() {
        return Err(bad_lines(&problems).into());
    }
    if lines.is_empty() {
        return Err(Usage("the batch file has no prompts".into()).into());
    }
    let (estimate, unpriced) = batch.estimate()?;
    ctx.out.note(format!(
        "{} lines, estimate {estimate}{}",
        lines.len(),
        if unpriced > 0 {
            format!(" ({unpriced} without a published price, counted at the assumed price)")
        } else {
            String::new()
        }
    ));
    let over = |max: &f64| {
        krea::Budget::new(None, Some(*max))
            .reserve(estimate)
            .is_err()
    };
    if let Some(max) = a.max_cu.filter(over) {
        return Err(Usage(format!(
            "the {} lines may cost up to {estimate}, above --max-cu {max}: remove lines, choose cheaper models or options, or raise --max-cu",
            lines.len()
        ))
        .into());
    }
    if a.dry_run {
        ctx.out.line(format!(
            "dry run: {} lines checked, estimated {estimate}; nothing sent",
            lines.len()
        ));
        ctx.out.json(&serde_json::json!({
            "dry_run": true,
            "lines": lines.len(),
            "estimate_cu": {"low": estimate.low, "high": estimate.high},
            "unpriced": unpriced,
        }));
        return Ok(exit::OK);
    }
    crate::confirm::spend(
        &ctx.out,
        estimate,
        &format!("the batch of {} lines", lines.len()),
    )
    .await?;
    let mut progress = Progress::new(&ctx.out, lines.len());
    // Rows name a line by its number, aligned, and its prompt (what a person recognises).
    let width = lines
        .iter()
        .map(|l| l.number.to_string().len())
        .max()
        .unwrap_or(1);
    let report = batch
        .run(|event| {
            progress.follow(&event, |item| {
                let expected = krea::models::resolve(&item.model)
                    .ok()
                    .and_then(|m| context::expected(ctx, m));
                (row_label(item, width), expected)
            })
        })
        .await?;
    progress.clear();
    let dir = report.dir.clone().unwrap_or_else(|| a.output.clone());
    write_contact_sheet(&dir)?;
    let mut code = exit::OK;
    for item in &report.items {
        item.files
            .iter()
            .for_each(|f| ctx.out.line(crate::output::shown(f)));
        if !matches!(
            item.status,
            ItemStatus::Completed | ItemStatus::Pending | ItemStatus::Elsewhere
        ) {
            code = code.max(exit::code_of_item(item));
            exit::report_item(item);
        }
    }
    if let Some(e) = &report.stopped {
        code = code.max(exit::code_of(e));
        exit::report_error(e);
    }
    exit::report_uncertain(&ctx.out, &report.items);
    // What the completed lines cost (failed and cancelled ones are free; an unknown cost
    // says so rather than counting 0).
    let cost = match report.charged() {
        Some(c) => format!(", cost ~{c}"),
        None => ", cost not known".to_string(),
    };
    let elsewhere = report
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Elsewhere)
        .count();
    let elsewhere = match elsewhere {
        0 => String::new(),
        n => format!(" here, {n} by other workers"),
    };
    ctx.out.note(format!(
        "{} of {} lines completed{elsewhere}{cost}{}; manifest and contact sheet in {}",
        report.completed(),
        report.items.len(),
        ctx.out.sim_tag(),
        dir.display()
    ));
    if code != exit::OK {
        ctx.out.note(format!(
            "to finish the rest: krea batch {} -o {} --resume{} (no line is paid for twice)",
            a.file.display(),
            a.output.display(),
            a.sharing.flags()
        ));
    }
    let jobs: Vec<crate::job_json::JobOut> = report
        .items
        .iter()
        .map(crate::job_json::JobOut::from_item)
        .collect();
    ctx.out.jobs(
        &jobs,
        serde_json::json!({"output": dir, "cost_cu": report.charged().map(|c| c.high)}),
    );
    Ok(code)
}

/// A live row's label: the line number, right-aligned to `width`, then the prompt (or the
/// model, for a line without one).
fn row_label(item: &ItemState, width: usize) -> String {
    let number = item.label.trim_start_matches("line ");
    let prompt = prompt_of(item);
    let what = if prompt.trim().is_empty() {
        item.model.clone()
    } else {
        krea::redact::for_display(prompt)
    };
    format!("{number:>width$} {what}")
}

/// The prompt an item was sent with.
fn prompt_of(item: &ItemState) -> &str {
    item.request
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `index.html`: every result with its prompt, model and job id.
/// Writes `index.html` from the manifest in `dir` (also when a run is interrupted).
pub fn write_contact_sheet(dir: &std::path::Path) -> anyhow::Result<()> {
    let manifest = Manifest::read(dir)?.unwrap_or_default();
    std::fs::write(dir.join("index.html"), contact_sheet(&manifest))?;
    Ok(())
}

pub fn contact_sheet(m: &Manifest) -> String {
    let done = m
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Completed)
        .count();
    let failed: Vec<&ItemState> = m
        .items
        .iter()
        .filter(|i| {
            matches!(
                i.status,
                ItemStatus::Failed | ItemStatus::Cancelled | ItemStatus::Error
            )
        })
        .collect();
    let simulated = m.items.iter().any(|i| {
        i.urls
            .iter()
            .any(|u| u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost"))
    });
    let mut html = String::from(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>krea batch</title>\n<style>body{font-family:sans-serif;margin:1em}main{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:1em}figure{margin:0}img,video{width:100%;border-radius:4px;background:#eee}figcaption{font-size:.85em}code{font-size:.8em;color:#666}.failed{color:#a00}.note{color:#666}</style>\n",
    );
    html.push_str(&format!(
        "<h1>krea batch</h1>\n<p>{done} of {} lines completed{}{}{}</p>\n<main>\n",
        m.items.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed (not charged)", failed.len())
        },
        // What the lines cost so far (failed ones are free); unknown while one is unsettled.
        m.charged().map_or_else(
            || ", cost not known yet".to_string(),
            |c| format!(", cost ~{c}")
        ),
        if simulated {
            " <span class=\"note\">(simulated: made by the local simulator, not by Krea)</span>"
        } else {
            ""
        }
    ));
    for item in &m.items {
        let caption = format!(
            "<figcaption>{}<br><code>{} · {}</code></figcaption>",
            escape(prompt_of(item)),
            escape(&item.model),
            item.job_id
                .map_or_else(|| "not submitted".to_string(), |id| id.to_string())
        );
        if item.files.is_empty() {
            let why = item
                .error
                .as_deref()
                .map_or(String::new(), |e| format!(": {}", escape(e)));
            html.push_str(&format!(
                "<figure><div class=\"failed\">{}{why}</div>{caption}</figure>\n",
                escape(&crate::progress::item_word(item.status))
            ));
        }
        for f in &item.files {
            let name = f.file_name().map_or(f.as_os_str(), |n| n).to_string_lossy();
            let src = escape(&name);
            let media = if src.ends_with(".mp4") || src.ends_with(".webm") || src.ends_with(".mov")
            {
                format!("<video src=\"{src}#t=0.1\" preload=\"metadata\" controls muted></video>")
            } else {
                format!(
                    "<a href=\"{src}\"><img src=\"{src}\" alt=\"{}\" loading=\"lazy\"></a>",
                    escape(prompt_of(item))
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
    fn every_bad_line_is_reported_at_once_in_line_order() {
        let err = bad_lines(&[
            (3, "unknown model".into()),
            (2, "prompt must be a string".into()),
        ]);
        let text = err.to_string();
        assert!(
            text.starts_with("2 bad line(s), nothing was sent:\n  line 2: prompt"),
            "{text}"
        );
        assert!(text.ends_with("line 3: unknown model"), "{text}");
    }

    #[test]
    fn the_contact_sheet_escapes_prompts() {
        let item: ItemState = serde_json::from_value(serde_json::json!({
            "index": 0, "label": "line 1", "model": "bfl/flux-1-dev", "fingerprint": "f",
            "request": {"prompt": "<script>"}, "status": "completed", "files": ["/tmp/out/a.png"]
        }))
        .expect("item");
        let m: Manifest =
            serde_json::from_value(serde_json::json!({"version": 1, "items": [item]})).expect("m");
        let html = contact_sheet(&m);
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(
            html.contains("<a href=\"a.png\"><img src=\"a.png\""),
            "{html}"
        );
    }

    #[test]
    fn the_contact_sheet_sums_up_and_shows_why_a_line_failed() {
        let m: Manifest = serde_json::from_value(serde_json::json!({"version": 1, "items": [
            {"index": 0, "label": "line 1", "model": "bfl/flux-1-dev", "fingerprint": "f",
             "request": {"prompt": "a"}, "status": "completed", "files": ["/o/a.png"],
             "urls": ["http://127.0.0.1:9/files/a.png"], "estimate": {"low": 3.0, "high": 3.0}},
            {"index": 1, "label": "line 2", "model": "bfl/flux-1-dev", "fingerprint": "g",
             "request": {"prompt": "b"}, "status": "failed", "error": "the model <refused>"},
        ]}))
        .expect("manifest");
        let html = contact_sheet(&m);
        assert!(html.contains("<h1>krea batch</h1>"), "{html}");
        assert!(
            html.contains("1 of 2 lines completed, 1 failed (not charged), cost ~3 CU"),
            "{html}"
        );
        assert!(html.contains("(simulated"), "{html}");
        assert!(html.contains("failed: the model &lt;refused&gt;"), "{html}");
    }
}
