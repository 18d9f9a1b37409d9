//! OpenAPI 3.1 as Krea publishes it -> the 3.0 dialect progenitor 0.15 reads.
//!
//! Each step is a function over `serde_json::Value` that returns how many places it changed, so
//! `cargo xtask spec check` can print the counts and a new upstream document that needs a new step
//! shows up as an invariant failure rather than as silently wrong generated code.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value, json};

use crate::hoist;
use crate::opid;

/// HTTP methods an OpenAPI path item can hold.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// What normalization did, step by step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Operation ids synthesized.
    pub operation_ids: usize,
    /// `type: [T, "null"]` rewritten as `type: T, nullable: true`.
    pub nullable: usize,
    /// Standalone `const` rewritten as a one-value `enum`.
    pub consts: usize,
    /// `anyOf` of consts rewritten as one enum.
    pub any_of_enums: usize,
    /// Optional properties of `type: "null"` dropped.
    pub optional_nulls: usize,
    /// Inline schemas replaced by a `$ref` to a shared component, by component name.
    pub hoisted: BTreeMap<String, usize>,
    /// `default`s in request bodies moved to `x-krea-default`.
    pub defaults_moved: usize,
    /// Operations left out of generation (implemented by hand).
    pub hand_written: Vec<OperationRef>,
}

/// One operation of the document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OperationRef {
    /// Upper-case HTTP method.
    pub method: String,
    /// Path template.
    pub path: String,
    /// Synthesized operation id.
    pub operation_id: String,
}

impl fmt::Display for OperationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.operation_id)
    }
}

/// The normalized document and what was done to it.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// An OpenAPI 3.0.3 document progenitor accepts.
    pub document: Value,
    /// Counts per step.
    pub report: Report,
    /// The operations taken out (in `report.hand_written` order), normalized like the rest.
    pub hand_written: Vec<Value>,
}

/// A document that normalization cannot make acceptable; the message names the place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeError(pub String);

impl fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot normalize the Krea OpenAPI document: {}", self.0)
    }
}

impl std::error::Error for NormalizeError {}

/// Runs every step, then checks the invariants progenitor relies on.
pub fn normalize(upstream: &Value) -> Result<Normalized, NormalizeError> {
    let mut doc = upstream.clone();
    let mut report = Report {
        operation_ids: synthesize_operation_ids(&mut doc)?,
        ..Report::default()
    };
    downgrade_version(&mut doc);
    report.optional_nulls = drop_optional_nulls(&mut doc);
    report.nullable = nullable_type_arrays(&mut doc)?;
    report.any_of_enums = any_of_consts_to_enum(&mut doc);
    report.consts = const_to_enum(&mut doc);
    report.hoisted = hoist::hoist_shared_schemas(&mut doc);
    report.defaults_moved = move_request_defaults(&mut doc);
    let removed = remove_multipart_operations(&mut doc);
    report.hand_written = removed.iter().map(|(r, _)| r.clone()).collect();
    check_invariants(&doc)?;
    Ok(Normalized {
        document: doc,
        report,
        hand_written: removed.into_iter().map(|(_, op)| op).collect(),
    })
}

/// The schema-level steps alone (no ids, no hoisting, defaults kept): what the catalog reads.
pub fn simplify_schemas(doc: &mut Value) -> Result<(), NormalizeError> {
    drop_optional_nulls(doc);
    nullable_type_arrays(doc)?;
    any_of_consts_to_enum(doc);
    const_to_enum(doc);
    Ok(())
}

/// Every (method, path, operation) of the document, in document order.
pub fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    out.push((method.to_string(), path.clone(), op));
                }
            }
        }
    }
    out
}

/// `openapi: 3.1.0` -> `3.0.3`.
pub fn downgrade_version(doc: &mut Value) {
    doc["openapi"] = json!("3.0.3");
}

/// Gives every operation an id from its method and path (see [`opid::synthesize`]); an id the
/// document already has is kept. Fails if two ids collide, also after PascalCase conversion.
pub fn synthesize_operation_ids(doc: &mut Value) -> Result<usize, NormalizeError> {
    let mut count = 0;
    let mut ids = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                    let id = match op.get("operationId").and_then(Value::as_str) {
                        Some(id) => id.to_string(),
                        None => {
                            count += 1;
                            let id = opid::synthesize(method, path);
                            op.insert("operationId".into(), json!(id));
                            id
                        }
                    };
                    ids.push(id);
                }
            }
        }
    }
    let unique: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    if unique.len() != ids.len() {
        return Err(NormalizeError(
            "two operations have the same operationId".into(),
        ));
    }
    let clashes = opid::collisions(ids.iter().map(String::as_str));
    if let Some((name, ids)) = clashes.first() {
        return Err(NormalizeError(format!(
            "operation ids {ids:?} all become the type-name prefix `{name}`; extend opid::synthesize"
        )));
    }
    Ok(count)
}

/// Visits every JSON object in `v`, children before parents.
pub(crate) fn walk_objects_mut(v: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                walk_objects_mut(child, f);
            }
            f(map);
        }
        Value::Array(items) => {
            for child in items {
                walk_objects_mut(child, f);
            }
        }
        _ => {}
    }
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

/// Optional properties whose only type is `null` carry no information: drop them.
/// (Required ones, the pending job's `completed_at`/`result`, are handled by hoisting.)
pub fn drop_optional_nulls(doc: &mut Value) -> usize {
    let mut count = 0;
    walk_objects_mut(doc, &mut |schema| {
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
        let mut dropped = Vec::new();
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.retain(|name, prop| {
                let keep = required.contains(name) || !is_null_schema(prop);
                if !keep {
                    dropped.push(Value::String(name.clone()));
                }
                keep
            });
        }
        if !dropped.is_empty() {
            // The constraint stays: such a field may only be absent or null.
            count += dropped.len();
            schema.insert("x-krea-null-only".into(), Value::Array(dropped));
        }
    });
    count
}

/// `type: [T, "null"]` -> `type: T, nullable: true`.
pub fn nullable_type_arrays(doc: &mut Value) -> Result<usize, NormalizeError> {
    let mut count = 0;
    let mut error = None;
    walk_objects_mut(doc, &mut |schema| {
        let Some(types) = schema.get("type").and_then(Value::as_array) else {
            return;
        };
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        let has_null = non_null.len() < types.len();
        match non_null.as_slice() {
            [single] => {
                schema.insert("type".into(), single.clone());
                if has_null {
                    schema.insert("nullable".into(), json!(true));
                }
                count += 1;
            }
            _ => error = Some(format!("a schema has several non-null types {types:?}")),
        }
    });
    match error {
        Some(e) => Err(NormalizeError(e)),
        None => Ok(count),
    }
}

/// Collects the constants of an `anyOf` tree made only of `const`s (nested `anyOf`s allowed).
fn collect_consts(schema: &Value, out: &mut Vec<Value>) -> bool {
    if let Some(c) = schema.get("const") {
        out.push(c.clone());
        return true;
    }
    match schema.get("anyOf").and_then(Value::as_array) {
        Some(alts) => alts.iter().all(|alt| collect_consts(alt, out)),
        None => false,
    }
}

/// The enum an `anyOf` tree of constants stands for, or `None` if it holds anything else.
fn consts_enum(schema: &Map<String, Value>) -> Option<(&'static str, Vec<Value>)> {
    let mut values = Vec::new();
    let alts = schema.get("anyOf")?.as_array()?;
    if alts.is_empty() || !alts.iter().all(|alt| collect_consts(alt, &mut values)) {
        return None;
    }
    let whole = |v: &Value| v.as_f64().is_some_and(|f| f.fract() == 0.0);
    if values.iter().all(whole) {
        // 5.0 -> 5, so an integer enum holds integers.
        let ints = values
            .iter()
            .filter_map(Value::as_f64)
            .map(|f| json!(f as i64))
            .collect();
        Some(("integer", ints))
    } else if values.iter().all(Value::is_number) {
        Some(("number", values))
    } else if values.iter().all(Value::is_string) {
        Some(("string", values))
    } else {
        None
    }
}

/// An `anyOf` of constants (video `duration`: 5 or 10, nested for 5/10/15/20) -> one enum of
/// the constants' type, an integer enum when every constant is a whole number.
pub fn any_of_consts_to_enum(doc: &mut Value) -> usize {
    match doc {
        Value::Object(schema) => {
            if let Some((ty, values)) = consts_enum(schema) {
                schema.remove("anyOf");
                schema.insert("type".into(), json!(ty));
                schema.insert("enum".into(), Value::Array(values));
                return 1;
            }
            schema.values_mut().map(any_of_consts_to_enum).sum()
        }
        Value::Array(items) => items.iter_mut().map(any_of_consts_to_enum).sum(),
        _ => 0,
    }
}

/// `const: x` -> `enum: [x]` (3.0 has no `const`).
pub fn const_to_enum(doc: &mut Value) -> usize {
    let mut count = 0;
    walk_objects_mut(doc, &mut |schema| {
        if let Some(c) = schema.remove("const") {
            schema.insert("enum".into(), json!([c]));
            count += 1;
        }
    });
    count
}

/// Moves every `default` inside request bodies to `x-krea-default`, so generated bodies send
/// only what the caller set (otherwise every Flux request would carry the document's fixed
/// `seed`) while the catalog still knows what Krea uses when a field is absent.
pub fn move_request_defaults(doc: &mut Value) -> usize {
    let mut count = 0;
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                if let Some(body) = item
                    .get_mut(method)
                    .and_then(|op| op.get_mut("requestBody"))
                {
                    walk_objects_mut(body, &mut |schema| {
                        if let Some(default) = schema.remove("default") {
                            schema.insert("x-krea-default".into(), default);
                            count += 1;
                        }
                    });
                }
            }
        }
    }
    count
}

/// Takes out operations whose request body is multipart only (progenitor rejects them);
/// the `krea` crate implements them by hand. Returns what was taken out.
pub fn remove_multipart_operations(doc: &mut Value) -> Vec<(OperationRef, Value)> {
    let mut removed = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for method in METHODS {
                let multipart_only = item
                    .get(method)
                    .and_then(|op| op.pointer("/requestBody/content"))
                    .and_then(Value::as_object)
                    .is_some_and(|content| {
                        content.contains_key("multipart/form-data")
                            && !content.contains_key("application/json")
                    });
                if let Some(op) = multipart_only.then(|| item.remove(method)).flatten() {
                    let r = OperationRef {
                        method: method.to_ascii_uppercase(),
                        path: path.clone(),
                        operation_id: op["operationId"].as_str().unwrap_or_default().to_string(),
                    };
                    removed.push((r, op));
                }
            }
        }
        paths.retain(|_, item| METHODS.iter().any(|m| item.get(*m).is_some()));
    }
    removed
}

/// What progenitor needs and the steps above promise: unique operation ids, no 3.1-only
/// constructs left, every `$ref` resolving.
pub fn check_invariants(doc: &Value) -> Result<(), NormalizeError> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(doc) {
        match op.get("operationId").and_then(Value::as_str) {
            Some(id) if ids.insert(id.to_string()) => {}
            Some(id) => problems.push(format!("operationId `{id}` is used twice")),
            None => problems.push(format!(
                "{} {path} has no operationId",
                method.to_uppercase()
            )),
        }
    }
    let mut doc = doc.clone();
    let components: BTreeSet<String> = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    walk_objects_mut(&mut doc, &mut |schema| {
        if schema
            .get("type")
            .is_some_and(|t| t.is_array() || t == "null")
        {
            problems.push(format!(
                "a 3.1 `type` is left: {}",
                Value::Object(schema.clone())
            ));
        }
        if schema.contains_key("const") {
            problems.push("a `const` is left".into());
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            if r.starts_with("#/components/schemas/") && !components.contains(name) {
                problems.push(format!("`$ref` {r} does not resolve"));
            }
        }
    });
    problems.dedup();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(NormalizeError(problems.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downgrades_the_version() {
        let mut doc = json!({"openapi": "3.1.0"});
        downgrade_version(&mut doc);
        assert_eq!(doc["openapi"], "3.0.3");
    }

    #[test]
    fn synthesizes_ids_and_keeps_existing_ones() {
        let mut doc = json!({"paths": {
            "/jobs/{id}": {"get": {}, "delete": {"operationId": "remove_job"}},
            "/generate/image/bfl/flux-1-dev": {"post": {}}
        }});
        assert_eq!(synthesize_operation_ids(&mut doc), Ok(2));
        assert_eq!(doc["paths"]["/jobs/{id}"]["get"]["operationId"], "get_job");
        assert_eq!(
            doc["paths"]["/jobs/{id}"]["delete"]["operationId"],
            "remove_job"
        );
        assert_eq!(
            doc["paths"]["/generate/image/bfl/flux-1-dev"]["post"]["operationId"],
            "generate_image_bfl_flux_1_dev"
        );
    }

    #[test]
    fn refuses_ids_that_collide_after_pascal_case() {
        let mut doc = json!({"paths": {
            "/generate/video/kling/kling-2.1": {"post": {}},
            "/generate/video/kling/kling-21": {"post": {}}
        }});
        let err = synthesize_operation_ids(&mut doc).unwrap_err();
        assert!(err.0.contains("GenerateVideoKlingKling21"), "{err}");
    }

    #[test]
    fn type_arrays_become_nullable() {
        let mut doc = json!({"properties": {
            "image_url": {"type": ["string", "null"], "format": "uri"},
            "n": {"type": ["number"]}
        }});
        assert_eq!(nullable_type_arrays(&mut doc), Ok(2));
        assert_eq!(
            doc["properties"]["image_url"],
            json!({"type": "string", "nullable": true, "format": "uri"})
        );
        assert_eq!(doc["properties"]["n"], json!({"type": "number"}));
    }

    #[test]
    fn several_non_null_types_are_an_error() {
        let mut doc = json!({"type": ["string", "number"]});
        assert!(nullable_type_arrays(&mut doc).is_err());
    }

    #[test]
    fn const_becomes_a_single_value_enum() {
        let mut doc = json!({"properties": {"type": {"type": "string", "const": "object"}}});
        assert_eq!(const_to_enum(&mut doc), 1);
        assert_eq!(
            doc["properties"]["type"],
            json!({"type": "string", "enum": ["object"]})
        );
    }

    #[test]
    fn nested_any_of_consts_become_one_integer_enum() {
        let mut doc = json!({"duration": {"anyOf": [
            {"anyOf": [{"anyOf": [{"type": "number", "const": 5}, {"type": "number", "const": 10}]},
                       {"type": "number", "const": 15}]},
            {"type": "number", "const": 20}
        ], "default": 5}});
        assert_eq!(any_of_consts_to_enum(&mut doc), 1);
        assert_eq!(
            doc["duration"],
            json!({"type": "integer", "enum": [5, 10, 15, 20], "default": 5})
        );
    }

    #[test]
    fn any_of_with_a_real_schema_is_left_alone() {
        let mut doc = json!({"x": {"anyOf": [{"const": 1}, {"type": "string"}]}});
        assert_eq!(any_of_consts_to_enum(&mut doc), 0);
        assert!(doc["x"].get("anyOf").is_some());
    }

    #[test]
    fn optional_null_properties_are_dropped_required_ones_kept() {
        let mut doc = json!({
            "type": "object",
            "properties": {"config": {"type": "null"}, "result": {"type": "null"}, "a": {"type": "string"}},
            "required": ["result"]
        });
        assert_eq!(drop_optional_nulls(&mut doc), 1);
        let props = doc["properties"].as_object().expect("properties");
        assert!(!props.contains_key("config"));
        assert!(props.contains_key("result") && props.contains_key("a"));
    }

    #[test]
    fn request_defaults_move_to_an_extension_other_defaults_stay() {
        let mut doc = json!({"paths": {"/x": {"post": {
            "parameters": [{"in": "query", "name": "limit", "schema": {"type": "integer", "default": 100}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object",
                "properties": {"seed": {"type": "number", "default": 3317551338_u64},
                               "styles": {"type": "array", "items": {"type": "object",
                                   "properties": {"strength": {"type": "number", "default": 1}}}}}}}}}
        }}}});
        assert_eq!(move_request_defaults(&mut doc), 2);
        let body =
            &doc["paths"]["/x"]["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert!(body["properties"]["seed"].get("default").is_none());
        assert_eq!(body["properties"]["seed"]["x-krea-default"], 3317551338_u64);
        assert_eq!(
            doc["paths"]["/x"]["post"]["parameters"][0]["schema"]["default"],
            100
        );
    }

    #[test]
    fn multipart_operations_are_taken_out_and_reported() {
        let mut doc = json!({"paths": {
            "/assets": {
                "post": {"operationId": "create_asset",
                         "requestBody": {"content": {"multipart/form-data": {"schema": {}}}}},
                "get": {"operationId": "list_assets"}
            },
            "/upload": {"post": {"operationId": "upload",
                         "requestBody": {"content": {"multipart/form-data": {"schema": {}}}}}}
        }});
        let removed = remove_multipart_operations(&mut doc);
        assert_eq!(removed.len(), 2);
        assert_eq!(removed[0].0.to_string(), "POST /assets (create_asset)");
        assert_eq!(removed[0].1["operationId"], "create_asset");
        assert!(doc["paths"]["/assets"].get("get").is_some());
        assert!(
            doc["paths"].get("/upload").is_none(),
            "an empty path item is removed"
        );
    }

    #[test]
    fn invariants_catch_leftovers_and_dangling_refs() {
        let doc = json!({"paths": {"/a": {"get": {"operationId": "a", "responses": {"200": {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}}}}},
            "/b": {"get": {"operationId": "a"}}}});
        let err = check_invariants(&doc).unwrap_err().0;
        assert!(
            err.contains("used twice") && err.contains("does not resolve"),
            "{err}"
        );
    }
}
