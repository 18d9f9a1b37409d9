//! `krea image`, `krea video`, `krea enhance`, `krea run`: one flow. Inputs are checked and the
//! request validated before anything is sent; local files are then uploaded as assets, the jobs
//! submitted, followed with live progress, and their files downloaded.

use std::path::{Path, PathBuf};

use krea::models::{self, ModelSpec, ParamType};
use krea::{Finished, GenerationRequest, JobHandle};
use serde_json::{Map, Value, json};

use crate::cli::{EnhanceArgs, ImageArgs, OutputArgs, RunArgs, VideoArgs};
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};
use crate::progress::Progress;

/// A media argument: a URL, or a local file to upload.
#[derive(Debug, Clone)]
pub enum Media {
    Url(String),
    File(PathBuf),
}

/// Parses and checks a `URL|FILE` argument (a file must exist and be a type Krea accepts).
pub fn media(arg: &str) -> anyhow::Result<Media> {
    if arg.starts_with("https://") || arg.starts_with("http://") {
        return Ok(Media::Url(arg.to_string()));
    }
    let path = PathBuf::from(arg);
    let meta = std::fs::metadata(&path).map_err(|_| {
        Usage(format!(
            "no such file: {arg} (give a local file or an https:// URL)"
        ))
    })?;
    if !meta.is_file() {
        return Err(Usage(format!("{arg} is not a file")).into());
    }
    if meta.len() > krea_gen::media::MAX_UPLOAD_BYTES {
        return Err(Usage(format!(
            "{arg} is {} bytes; Krea accepts files up to 75 MB",
            meta.len()
        ))
        .into());
    }
    let head = std::fs::read(&path)
        .map(|b| b.into_iter().take(16).collect::<Vec<u8>>())
        .map_err(|e| Usage(format!("cannot read {arg}: {e}")))?;
    if krea_gen::media::sniff(&head).is_none() {
        return Err(Usage(format!(
            "{arg} is not a type Krea accepts ({})",
            krea_gen::media::ACCEPTED
        ))
        .into());
    }
    Ok(Media::File(path))
}

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

/// URLs for the media arguments: placeholders to validate with, or the uploaded assets.
async fn urls(ctx: &Ctx, inputs: &[Media], upload: bool) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, m) in inputs.iter().enumerate() {
        out.push(match m {
            Media::Url(u) => u.clone(),
            Media::File(_) if !upload => format!("https://upload.invalid/{n}"),
            Media::File(path) => {
                let asset = ctx.krea.assets().upload(path, None).await?;
                ctx.out
                    .note(format!("uploaded {} as asset {}", path.display(), asset.id));
                asset.image_url
            }
        });
    }
    Ok(out)
}

/// Where files go: a directory, or one file's name.
#[derive(Debug, Clone)]
enum Target {
    Dir(PathBuf),
    File(PathBuf),
}

fn target(output: &Option<PathBuf>) -> Target {
    match output {
        None => Target::Dir(PathBuf::from(".")),
        Some(p) if p.is_dir() => Target::Dir(p.clone()),
        Some(p) if p.extension().is_some() => Target::File(p.clone()),
        Some(p) => Target::Dir(p.clone()),
    }
}

impl Target {
    fn dir(&self) -> PathBuf {
        match self {
            Target::Dir(d) => d.clone(),
            Target::File(f) => f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        }
    }
}

/// The common part of every generation command.
pub async fn generate(
    ctx: &Ctx,
    out: &OutputArgs,
    inputs: Vec<Media>,
    build: impl Fn(&[String]) -> anyhow::Result<GenerationRequest>,
) -> anyhow::Result<u8> {
    if out.count == 0 {
        return Err(Usage("-n must be at least 1".into()).into());
    }
    let target = target(&out.output);
    let finish = |r: GenerationRequest| {
        let r = r.output_dir(target.dir()).overwrite(out.force);
        match &out.webhook {
            Some(url) => r.webhook(url.clone()),
            None => r,
        }
    };
    // Everything is checked before the first request: placeholders stand in for uploads.
    let (model, _) = finish(build(&urls(ctx, &inputs, false).await?)?).check()?;
    let request = finish(build(&urls(ctx, &inputs, true).await?)?);
    let mut progress = Progress::new(ctx.out.live());
    let mut handles: Vec<JobHandle> = Vec::new();
    for _ in 0..out.count {
        let handle = request.clone().submit().await?;
        context::track(handle.id());
        progress.add(handle.id(), model.id.to_string(), handle.status());
        handles.push(handle);
    }
    if out.no_wait {
        ctx.out.note(format!(
            "Submitted to {} ({}){}",
            model.title,
            model.id,
            ctx.out.sim_tag()
        ));
        for h in &handles {
            ctx.out.line(h.id());
        }
        let jobs: Vec<Value> = handles
            .iter()
            .map(|h| json!({"job_id": h.id(), "status": h.status().as_str()}))
            .collect();
        ctx.out
            .json(&json!({"simulated": ctx.out.simulated, "model": model.id, "jobs": jobs}));
        return Ok(exit::OK);
    }
    let results = ctx
        .krea
        .jobs()
        .wait_all_with(&handles, |h, u| progress.set(h.id(), u.status.clone()))
        .await;
    report(ctx, model, &handles, results, &target, out).await
}

/// Downloads (or lists) what finished and reports what did not; returns the exit code.
async fn report(
    ctx: &Ctx,
    model: &ModelSpec,
    handles: &[JobHandle],
    results: Vec<krea::Result<Finished>>,
    target: &Target,
    out: &OutputArgs,
) -> anyhow::Result<u8> {
    let mut code = exit::OK;
    let mut jobs = Vec::new();
    let mut written = 0usize;
    for (handle, result) in handles.iter().zip(results) {
        let id = handle.id();
        match result {
            Ok(done) => {
                context::untrack(id);
                let urls = done.urls().to_vec();
                let files = if out.no_download {
                    urls.iter().for_each(|u| ctx.out.line(u));
                    Vec::new()
                } else {
                    let files = place(&done, target, out.force, &mut written).await?;
                    files.iter().for_each(|f| ctx.out.line(f.display()));
                    files
                };
                jobs.push(
                    json!({"job_id": id, "status": "completed", "urls": urls, "files": files}),
                );
            }
            Err(e) => {
                if !matches!(e, krea::Error::Timeout { .. }) {
                    context::untrack(id);
                }
                code = code.max(exit::code_of(&e));
                exit::report_error(&e);
                jobs.push(json!({"job_id": id, "status": handle.status().as_str(), "error": e.to_string()}));
            }
        }
    }
    ctx.out.note(format!(
        "Generated with {} ({}){}",
        model.title,
        model.id,
        ctx.out.sim_tag()
    ));
    ctx.out.json(&json!({"simulated": ctx.out.simulated, "model": model.id, "title": model.title, "jobs": jobs}));
    Ok(code)
}

/// Downloads a job's files to the target; a named file target gets the first file (then
/// `stem-2.ext`...).
async fn place(
    done: &Finished,
    target: &Target,
    force: bool,
    written: &mut usize,
) -> anyhow::Result<Vec<PathBuf>> {
    let files = done
        .download_with(
            &target.dir(),
            krea::DownloadOptions {
                overwrite: force,
                durable: false,
            },
        )
        .await?;
    let Target::File(wanted) = target else {
        return Ok(files);
    };
    let mut placed = Vec::new();
    for file in files {
        *written += 1;
        let name = match *written {
            1 => wanted.clone(),
            k => {
                let stem = wanted
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let ext = wanted
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                wanted.with_file_name(format!("{stem}-{k}.{ext}"))
            }
        };
        if name.exists() && !force {
            placed.push(file);
            continue;
        }
        std::fs::rename(&file, &name).map_err(|e| krea::Error::Io {
            path: name.clone(),
            source: e,
        })?;
        placed.push(name);
    }
    Ok(placed)
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

pub async fn image(ctx: &Ctx, a: &ImageArgs) -> anyhow::Result<u8> {
    let inputs = a
        .images
        .iter()
        .map(|i| media(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let styles = styles(&a.styles)?;
    let extra = params(&a.out.params, models::resolve(&a.model).ok())?;
    generate(ctx, &a.out, inputs, |urls| {
        let mut r = ctx.krea.image(&a.model).prompt(a.prompt.clone());
        if let Some(v) = a.width {
            r = r.width(v);
        }
        if let Some(v) = a.height {
            r = r.height(v);
        }
        if let Some(v) = &a.aspect_ratio {
            r = r.aspect_ratio(v.clone());
        }
        if let Some(v) = &a.resolution {
            r = r.resolution(v.clone());
        }
        if let Some(v) = a.seed {
            r = r.seed(v);
        }
        if let Some(v) = a.steps {
            r = r.steps(v);
        }
        if let Some(v) = &a.quality {
            r = r.quality(v.clone());
        }
        for u in urls {
            r = r.image_url(u.clone());
        }
        for (id, strength) in &styles {
            r = r.style(id.clone(), *strength);
        }
        Ok(extra.iter().fold(r, |r, (k, v)| r.param(k, v.clone())))
    })
    .await
}

pub async fn video(ctx: &Ctx, a: &VideoArgs) -> anyhow::Result<u8> {
    let mut inputs = Vec::new();
    let start = a.start_image.as_deref().map(media).transpose()?;
    let end = a.end_image.as_deref().map(media).transpose()?;
    inputs.extend(start.clone());
    inputs.extend(end.clone());
    let extra = params(&a.out.params, models::resolve(&a.model).ok())?;
    generate(ctx, &a.out, inputs, |urls| {
        let mut r = ctx.krea.video(&a.model).prompt(a.prompt.clone());
        let mut urls = urls.iter();
        if start.is_some() {
            r = r.start_image(urls.next().cloned().unwrap_or_default());
        }
        if end.is_some() {
            r = r.end_image(urls.next().cloned().unwrap_or_default());
        }
        if let Some(v) = a.duration {
            r = r.duration(v);
        }
        if let Some(v) = &a.aspect_ratio {
            r = r.aspect_ratio(v.clone());
        }
        if let Some(v) = &a.resolution {
            r = r.resolution(v.clone());
        }
        if a.audio {
            r = r.audio(true);
        }
        if let Some(v) = a.seed {
            r = r.seed(v);
        }
        Ok(extra.iter().fold(r, |r, (k, v)| r.param(k, v.clone())))
    })
    .await
}

pub async fn enhance(ctx: &Ctx, a: &EnhanceArgs) -> anyhow::Result<u8> {
    let input = media(&a.image)?;
    let model = models::resolve(&a.model)?;
    let mut extra = params(&a.out.params, Some(model))?;
    // Output size: given, or the input's size times --scale.
    let size = match (a.width, a.height, a.scale, &input) {
        (Some(w), Some(h), _, _) => Some((w, h)),
        (None, None, Some(scale), Media::File(path)) => {
            let bytes = std::fs::read(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))?;
            let (w, h) = krea_gen::media::image_dimensions(&bytes).ok_or_else(|| Usage(format!("cannot read the size of {}; pass --width and --height", path.display())))?;
            Some(((f64::from(w) * scale).round() as u32, (f64::from(h) * scale).round() as u32))
        }
        (None, None, Some(_), Media::Url(_)) => return Err(Usage("--scale needs a local file (its size is read from it); for a URL pass --width and --height".into()).into()),
        _ => None,
    };
    // A required sub-model (Topaz's `model`) defaults to its first allowed value.
    if let Some(p) = model
        .parameter("model")
        .filter(|p| p.required && !extra.contains_key("model"))
    {
        let default = p.default.or_else(|| p.enum_values.first().copied());
        match default {
            Some(v) => {
                ctx.out.note(format!(
                    "using {} model {v} (choose with -p model=...)",
                    model.title
                ));
                extra.insert("model".into(), v.to_json());
            }
            None => {
                return Err(Usage(format!(
                    "{} needs -p model=... (see `krea models {}`)",
                    model.id, model.id
                ))
                .into());
            }
        }
    }
    if let Some(scale) = a.scale
        && model.parameter("image_scaling_factor").is_some()
    {
        extra.entry("image_scaling_factor").or_insert(json!(scale));
    }
    generate(ctx, &a.out, vec![input], |urls| {
        let mut r = ctx.krea.enhance(&a.model);
        if let Some(u) = urls.first() {
            r = r.image_url(u.clone());
        }
        if let Some((w, h)) = size {
            r = r.width(w).height(h);
        }
        Ok(extra.iter().fold(r, |r, (k, v)| r.param(k, v.clone())))
    })
    .await
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
    if unlisted {
        ctx.out.warn(format!(
            "{} is in neither the built-in model list nor the cached one (`krea models --refresh` updates it): sending the body unchecked",
            a.model
        ));
    }
    generate(ctx, &a.out, Vec::new(), |_| {
        let body = Value::Object(body.clone());
        Ok(if unlisted {
            ctx.krea.generate_unchecked(&a.model, body)
        } else {
            ctx.krea.generate(&a.model, body)
        })
    })
    .await
}
