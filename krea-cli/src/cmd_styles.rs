//! `krea styles train | list | get | update | share | unshare`.

use futures_util::StreamExt;
use krea::{StyleTraining, StyleUpdate};
use serde_json::json;

use crate::cli::StylesCommand;
use crate::cmd_generate::{Media, media};
use crate::context::{self, Ctx};
use crate::exit::{self, Usage};

fn row(s: &krea::types::Style) -> String {
    let visibility = if s.public { "public" } else { "private" };
    format!(
        "{}  {:<7} {}  [{}]",
        s.id,
        visibility,
        s.title.as_deref().unwrap_or("(untitled)"),
        s.models.join(", ")
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
            let inputs = images
                .iter()
                .map(|i| media(i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut urls = Vec::new();
            for m in inputs {
                urls.push(match m {
                    Media::Url(u) => u,
                    Media::File(path) => {
                        ctx.krea.assets().upload(&path, Some(name)).await?.image_url
                    }
                });
            }
            let training = StyleTraining {
                name: name.clone(),
                urls,
                model: base.clone(),
                kind: kind.clone(),
                trigger_word: trigger_word.clone(),
                max_train_steps: *steps,
                ..StyleTraining::default()
            };
            let job = styles.train(&training).await?;
            context::track(job.id());
            ctx.out.note(format!(
                "training style {name:?} as job {}{}",
                job.id(),
                ctx.out.sim_tag()
            ));
            if *no_wait {
                ctx.out.line(job.id());
                ctx.out.json(&json!({"job_id": job.id()}));
                return Ok(exit::OK);
            }
            let done = job.wait().await?;
            context::untrack(job.id());
            let id = done.style_id().unwrap_or_default().to_string();
            ctx.out.line(&id);
            ctx.out
                .json(&json!({"job_id": done.job_id(), "style_id": id}));
        }
        StylesCommand::List { filter, limit } => {
            let filter: krea::types::ListStylesFilter = filter.parse().map_err(|_| {
                Usage(format!(
                    "unknown filter {filter:?}: use all, user, shared, krea, community, public..."
                ))
            })?;
            let mut stream = Box::pin(styles.list(Some(filter)).take(*limit));
            let mut all = Vec::new();
            while let Some(s) = stream.next().await {
                let s = s?;
                ctx.out.line(row(&s));
                all.push(s);
            }
            ctx.out.json(&json!(all));
        }
        StylesCommand::Get { id } => {
            let s = styles.get(id).await?;
            ctx.out.line(row(&s));
            ctx.out.json(&json!(s));
        }
        StylesCommand::Update {
            id,
            title,
            public,
            private,
            cover_url,
        } => {
            let update = StyleUpdate {
                title: title.clone(),
                public: if *public {
                    Some(true)
                } else if *private {
                    Some(false)
                } else {
                    None
                },
                cover_url: cover_url.clone(),
                urls: None,
            };
            let s = styles.update(id, &update).await?;
            ctx.out.line(row(&s));
            ctx.out.json(&json!(s));
        }
        StylesCommand::Share { id } => {
            styles.share(id).await?;
            let (link, _) = styles.share_link(id).await?;
            ctx.out.line(&link);
            ctx.out
                .json(&json!({"id": id, "shared": true, "share_link": link}));
        }
        StylesCommand::Unshare { id } => {
            styles.unshare(id).await?;
            ctx.out
                .line(format!("{id} is no longer shared with the workspace"));
            ctx.out.json(&json!({"id": id, "shared": false}));
        }
    }
    Ok(exit::OK)
}
