//! `krea jobs list | get | wait | cancel | delete | resume`.

use futures_util::StreamExt;
use krea::{JobQuery, JobStatus};
use serde_json::{Value, json};

use crate::cli::JobsCommand;
use crate::context::Ctx;
use crate::exit::{self, Usage};
use crate::job_json::JobOut;
use crate::output::{Column, Layout};
use crate::progress::Progress;

/// A progress row's label and expected duration for a job this process did not submit.
fn label(ctx: &Ctx, h: &krea::JobHandle) -> (String, Option<std::time::Duration>) {
    match h.model() {
        Some(m) => (m.id.to_string(), crate::context::expected(ctx, m)),
        None => ("job".to_string(), None),
    }
}

const COLUMNS: [Column; 5] = [
    Column {
        head: "ID",
        width: 8,
        right: false,
    },
    Column {
        head: "STATUS",
        width: 10,
        right: false,
    },
    Column {
        head: "AGE",
        width: 5,
        right: true,
    },
    Column {
        head: "MODEL",
        width: 24,
        right: false,
    },
    Column {
        head: "PROMPT",
        width: 0,
        right: false,
    },
];

/// `42s`, `7m`, `3h`, `12d`.
fn age(t: chrono::DateTime<chrono::Utc>) -> String {
    let s = (chrono::Utc::now() - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A listing row: short id, state, age, and the model and prompt where the journal knows them.
fn cells(ctx: &Ctx, job: &krea::Job) -> Vec<String> {
    let sent = ctx.krea.journal().and_then(|j| j.submitted(job.id));
    let prompt = sent
        .as_ref()
        .and_then(|p| {
            p.request
                .get("prompt")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_default();
    vec![
        crate::progress::short(job.id),
        krea::redact::for_display(job.status.as_str()),
        age(job.created_at),
        sent.map_or_else(|| "-".into(), |p| p.model),
        krea::redact::for_display(&prompt),
    ]
}

pub async fn run(ctx: &Ctx, cmd: &JobsCommand) -> anyhow::Result<u8> {
    if ctx.out.simulated && !matches!(cmd, JobsCommand::List { .. }) {
        // Each --sim command has a simulator of its own, gone with it: nothing earlier is there.
        return Err(Usage(
            "under --sim each command runs its own simulator, and its jobs ended with it: there is no earlier job here (without --sim, `krea jobs` works on your account's jobs)"
                .into(),
        )
        .into());
    }
    let jobs = ctx.krea.jobs();
    match cmd {
        JobsCommand::List { status, limit, all } => {
            let mut query = JobQuery::all().page_size((*limit as u64).clamp(1, 1000));
            if !*all {
                query = query.max(*limit);
            }
            if let Some(s) = status {
                match s.parse::<JobStatus>() {
                    Ok(JobStatus::Other(s)) => return Err(Usage(format!(
                        "unknown status {s:?}: use queued, processing, completed, failed, cancelled..."
                    ))
                    .into()),
                    Ok(status) => query = query.status(status),
                    Err(never) => match never {},
                }
            }
            let mut stream = Box::pin(jobs.list(query));
            let mut listed = Vec::new();
            let layout = Layout::new(&COLUMNS, crate::output::listing_width());
            while let Some(job) = stream.next().await {
                let job = job?;
                if listed.is_empty() {
                    ctx.out.line(layout.header(&COLUMNS).trim_end());
                }
                ctx.out.line(layout.line(&cells(ctx, &job)).trim_end());
                listed.push(job);
            }
            if listed.is_empty() {
                ctx.out.note("no jobs");
            }
            let shown: Vec<JobOut> = listed
                .iter()
                .map(|j| JobOut::from_job(&ctx.krea, j, Vec::new()))
                .collect();
            ctx.out.jobs(&shown, json!({}));
        }
        JobsCommand::Get { id } => {
            let job = jobs.get(jobs.resolve(id).await?).await?;
            let layout = Layout::new(&COLUMNS, crate::output::listing_width());
            ctx.out.line(layout.header(&COLUMNS).trim_end());
            ctx.out.line(layout.line(&cells(ctx, &job)).trim_end());
            ctx.out.line(format!("id: {}", job.id));
            job.urls()
                .iter()
                .for_each(|u| ctx.out.line(krea::redact::for_display(u)));
            ctx.out
                .jobs(&[JobOut::from_job(&ctx.krea, &job, Vec::new())], json!({}));
        }
        JobsCommand::Wait {
            ids,
            output,
            no_download,
        } => {
            let mut code = exit::OK;
            let mut out = Vec::new();
            let mut resolved = Vec::new();
            for id in ids {
                resolved.push(jobs.resolve(id).await?);
            }
            // Every job waited for at once (one listing poll for all), with live progress.
            let mut handles = Vec::new();
            let mut results: Vec<(uuid::Uuid, krea::Result<krea::Finished>)> = Vec::new();
            for id in &resolved {
                match jobs.handle_for(*id).await {
                    Ok(h) => handles.push(h),
                    Err(e) => results.push((*id, Err(e))),
                }
            }
            let refs: Vec<&krea::JobHandle> = handles.iter().collect();
            let mut progress = Progress::new(&ctx.out, refs.len());
            let waited = jobs
                .wait_all_with(&refs, |h, u| {
                    progress.observe(u.job_id, || label(ctx, h), u.status.clone())
                })
                .await;
            progress.clear();
            results.extend(handles.iter().map(krea::JobHandle::id).zip(waited));
            // In the order asked for.
            results.sort_by_key(|(id, _)| resolved.iter().position(|r| r == id));
            for (id, result) in results {
                let id = &id;
                match result {
                    Ok(done) => {
                        let files = if *no_download {
                            done.urls()
                                .iter()
                                .for_each(|u| ctx.out.line(krea::redact::for_display(u)));
                            Vec::new()
                        } else {
                            let files = match output {
                                Some(dir) => done.download_to(dir).await?,
                                None if done.urls().is_empty() => Vec::new(),
                                // Where the journal planned, else here.
                                None if done.output().is_some() => done.download().await?,
                                None => done.download_to(".").await?,
                            };
                            files
                                .iter()
                                .for_each(|f| ctx.out.line(crate::output::shown(f)));
                            files
                        };
                        let mut job = JobOut::from_job(&ctx.krea, done.job(), files);
                        if let Some(m) = done.model_id() {
                            job.model = m.to_string();
                        }
                        out.push(job);
                    }
                    Err(e) => {
                        code = code.max(exit::code_of(&e));
                        exit::report_error(&e);
                        out.push(JobOut::failed(*id, "", &e));
                    }
                }
            }
            ctx.out.jobs(&out, json!({}));
            return Ok(code);
        }
        JobsCommand::Cancel { id } => {
            let id = jobs.resolve(id).await?;
            let cancelled = jobs.cancel(id).await?;
            ctx.out.line(if cancelled {
                format!("{id} cancelled (not charged)")
            } else {
                format!("{id} had already ended")
            });
            if ctx.out.json {
                // The job as it stands now, in the one shape (a cancelled job costs nothing).
                let job = jobs.get(id).await?;
                ctx.out.jobs(
                    &[JobOut::from_job(&ctx.krea, &job, Vec::new())],
                    json!({ "cancelled": cancelled }),
                );
            }
        }
        JobsCommand::Delete { id } => {
            let id = jobs.resolve(id).await?;
            jobs.delete(id).await?;
            ctx.out.line(format!("{id} deleted"));
            ctx.out.json(&json!({ "deleted": [id] }));
        }
        JobsCommand::Settle => {
            let settled = ctx.krea.settle_all().await?;
            if settled.is_empty() {
                ctx.out
                    .note("nothing to settle: every request sent has a known outcome");
            }
            let mut out = Vec::new();
            let mut code = exit::OK;
            for s in &settled {
                let key = s.key().map(|k| k.to_string()).unwrap_or_default();
                let doubt = s
                    .uncertain()
                    .map(|why| format!("; uncertain: {}", krea::redact::for_display(why)))
                    .unwrap_or_default();
                match s {
                    krea::Settlement::Adopted { job_id, .. } => {
                        ctx.out.line(format!(
                            "{key}: created job {job_id} (now resumable){doubt}"
                        ));
                        out.push(json!({"key": key, "outcome": "adopted", "job_id": job_id, "uncertain": s.uncertain()}));
                    }
                    krea::Settlement::NotCreated { .. } => {
                        ctx.out.line(format!(
                            "{key}: created no job (not charged; safe to send again){doubt}"
                        ));
                        out.push(json!({"key": key, "outcome": "not_created", "uncertain": s.uncertain()}));
                    }
                    krea::Settlement::StillUnknown { reason, .. } => {
                        code = exit::NETWORK;
                        ctx.out.line(format!(
                            "{key}: still unknown ({reason}); run this again later"
                        ));
                        out.push(json!({"key": key, "outcome": "unknown", "reason": reason}));
                    }
                    _ => {}
                }
            }
            ctx.out.json(&json!({ "settled": out }));
            return Ok(code);
        }
        JobsCommand::Resume => {
            let mut progress = Progress::new(&ctx.out, 0);
            let resumed = jobs
                .resume_with(|h, u| progress.observe(u.job_id, || label(ctx, h), u.status.clone()))
                .await?;
            progress.clear();
            let mut code = exit::OK;
            let mut out: Vec<JobOut> = Vec::new();
            if resumed.is_empty() {
                ctx.out
                    .note("nothing to resume: every journaled job has finished");
            }
            for r in resumed {
                match &r.outcome {
                    Ok(files) => {
                        files
                            .iter()
                            .for_each(|f| ctx.out.line(crate::output::shown(f)));
                        out.push(JobOut::ended(
                            r.job_id,
                            &r.model,
                            "completed",
                            files.clone(),
                            None,
                        ));
                    }
                    Err(e) => {
                        code = code.max(exit::code_of(e));
                        exit::report_error(e);
                        out.push(JobOut::failed(r.job_id, &r.model, e));
                    }
                }
            }
            ctx.out.jobs(&out, json!({}));
            return Ok(code);
        }
    }
    Ok(exit::OK)
}
