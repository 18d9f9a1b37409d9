//! Krea's upstream document -> the project's vendored description (`krea-gen/spec/krea-api.json`).
//!
//! The vendored description is what progenitor reads (normalized, see [`crate::normalize`]) and
//! what the model catalog is read from, with the API's structure and figures only: every
//! `description`, `summary` and `example(s)`, and every deprecation `reason`, is removed. The
//! figures the catalog used to parse out of prose move into extension fields first:
//!
//! - `x-krea-title` on each generation operation: the model's display name;
//! - `x-krea-pricing` on each generation operation: the compute-unit table, one object per row
//!   (`conditions`, `compute_units`, `seconds` where the table gives an average time);
//! - `x-krea-default` in request bodies: the value Krea uses when a field is absent (a real
//!   `default` would make generated bodies send it);
//! - `x-krea-hand-written`: operations left out of generation (multipart; the `krea` crate
//!   implements them by hand), as a `paths`-shaped object. [`complete`] puts them back for
//!   whoever wants the whole API (the simulator's `GET /openapi.json`).
//!
//! [`to_canonical_json`] writes it with sorted keys and two-space indentation, so a refresh is a
//! readable diff.

use serde_json::{Map, Value, json};

use crate::catalog::cost_table;
use crate::normalize::{self, METHODS, NormalizeError, Report};

/// Keys that hold Krea's prose. Under a `properties` map the same words are field names and stay.
const PROSE: [&str; 4] = ["description", "summary", "example", "examples"];

/// The vendored description and what producing it did.
#[derive(Debug, Clone)]
pub struct Vendored {
    /// OpenAPI 3.0.3, normalized, prose-free.
    pub document: Value,
    /// Counts per normalization step.
    pub report: Report,
    /// Prose fields removed.
    pub prose_removed: usize,
}

/// Whether `doc` is an upstream document (OpenAPI 3.1, as Krea publishes it) rather than a
/// vendored description.
pub fn is_upstream(doc: &Value) -> bool {
    doc.get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("3.1"))
}

/// Produces the vendored description from an upstream document.
pub fn vendor(upstream: &Value) -> Result<Vendored, NormalizeError> {
    let mut doc = upstream.clone();
    keep_figures(&mut doc);
    keep_required_nulls(&mut doc);
    let normalized = normalize::normalize(&doc)?;
    let mut document = normalized.document;
    let mut hand_written = Map::new();
    for (r, op) in normalized
        .report
        .hand_written
        .iter()
        .zip(normalized.hand_written)
    {
        let item = hand_written
            .entry(r.path.clone())
            .or_insert_with(|| json!({}));
        item[r.method.to_ascii_lowercase()] = op;
    }
    if let Some(doc) = document.as_object_mut() {
        doc.insert("x-krea-hand-written".into(), Value::Object(hand_written));
    }
    let prose_removed = strip_prose(&mut document, false);
    restore_required_response_descriptions(&mut document);
    if let Some(left) = prose_left(&document) {
        return Err(NormalizeError(format!("prose left at {left}")));
    }
    Ok(Vendored {
        document,
        report: normalized.report,
        prose_removed,
    })
}

/// Moves the title and the pricing table of each generation operation into extension fields.
fn keep_figures(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/generate/") {
            continue;
        }
        let Some(op) = item.get_mut("post").and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(title) = op.get("summary").cloned() {
            op.insert("x-krea-title".into(), title);
        }
        let description = op
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let rows: Vec<Value> = cost_table(description)
            .into_iter()
            .map(|row| {
                let conditions: Map<String, Value> = row
                    .conditions
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                let mut r = Map::new();
                r.insert("conditions".into(), Value::Object(conditions));
                r.insert("compute_units".into(), json!(row.compute_units));
                if let Some(s) = row.seconds {
                    r.insert("seconds".into(), json!(s));
                }
                Value::Object(r)
            })
            .collect();
        if !rows.is_empty() {
            op.insert("x-krea-pricing".into(), Value::Array(rows));
        }
        if let Some(aliases) = op
            .get_mut("x-krea-deprecated-field-aliases")
            .and_then(Value::as_array_mut)
        {
            for alias in aliases.iter_mut().filter_map(Value::as_object_mut) {
                alias.remove("reason");
            }
        }
    }
}

/// Marks each response whose schema requires fields typed `null` (the submit answer's pending
/// job: `completed_at` and `result`) with `x-krea-required-nulls`, because hoisting merges it
/// into the shared `Job`, where both are optional. [`crate::publish::served`] spells it out again.
fn keep_required_nulls(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.iter_mut())
        .filter(|(method, _)| METHODS.contains(&method.as_str()))
        .filter_map(|(_, op)| op.get_mut("responses").and_then(Value::as_object_mut));
    for responses in operations {
        for response in responses.values_mut().filter_map(Value::as_object_mut) {
            let Some(content) = response.get("content") else {
                continue;
            };
            let schema = &content["application/json"]["schema"];
            let nulls: Vec<Value> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|name| {
                    name.as_str()
                        .is_some_and(|n| schema["properties"][n]["type"] == "null")
                })
                .cloned()
                .collect();
            if !nulls.is_empty() {
                response.insert("x-krea-required-nulls".into(), Value::Array(nulls));
            }
        }
    }
}

/// Removes every prose field; `names` is true inside a map whose keys are field names.
fn strip_prose(v: &mut Value, names: bool) -> usize {
    let mut removed = 0;
    match v {
        Value::Object(map) => {
            if !names {
                removed += PROSE.iter().filter(|k| map.remove(**k).is_some()).count();
            }
            for (key, child) in map.iter_mut() {
                removed += strip_prose(child, !names && key == "properties");
            }
        }
        Value::Array(items) => {
            removed += items
                .iter_mut()
                .map(|i| strip_prose(i, false))
                .sum::<usize>();
        }
        _ => {}
    }
    removed
}

/// Where a vendored description still holds prose (a JSON pointer), if anywhere.
pub fn prose_left(doc: &Value) -> Option<String> {
    find_prose(doc, "", false)
}

/// The first prose field left in `v`, as a JSON pointer.
fn find_prose(v: &Value, at: &str, names: bool) -> Option<String> {
    match v {
        Value::Object(map) => map.iter().find_map(|(key, child)| {
            let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
            let prose = !names
                && (PROSE.contains(&key.as_str()) && !(key == "description" && child == "")
                    || key == "reason");
            if prose {
                Some(here)
            } else {
                find_prose(child, &here, !names && key == "properties")
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, child)| find_prose(child, &format!("{at}/{i}"), false)),
        _ => None,
    }
}

/// The operations of a vendored description implemented by hand: `(METHOD, path, operation)`.
pub fn hand_written(doc: &Value) -> Vec<(String, String, &Value)> {
    let Some(paths) = doc.get("x-krea-hand-written").and_then(Value::as_object) else {
        return Vec::new();
    };
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(m, _)| METHODS.contains(&m.as_str()))
                .map(move |(m, op)| (m.to_ascii_uppercase(), path.clone(), op))
        })
        .collect()
}

/// A vendored description with its hand-written operations back under `paths` and its null-only
/// fields spelled out: the whole API, as served to other clients.
pub fn complete(doc: &Value) -> Value {
    let mut whole = doc.clone();
    restore_null_only_fields(&mut whole);
    let Some(extra) = whole
        .as_object_mut()
        .and_then(|d| d.remove("x-krea-hand-written"))
    else {
        return whole;
    };
    for (path, item) in extra.as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            whole["paths"][path][method] = op.clone();
        }
    }
    whole
}

/// Fields that may only be null (`x-krea-null-only`, left out of `properties` so the generated
/// types stay simple) are written back for readers of the whole document, in OpenAPI 3.0's
/// spelling of "null and nothing else".
fn restore_null_only_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let names: Vec<String> = map
                .get("x-krea-null-only")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(String::from))
                .collect();
            if !names.is_empty()
                && let Some(Value::Object(props)) = map.get_mut("properties")
            {
                for name in names {
                    props.entry(name).or_insert_with(
                        || serde_json::json!({"type": "object", "nullable": true, "enum": [null]}),
                    );
                }
            }
            map.values_mut().for_each(restore_null_only_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(restore_null_only_fields),
        _ => {}
    }
}

/// OpenAPI requires a `description` on every response: an empty one says nothing.
fn restore_required_response_descriptions(doc: &mut Value) {
    let mut responses: Vec<&mut Value> = Vec::new();
    let doc = doc.as_object_mut();
    let paths = doc.into_iter().flat_map(|d| {
        d.iter_mut()
            .filter(|(k, _)| *k == "paths" || *k == "x-krea-hand-written")
            .filter_map(|(_, v)| v.as_object_mut())
    });
    for paths in paths {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for (method, op) in item.iter_mut() {
                if METHODS.contains(&method.as_str())
                    && let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut)
                {
                    responses.extend(r.values_mut());
                }
            }
        }
    }
    for response in responses.into_iter().filter_map(Value::as_object_mut) {
        if !response.contains_key("$ref") {
            response.insert("description".into(), Value::String(String::new()));
        }
    }
}

/// `v` with every object's keys sorted, pretty-printed with two spaces and a final newline.
pub fn to_canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(v)).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "Krea API", "version": "v1", "description": "Words words words."},
            "servers": [{"url": "https://api.krea.ai", "description": "Krea API"}],
            "paths": {
                "/assets": {"post": {
                    "summary": "Upload",
                    "requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object",
                        "properties": {"file": {"type": "string"}, "description": {"type": "string", "description": "A note."}}}}}},
                    "responses": {"201": {"description": "Made."}}}},
                "/generate/image/bfl/flux-1-dev": {"post": {
                    "summary": "Flux",
                    "description": "Quick model, said at length.\n| Resolution | Compute Units | Average Completion Time |\n|---|---|---|\n| 1K | ~3 | ~7 seconds |\n",
                    "x-krea-deprecated-field-aliases": [{"from": "imageUrl", "to": "image_url",
                        "sunset_date": "2026-06-19", "reason": "Moving to snake_case.",
                        "migration_url": "https://docs.example/x"}],
                    "requestBody": {"content": {"application/json": {
                        "example": {"prompt": "A long example prompt that is prose."},
                        "schema": {"type": "object", "additionalProperties": false,
                            "required": ["prompt"],
                            "properties": {
                                "prompt": {"type": "string", "description": "The prompt."},
                                "steps": {"type": "integer", "default": 25, "example": 30},
                                "description": {"type": ["string", "null"]}}}}}},
                    "responses": {"200": {"description": "The job.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["job_id", "status", "created_at"],
                        "properties": {"job_id": {"type": "string", "format": "uuid"},
                            "status": {"type": "string", "enum": crate::JOB_STATES},
                            "created_at": {"type": "string", "format": "date-time"}}}}}}}}}
            }
        })
    }

    #[test]
    fn prose_goes_and_figures_stay_as_extensions() {
        let v = vendor(&upstream()).expect("vendored").document;
        let text = to_canonical_json(&v);
        for prose in [
            "Words words",
            "The prompt.",
            "Quick model",
            "Moving to snake_case",
            "A long example",
            "Made.",
            "A note.",
        ] {
            assert!(!text.contains(prose), "{prose} left in:\n{text}");
        }
        let op = &v["paths"]["/generate/image/bfl/flux-1-dev"]["post"];
        assert_eq!(op["x-krea-title"], "Flux");
        assert_eq!(
            op["x-krea-pricing"],
            json!([{"conditions": {"Resolution": "1K"}, "compute_units": 3.0, "seconds": 7.0}])
        );
        let alias = &op["x-krea-deprecated-field-aliases"][0];
        assert_eq!(alias["migration_url"], "https://docs.example/x");
        assert!(alias.get("reason").is_none());
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(schema["properties"]["steps"]["x-krea-default"], 25);
        assert!(schema["properties"]["steps"].get("default").is_none());
        assert!(
            schema["properties"].get("description").is_some(),
            "a field named `description` is structure, not prose"
        );
        let hand: Vec<(String, String)> = hand_written(&v)
            .into_iter()
            .map(|(m, p, _)| (m, p))
            .collect();
        assert_eq!(hand, vec![("POST".to_string(), "/assets".to_string())]);
        let whole = complete(&v);
        assert!(whole["paths"]["/assets"]["post"]["requestBody"].is_object());
        assert!(whole.get("x-krea-hand-written").is_none());
        assert_eq!(v["info"]["title"], "Krea API");
    }

    #[test]
    fn responses_keep_an_empty_description_and_the_result_parses_as_openapi_3_0() {
        let v = vendor(&upstream()).expect("vendored").document;
        let op = &v["paths"]["/generate/image/bfl/flux-1-dev"]["post"];
        assert_eq!(op["responses"]["200"]["description"], "");
        assert_eq!(v["openapi"], "3.0.3");
        assert!(!is_upstream(&v) && is_upstream(&upstream()));
    }

    #[test]
    fn canonical_json_sorts_keys_and_is_stable() {
        let a = to_canonical_json(&json!({"b": 1, "a": {"d": [2, {"z": 0, "y": 1}], "c": 3}}));
        assert_eq!(
            a,
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": [\n      2,\n      {\n        \"y\": 1,\n        \"z\": 0\n      }\n    ]\n  },\n  \"b\": 1\n}\n"
        );
        let v = vendor(&upstream()).expect("vendored").document;
        let once = to_canonical_json(&v);
        let again: Value = serde_json::from_str(&once).expect("json");
        assert_eq!(to_canonical_json(&again), once);
    }
}
