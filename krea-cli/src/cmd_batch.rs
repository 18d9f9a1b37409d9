//! `krea batch FILE`: one line, one request, run as the library's batch (every line checked
//! first; a bounded window of pending jobs; a manifest in the output directory, locked while a
//! run uses it; `--resume` that never pays for a line twice), plus an HTML contact sheet.

use krea::models;
use krea::{ItemState, ItemStatus, Manifest};
use serde_json::{Map, Value};

use crate::cli::BatchArgs;
use crate::cmd_generate::params;
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};
use crate::progress::Progress;

/// One line of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// 1-based line number in the input file.
    pub number: usize,
    pub prompt: String,
    /// Model id.
    pub model: String,
    /// Parameters besides the prompt.
    pub params: Map<String, Value>,
}

/// Reads the input: plain prompts, or JSON Lines with `prompt`, `model`, `params` (other keys
/// are parameters too). Blank lines and `#` comments are skipped. Every bad line is reported.
#[cfg(test)]
fn parse(
    text: &str,
    default_model: &str,
    common: &Map<String, Value>,
) -> anyhow::Result<Vec<Line>> {
    let (lines, problems) = parse_all(text, default_model, common);
    if !problems.is_empty() {
        return Err(bad_lines(&problems).into());
    }
    if lines.is_empty() {
        return Err(Usage("the batch file has no prompts".into()).into());
    }
    Ok(lines)
}

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

/// The lines that parse and name a known model, and the problems of the others.
fn parse_all(
    text: &str,
    default_model: &str,
    common: &Map<String, Value>,
) -> (Vec<Line>, Vec<(usize, String)>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line, default_model) {
            Ok((prompt, model, own)) => match models::resolve(&model) {
                Ok(m) => {
                    let mut params = common.clone();
                    params.extend(own);
                    lines.push(Line {
                        number: i + 1,
                        prompt,
                        model: m.id.to_string(),
                        params,
                    });
                }
                Err(e) => problems.push((i + 1, e.to_string())),
            },
            Err(e) => problems.push((i + 1, e)),
        }
    }
    (lines, problems)
}

fn parse_line(
    line: &str,
    default_model: &str,
) -> Result<(String, String, Map<String, Value>), String> {
    if !line.starts_with('{') {
        return Ok((line.to_string(), default_model.to_string(), Map::new()));
    }
    let Value::Object(mut obj) = serde_json::from_str(line)
        .map_err(|e| format!("not valid JSON (column {})", e.column()))?
    else {
        return Err("expected a JSON object".into());
    };
    let prompt = match obj.remove("prompt") {
        Some(Value::String(p)) => p,
        None => String::new(),
        Some(_) => return Err("prompt must be a string".into()),
    };
    let model = match obj.remove("model") {
        Some(Value::String(m)) => m,
        None => default_model.to_string(),
        Some(_) => return Err("model must be a string".into()),
    };
    let mut own = match obj.remove("params") {
        Some(Value::Object(p)) => p,
        None => Map::new(),
        Some(_) => return Err("params must be an object".into()),
    };
    own.extend(obj);
    Ok((prompt, model, own))
}

fn body(line: &Line) -> Value {
    let mut b = line.params.clone();
    if !line.prompt.is_empty() {
        b.insert("prompt".into(), Value::String(line.prompt.clone()));
    }
    Value::Object(b)
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
    let (lines, mut problems) = parse_all(&text, &a.model, &common);
    let mut batch = ctx
        .krea
        .batch()
        .dir(&a.output)
        .resume(a.resume)
        .concurrency(a.concurrency.max(1));
    for line in &lines {
        batch = batch.item(
            format!("line {}", line.number),
            ctx.krea.generate(&line.model, body(line)),
        );
    }
    // Every line is checked (and priced) before the first request, and every bad line is
    // reported at once: those that do not parse and those the model refuses.
    let priced = match batch.estimate() {
        Ok(priced) => Some(priced),
        Err(krea::Error::InvalidRequest {
            problems: found, ..
        }) => {
            for p in found {
                // "line N: problem", as the batch labels its items.
                let (n, rest) = p
                    .strip_prefix("line ")
                    .and_then(|r| r.split_once(": "))
                    .and_then(|(n, rest)| Some((n.parse().ok()?, rest.to_string())))
                    .unwrap_or((0, p.clone()));
                problems.push((n, rest));
            }
            None
        }
        Err(other) => return Err(other.into()),
    };
    if !problems.is_empty() {
        return Err(bad_lines(&problems).into());
    }
    if lines.is_empty() {
        return Err(Usage("the batch file has no prompts".into()).into());
    }
    let Some((estimate, unpriced)) = priced else {
        return Err(Usage("the batch could not be priced".into()).into());
    };
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
    let mut progress = Progress::new(&ctx.out, lines.len());
    let report = batch
        .run(|event| {
            progress.follow(&event, |item| {
                let expected = krea::models::resolve(&item.model)
                    .ok()
                    .and_then(|m| context::expected(ctx, m));
                (item.label.clone(), expected)
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
        if !matches!(item.status, ItemStatus::Completed | ItemStatus::Pending) {
            code = code.max(exit::code_of_item(item));
            exit::report_item(item);
        }
    }
    if let Some(e) = &report.stopped {
        code = code.max(exit::code_of(e));
        exit::report_error(e);
    }
    exit::report_uncertain(&ctx.out, &report.items);
    ctx.out.note(format!(
        "{} of {} lines completed{}; manifest and contact sheet in {}",
        report.completed(),
        report.items.len(),
        ctx.out.sim_tag(),
        dir.display()
    ));
    if code != exit::OK {
        ctx.out.note(format!(
            "to finish the rest: krea batch {} -o {} --resume (no line is paid for twice)",
            a.file.display(),
            a.output.display()
        ));
    }
    let jobs: Vec<crate::job_json::JobOut> = report
        .items
        .iter()
        .map(crate::job_json::JobOut::from_item)
        .collect();
    ctx.out.jobs(
        &jobs,
        serde_json::json!({"simulated": ctx.out.simulated, "output": dir}),
    );
    Ok(code)
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
        "<h1>krea batch</h1>\n<p>{done} of {} lines completed{}{}</p>\n<main>\n",
        m.items.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed (not charged)", failed.len())
        },
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
                format!("<video src=\"{src}\" controls muted></video>")
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
    fn plain_lines_and_json_lines_become_items() {
        let text = "# a comment\na lighthouse\n\n{\"prompt\": \"a fox\", \"model\": \"flux\", \"params\": {\"steps\": 20}, \"seed\": 3}\n";
        let lines = parse(text, "nano banana 2", &Map::new()).expect("parsed");
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].number, lines[0].model.as_str()),
            (2, "google/nano-banana-2")
        );
        assert_eq!(
            (lines[1].number, lines[1].model.as_str()),
            (4, "bfl/flux-1-dev")
        );
        assert_eq!(lines[1].params["steps"], 20);
        assert_eq!(lines[1].params["seed"], 3);
    }

    #[test]
    fn every_bad_line_is_reported_at_once() {
        let err = parse(
            "ok\n{\"prompt\": 5}\n{\"prompt\": \"x\", \"model\": \"fluxx\"}\n",
            "flux",
            &Map::new(),
        )
        .expect_err("bad");
        let text = err.to_string();
        assert!(text.contains("line 2") && text.contains("line 3"), "{text}");
        assert!(text.contains("did you mean"), "{text}");
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
             "urls": ["http://127.0.0.1:9/files/a.png"]},
            {"index": 1, "label": "line 2", "model": "bfl/flux-1-dev", "fingerprint": "g",
             "request": {"prompt": "b"}, "status": "failed", "error": "the model <refused>"},
        ]}))
        .expect("manifest");
        let html = contact_sheet(&m);
        assert!(html.contains("<h1>krea batch</h1>"), "{html}");
        assert!(
            html.contains("1 of 2 lines completed, 1 failed (not charged)"),
            "{html}"
        );
        assert!(html.contains("(simulated"), "{html}");
        assert!(html.contains("failed: the model &lt;refused&gt;"), "{html}");
    }
}
