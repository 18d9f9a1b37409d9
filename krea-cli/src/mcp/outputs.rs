//! The output schema each tool publishes: what its `structuredContent` holds, so a program (or
//! a client that checks answers, like the Python SDK) can rely on it. Written small on purpose:
//! an assistant pays for `tools/list` in context, so members are typed without descriptions
//! (their names and the tool's description say what they are) and nothing is marked required
//! (a refusal answers `error` and little else). A test holds every tool's answers to its
//! schema (`krea-cli/tests/it/mcp.rs`).

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

fn ty(name: &str) -> Value {
    json!({ "type": name })
}

fn string() -> Value {
    ty("string")
}

fn number() -> Value {
    ty("number")
}

fn list(item: Value) -> Value {
    json!({"type": "array", "items": item})
}

fn object(members: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = members
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    json!({"type": "object", "properties": properties})
}

/// Why a call failed or was refused: `kind` (as in `krea --json`), what to do next.
fn problem() -> Value {
    object(&[
        ("kind", string()),
        ("message", string()),
        ("job_id", string()),
        ("hints", list(string())),
        (
            "problems",
            list(object(&[("field", string()), ("message", string())])),
        ),
        ("nothing_sent", ty("boolean")),
    ])
}

/// A job as every job tool gives it.
fn job_members() -> Vec<(&'static str, Value)> {
    vec![
        ("id", string()),
        ("model", string()),
        ("status", string()),
        ("created_at", string()),
        ("completed_at", string()),
        ("urls", list(string())),
        ("files", list(string())),
        ("cost_cu", number()),
        ("error", problem()),
        ("uncertain", string()),
    ]
}

/// What every answer may carry besides its own members.
fn common() -> Vec<(&'static str, Value)> {
    vec![
        ("error", problem()),
        ("session_cu", number()),
        ("next", string()),
        ("simulated", ty("boolean")),
    ]
}

fn answer(own: Vec<(&'static str, Value)>) -> Value {
    let mut members = own;
    for (k, v) in common() {
        if !members.iter().any(|(m, _)| *m == k) {
            members.push((k, v));
        }
    }
    object(&members)
}

fn low_high() -> Value {
    object(&[("low", number()), ("high", number())])
}

/// The output schema of the tool called `name`, if it has one.
pub fn of(name: &str) -> Option<Value> {
    let job = || {
        let mut own = job_members();
        // A refusal over the budget says what the call was estimated at.
        own.push(("estimate_cu", number()));
        own.push(("assumed_price", ty("boolean")));
        answer(own)
    };
    Some(match name {
        "generate_image" | "generate_video" | "enhance_image" | "run_model" | "get_job"
        | "wait_job" => job(),
        "list_jobs" | "resume_jobs" => answer(vec![("jobs", list(object(&job_members())))]),
        "cancel_job" => answer(vec![("id", string()), ("cancelled", ty("boolean"))]),
        "upload_asset" => answer(vec![("id", string()), ("url", string())]),
        "list_models" => answer(vec![(
            "models",
            list(object(&[
                ("id", string()),
                ("title", string()),
                ("kind", string()),
                ("aliases", list(string())),
                ("compute_units", string()),
                ("typical_seconds", number()),
            ])),
        )]),
        "get_model_schema" => answer(vec![
            ("id", string()),
            ("title", string()),
            ("kind", string()),
            ("path", string()),
            ("aliases", list(string())),
            ("typical_seconds", number()),
            ("compute_units", low_high()),
            ("prices", list(ty("object"))),
            ("deprecated_aliases", list(ty("object"))),
            ("parameters", list(ty("object"))),
            ("json_schema", ty("object")),
        ]),
        "estimate_cost" => answer(vec![
            ("model", string()),
            ("count", number()),
            ("estimate_cu", low_high()),
            ("total_cu", low_high()),
            ("assumed_price", ty("boolean")),
            ("notes", list(string())),
            ("allowed", ty("boolean")),
            ("refusal", string()),
        ]),
        "run_pipeline" | "pipeline_status" => answer(vec![
            ("run_id", string()),
            ("dir", string()),
            ("status", string()),
            (
                "steps",
                list(object(&[
                    ("id", string()),
                    ("jobs", number()),
                    ("ended", number()),
                ])),
            ),
            ("files", list(string())),
            ("cost_cu", number()),
            ("estimate_cu", low_high()),
            ("jobs_planned", number()),
            ("unpriced_jobs", number()),
        ]),
        _ => return None,
    })
}

/// Gives every tool in `router` its output schema.
pub fn publish<S>(router: &mut ToolRouter<S>) {
    for route in router.map.values_mut() {
        if let Some(Value::Object(schema)) = of(&route.attr.name) {
            route.attr.output_schema = Some(Arc::new(JsonObject::from_iter(schema)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema() {
        for name in [
            "list_models",
            "get_model_schema",
            "estimate_cost",
            "generate_image",
            "generate_video",
            "enhance_image",
            "run_model",
            "upload_asset",
            "get_job",
            "wait_job",
            "cancel_job",
            "list_jobs",
            "resume_jobs",
            "run_pipeline",
            "pipeline_status",
        ] {
            let schema = of(name).expect(name);
            assert_eq!(schema["type"], "object", "{name}");
            assert_eq!(schema["properties"]["error"], problem(), "{name}");
        }
    }
}
