//! What `tools/list` says about each tool, made small and portable. An assistant pays for
//! every byte of the listing in its context, and some clients map schemas onto dialects with
//! one `type` per property (Gemini's OpenAPI subset), so the schemas schemars derives are
//! trimmed: an optional property is its type (absent, not `null`), storage formats (`uint32`,
//! `double`), the `$schema` line and what JSON Schema assumes anyway (empty defaults,
//! `additionalProperties: true`) go, and the annotations neither repeat the title, nor give
//! read-only tools the hints that mean something only for tools that change things, nor state
//! a hint equal to the spec's default (read-only false, destructive true, idempotent false,
//! open-world true).

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::JsonObject;
use serde_json::Value;

/// Trims every tool's schemas and annotations in `router`.
pub fn compact<S>(router: &mut ToolRouter<S>) {
    for route in router.map.values_mut() {
        let tool = &mut route.attr;
        tool.input_schema = Arc::new(compact_schema(&tool.input_schema));
        if let Some(out) = &tool.output_schema {
            tool.output_schema = Some(Arc::new(compact_schema(out)));
        }
        if let Some(a) = &mut tool.annotations {
            if a.title == tool.title {
                a.title = None;
            }
            // The spec gives these meaning only for tools that change something.
            if a.read_only_hint == Some(true) {
                a.destructive_hint = None;
                a.idempotent_hint = None;
            }
            // A hint left out means the spec's default: say only what differs from it.
            let defaults = [
                (&mut a.read_only_hint, false),
                (&mut a.destructive_hint, true),
                (&mut a.idempotent_hint, false),
                (&mut a.open_world_hint, true),
            ];
            for (hint, default) in defaults {
                if *hint == Some(default) {
                    *hint = None;
                }
            }
        }
    }
}

fn compact_schema(schema: &JsonObject) -> JsonObject {
    let mut value = Value::Object(schema.clone());
    trim(&mut value);
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Trims a schema and everything under it.
fn trim(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    map.remove("$schema");
    map.remove("format");
    // What JSON Schema assumes anyway: any member allowed, an optional value's empty default.
    if map.get("additionalProperties") == Some(&Value::Bool(true)) {
        map.remove("additionalProperties");
    }
    if map.get("default").is_some_and(is_empty) {
        map.remove("default");
    }
    // Unsigned integers are spelled with a minimum of 0; keep it, it says something.
    let required: Vec<String> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if !required.contains(name) {
                drop_null_type(prop);
            }
            trim(prop);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            trim(inner);
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(defs)) = map.get_mut(key) {
            defs.values_mut().for_each(trim);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(options)) = map.get_mut(key) {
            options.iter_mut().for_each(trim);
        }
    }
}

/// `[]`, `{}`, `false`, `""`: what leaving an optional value out already means.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `{"type": ["string", "null"]}` becomes `{"type": "string"}`; `anyOf` with a `null` branch
/// becomes its other branch. Only for properties that may be left out.
fn drop_null_type(prop: &mut Value) {
    let Value::Object(map) = prop else {
        return;
    };
    if let Some(Value::Array(types)) = map.get("type") {
        let kept: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        let kept = match kept.len() {
            1 => kept.into_iter().next().unwrap_or(Value::Null),
            _ => Value::Array(kept),
        };
        map.insert("type".into(), kept);
    }
    let branches = map.get("anyOf").and_then(Value::as_array).map(|options| {
        options
            .iter()
            .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
            .cloned()
            .collect::<Vec<_>>()
    });
    if let Some(mut branches) = branches
        && branches.len() == 1
        && let Some(Value::Object(only)) = branches.pop()
    {
        map.remove("anyOf");
        for (k, v) in only {
            map.entry(k).or_insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn optional_properties_lose_null_and_formats_required_ones_keep_their_type() {
        let Value::Object(schema) = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "prompt": {"type": "string"},
                "seed": {"type": ["integer", "null"], "format": "uint64", "minimum": 0},
                "must": {"type": ["string", "null"]},
                "step": {"anyOf": [{"$ref": "#/$defs/Step"}, {"type": "null"}], "description": "d"},
                "list": {"type": "array", "items": {"type": "number", "format": "double"}, "default": []},
                "params": {"type": "object", "additionalProperties": true, "default": {}},
                "full": {"type": "boolean", "default": false}
            },
            "required": ["prompt", "must"]
        }) else {
            unreachable!()
        };
        let out = Value::Object(compact_schema(&schema));
        assert_eq!(
            out,
            json!({
                "type": "object",
                "properties": {
                    "prompt": {"type": "string"},
                    "seed": {"type": "integer", "minimum": 0},
                    "must": {"type": ["string", "null"]},
                    "step": {"$ref": "#/$defs/Step", "description": "d"},
                    "list": {"type": "array", "items": {"type": "number"}},
                    "params": {"type": "object"},
                    "full": {"type": "boolean"}
                },
                "required": ["prompt", "must"]
            })
        );
    }
}
