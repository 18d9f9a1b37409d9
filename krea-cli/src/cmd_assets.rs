//! `krea assets upload | list | get | delete`.

use futures_util::StreamExt;
use serde_json::json;

use crate::cli::AssetsCommand;
use crate::context::Ctx;
use crate::exit;

fn row(a: &krea::Asset) -> String {
    let size = match (a.width, a.height) {
        (Some(w), Some(h)) => format!("{w}x{h}"),
        _ => "-".into(),
    };
    format!(
        "{}  {:<18} {:>10}  {}",
        a.id,
        krea::redact::for_display(a.mime_type.as_deref().unwrap_or("-")),
        size,
        krea::redact::for_display(&a.image_url)
    )
}

pub async fn run(ctx: &Ctx, cmd: &AssetsCommand) -> anyhow::Result<u8> {
    let assets = ctx.krea.assets();
    match cmd {
        AssetsCommand::Upload { file, description } => {
            // Checked (type, size) before anything is sent.
            let asset = assets.upload(file, description.as_deref()).await?;
            ctx.out.line(row(&asset));
            ctx.out.json(&json!({ "assets": [asset] }));
        }
        AssetsCommand::List => {
            let mut stream = Box::pin(assets.list());
            let mut all = Vec::new();
            while let Some(a) = stream.next().await {
                let a = a?;
                ctx.out.line(row(&a));
                all.push(a);
            }
            ctx.out.json(&json!({ "assets": all }));
        }
        AssetsCommand::Get { id } => {
            let a = assets.get(*id).await?;
            ctx.out.line(row(&a));
            ctx.out.json(&json!({ "assets": [a] }));
        }
        AssetsCommand::Delete { id } => {
            assets.delete(*id).await?;
            ctx.out.line(format!("{id} deleted"));
            ctx.out.json(&json!({ "deleted": [id] }));
        }
    }
    Ok(exit::OK)
}
