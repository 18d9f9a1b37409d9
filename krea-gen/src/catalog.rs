//! The model catalog: every generation model of the pinned document, as static data generated
//! by the build script (no JSON parsing at run time).

use serde_json::Value;

/// What a model produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `/generate/image/...`
    Image,
    /// `/generate/video/...`
    Video,
    /// `/generate/enhance/...` (upscalers).
    Enhance,
}

impl Kind {
    /// `image`, `video` or `enhance`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
            Kind::Enhance => "enhance",
        }
    }
}

/// The JSON type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// JSON string.
    String,
    /// Any JSON number.
    Number,
    /// A whole number.
    Integer,
    /// true / false.
    Boolean,
    /// JSON array; see [`ParamSpec::items`].
    Array,
    /// JSON object; see [`ParamSpec::properties`].
    Object,
    /// No single type: see [`ParamSpec::variants`].
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

/// A JSON value known at compile time (enum members and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A fractional number.
    Float(f64),
    /// A string.
    Str(&'static str),
    /// An array or object, as JSON text.
    Json(&'static str),
}

impl Literal {
    /// As a `serde_json::Value`.
    pub fn to_json(&self) -> Value {
        match *self {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(b),
            Literal::Int(i) => Value::from(i),
            Literal::Float(f) => Value::from(f),
            Literal::Str(s) => Value::from(s),
            Literal::Json(j) => serde_json::from_str(j).unwrap_or(Value::Null),
        }
    }

    /// Equal to a JSON value (numbers compare by value: `5` equals `5.0`).
    pub fn matches(&self, value: &Value) -> bool {
        match (*self, value) {
            (Literal::Int(i), Value::Number(n)) => n.as_f64() == Some(i as f64),
            (Literal::Float(f), Value::Number(n)) => n.as_f64() == Some(f),
            _ => self.to_json() == *value,
        }
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Str(s) => f.write_str(s),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

/// One request parameter, or a nested item or property of one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// JSON name (snake_case).
    pub name: &'static str,
    /// JSON type.
    pub ty: ParamType,
    /// Must be present.
    pub required: bool,
    /// `null` is allowed.
    pub nullable: bool,
    /// The document's description.
    pub description: Option<&'static str>,
    /// What Krea uses when the parameter is absent (never sent by this crate).
    pub default: Option<Literal>,
    /// Inclusive lower bound for numbers.
    pub minimum: Option<f64>,
    /// Inclusive upper bound for numbers.
    pub maximum: Option<f64>,
    /// Minimum string length.
    pub min_length: Option<u64>,
    /// Maximum string length.
    pub max_length: Option<u64>,
    /// Minimum array length.
    pub min_items: Option<u64>,
    /// Maximum array length.
    pub max_items: Option<u64>,
    /// Allowed values; empty when any value of the type is allowed.
    pub enum_values: &'static [Literal],
    /// `uri`, `date-time`...
    pub format: Option<&'static str>,
    /// A regular expression strings must match.
    pub pattern: Option<&'static str>,
    /// Schema of array items.
    pub items: Option<&'static ParamSpec>,
    /// Properties of an object.
    pub properties: &'static [ParamSpec],
    /// Whether an object accepts properties it does not list.
    pub additional_properties: bool,
    /// `oneOf` alternatives; a value must match one.
    pub variants: &'static [ParamSpec],
}

/// One row of a model's pricing table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostRow {
    /// Column -> value, e.g. `("Resolution", "1080p")`, `("Duration", "5s")`.
    pub conditions: &'static [(&'static str, &'static str)],
    /// Compute units charged under these conditions.
    pub compute_units: f64,
    /// Average completion time in seconds, where the document states it.
    pub seconds: Option<f64>,
}

/// A deprecated request field name Krea still accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldAlias {
    /// The old camelCase name (`imageUrls`).
    pub from: &'static str,
    /// The snake_case name to send (`image_urls`).
    pub to: &'static str,
    /// When Krea stops accepting `from`.
    pub sunset_date: Option<&'static str>,
}

/// One generation model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// `provider/model`, e.g. `bfl/flux-1-dev`.
    pub id: &'static str,
    /// `bfl`.
    pub provider: &'static str,
    /// `flux-1-dev`.
    pub slug: &'static str,
    /// Image, video or enhance.
    pub kind: Kind,
    /// Display name: `Flux`.
    pub title: &'static str,
    /// One line from the document: `Fast model. Best for LoRAs.`
    pub summary: &'static str,
    /// `/generate/image/bfl/flux-1-dev`.
    pub path: &'static str,
    /// The generated client's method: `generate_image_bfl_flux_1_dev`.
    pub operation_id: &'static str,
    /// Body parameters in document order.
    pub parameters: &'static [ParamSpec],
    /// Whether the body accepts properties it does not list.
    pub additional_properties: bool,
    /// The pricing table, where the document has one.
    pub compute_units: &'static [CostRow],
    /// Typical completion time in seconds, where the document states it.
    pub typical_seconds: Option<f64>,
    /// Old field names Krea still accepts for this model.
    pub deprecated_aliases: &'static [FieldAlias],
    /// The operation is marked deprecated.
    pub deprecated: bool,
}

impl ModelSpec {
    /// The body parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&'static ParamSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// The parameters that must be present.
    pub fn required(&self) -> impl Iterator<Item = &'static ParamSpec> {
        self.parameters.iter().filter(|p| p.required)
    }

    /// The compute units of the cheapest row of the pricing table.
    pub fn min_compute_units(&self) -> Option<f64> {
        self.compute_units
            .iter()
            .map(|r| r.compute_units)
            .min_by(f64::total_cmp)
    }
}

include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// The model with id `provider/model`.
pub fn model(id: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.id == id)
}

/// The model served at `path` (`/generate/image/bfl/flux-1-dev`).
pub fn by_path(path: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.path == path)
}

fn decode<T: serde::de::DeserializeOwned>(body: &Value) -> Result<(), String> {
    T::deserialize(body).map(drop).map_err(|e| e.to_string())
}

include!(concat!(env!("OUT_DIR"), "/bodies.rs"));
