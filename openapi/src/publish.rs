//! The vendored description in the form api.krea.ai publishes its document, for readers that
//! are not progenitor: the simulator's `GET /openapi.json`, and through it Krea's own scripts and
//! other tools.
//!
//! Built from the vendored facts alone (no upstream sentence is needed or kept):
//! - the hand-written operations and null-only fields back in place ([`crate::vendor::complete`]);
//! - each submit answer (`x-krea-required-nulls` on a response) spelled out as the pending job
//!   it is: `completed_at` and `result` present and null, where the shared `Job` makes them
//!   optional;
//! - each generation operation's `summary` (its model's name) and a `description` holding its
//!   compute-unit table, with an `Average Completion Time` column where Krea gives times: the
//!   table readers parse prices and times from.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::normalize::METHODS;
use crate::vendor::complete;

/// OpenAPI 3.0's spelling of "null and nothing else".
fn null_only() -> Value {
    json!({"type": "object", "nullable": true, "enum": [null]})
}

/// The whole API, as the simulator serves it (see the module documentation).
pub fn served(vendored: &Value) -> Value {
    let mut doc = complete(vendored);
    let components = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for (method, op) in item.iter_mut() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                responses
                    .values_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(|r| spell_out_required_nulls(r, &components));
            }
            if let Some(op) = op.as_object_mut() {
                write_pricing_table(op);
            }
        }
    }
    doc
}

/// Replaces a response's `$ref` schema with the referenced object whose `x-krea-required-nulls`
/// fields are required and null-only.
fn spell_out_required_nulls(response: &mut Map<String, Value>, components: &Value) {
    let Some(names) = response.remove("x-krea-required-nulls") else {
        return;
    };
    let names: Vec<&str> = names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let Some(schema) = response.get_mut("content").and_then(|c| {
        c.get_mut("application/json")
            .and_then(|j| j.get_mut("schema"))
    }) else {
        return;
    };
    let mut inline = match schema["$ref"].as_str() {
        Some(r) => components
            .get(r.trim_start_matches("#/components/schemas/"))
            .cloned()
            .unwrap_or_default(),
        None => schema.clone(),
    };
    let mut required: BTreeSet<String> = inline["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    for name in names {
        inline["properties"][name] = null_only();
        required.insert(name.to_string());
    }
    inline["required"] = json!(required);
    *schema = inline;
}

/// Writes `summary` from `x-krea-title` and a `description` table from `x-krea-pricing`.
fn write_pricing_table(op: &mut Map<String, Value>) {
    if let Some(title) = op.get("x-krea-title").cloned() {
        op.insert("summary".into(), title);
    }
    let Some(rows) = op.get("x-krea-pricing").and_then(Value::as_array) else {
        return;
    };
    if let Some(table) = pricing_table(rows) {
        op.insert("description".into(), Value::String(table));
    }
}

/// `3.0` -> `3`, `60.1` -> `60.1`.
fn figure(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}

/// A Markdown table: one column per condition (in the order they first appear), then
/// `Compute Units`, then `Average Completion Time` when any row has a time. `-` where a row
/// has no value.
fn pricing_table(rows: &[Value]) -> Option<String> {
    let mut columns: Vec<String> = Vec::new();
    for row in rows {
        for key in row["conditions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    let timed = rows.iter().any(|r| r["seconds"].is_number());
    let mut header = columns.clone();
    header.push("Compute Units".into());
    if timed {
        header.push("Average Completion Time".into());
    }
    let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
    let mut out = vec![
        line(&header),
        line(
            &header
                .iter()
                .map(|h| "-".repeat(h.len()))
                .collect::<Vec<_>>(),
        ),
    ];
    for row in rows {
        let mut cells: Vec<String> = columns
            .iter()
            .map(|c| row["conditions"][c].as_str().unwrap_or("-").to_string())
            .collect();
        cells.push(format!("~{}", figure(row["compute_units"].as_f64()?)));
        if timed {
            cells.push(match row["seconds"].as_f64() {
                Some(s) => format!("~{} seconds", figure(s)),
                None => "-".into(),
            });
        }
        out.push(line(&cells));
    }
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::cost_table;

    #[test]
    fn a_pricing_table_reads_back_as_the_rows_it_was_written_from() {
        let rows = json!([
            {"conditions": {"Resolution": "720p", "Audio": "No"}, "compute_units": 573.0},
            {"conditions": {"Resolution": "1080p"}, "compute_units": 60.5, "seconds": 97.0},
        ]);
        let table = pricing_table(rows.as_array().expect("rows")).expect("a table");
        assert!(
            table.starts_with(
                "| Resolution | Audio | Compute Units | Average Completion Time |\n| ---------- |"
            ),
            "{table}"
        );
        let read = cost_table(&table);
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].compute_units, 573.0);
        assert_eq!(read[0].seconds, None);
        assert!(read[0].conditions.contains(&("Audio".into(), "No".into())));
        assert_eq!(read[1].compute_units, 60.5);
        assert_eq!(read[1].seconds, Some(97.0));
        assert!(
            read[1].conditions.iter().all(|(name, _)| name != "Audio"),
            "`-` is no condition"
        );
    }

    #[test]
    fn a_submit_answer_is_spelled_out_as_the_pending_job() {
        let vendored = json!({
            "components": {"schemas": {"Job": {"type": "object", "required": ["job_id"],
                "properties": {"job_id": {"type": "string"}, "completed_at": {"type": "string", "nullable": true}}}}},
            "paths": {"/generate/x": {"post": {
                "x-krea-title": "X", "x-krea-pricing": [{"conditions": {}, "compute_units": 3.0, "seconds": 7.0}],
                "responses": {"200": {"x-krea-required-nulls": ["completed_at", "result"],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}}}}}
        });
        let doc = served(&vendored);
        let op = &doc["paths"]["/generate/x"]["post"];
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["required"],
            json!(["completed_at", "job_id", "result"])
        );
        assert_eq!(schema["properties"]["result"], null_only());
        assert!(op["responses"]["200"]["x-krea-required-nulls"].is_null());
        assert_eq!(op["summary"], "X");
        assert_eq!(
            op["description"],
            "| Compute Units | Average Completion Time |\n| ------------- | ----------------------- |\n| ~3 | ~7 seconds |\n"
        );
    }
}
