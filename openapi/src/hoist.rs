//! Hoisting inline schemas that mean the same thing into shared `components/schemas`.
//!
//! Krea's document inlines every schema. Left alone, typify names each inline response
//! `{OpId}Response`, and because the `{error}` body of a 4xx is structurally the first type it
//! saw, error bodies decode as success types. Hoisting gives one `Job`, one `JobStatus`, one
//! `Error` (the error body of every operation), one `Asset`, one `Style`...
//!
//! A shape is recognised by its property names; every match is merged into one component whose
//! properties are the union, whose `required` is the intersection, and whose properties that some
//! match declared as `type: "null"` become nullable. So `Job` is the superset of the pending job
//! (`completed_at: null`, `result: null`) and the finished one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::normalize::walk_objects_mut;

/// The nine job states Krea documents.
pub const JOB_STATES: [&str; 9] = [
    "backlogged",
    "queued",
    "scheduled",
    "processing",
    "sampling",
    "intermediate-complete",
    "completed",
    "failed",
    "cancelled",
];

struct Shape {
    name: &'static str,
    /// Property names that must all be present.
    must: &'static [&'static str],
    /// Property names allowed besides `must`; `None` allows any.
    may: Option<&'static [&'static str]>,
}

/// Order matters: inner shapes first, so outer shapes see `$ref`s.
const SHAPES: &[Shape] = &[
    Shape {
        name: "JobResult",
        must: &["urls"],
        may: Some(&["style_id"]),
    },
    Shape {
        name: "Job",
        must: &["job_id", "status", "created_at"],
        may: Some(&["completed_at", "result"]),
    },
    Shape {
        name: "Error",
        must: &["error"],
        may: Some(&[]),
    },
    Shape {
        name: "Asset",
        must: &["id", "image_url", "uploaded_at"],
        may: None,
    },
    Shape {
        name: "Style",
        must: &[
            "id",
            "title",
            "urls",
            "public",
            "prompt",
            "owner",
            "like_count",
        ],
        may: None,
    },
    Shape {
        name: "StyleShareLink",
        must: &["share_link", "is_new"],
        may: Some(&[]),
    },
];

fn property_names(schema: &Map<String, Value>) -> Option<BTreeSet<&str>> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return None;
    }
    let props = schema.get("properties")?.as_object()?;
    Some(props.keys().map(String::as_str).collect())
}

fn matches(shape: &Shape, schema: &Map<String, Value>) -> bool {
    let Some(names) = property_names(schema) else {
        return false;
    };
    shape.must.iter().all(|m| names.contains(m))
        && shape.may.is_none_or(|may| {
            names
                .iter()
                .all(|n| shape.must.contains(n) || may.contains(n))
        })
}

fn is_job_status(schema: &Map<String, Value>) -> bool {
    let Some(values) = schema.get("enum").and_then(Value::as_array) else {
        return false;
    };
    values.len() == JOB_STATES.len()
        && values
            .iter()
            .zip(JOB_STATES)
            .all(|(v, s)| v.as_str() == Some(s))
}

/// `{"$ref": "#/components/schemas/{name}"}`; 3.0 ignores anything beside a `$ref`.
fn reference(name: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(
        "$ref".into(),
        Value::String(format!("#/components/schemas/{name}")),
    );
    map
}

#[derive(Default)]
struct Merged {
    schema: Map<String, Value>,
    required: Option<BTreeSet<String>>,
    seen_null: BTreeSet<String>,
}

impl Merged {
    fn absorb(&mut self, schema: &Map<String, Value>) {
        let required: BTreeSet<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        self.required = Some(match self.required.take() {
            Some(prev) => prev.intersection(&required).cloned().collect(),
            None => required,
        });
        if self.schema.is_empty() {
            self.schema = schema.clone();
            self.schema.remove("required");
        }
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mine = self
            .schema
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("properties is an object");
        for (name, prop) in props {
            let is_null = prop.get("type").and_then(Value::as_str) == Some("null");
            if is_null {
                self.seen_null.insert(name.clone());
            }
            let mine_is_null = mine
                .get(&name)
                .is_none_or(|p| p.get("type").and_then(Value::as_str) == Some("null"));
            if mine_is_null && !is_null {
                mine.insert(name, prop);
            } else {
                mine.entry(name).or_insert(prop);
            }
        }
    }

    fn finish(mut self) -> Value {
        let required: Vec<String> = self.required.unwrap_or_default().into_iter().collect();
        if let Some(props) = self
            .schema
            .get_mut("properties")
            .and_then(Value::as_object_mut)
        {
            for (name, prop) in props.iter_mut() {
                let Some(prop) = prop.as_object_mut() else {
                    continue;
                };
                if self.seen_null.contains(name) && !prop.contains_key("$ref") {
                    prop.insert("nullable".into(), json!(true));
                }
            }
        }
        if !required.is_empty() {
            self.schema.insert("required".into(), json!(required));
        }
        Value::Object(self.schema)
    }
}

/// Replaces every recognised inline schema under `paths` with a `$ref` and adds the merged
/// components. Returns how many places each component replaced.
pub fn hoist_shared_schemas(doc: &mut Value) -> BTreeMap<String, usize> {
    let mut merged: BTreeMap<&'static str, Merged> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut status: Option<Value> = None;
    if let Some(paths) = doc.get_mut("paths") {
        // Children before parents: a job's `result` and `status` are references by the time the
        // job itself is matched, so every job merges the same property schemas.
        walk_objects_mut(paths, &mut |schema| {
            if is_job_status(schema) {
                let mut canonical = schema.clone();
                canonical.remove("description");
                status.get_or_insert(Value::Object(canonical));
                *schema = reference("JobStatus");
                *counts.entry("JobStatus".into()).or_default() += 1;
                return;
            }
            for shape in SHAPES {
                if matches(shape, schema) {
                    merged.entry(shape.name).or_default().absorb(schema);
                    *schema = reference(shape.name);
                    *counts.entry(shape.name.into()).or_default() += 1;
                    return;
                }
            }
        });
    }
    let mut components: Map<String, Value> = Map::new();
    if let Some(status) = status {
        components.insert("JobStatus".into(), status);
    }
    for (name, m) in merged {
        components.insert(name.into(), m.finish());
    }
    let schemas = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .map(|c| c.entry("schemas").or_insert_with(|| json!({})));
    if let Some(Value::Object(schemas)) = schemas {
        schemas.extend(components);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Value {
        json!({"type": "string", "enum": JOB_STATES})
    }

    fn fixture() -> Value {
        let error = json!({"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]});
        let pending = json!({"type": "object", "properties": {
            "job_id": {"type": "string", "format": "uuid"}, "status": status(),
            "created_at": {"type": "string", "format": "date-time"},
            "completed_at": {"type": "null"}, "result": {"type": "null"}},
            "required": ["job_id", "status", "created_at", "completed_at", "result"]});
        let full = json!({"type": "object", "properties": {
            "job_id": {"type": "string", "format": "uuid"}, "status": status(),
            "created_at": {"type": "string", "format": "date-time"},
            "completed_at": {"type": "string", "format": "date-time"},
            "result": {"type": "object", "properties": {"urls": {"type": "array", "items": {"type": "string"}},
                                                       "style_id": {"type": "string"}}}},
            "required": ["job_id", "status", "created_at"]});
        let body = |schema: &Value| json!({"content": {"application/json": {"schema": schema}}});
        json!({"paths": {
            "/generate/x": {"post": {"responses": {"200": body(&pending), "402": body(&error)}}},
            "/jobs/{id}": {"get": {"responses": {"200": body(&full), "404": body(&error)}}}
        }})
    }

    #[test]
    fn error_bodies_become_one_shared_error() {
        let mut doc = fixture();
        let counts = hoist_shared_schemas(&mut doc);
        assert_eq!(counts["Error"], 2);
        let r = &doc["paths"]["/generate/x"]["post"]["responses"]["402"]["content"]["application/json"]
            ["schema"];
        assert_eq!(r["$ref"], "#/components/schemas/Error");
        assert_eq!(
            doc["components"]["schemas"]["Error"]["required"],
            json!(["error"])
        );
    }

    #[test]
    fn the_job_is_the_superset_of_pending_and_finished() {
        let mut doc = fixture();
        let counts = hoist_shared_schemas(&mut doc);
        assert_eq!(counts["Job"], 2);
        assert_eq!(counts["JobStatus"], 2);
        assert_eq!(counts["JobResult"], 1);
        let job = &doc["components"]["schemas"]["Job"];
        assert_eq!(job["required"], json!(["created_at", "job_id", "status"]));
        assert_eq!(
            job["properties"]["completed_at"],
            json!({"type": "string", "format": "date-time", "nullable": true})
        );
        assert_eq!(
            job["properties"]["result"],
            json!({"$ref": "#/components/schemas/JobResult"})
        );
        assert_eq!(
            job["properties"]["status"],
            json!({"$ref": "#/components/schemas/JobStatus"})
        );
        assert_eq!(
            doc["components"]["schemas"]["JobStatus"]["enum"][8],
            "cancelled"
        );
    }

    #[test]
    fn unrelated_objects_are_left_inline() {
        let mut doc = json!({"paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}, "code": {"type": "integer"}}}}}}}}}}});
        assert!(hoist_shared_schemas(&mut doc).is_empty());
    }
}
