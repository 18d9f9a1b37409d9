//! `krea apps get | run`.

use serde_json::{Value, json};

use crate::cli::AppsCommand;
use crate::cmd_generate::params;
use crate::context::{self, Ctx};
use crate::exit;

pub async fn run(ctx: &Ctx, cmd: &AppsCommand) -> anyhow::Result<u8> {
    let apps = ctx.krea.node_apps();
    match cmd {
        AppsCommand::Get { id } => {
            let app = apps.get(id).await?;
            ctx.out.line(format!(
                "{} ({}) v{}: {}",
                app.name, app.id, app.version, app.description
            ));
            if let Some(schema) = &app.input_openapi_schema {
                for (name, spec) in &schema.properties {
                    let required = if schema.required.contains(name) {
                        "required"
                    } else {
                        "optional"
                    };
                    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("any");
                    ctx.out.line(format!("  {name:<16} {ty}, {required}"));
                }
            }
            ctx.out.json(&json!(app));
        }
        AppsCommand::Run {
            id,
            params: pairs,
            output,
            no_wait,
        } => {
            let inputs = Value::Object(params(pairs, None)?);
            let handles = apps.execute(id, inputs).await?;
            handles.iter().for_each(|h| context::track(h.id()));
            if *no_wait {
                handles.iter().for_each(|h| ctx.out.line(h.id()));
                ctx.out
                    .json(&json!(handles.iter().map(|h| h.id()).collect::<Vec<_>>()));
                return Ok(exit::OK);
            }
            let mut code = exit::OK;
            let mut out = Vec::new();
            for (h, result) in handles.iter().zip(ctx.krea.jobs().wait_all(&handles).await) {
                context::untrack(h.id());
                match result {
                    Ok(done) => {
                        let files = done
                            .download_to(output.clone().unwrap_or_else(|| ".".into()))
                            .await?;
                        files.iter().for_each(|f| ctx.out.line(f.display()));
                        out.push(json!({"job_id": h.id(), "files": files}));
                    }
                    Err(e) => {
                        code = code.max(exit::code_of(&e));
                        exit::report_error(&e);
                        out.push(json!({"job_id": h.id(), "error": e.to_string()}));
                    }
                }
            }
            ctx.out.json(&json!(out));
            return Ok(code);
        }
    }
    Ok(exit::OK)
}
