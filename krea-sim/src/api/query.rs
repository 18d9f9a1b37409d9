//! Query parameters checked against the document the simulator serves: a client that sends
//! `liked=null` for a boolean or `limit=0` for a 1..=1000 integer is told so, as a strict API
//! would, instead of getting a 200 that hides the mistake.

use std::collections::HashMap;

use serde_json::Value;

/// What one query parameter accepts.
#[derive(Debug, Clone, PartialEq)]
enum Accepts {
    Integer { min: Option<i64>, max: Option<i64> },
    Boolean,
    OneOf(Vec<String>),
    DateTime,
    Text,
}

/// The query parameters of every operation, keyed `"GET /jobs"` like the counters.
#[derive(Debug, Default)]
pub struct QueryRules(HashMap<String, Vec<(String, Accepts)>>);

impl QueryRules {
    /// Reads the rules from an OpenAPI document (`$ref`s to component schemas resolved).
    pub fn from_document(doc: &Value) -> QueryRules {
        let mut rules = HashMap::new();
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return QueryRules(rules);
        };
        for (path, ops) in paths {
            let Some(ops) = ops.as_object() else { continue };
            for (method, op) in ops {
                let params: Vec<(String, Accepts)> = op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                    .filter_map(|p| {
                        let name = p.get("name")?.as_str()?.to_string();
                        let schema = resolve(doc, p.get("schema")?);
                        Some((name, accepts(schema)))
                    })
                    .collect();
                if !params.is_empty() {
                    rules.insert(format!("{} {path}", method.to_uppercase()), params);
                }
            }
        }
        QueryRules(rules)
    }

    /// The first problem with the query of a request to `route`, in words a caller can act on.
    pub fn check(&self, route: &str, query: &[(String, String)]) -> Option<String> {
        let params = self.0.get(route)?;
        for (name, value) in query {
            let Some((_, accepts)) = params.iter().find(|(n, _)| n == name) else {
                continue;
            };
            if let Some(problem) = problem(accepts, value) {
                return Some(format!("Invalid {name} {value:?}: {problem}"));
            }
        }
        None
    }
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or(schema),
        None => schema,
    }
}

fn accepts(schema: &Value) -> Accepts {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Accepts::OneOf(
            values
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    match (
        schema.get("type").and_then(Value::as_str),
        schema.get("format").and_then(Value::as_str),
    ) {
        (Some("integer"), _) => Accepts::Integer {
            min: schema.get("minimum").and_then(Value::as_i64),
            max: schema.get("maximum").and_then(Value::as_i64),
        },
        (Some("boolean"), _) => Accepts::Boolean,
        (Some("string"), Some("date-time")) => Accepts::DateTime,
        _ => Accepts::Text,
    }
}

fn problem(accepts: &Accepts, value: &str) -> Option<String> {
    match accepts {
        Accepts::Integer { min, max } => {
            let fits = value
                .parse::<i64>()
                .is_ok_and(|n| min.is_none_or(|lo| n >= lo) && max.is_none_or(|hi| n <= hi));
            (!fits).then(|| whole(*min, *max))
        }
        Accepts::Boolean => {
            (!matches!(value, "true" | "false")).then(|| "use true or false".to_string())
        }
        Accepts::OneOf(values) => (!values.iter().any(|v| v == value))
            .then(|| format!("use one of {}", values.join(", "))),
        Accepts::DateTime => chrono::DateTime::parse_from_rfc3339(value)
            .is_err()
            .then(|| {
                "use an ISO 8601 date-time such as the next_cursor of a previous page".to_string()
            }),
        Accepts::Text => None,
    }
}

fn whole(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("use a whole number from {lo} to {hi}"),
        (Some(lo), None) => format!("use a whole number of at least {lo}"),
        (None, Some(hi)) => format!("use a whole number of at most {hi}"),
        (None, None) => "use a whole number".to_string(),
    }
}
