//! What changed in the API between two documents (upstream or vendored): the changelog `cargo xtask spec
//! refresh` prints and `cargo xtask spec diff` reports.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{self, ModelSpec, ParamSpec};
use crate::normalize::{NormalizeError, operations};

/// One change to one model's request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A parameter appeared.
    ParamAdded {
        param: String,
        ty: String,
        required: bool,
    },
    /// A parameter disappeared.
    ParamRemoved { param: String },
    /// A parameter's type changed.
    ParamRetyped {
        param: String,
        from: String,
        to: String,
    },
    /// A parameter became required.
    NowRequired { param: String },
    /// A parameter became optional.
    NowOptional { param: String },
    /// Allowed values appeared.
    EnumValuesAdded { param: String, values: Vec<Value> },
    /// Allowed values disappeared.
    EnumValuesRemoved { param: String, values: Vec<Value> },
    /// A bound (minimum, maximum, minLength, maxLength, minItems, maxItems) changed.
    BoundChanged {
        param: String,
        bound: String,
        from: Option<f64>,
        to: Option<f64>,
    },
    /// A deprecated field alias appeared.
    AliasAdded {
        from: String,
        to: String,
        sunset_date: Option<String>,
    },
    /// A deprecated field alias disappeared (Krea no longer accepts it).
    AliasRemoved { from: String },
    /// The operation was marked deprecated.
    ModelDeprecated,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[Value]| {
            v.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let bound = |b: &Option<f64>| b.map_or("none".to_string(), |b| b.to_string());
        match self {
            Change::ParamAdded {
                param,
                ty,
                required,
            } => {
                let req = if *required { "required" } else { "optional" };
                write!(f, "parameter added: {param} ({ty}, {req})")
            }
            Change::ParamRemoved { param } => write!(f, "parameter removed: {param}"),
            Change::ParamRetyped { param, from, to } => {
                write!(f, "parameter retyped: {param} {from} -> {to}")
            }
            Change::NowRequired { param } => write!(f, "parameter now required: {param}"),
            Change::NowOptional { param } => write!(f, "parameter now optional: {param}"),
            Change::EnumValuesAdded { param, values } => {
                write!(f, "enum values added to {param}: {}", list(values))
            }
            Change::EnumValuesRemoved { param, values } => {
                write!(f, "enum values removed from {param}: {}", list(values))
            }
            Change::BoundChanged {
                param,
                bound: name,
                from,
                to,
            } => {
                write!(f, "{name} of {param}: {} -> {}", bound(from), bound(to))
            }
            Change::AliasAdded {
                from,
                to,
                sunset_date,
            } => {
                write!(f, "deprecated alias added: {from} -> {to}")?;
                match sunset_date {
                    Some(d) => write!(f, " (until {d})"),
                    None => Ok(()),
                }
            }
            Change::AliasRemoved { from } => write!(f, "deprecated alias removed: {from}"),
            Change::ModelDeprecated => write!(f, "model marked deprecated"),
        }
    }
}

/// The difference between two documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpecDiff {
    /// `METHOD /path` of operations only in the new document.
    pub operations_added: Vec<String>,
    /// `METHOD /path` of operations only in the old document.
    pub operations_removed: Vec<String>,
    /// Model ids only in the new document.
    pub models_added: Vec<String>,
    /// Model ids only in the old document.
    pub models_removed: Vec<String>,
    /// Changes to models in both, by model id.
    pub models_changed: BTreeMap<String, Vec<Change>>,
}

impl SpecDiff {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.operations_added.is_empty()
            && self.operations_removed.is_empty()
            && self.models_added.is_empty()
            && self.models_removed.is_empty()
            && self.models_changed.is_empty()
    }
}

impl fmt::Display for SpecDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "no API changes");
        }
        for op in &self.operations_added {
            writeln!(f, "+ operation {op}")?;
        }
        for op in &self.operations_removed {
            writeln!(f, "- operation {op}")?;
        }
        for m in &self.models_added {
            writeln!(f, "+ model {m}")?;
        }
        for m in &self.models_removed {
            writeln!(f, "- model {m}")?;
        }
        for (model, changes) in &self.models_changed {
            writeln!(f, "~ model {model}")?;
            for c in changes {
                writeln!(f, "    {c}")?;
            }
        }
        Ok(())
    }
}

/// `METHOD /path` of every operation, the hand-written ones of a vendored description included.
fn operation_keys(doc: &Value) -> BTreeSet<String> {
    let hand_written = crate::vendor::hand_written(doc)
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"));
    operations(doc)
        .into_iter()
        .map(|(m, p, _)| format!("{} {p}", m.to_uppercase()))
        .chain(hand_written)
        .collect()
}

/// Parameters flattened to dotted names: `styles[].strength`, `camera_control.config`.
fn flatten<'a>(prefix: &str, params: &'a [ParamSpec], out: &mut BTreeMap<String, &'a ParamSpec>) {
    for p in params {
        let name = if prefix.is_empty() {
            p.name.clone()
        } else {
            format!("{prefix}.{}", p.name)
        };
        flatten(&name, &p.properties, out);
        if let Some(items) = &p.items {
            flatten(&format!("{name}[]"), &items.properties, out);
        }
        out.insert(name, p);
    }
}

fn model_changes(old: &ModelSpec, new: &ModelSpec) -> Vec<Change> {
    let mut changes = Vec::new();
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", &old.parameters, &mut a);
    flatten("", &new.parameters, &mut b);
    for (name, p) in &b {
        if !a.contains_key(name) {
            changes.push(Change::ParamAdded {
                param: name.clone(),
                ty: p.ty.as_str().into(),
                required: p.required,
            });
        }
    }
    for name in a.keys().filter(|n| !b.contains_key(*n)) {
        changes.push(Change::ParamRemoved {
            param: name.clone(),
        });
    }
    for (name, old_p) in &a {
        let Some(new_p) = b.get(name) else { continue };
        let param = name.clone();
        if old_p.ty != new_p.ty {
            changes.push(Change::ParamRetyped {
                param: param.clone(),
                from: old_p.ty.as_str().into(),
                to: new_p.ty.as_str().into(),
            });
        }
        match (old_p.required, new_p.required) {
            (false, true) => changes.push(Change::NowRequired {
                param: param.clone(),
            }),
            (true, false) => changes.push(Change::NowOptional {
                param: param.clone(),
            }),
            _ => {}
        }
        let added: Vec<Value> = new_p
            .enum_values
            .iter()
            .filter(|v| !old_p.enum_values.contains(v))
            .cloned()
            .collect();
        let removed: Vec<Value> = old_p
            .enum_values
            .iter()
            .filter(|v| !new_p.enum_values.contains(v))
            .cloned()
            .collect();
        if !added.is_empty() {
            changes.push(Change::EnumValuesAdded {
                param: param.clone(),
                values: added,
            });
        }
        if !removed.is_empty() {
            changes.push(Change::EnumValuesRemoved {
                param: param.clone(),
                values: removed,
            });
        }
        let count = |v: Option<u64>| v.map(|n| n as f64);
        let bounds = [
            ("minimum", old_p.minimum, new_p.minimum),
            ("maximum", old_p.maximum, new_p.maximum),
            (
                "minLength",
                count(old_p.min_length),
                count(new_p.min_length),
            ),
            (
                "maxLength",
                count(old_p.max_length),
                count(new_p.max_length),
            ),
            ("minItems", count(old_p.min_items), count(new_p.min_items)),
            ("maxItems", count(old_p.max_items), count(new_p.max_items)),
        ];
        for (bound, from, to) in bounds {
            if from != to {
                changes.push(Change::BoundChanged {
                    param: param.clone(),
                    bound: bound.into(),
                    from,
                    to,
                });
            }
        }
    }
    for alias in &new.deprecated_aliases {
        if !old.deprecated_aliases.iter().any(|a| a.from == alias.from) {
            changes.push(Change::AliasAdded {
                from: alias.from.clone(),
                to: alias.to.clone(),
                sunset_date: alias.sunset_date.clone(),
            });
        }
    }
    for alias in &old.deprecated_aliases {
        if !new.deprecated_aliases.iter().any(|a| a.from == alias.from) {
            changes.push(Change::AliasRemoved {
                from: alias.from.clone(),
            });
        }
    }
    if new.deprecated && !old.deprecated {
        changes.push(Change::ModelDeprecated);
    }
    changes
}

/// Compares two documents, each upstream or vendored (upstream ones are vendored first).
pub fn diff(old: &Value, new: &Value) -> Result<SpecDiff, NormalizeError> {
    let vendored = |doc: &Value| -> Result<Value, NormalizeError> {
        if crate::vendor::is_upstream(doc) {
            Ok(crate::vendor::vendor(doc)?.document)
        } else {
            Ok(doc.clone())
        }
    };
    let (old, new) = (&vendored(old)?, &vendored(new)?);
    let (old_ops, new_ops) = (operation_keys(old), operation_keys(new));
    let old_models: BTreeMap<String, ModelSpec> = catalog::extract(old)?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let new_models: BTreeMap<String, ModelSpec> = catalog::extract(new)?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let mut out = SpecDiff {
        operations_added: new_ops.difference(&old_ops).cloned().collect(),
        operations_removed: old_ops.difference(&new_ops).cloned().collect(),
        models_added: new_models
            .keys()
            .filter(|k| !old_models.contains_key(*k))
            .cloned()
            .collect(),
        models_removed: old_models
            .keys()
            .filter(|k| !new_models.contains_key(*k))
            .cloned()
            .collect(),
        models_changed: BTreeMap::new(),
    };
    for (id, old_m) in &old_models {
        if let Some(new_m) = new_models.get(id) {
            let changes = model_changes(old_m, new_m);
            if !changes.is_empty() {
                out.models_changed.insert(id.clone(), changes);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model(props: Value, required: Value) -> Value {
        json!({"post": {"requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": props, "required": required}}}}}})
    }

    fn old_doc() -> Value {
        json!({"paths": {
            "/generate/image/a/one": model(json!({"prompt": {"type": "string"},
                "aspect_ratio": {"type": "string", "enum": ["1:1", "16:9"]},
                "seed": {"type": "number"}}), json!(["prompt"])),
            "/generate/video/b/two": model(json!({"prompt": {"type": "string"}}), json!([]))
        }})
    }

    #[test]
    fn identical_documents_have_no_changes() {
        let d = diff(&old_doc(), &old_doc()).expect("diff");
        assert!(d.is_empty());
        assert_eq!(d.to_string(), "no API changes\n");
    }

    #[test]
    fn reports_each_kind_of_change() {
        let mut new = old_doc();
        let paths = new["paths"].as_object_mut().expect("paths");
        paths.remove("/generate/video/b/two");
        let one = &mut paths["/generate/image/a/one"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        one["properties"]["negative_prompt"] = json!({"type": "string"});
        one["properties"]["aspect_ratio"]["enum"] = json!(["1:1", "16:9", "9:16"]);
        one["properties"]["seed"]["type"] = json!("integer");
        one["required"] = json!(["prompt", "seed"]);
        new["paths"]["/generate/image/a/one"]["post"]["x-krea-deprecated-field-aliases"] =
            json!([{"from": "aspectRatio", "to": "aspect_ratio", "sunset_date": "2026-06-19"}]);
        let d = diff(&old_doc(), &new).expect("diff");
        assert_eq!(d.models_removed, vec!["b/two"]);
        assert_eq!(d.operations_removed, vec!["POST /generate/video/b/two"]);
        let text = d.to_string();
        for expected in [
            "- model b/two",
            "~ model a/one",
            "parameter added: negative_prompt (string, optional)",
            "enum values added to aspect_ratio: \"9:16\"",
            "parameter retyped: seed number -> integer",
            "parameter now required: seed",
            "deprecated alias added: aspectRatio -> aspect_ratio (until 2026-06-19)",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
        let json = serde_json::to_value(&d).expect("json");
        assert_eq!(json["models_changed"]["a/one"][0]["change"], "param_added");
    }
}
