//! The model catalog: one [`ModelSpec`] per `POST /generate/{kind}/{provider}/{model}`, read from
//! the vendored description (nothing typed by hand but the help lines of [`crate::glossary`]).
//! These are the catalog's only types: krea-gen's built-in catalog is these models written as
//! JSON ([`crate::emit::catalog_json`]) and read back on first use, and the `krea` crate reads
//! one from a freshly fetched document at run time, for models added after a build.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::normalize::{NormalizeError, operations};
use crate::{glossary, opid};

/// What a model produces. Kept exhaustive on purpose: every kind has its own request rules
/// (sizes, inputs, waits), so a new one is handled, not passed over by a wildcard, and its
/// arrival is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `/generate/image/...`
    Image,
    /// `/generate/video/...`
    Video,
    /// `/generate/enhance/...` (upscalers)
    Enhance,
}

impl Kind {
    /// The path segment: `image`, `video`, `enhance`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Enhance => "enhance",
        }
    }
}

/// The JSON type of a parameter. Exhaustive: JSON's types are a closed set (`null` is
/// [`ParamSpec::nullable`]), so code that checks values can match every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// JSON string.
    String,
    /// Any JSON number.
    Number,
    /// A whole number.
    Integer,
    /// true / false.
    Boolean,
    /// JSON array; see `items`.
    Array,
    /// JSON object; see `properties`.
    Object,
    /// No single type (`oneOf` alternatives, see `variants`, or no `type` at all).
    Any,
}

impl ParamType {
    /// Lower-case name, as in JSON Schema.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Object => "object",
            ParamType::Any => "any",
        }
    }
}

/// One request parameter (or a nested item/property of one). Members absent from the
/// serialized form take their defaults (not required, not nullable, no bounds, no choices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParamSpec {
    /// JSON name (snake_case).
    pub name: String,
    /// JSON type.
    pub ty: ParamType,
    /// Must be present.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// `null` is allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// The project's help line for it (see [`crate::glossary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value Krea uses when the parameter is absent (never sent by the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Inclusive lower bound for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Inclusive upper bound for numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Minimum string length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum string length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Minimum array length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// Maximum array length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Allowed values; empty when any value of the type is allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enum_values: Vec<Value>,
    /// `uri`, `date-time`...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Regular expression strings must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Schema of array items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ParamSpec>>,
    /// Properties of an object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<ParamSpec>,
    /// Whether an object accepts properties not listed (the document says `false` for bodies).
    #[serde(default, skip_serializing_if = "is_false")]
    pub additional_properties: bool,
    /// Fields of an object that may only be absent or `null` (`x-krea-null-only`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub null_only: Vec<String>,
    /// `oneOf` alternatives; a value must match one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<ParamSpec>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ParamSpec {
    /// Whether `value` is one of the allowed values (numbers compare by value: `5` is `5.0`);
    /// true when the parameter lists none.
    pub fn allows(&self, value: &Value) -> bool {
        self.enum_values.is_empty() || self.enum_values.iter().any(|v| same_value(v, value))
    }

    /// This parameter as a JSON Schema (draft 2020-12 style: `null` joins the type list), with
    /// the project's help line as its description.
    pub fn json_schema(&self) -> Value {
        let mut s = serde_json::Map::new();
        let ty = match self.ty {
            ParamType::Any => None,
            t => Some(t.as_str()),
        };
        match (ty, self.nullable) {
            (Some(t), true) => {
                s.insert("type".into(), serde_json::json!([t, "null"]));
            }
            (Some(t), false) => {
                s.insert("type".into(), t.into());
            }
            _ => {}
        }
        if let Some(d) = &self.description {
            s.insert("description".into(), d.as_str().into());
        }
        if let Some(d) = &self.default {
            s.insert("default".into(), d.clone());
        }
        let numbers = [("minimum", self.minimum), ("maximum", self.maximum)];
        for (k, v) in numbers {
            if let Some(v) = v {
                s.insert(k.into(), serde_json::json!(v));
            }
        }
        let counts = [
            ("minLength", self.min_length),
            ("maxLength", self.max_length),
            ("minItems", self.min_items),
            ("maxItems", self.max_items),
        ];
        for (k, v) in counts {
            if let Some(v) = v {
                s.insert(k.into(), v.into());
            }
        }
        if !self.enum_values.is_empty() {
            s.insert("enum".into(), self.enum_values.clone().into());
        }
        if let Some(f) = &self.format {
            s.insert("format".into(), f.as_str().into());
        }
        if let Some(p) = &self.pattern {
            s.insert("pattern".into(), p.as_str().into());
        }
        if let Some(items) = &self.items {
            s.insert("items".into(), items.json_schema());
        }
        if !self.properties.is_empty() || !self.null_only.is_empty() {
            s.extend(object_schema(&self.properties, self.additional_properties));
            if let Some(Value::Object(props)) = s.get_mut("properties") {
                for name in &self.null_only {
                    props.insert(name.clone(), serde_json::json!({"type": "null"}));
                }
            }
        }
        if !self.variants.is_empty() {
            let alts: Vec<Value> = self.variants.iter().map(ParamSpec::json_schema).collect();
            s.insert("oneOf".into(), alts.into());
        }
        Value::Object(s)
    }
}

/// Equal JSON values, numbers compared by value (`5` equals `5.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value as a person reads it: a string without its quotes, anything else as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `properties`, `required` and `additionalProperties` of an object schema.
fn object_schema(properties: &[ParamSpec], additional: bool) -> serde_json::Map<String, Value> {
    let mut s = serde_json::Map::new();
    let props: serde_json::Map<String, Value> = properties
        .iter()
        .map(|p| (p.name.clone(), p.json_schema()))
        .collect();
    s.insert("type".into(), "object".into());
    s.insert("properties".into(), Value::Object(props));
    let required: Vec<Value> = properties
        .iter()
        .filter(|p| p.required)
        .map(|p| p.name.as_str().into())
        .collect();
    if !required.is_empty() {
        s.insert("required".into(), required.into());
    }
    if !additional {
        s.insert("additionalProperties".into(), false.into());
    }
    s
}

/// One row of a model's pricing table: under these conditions, this many compute units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CostRow {
    /// Column name -> value (`Resolution` -> `1080p`, `Duration` -> `5s`).
    pub conditions: Vec<(String, String)>,
    /// Compute units charged.
    pub compute_units: f64,
    /// Average completion time in seconds, where the table states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl CostRow {
    /// A price row: `compute_units` when every condition (column, value) holds.
    pub fn new(
        conditions: Vec<(String, String)>,
        compute_units: f64,
        seconds: Option<f64>,
    ) -> CostRow {
        CostRow {
            conditions,
            compute_units,
            seconds,
        }
    }
}

/// A deprecated request field name Krea still accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldAlias {
    /// The old (camelCase) name.
    pub from: String,
    /// The name to send instead.
    pub to: String,
    /// When Krea stops accepting `from` (YYYY-MM-DD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset_date: Option<String>,
    /// Where Krea explains the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_url: Option<String>,
}

/// One generation model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelSpec {
    /// `provider/model`, e.g. `bfl/flux-1-dev`.
    pub id: String,
    /// `bfl`.
    pub provider: String,
    /// `flux-1-dev`.
    pub slug: String,
    /// Image, video or enhance.
    pub kind: Kind,
    /// Display name: `Flux`.
    pub title: String,
    /// `/generate/image/bfl/flux-1-dev`.
    pub path: String,
    /// `generate_image_bfl_flux_1_dev`.
    pub operation_id: String,
    /// Body parameters: required ones first, then in [`crate::glossary`] order.
    pub parameters: Vec<ParamSpec>,
    /// Whether the body accepts properties it does not list.
    pub additional_properties: bool,
    /// The pricing table (`x-krea-pricing`), where Krea publishes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compute_units: Vec<CostRow>,
    /// Typical completion time in seconds (the median of the pricing rows that state one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typical_seconds: Option<f64>,
    /// Old field names Krea still accepts for this model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deprecated_aliases: Vec<FieldAlias>,
    /// The operation is marked deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
}

impl ModelSpec {
    /// A model no catalog lists, served at `/generate/{kind}/{provider}/{slug}`: no parameters
    /// known, any body accepted, no price.
    pub fn unlisted(kind: Kind, provider: &str, slug: &str) -> ModelSpec {
        ModelSpec {
            id: format!("{provider}/{slug}"),
            provider: provider.into(),
            slug: slug.into(),
            kind,
            title: slug.into(),
            path: format!("/generate/{}/{provider}/{slug}", kind.as_str()),
            operation_id: String::new(),
            parameters: Vec::new(),
            additional_properties: true,
            compute_units: Vec::new(),
            typical_seconds: None,
            deprecated_aliases: Vec::new(),
            deprecated: false,
        }
    }

    /// The body parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&ParamSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// The parameters that must be present.
    pub fn required(&self) -> impl Iterator<Item = &ParamSpec> {
        self.parameters.iter().filter(|p| p.required)
    }

    /// The JSON Schema of the request body (for tools and assistants).
    pub fn json_schema(&self) -> Value {
        let mut s = object_schema(&self.parameters, self.additional_properties);
        s.insert("title".into(), self.title.as_str().into());
        s.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        Value::Object(s)
    }

    /// The compute units of the cheapest row of the pricing table.
    pub fn min_compute_units(&self) -> Option<f64> {
        self.compute_units
            .iter()
            .map(|r| r.compute_units)
            .min_by(f64::total_cmp)
    }
}

/// Reads every generation operation into a catalog, sorted by id. `doc` is a vendored
/// description, or an upstream document (vendored first).
pub fn extract(doc: &Value) -> Result<Vec<ModelSpec>, NormalizeError> {
    if crate::vendor::is_upstream(doc) {
        return extract(&crate::vendor::vendor(doc)?.document);
    }
    let mut models = Vec::new();
    for (method, path, op) in operations(doc) {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (kind, provider, slug) = match (method.as_str(), segments.as_slice()) {
            ("post", ["generate", kind, provider, slug]) => (*kind, *provider, *slug),
            _ => continue,
        };
        let kind = match kind {
            "image" => Kind::Image,
            "video" => Kind::Video,
            "enhance" => Kind::Enhance,
            other => {
                return Err(NormalizeError(format!(
                    "{path}: unknown generation kind `{other}`"
                )));
            }
        };
        let body = op
            .pointer("/requestBody/content/application~1json/schema")
            .map(|s| resolve(doc, s))
            .ok_or_else(|| NormalizeError(format!("{path}: no JSON request body")))?;
        let root = param(doc, "", "body", body, true);
        let compute_units = pricing(op);
        let typical_seconds = median(compute_units.iter().filter_map(|r| r.seconds));
        let mut parameters = root.properties;
        parameters.sort_by_key(|p| (!p.required, glossary::rank(&p.name)));
        models.push(ModelSpec {
            id: format!("{provider}/{slug}"),
            provider: provider.to_string(),
            slug: slug.to_string(),
            kind,
            title: op
                .get("x-krea-title")
                .and_then(Value::as_str)
                .unwrap_or(slug)
                .to_string(),
            path: path.clone(),
            operation_id: op
                .get("operationId")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| opid::synthesize(&method, &path)),
            parameters,
            additional_properties: root.additional_properties,
            compute_units,
            typical_seconds,
            deprecated_aliases: aliases(op),
            deprecated: op
                .get("deprecated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    models.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(models)
}

/// Follows a local `$ref` (`#/components/schemas/X`); anything else is returned as is.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| doc.pointer(pointer))
        .unwrap_or(schema)
}

/// `parent` is the dotted path of the enclosing parameter ("" at the top).
fn param(doc: &Value, parent: &str, name: &str, schema: &Value, required: bool) -> ParamSpec {
    let schema = resolve(doc, schema);
    // An array's items share the array's path (`styles`), so their fields read `styles.id`.
    let path = match (parent.is_empty(), name.is_empty()) {
        (_, true) => parent.to_string(),
        (true, false) => name.to_string(),
        (false, false) => format!("{parent}.{name}"),
    };
    let num = |key: &str| schema.get(key).and_then(Value::as_f64);
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    let text = |key: &str| schema.get(key).and_then(Value::as_str).map(String::from);
    let ty = match schema.get("type").and_then(Value::as_str) {
        Some("string") => ParamType::String,
        Some("number") => ParamType::Number,
        Some("integer") => ParamType::Integer,
        Some("boolean") => ParamType::Boolean,
        Some("array") => ParamType::Array,
        Some("object") => ParamType::Object,
        _ if schema.get("properties").is_some() => ParamType::Object,
        _ => ParamType::Any,
    };
    let required_names: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Nested names are described relative to the top-level parameter (`styles.strength`).
    let inner = if name == "body" && parent.is_empty() {
        ""
    } else {
        path.as_str()
    };
    let mut properties: Vec<ParamSpec> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(n, s)| param(doc, inner, n, s, required_names.contains(&n.as_str())))
                .collect()
        })
        .unwrap_or_default();
    properties.sort_by_key(|p| {
        let key = if inner.is_empty() {
            p.name.clone()
        } else {
            format!("{inner}.{}", p.name)
        };
        (!p.required, glossary::rank(&key))
    });
    let variants = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
        .map(|alts| {
            alts.iter()
                .map(|s| param(doc, parent, name, s, required))
                .collect()
        })
        .unwrap_or_default();
    ParamSpec {
        name: name.to_string(),
        ty,
        required,
        nullable: schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        description: glossary::describe(&path).map(String::from),
        default: schema
            .get("x-krea-default")
            .or_else(|| schema.get("default"))
            .cloned(),
        minimum: num("minimum"),
        maximum: num("maximum"),
        min_length: count("minLength"),
        max_length: count("maxLength"),
        min_items: count("minItems"),
        max_items: count("maxItems"),
        enum_values: schema
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        format: text("format"),
        pattern: text("pattern"),
        items: schema
            .get("items")
            .map(|s| Box::new(param(doc, inner, "", s, true)))
            .map(|mut item| {
                item.name = "item".into();
                item
            }),
        properties,
        // JSON Schema's default is `true`; Krea writes `false` on bodies.
        additional_properties: schema.get("additionalProperties") != Some(&Value::Bool(false)),
        null_only: schema
            .get("x-krea-null-only")
            .and_then(Value::as_array)
            .map(|n| {
                n.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        variants,
    }
}

fn pricing(op: &Value) -> Vec<CostRow> {
    let rows = op.get("x-krea-pricing").and_then(Value::as_array);
    rows.into_iter()
        .flatten()
        .filter_map(|row| {
            let conditions = row
                .get("conditions")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            Some(CostRow {
                conditions,
                compute_units: row.get("compute_units")?.as_f64()?,
                seconds: row.get("seconds").and_then(Value::as_f64),
            })
        })
        .collect()
}

fn aliases(op: &Value) -> Vec<FieldAlias> {
    op.get("x-krea-deprecated-field-aliases")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    let text = |k: &str| a.get(k).and_then(Value::as_str).map(String::from);
                    Some(FieldAlias {
                        from: text("from")?,
                        to: text("to")?,
                        sunset_date: text("sunset_date"),
                        migration_url: text("migration_url"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `~3` -> 3.0, `60.1` -> 60.1, `~7 seconds` -> 7.0, `-` -> None.
fn number_in(cell: &str) -> Option<f64> {
    let cell = cell.trim().trim_start_matches('~').trim();
    let end = cell
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(cell.len());
    cell[..end].parse().ok()
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().trim_matches('*').to_string())
        .collect()
}

/// Parses the first Markdown table of `description` that has a `Compute Units` column.
pub fn cost_table(description: &str) -> Vec<CostRow> {
    let lines: Vec<&str> = description.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('|') {
            continue;
        }
        let header = cells(line);
        let Some(cu) = header.iter().position(|h| h == "Compute Units") else {
            continue;
        };
        let time = header.iter().position(|h| h == "Average Completion Time");
        let mut rows = Vec::new();
        for row in lines[i + 1..].iter().take_while(|l| l.starts_with('|')) {
            let cells = cells(row);
            let separator = cells
                .iter()
                .all(|c| c.len() > 1 && c.chars().all(|ch| ch == '-' || ch == ':'));
            if separator {
                continue;
            }
            let Some(units) = cells.get(cu).and_then(|c| number_in(c)) else {
                continue;
            };
            let conditions = header
                .iter()
                .zip(&cells)
                .enumerate()
                .filter(|(j, (_, v))| *j != cu && Some(*j) != time && v.as_str() != "-")
                .map(|(_, (h, v))| (h.clone(), v.clone()))
                .collect();
            rows.push(CostRow {
                conditions,
                compute_units: units,
                seconds: time.and_then(|t| cells.get(t)).and_then(|c| number_in(c)),
            });
        }
        return rows;
    }
    Vec::new()
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture() -> Value {
        json!({"openapi": "3.1.0", "paths": {
            "/jobs/{id}": {"get": {}},
            "/generate/image/bfl/flux-1-dev": {"post": {
                "summary": "Flux",
                "description": "Fast model. Best for LoRAs.\n| Compute Units | Average Completion Time |\n|---|---|\n| ~3 | ~7 seconds |\n",
                "x-krea-deprecated-field-aliases": [
                    {"from": "imageUrl", "to": "image_url", "sunset_date": "2026-06-19"}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false, "required": ["prompt"],
                    "properties": {
                        "prompt": {"type": "string", "maxLength": 1800},
                        "steps": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
                        "image_url": {"type": ["string", "null"], "format": "uri"},
                        "styles": {"type": "array", "items": {"type": "object",
                            "properties": {"id": {"type": "string"}, "strength": {"type": "number", "minimum": -2}},
                            "required": ["id"]}}
                    }}}}}}},
            "/generate/video/google/veo-3": {"post": {
                "summary": "Veo 3",
                "description": "Older.\n| Resolution | Audio | Duration | Compute Units |\n|--|--|--|--|\n| 720p | No | 5s | 573 |\n| 1080p | Yes | 8s | 1833 |\n",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                    "duration": {"anyOf": [{"type": "number", "const": 5}, {"type": "number", "const": 8}], "default": 5}
                }}}}}}}
        }})
    }

    #[test]
    fn extracts_each_generation_operation_as_a_model() {
        let models = extract(&fixture()).expect("catalog");
        assert_eq!(models.len(), 2);
        let flux = &models[0];
        assert_eq!(
            (flux.id.as_str(), flux.kind, flux.title.as_str()),
            ("bfl/flux-1-dev", Kind::Image, "Flux")
        );
        assert_eq!(flux.operation_id, "generate_image_bfl_flux_1_dev");
        assert_eq!(
            flux.deprecated_aliases[0].sunset_date.as_deref(),
            Some("2026-06-19")
        );
        assert_eq!(flux.typical_seconds, Some(7.0));
        assert_eq!(flux.compute_units[0].compute_units, 3.0);
        assert!(!flux.additional_properties);
        assert_eq!(flux.deprecated_aliases[0].from, "imageUrl");
    }

    #[test]
    fn reads_types_ranges_defaults_and_nesting() {
        let models = extract(&fixture()).expect("catalog");
        let flux = &models[0];
        let prompt = flux.parameter("prompt").expect("prompt");
        assert!(prompt.required && prompt.max_length == Some(1800));
        let steps = flux.parameter("steps").expect("steps");
        assert_eq!(
            (steps.ty, steps.minimum, steps.maximum),
            (ParamType::Integer, Some(1.0), Some(100.0))
        );
        assert_eq!(
            steps.default,
            Some(json!(25)),
            "the catalog keeps the defaults"
        );
        let image = flux.parameter("image_url").expect("image_url");
        assert!(image.nullable && image.ty == ParamType::String && !image.required);
        let styles = flux.parameter("styles").expect("styles");
        let item = styles.items.as_ref().expect("items");
        assert_eq!(item.properties.len(), 2);
        assert!(item.properties[0].required && !item.properties[1].required);
    }

    #[test]
    fn video_durations_are_an_enum_and_costs_keep_their_conditions() {
        let models = extract(&fixture()).expect("catalog");
        let veo = &models[1];
        assert_eq!(veo.kind, Kind::Video);
        let duration = veo.parameter("duration").expect("duration");
        assert_eq!(
            (duration.ty, duration.enum_values.clone()),
            (ParamType::Integer, vec![json!(5), json!(8)])
        );
        assert_eq!(veo.compute_units.len(), 2);
        assert_eq!(
            veo.compute_units[1].conditions,
            vec![
                ("Resolution".into(), "1080p".into()),
                ("Audio".into(), "Yes".into()),
                ("Duration".into(), "8s".into())
            ]
        );
        assert_eq!(veo.typical_seconds, None);
    }

    #[test]
    fn cost_tables_ignore_dashes_and_read_times() {
        let rows = cost_table(
            "x\n| Duration | Compute Units | Average Completion Time |\n|---|---|---|\n| - | ~270 | ~97 seconds |\n",
        );
        assert_eq!(
            rows,
            vec![CostRow {
                conditions: vec![],
                compute_units: 270.0,
                seconds: Some(97.0)
            }]
        );
        assert!(cost_table("no table here").is_empty());
    }
}
