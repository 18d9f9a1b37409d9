//! `krea image`, `krea video`, `krea enhance`, `krea run`: argument parsing over the library's
//! requests. Everything (inputs, parameters, output names) is checked before anything is
//! uploaded or paid; one job is waited for with live progress, several go through the
//! library's batch (a bounded window of pending jobs).

use krea::models::{self, ModelSpec, ParamType};
use krea::{GenerationOptions, GenerationRequest, Input, ItemStatus};
use serde_json::{Map, Value, json};

use crate::cli::{EnhanceArgs, ImageArgs, OutputArgs, RunArgs, VideoArgs};
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};
use crate::job_json::JobOut;
use crate::progress::Progress;

/// `key=value` pairs as JSON: a value is kept as text where the model's parameter is a string,
/// else parsed as JSON when it is valid JSON (`42`, `true`, `["a"]`), else text.
pub fn params(pairs: &[String], model: Option<&ModelSpec>) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    for pair in pairs {
        let (key, raw) = pair
            .split_once('=')
            .ok_or_else(|| Usage(format!("-p takes key=value, not {pair:?}")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(Usage(format!("-p {pair:?} has no key")).into());
        }
        let is_text = model
            .and_then(|m| m.parameter(key))
            .is_some_and(|p| p.ty == ParamType::String);
        let value = if is_text {
            Value::String(raw.into())
        } else {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()))
        };
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

/// The output plan `-o` asks for: an existing directory or a name without an extension is a
/// directory; a name with an extension is the file for the (first) result. With
/// `--no-download` there is none (the URLs are printed).
fn with_output(r: GenerationRequest, out: &OutputArgs) -> GenerationRequest {
    let r = match &out.output {
        _ if out.no_download => r,
        None => r.output_dir("."),
        Some(p) if p.is_dir() || p.extension().is_none() => r.output_dir(p),
        Some(p) => r.output_file(p),
    };
    let r = r.overwrite(out.force);
    match &out.webhook {
        Some(url) => r.webhook(url.clone()),
        None => r,
    }
}

/// The common part of every generation command.
pub async fn generate(
    ctx: &Ctx,
    out: &OutputArgs,
    request: GenerationRequest,
) -> anyhow::Result<u8> {
    if out.count == 0 {
        return Err(Usage("-n must be at least 1".into()).into());
    }
    let request = with_output(request, out);
    let checked = request.check()?;
    let model = checked.model;
    for note in &checked.notes {
        ctx.out.note(note);
    }
    // What budgets hold: the published price, or the assumed one where there is none.
    let total = Some(checked.worst_case.times(out.count as usize));
    if let Some(max) = out.max_cu {
        budget(
            checked.worst_case.times(out.count as usize),
            max,
            out.count,
            model,
        )?;
    }
    if out.dry_run {
        return dry_run(ctx, out.count, model, &checked.body, total);
    }
    if let Some(e) = total {
        ctx.out.note(format!("estimate: {e}"));
        let what = format!("{} job(s) on {}", out.count, model.id);
        crate::confirm::spend(&ctx.out, e, &what).await?;
    }
    if out.no_wait {
        let mut jobs = Vec::new();
        for _ in 0..out.count {
            let handle = request.clone().submit().await?;
            ctx.out.line(handle.id());
            let mut job = JobOut::from_job(&ctx.krea, &handle.snapshot(), Vec::new());
            job.model = model.id.to_string();
            jobs.push(job);
        }
        ctx.out.note(format!(
            "Submitted to {} ({}){}",
            model.title,
            model.id,
            ctx.out.sim_tag()
        ));
        ctx.out.jobs(&jobs, json!({"model": model.id}));
        return Ok(exit::OK);
    }
    let mut progress = Progress::new(&ctx.out, out.count as usize);
    let expected = context::expected(ctx, model);
    let mut batch = ctx.krea.batch();
    for n in 0..out.count {
        batch = batch.item(format!("#{}", n + 1), request.clone());
    }
    let report = batch
        .run(|event| progress.follow(&event, |_| (model.id.to_string(), expected)))
        .await?;
    progress.clear();
    let mut code = exit::OK;
    let mut jobs = Vec::new();
    for item in &report.items {
        let urls: Vec<String> = item
            .urls
            .iter()
            .map(|u| krea::redact::for_display(u))
            .collect();
        if item.status == ItemStatus::Completed {
            if out.no_download {
                urls.iter().for_each(|u| ctx.out.line(u));
            } else {
                item.files
                    .iter()
                    .for_each(|f| ctx.out.line(crate::output::shown(f)));
            }
        } else if item.status != ItemStatus::Pending {
            code = code.max(exit::code_of_item(item));
            exit::report_item(item);
        }
        jobs.push(JobOut::from_item(item));
    }
    if out.no_download && ctx.out.simulated {
        ctx.out.note(
            "(simulated: these URLs are served by this process's simulator and end with it; drop --no-download to keep the files)",
        );
    }
    if let Some(e) = &report.stopped {
        code = code.max(exit::code_of(e));
        exit::report_error(e);
    }
    exit::report_uncertain(&ctx.out, &report.items);
    // Failed and cancelled jobs are not charged; one not known keeps the total unknown.
    let completed = report
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Completed)
        .count();
    let cost = report.charged();
    if completed > 0 {
        let charged = cost.map_or(String::new(), |c| format!(", cost ~{c}"));
        // Short enough for 60 columns: the rows above named the model id.
        ctx.out.note(format!(
            "Generated with {}{charged}{}",
            model.title,
            ctx.out.sim_tag()
        ));
    }
    ctx.out.jobs(
        &jobs,
        json!({"model": model.id, "cost_cu": cost.map(|c| c.high)}),
    );
    Ok(code)
}

/// `--max-cu`: the run's worst case must fit (a model with no published price at the
/// assumed price, which the estimate says).
fn budget(total: krea::Estimate, max: f64, count: u32, model: &ModelSpec) -> anyhow::Result<()> {
    if krea::Budget::new(None, Some(max)).reserve(total).is_err() {
        return Err(Usage(format!(
            "{count} job(s) on {} may cost up to {total}, above --max-cu {max}: lower -n, choose cheaper options or a cheaper model (`krea models`), or raise --max-cu",
            model.id
        ))
        .into());
    }
    Ok(())
}

/// `--dry-run`: what would be sent and what it would cost; no request at all.
fn dry_run(
    ctx: &Ctx,
    count: u32,
    model: &ModelSpec,
    body: &Value,
    total: Option<krea::Estimate>,
) -> anyhow::Result<u8> {
    let cost = total.map_or_else(
        || "no published price".to_string(),
        |t| format!("estimated {t}"),
    );
    ctx.out.line(format!(
        "dry run: {count} job(s) on {} ({}), {cost}; nothing sent",
        model.title, model.id
    ));
    ctx.out.line(format!("POST {}", model.path));
    ctx.out
        .line(serde_json::to_string_pretty(body).unwrap_or_default());
    ctx.out.json(&json!({
        "dry_run": true,
        "model": model.id,
        "path": model.path,
        "count": count,
        "body": body,
        "estimate_cu": total.map(|t| json!({"low": t.low, "high": t.high})),
    }));
    Ok(exit::OK)
}

fn styles(specs: &[String]) -> anyhow::Result<Vec<(String, f64)>> {
    specs
        .iter()
        .map(|s| match s.split_once(':') {
            Some((id, strength)) => strength.parse().map(|v| (id.to_string(), v)).map_err(|_| {
                Usage(format!(
                    "--style {s}: the strength after ':' must be a number"
                ))
                .into()
            }),
            None => Ok((s.clone(), 1.0)),
        })
        .collect()
}

/// A model of another kind is pointed to the command that runs it, before anything else.
fn right_command(name: &str, kind: models::Kind) -> anyhow::Result<()> {
    let Some(model) = models::of_another_kind(name, kind) else {
        return Ok(());
    };
    let command = match model.kind {
        models::Kind::Image => "image",
        models::Kind::Video => "video",
        models::Kind::Enhance => "enhance",
    };
    Err(Usage(format!(
        "{} is {} model: run it with `krea {command} ... -m {name}` (or `krea run {name}`)",
        model.id,
        models::kind_with_article(model.kind)
    ))
    .into())
}

pub async fn image(ctx: &Ctx, a: &ImageArgs) -> anyhow::Result<u8> {
    right_command(&a.model, models::Kind::Image)?;
    let styles = styles(&a.styles)?;
    let extra = params(&a.out.params, models::resolve(&a.model).ok())?;
    let mut o = GenerationOptions::default();
    o.images = a.images.iter().map(|i| Input::from(i.as_str())).collect();
    o.width = a.width;
    o.height = a.height;
    o.aspect_ratio = a.aspect_ratio.clone();
    o.resolution = a.resolution.clone();
    o.seed = a.seed;
    o.steps = a.steps;
    o.quality = a.quality.clone();
    o.styles = styles;
    o.params = extra;
    let r = ctx.krea.image(&a.model).prompt(a.prompt.clone());
    generate(ctx, &a.out, r.with_options(o)).await
}

pub async fn video(ctx: &Ctx, a: &VideoArgs) -> anyhow::Result<u8> {
    right_command(&a.model, models::Kind::Video)?;
    let extra = params(&a.out.params, models::resolve(&a.model).ok())?;
    let mut o = GenerationOptions::default();
    o.start_image = a.start_image.as_deref().map(Input::from);
    o.end_image = a.end_image.as_deref().map(Input::from);
    o.duration = a.duration;
    o.aspect_ratio = a.aspect_ratio.clone();
    o.resolution = a.resolution.clone();
    o.audio = a.audio.then_some(true);
    o.seed = a.seed;
    o.params = extra;
    let r = ctx.krea.video(&a.model).prompt(a.prompt.clone());
    generate(ctx, &a.out, r.with_options(o)).await
}

pub async fn enhance(ctx: &Ctx, a: &EnhanceArgs) -> anyhow::Result<u8> {
    right_command(&a.model, models::Kind::Enhance)?;
    let extra = params(&a.out.params, models::resolve(&a.model).ok())?;
    let mut o = GenerationOptions::default();
    o.width = a.width;
    o.height = a.height;
    o.scale = a.scale;
    o.params = extra;
    let r = ctx
        .krea
        .enhance(&a.model)
        .image(Input::from(a.image.as_str()));
    generate(ctx, &a.out, r.with_options(o)).await
}

pub async fn run(ctx: &Ctx, a: &RunArgs) -> anyhow::Result<u8> {
    let model = models::resolve(&a.model).ok();
    let mut body = match &a.body {
        None => Map::new(),
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| Usage(format!("cannot read --body file {path}: {e}")))?,
                None => text.clone(),
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(Usage("--body must be a JSON object".into()).into()),
                Err(e) => return Err(Usage(format!("--body is not valid JSON: {e}")).into()),
            }
        }
    };
    body.extend(params(&a.out.params, model)?);
    if body.is_empty() {
        return Err(Usage("give the parameters with -p key=value or --body JSON".into()).into());
    }
    // An endpoint newer than both the build and the cached model list: sent as given.
    let unlisted = model.is_none()
        && matches!(
            models::resolve(&a.model),
            Err(krea::Error::UnknownModel { .. })
        )
        && krea::models::unlisted(&a.model).is_some();
    let request = if unlisted {
        ctx.out.warn(format!(
            "{} is in neither the built-in model list nor the cached one (`krea models --refresh` updates it): sending the body unchecked",
            a.model
        ));
        ctx.krea.generate_unchecked(&a.model, Value::Object(body))
    } else {
        ctx.krea.generate(&a.model, Value::Object(body))
    };
    generate(ctx, &a.out, request).await
}
