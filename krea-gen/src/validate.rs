//! Checking a request body against a model's schema from the catalog: required fields, types,
//! ranges, enums, lengths, patterns and unknown fields. The `krea` crate runs it before sending
//! (so a bad request costs no round trip); krea-sim runs it to answer 400 like Krea.

use std::fmt;

use serde_json::{Map, Value};

use crate::catalog::{value_text, ModelSpec, ParamSpec, ParamType};

/// One thing wrong with a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the field (`styles[0].strength`); the model id for body-level problems.
    pub field: String,
    /// What is wrong and what is allowed.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Every violation of `model`'s schema in `body` (empty when the body is valid).
pub fn validate(model: &ModelSpec, body: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(map) = body.as_object() else {
        out.push(Violation {
            field: model.id.to_string(),
            problem: format!("the body must be a JSON object, not {}", type_name(body)),
        });
        return out;
    };
    check_object(
        "",
        &model.parameters,
        model.additional_properties,
        &[],
        map,
        &mut out,
    );
    out
}

/// Writes whole numbers sent as floats (`41.0`) as integers where the model wants an integer:
/// JSON Schema counts them as integers, and so do Krea and this crate's checks, but the typed
/// request bodies would refuse them.
pub fn normalize_integers(model: &ModelSpec, body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        normalize_object(&model.parameters, map);
    }
}

fn normalize_object(params: &[ParamSpec], map: &mut Map<String, Value>) {
    for (key, value) in map.iter_mut() {
        if let Some(p) = params.iter().find(|p| p.name == *key) {
            normalize_value(p, value);
        }
    }
}

fn normalize_value(p: &ParamSpec, value: &mut Value) {
    if let Some(variant) = p.variants.iter().find(|v| satisfies(v, value)) {
        return normalize_value(variant, value);
    }
    match value {
        Value::Number(n) if p.ty == ParamType::Integer => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| f.fract() == 0.0 && n.as_i64().is_none() && n.as_u64().is_none())
            {
                if f >= 0.0 && f <= u64::MAX as f64 {
                    *value = Value::from(f as u64);
                } else if f >= i64::MIN as f64 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &p.items {
                items.iter_mut().for_each(|v| normalize_value(item, v));
            }
        }
        Value::Object(map) => normalize_object(&p.properties, map),
        _ => {}
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The known field nearest to a mistyped one (`widht` -> `width`), if one is near.
fn closest<'a>(key: &str, params: &'a [ParamSpec]) -> Option<&'a str> {
    params
        .iter()
        .map(|p| (strsim::damerau_levenshtein(key, &p.name), p.name.as_str()))
        .filter(|(d, name)| *d <= (name.len() / 3).max(1))
        .min()
        .map(|(_, name)| name)
}

fn names(params: &[ParamSpec]) -> String {
    params
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_object(
    prefix: &str,
    params: &[ParamSpec],
    additional: bool,
    null_only: &[String],
    map: &Map<String, Value>,
    out: &mut Vec<Violation>,
) {
    for name in null_only {
        if map.get(name).is_some_and(|v| !v.is_null()) {
            out.push(Violation {
                field: join(prefix, name),
                problem: "must be left out (or null) here".into(),
            });
        }
    }
    for p in params.iter().filter(|p| p.required) {
        if !map.contains_key(&p.name) {
            out.push(Violation {
                field: join(prefix, &p.name),
                problem: "is required".into(),
            });
        }
    }
    for (key, value) in map {
        match params.iter().find(|p| p.name == *key) {
            Some(p) => check_value(&join(prefix, key), p, value, out),
            None if null_only.contains(key) => {}
            None if !additional => out.push(Violation {
                field: join(prefix, key),
                problem: match closest(key, params) {
                    Some(near) => format!(
                        "is not a known field (did you mean {near}? allowed: {})",
                        names(params)
                    ),
                    None => format!("is not a known field (allowed: {})", names(params)),
                },
            }),
            None => {}
        }
    }
}

/// Whether `value` satisfies `p` (used for `oneOf` alternatives).
fn satisfies(p: &ParamSpec, value: &Value) -> bool {
    let mut scratch = Vec::new();
    check_value("", p, value, &mut scratch);
    scratch.is_empty()
}

/// The one alternative a value picks by its fixed-value fields (`"type": "left_turn_forward"`),
/// so its own problems can be named; `None` when the value picks none or several.
fn chosen_variant<'a>(variants: &'a [ParamSpec], value: &Value) -> Option<&'a ParamSpec> {
    let map = value.as_object()?;
    let picks = |v: &&ParamSpec| {
        let fixed: Vec<&ParamSpec> = v
            .properties
            .iter()
            .filter(|q| q.enum_values.len() == 1)
            .collect();
        !fixed.is_empty()
            && fixed
                .iter()
                .all(|q| map.get(&q.name).is_some_and(|given| q.allows(given)))
    };
    let mut picked = variants.iter().filter(picks);
    match (picked.next(), picked.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// `512-2368`, or `-2 to 2` where a dash would read as a minus sign.
pub fn span(lo: f64, hi: f64) -> String {
    if lo < 0.0 {
        format!("{lo} to {hi}")
    } else {
        format!("{lo}-{hi}")
    }
}

fn range(p: &ParamSpec) -> String {
    match (p.minimum, p.maximum) {
        (Some(lo), Some(hi)) => format!(" (allowed {})", span(lo, hi)),
        _ => String::new(),
    }
}

fn check_value(field: &str, p: &ParamSpec, value: &Value, out: &mut Vec<Violation>) {
    let mut fail = |problem: String| {
        out.push(Violation {
            field: field.to_string(),
            problem,
        })
    };
    if value.is_null() {
        if !p.nullable {
            fail(format!("must not be null (expected {})", p.ty.as_str()));
        }
        return;
    }
    if !p.variants.is_empty() {
        if !p.variants.iter().any(|v| satisfies(v, value)) {
            match chosen_variant(&p.variants, value) {
                Some(v) => check_value(field, v, value, out),
                None => fail("matches none of the allowed forms of this field".into()),
            }
        }
        return;
    }
    let type_ok = match p.ty {
        ParamType::String => value.is_string(),
        ParamType::Number => value.is_number(),
        ParamType::Integer => value.as_f64().is_some_and(|f| f.fract() == 0.0),
        ParamType::Boolean => value.is_boolean(),
        ParamType::Array => value.is_array(),
        ParamType::Object => value.is_object(),
        ParamType::Any => true,
    };
    if !type_ok {
        let expected = match p.ty {
            ParamType::Integer => "a whole number",
            ParamType::Number => "a number",
            ParamType::String => "a string",
            ParamType::Boolean => "true or false",
            ParamType::Array => "an array",
            ParamType::Object => "an object",
            ParamType::Any => "any value",
        };
        fail(format!(
            "must be {expected}, not {} {value}",
            type_name(value)
        ));
        return;
    }
    if !p.allows(value) {
        let allowed: Vec<String> = p.enum_values.iter().map(value_text).collect();
        fail(format!(
            "{value} is not allowed (one of: {})",
            allowed.join(", ")
        ));
        return;
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = p.minimum.filter(|min| n < *min) {
            fail(format!("{n} is below the minimum {min}{}", range(p)));
        }
        if let Some(max) = p.maximum.filter(|max| n > *max) {
            fail(format!("{n} is above the maximum {max}{}", range(p)));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = p.min_length.filter(|min| len < *min) {
            fail(format!("is {len} characters; at least {min} are needed"));
        }
        if let Some(max) = p.max_length.filter(|max| len > *max) {
            fail(format!("is {len} characters; at most {max} are allowed"));
        }
        if let Some(pattern) = &p.pattern {
            let matched = regress::Regex::new(pattern)
                .map(|re| re.find(s).is_some())
                .unwrap_or(true);
            if !matched {
                fail(format!("{s:?} does not match the pattern {pattern}"));
            }
        }
        if p.format.as_deref() == Some("uri") && !looks_like_uri(s) {
            fail(format!("{s:?} is not an absolute URL (https://...)"));
        }
    }
    if let Some(items) = value.as_array() {
        let len = items.len() as u64;
        if let Some(min) = p.min_items.filter(|min| len < *min) {
            fail(format!("has {len} items; at least {min} are needed"));
        }
        if let Some(max) = p.max_items.filter(|max| len > *max) {
            fail(format!("has {len} items; at most {max} are allowed"));
        }
        if let Some(item) = &p.items {
            for (i, v) in items.iter().enumerate() {
                check_value(&format!("{field}[{i}]"), item, v, out);
            }
        }
    }
    if let Some(map) = value.as_object() {
        if !p.properties.is_empty() || !p.additional_properties || !p.null_only.is_empty() {
            check_object(
                field,
                &p.properties,
                p.additional_properties,
                &p.null_only,
                map,
                out,
            );
        }
    }
}

/// A minimal valid body for `model`: its required parameters with plausible values (`prompt`
/// gets `prompt`, URLs an https URL, enums their first value, numbers their minimum). For tests,
/// examples and benchmarks.
pub fn example_body(model: &ModelSpec, prompt: &str) -> Value {
    let mut body = Map::new();
    for p in model.required() {
        body.insert(p.name.to_string(), example_value(p, prompt));
    }
    if let Some(p) = model.parameter("prompt").filter(|p| !p.required) {
        body.insert(p.name.to_string(), example_value(p, prompt));
    }
    Value::Object(body)
}

fn example_value(p: &ParamSpec, prompt: &str) -> Value {
    if let Some(first) = p.enum_values.first() {
        return first.clone();
    }
    if let Some(variant) = p.variants.first() {
        return example_value(variant, prompt);
    }
    match p.ty {
        ParamType::String if p.format.as_deref() == Some("uri") => {
            Value::from("https://example.com/input.png")
        }
        ParamType::String => {
            let min = p.min_length.unwrap_or(0) as usize;
            let mut text = if p.name == "prompt" {
                prompt.to_string()
            } else {
                "example".to_string()
            };
            while text.chars().count() < min {
                text.push_str(" example");
            }
            Value::from(text)
        }
        ParamType::Number | ParamType::Integer => {
            let lo = p.minimum.unwrap_or(1.0);
            let n = match p.name.as_str() {
                "width" | "height" => 1024.0_f64.clamp(lo, p.maximum.unwrap_or(f64::MAX).max(lo)),
                _ => lo,
            };
            if p.ty == ParamType::Integer {
                Value::from(n.ceil() as i64)
            } else {
                Value::from(n)
            }
        }
        ParamType::Boolean => Value::Bool(false),
        ParamType::Array => {
            let item = p
                .items
                .as_deref()
                .map(|i| example_value(i, prompt))
                .unwrap_or(Value::Null);
            Value::Array(vec![item; p.min_items.unwrap_or(0) as usize])
        }
        ParamType::Object => {
            let mut map = Map::new();
            for q in p.properties.iter().filter(|q| q.required) {
                map.insert(q.name.to_string(), example_value(q, prompt));
            }
            Value::Object(map)
        }
        ParamType::Any => Value::Null,
    }
}

fn looks_like_uri(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| u.has_host() || u.scheme() == "data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model;
    use serde_json::json;

    fn flux() -> &'static ModelSpec {
        model("bfl/flux-1-dev").expect("flux")
    }

    fn problems(body: Value) -> Vec<String> {
        validate(flux(), &body)
            .iter()
            .map(Violation::to_string)
            .collect()
    }

    #[test]
    fn a_valid_body_has_no_violations() {
        assert!(problems(json!({"prompt": "a lighthouse", "width": 1024, "steps": 28})).is_empty());
    }

    #[test]
    fn names_each_class_of_problem_and_what_is_allowed() {
        assert_eq!(problems(json!({})), ["prompt: is required"]);
        let unknown = problems(json!({"prompt": "x", "colour": "red"}));
        assert!(
            unknown[0].starts_with("colour: is not a known field (allowed: prompt, "),
            "{unknown:?}"
        );
        let typo = problems(json!({"prompt": "x", "widht": 512}));
        assert!(
            typo[0].starts_with("widht: is not a known field (did you mean width? allowed: "),
            "{typo:?}"
        );
        assert_eq!(
            problems(json!({"prompt": "x", "width": 4000})),
            ["width: 4000 is above the maximum 2368 (allowed 512-2368)"]
        );
        assert_eq!(
            problems(json!({"prompt": "x", "steps": 2.5})),
            ["steps: must be a whole number, not a number 2.5"]
        );
        assert_eq!(
            problems(json!({"prompt": 5})),
            ["prompt: must be a string, not a number 5"]
        );
        assert_eq!(
            problems(json!({"prompt": "x".repeat(1801)})),
            ["prompt: is 1801 characters; at most 1800 are allowed"]
        );
        assert_eq!(
            problems(json!({"prompt": "x", "image_url": "not a url"})),
            ["image_url: \"not a url\" is not an absolute URL (https://...)"]
        );
    }

    #[test]
    fn checks_nested_items() {
        let p = problems(json!({"prompt": "x", "styles": [{"id": "s", "strength": 3}]}));
        assert_eq!(
            p,
            ["styles[0].strength: 3 is above the maximum 2 (allowed -2 to 2)"]
        );
        let p = problems(json!({"prompt": "x", "styles": [{"strength": 1}]}));
        assert_eq!(p, ["styles[0].id: is required"]);
    }

    #[test]
    fn checks_enums_with_the_allowed_values() {
        let kling = model("kling/kling-2.1").expect("kling");
        let v = validate(kling, &json!({"prompt": "waves", "duration": 7}));
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].to_string(),
            "duration: 7 is not allowed (one of: 5, 10)"
        );
        assert!(validate(kling, &json!({"prompt": "waves", "duration": 10})).is_empty());
    }

    #[test]
    fn every_model_has_a_valid_example_body() {
        for m in crate::catalog::MODELS.iter() {
            let body = example_body(m, "a lighthouse at dusk");
            assert_eq!(validate(m, &body), vec![], "{}: {body}", m.id);
            assert_eq!(
                crate::catalog::decode_body(&m.operation_id, &body),
                Some(Ok(())),
                "{}",
                m.id
            );
        }
    }

    #[test]
    fn null_is_accepted_only_where_nullable() {
        assert!(problems(json!({"prompt": "x", "image_url": null})).is_empty());
        assert_eq!(
            problems(json!({"prompt": "x", "width": null})),
            ["width: must not be null (expected number)"]
        );
    }
}
