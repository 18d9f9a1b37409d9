//! `krea styles train | list | get | update | share | unshare`.

use futures_util::StreamExt;
use krea::{StyleTraining, StyleUpdate};
use serde_json::json;

use crate::cli::StylesCommand;
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};
use crate::job_json::JobOut;

fn row(s: &krea::Style) -> String {
    let visibility = if s.public { "public" } else { "private" };
    // Everything here came from the server: shown without control characters.
    let clean = krea::redact::for_display;
    format!(
        "{}  {:<7} {}  [{}]",
        clean(&s.id),
        visibility,
        clean(s.title.as_deref().unwrap_or("(untitled)")),
        clean(&s.models.join(", "))
    )
}

pub async fn run(ctx: &Ctx, cmd: &StylesCommand) -> anyhow::Result<u8> {
    let styles = ctx.krea.styles();
    match cmd {
        StylesCommand::Train {
            name,
            images,
            base,
            kind,
            trigger_word,
            steps,
            no_wait,
        } => {
            let mut training = StyleTraining::new(name.clone(), Vec::<String>::new());
            for i in images {
                training = training.image(krea::Input::from(i.as_str()));
            }
            if let Some(b) = base {
                training = training.model(b.clone());
            }
            if let Some(k) = kind {
                training = training.kind(k.clone());
            }
            if let Some(w) = trigger_word {
                training = training.trigger_word(w.clone());
            }
            if let Some(s) = steps {
                training = training.max_train_steps(*s);
            }
            let job = styles.train(&training).await?;
            context::track(job.id());
            ctx.out.note(format!(
                "training style {name:?} as job {}{}",
                job.id(),
                ctx.out.sim_tag()
            ));
            if *no_wait {
                ctx.out.line(job.id());
                let queued = JobOut::ended(job.id(), "style training", "queued", Vec::new(), None);
                ctx.out.jobs(&[queued], json!({}));
                return Ok(exit::OK);
            }
            let done = job.wait().await?;
            context::untrack(job.id());
            let id = done.style_id().unwrap_or_default().to_string();
            ctx.out.line(&id);
            let ended = JobOut::ended(
                done.job_id(),
                "style training",
                "completed",
                Vec::new(),
                None,
            );
            ctx.out.jobs(&[ended], json!({ "style_id": id }));
        }
        StylesCommand::List { filter, limit } => {
            let known = [
                "all",
                "user",
                "shared",
                "krea",
                "community",
                "public",
                "liked",
            ];
            if !known.contains(&filter.as_str()) {
                return Err(Usage(format!(
                    "unknown filter {filter:?}: use one of {}",
                    known.join(", ")
                ))
                .into());
            }
            let mut stream = Box::pin(styles.list(Some(filter)).take(*limit));
            let mut all = Vec::new();
            while let Some(s) = stream.next().await {
                let s = s?;
                ctx.out.line(row(&s));
                all.push(s);
            }
            ctx.out.json(&json!({ "styles": all }));
        }
        StylesCommand::Get { id } => {
            let s = styles.get(id).await?;
            ctx.out.line(row(&s));
            ctx.out.json(&json!({ "styles": [s] }));
        }
        StylesCommand::Update {
            id,
            title,
            public,
            private,
            cover_url,
        } => {
            let mut update = StyleUpdate::default();
            if let Some(t) = title {
                update = update.title(t.clone());
            }
            if *public || *private {
                update = update.public(*public);
            }
            if let Some(c) = cover_url {
                update = update.cover_url(c.clone());
            }
            let s = styles.update(id, &update).await?;
            ctx.out.line(row(&s));
            ctx.out.json(&json!({ "styles": [s] }));
        }
        StylesCommand::Share { id } => {
            styles.share(id).await?;
            let link = styles.share_link(id).await?.share_link;
            ctx.out.line(krea::redact::for_display(&link));
            ctx.out
                .json(&json!({ "share": {"id": id, "shared": true, "share_link": link} }));
        }
        StylesCommand::Unshare { id } => {
            styles.unshare(id).await?;
            ctx.out
                .line(format!("{id} is no longer shared with the workspace"));
            ctx.out
                .json(&json!({ "share": {"id": id, "shared": false} }));
        }
    }
    Ok(exit::OK)
}
