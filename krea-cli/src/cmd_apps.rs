//! `krea apps get | run`.

use serde_json::{Value, json};

use crate::cli::AppsCommand;
use crate::cmd_generate::params;
use crate::context::{self, Ctx};
use crate::exit;
use crate::job_json::JobOut;

pub async fn run(ctx: &Ctx, cmd: &AppsCommand) -> anyhow::Result<u8> {
    let apps = ctx.krea.node_apps();
    match cmd {
        AppsCommand::Get { id } => {
            let app = apps.get(id).await?;
            let text = |v: &Option<String>| krea::redact::for_display(v.as_deref().unwrap_or("?"));
            ctx.out.line(format!(
                "{} ({}) v{}",
                text(&app.name),
                krea::redact::for_display(&app.id),
                app.version.map_or("?".into(), |v| v.to_string())
            ));
            if let Some(schema) = &app.input_openapi_schema {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let props = schema.get("properties").and_then(Value::as_object);
                for (name, spec) in props.into_iter().flatten() {
                    let need = if required.contains(&name.as_str()) {
                        "required"
                    } else {
                        "optional"
                    };
                    let ty = spec.get("type").and_then(Value::as_str).unwrap_or("any");
                    ctx.out.line(format!(
                        "  {:<16} {}, {need}",
                        krea::redact::for_display(name),
                        krea::redact::for_display(ty)
                    ));
                }
            }
            ctx.out.json(&json!({ "apps": [app] }));
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
                let queued: Vec<JobOut> = handles
                    .iter()
                    .map(|h| JobOut::ended(h.id(), id, "queued", Vec::new(), None))
                    .collect();
                ctx.out.jobs(&queued, json!({}));
                return Ok(exit::OK);
            }
            let mut code = exit::OK;
            let mut out = Vec::new();
            let refs: Vec<&krea::JobHandle> = handles.iter().collect();
            for (h, result) in handles.iter().zip(ctx.krea.jobs().wait_all(&refs).await) {
                context::untrack(h.id());
                match result {
                    Ok(done) => {
                        let files = done
                            .download_to(output.clone().unwrap_or_else(|| ".".into()))
                            .await?;
                        files
                            .iter()
                            .for_each(|f| ctx.out.line(crate::output::shown(f)));
                        out.push(JobOut::ended(h.id(), id, "completed", files, None));
                    }
                    Err(e) => {
                        code = code.max(exit::code_of(&e));
                        exit::report_error(&e);
                        out.push(JobOut::failed(h.id(), id, &e));
                    }
                }
            }
            ctx.out.jobs(&out, json!({}));
            return Ok(code);
        }
    }
    Ok(exit::OK)
}
