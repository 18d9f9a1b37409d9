//! The catalog as Rust source: a `static MODELS: &[ModelSpec]` of `'static` data, so the
//! libraries carry it with no JSON parsing at run time. The types it names are krea-gen's
//! `catalog` module.

use std::fmt::Write;

use serde_json::Value;

use crate::catalog::{CostRow, FieldAlias, Kind, ModelSpec, ParamSpec, ParamType};

fn opt_str(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("Some({s:?})"),
        None => "None".into(),
    }
}

fn opt_f64(v: Option<f64>) -> String {
    match v {
        Some(v) => format!("Some({v:?})"),
        None => "None".into(),
    }
}

fn opt_u64(v: Option<u64>) -> String {
    match v {
        Some(v) => format!("Some({v})"),
        None => "None".into(),
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::Null => "Literal::Null".into(),
        Value::Bool(b) => format!("Literal::Bool({b})"),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => format!("Literal::Int({i})"),
            (None, Some(f)) => format!("Literal::Float({f:?})"),
            (None, None) => format!("Literal::Json({:?})", n.to_string()),
        },
        Value::String(s) => format!("Literal::Str({s:?})"),
        other => format!("Literal::Json({:?})", other.to_string()),
    }
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Image => "Kind::Image",
        Kind::Video => "Kind::Video",
        Kind::Enhance => "Kind::Enhance",
    }
}

fn ty(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "ParamType::String",
        ParamType::Number => "ParamType::Number",
        ParamType::Integer => "ParamType::Integer",
        ParamType::Boolean => "ParamType::Boolean",
        ParamType::Array => "ParamType::Array",
        ParamType::Object => "ParamType::Object",
        ParamType::Any => "ParamType::Any",
    }
}

fn params(list: &[ParamSpec]) -> String {
    let items: Vec<String> = list.iter().map(param).collect();
    format!("&[{}]", items.join(", "))
}

fn param(p: &ParamSpec) -> String {
    let enums: Vec<String> = p.enum_values.iter().map(literal).collect();
    format!(
        "ParamSpec {{ name: {:?}, ty: {}, required: {}, nullable: {}, description: {}, default: {}, \
         minimum: {}, maximum: {}, min_length: {}, max_length: {}, min_items: {}, max_items: {}, \
         enum_values: &[{}], format: {}, pattern: {}, items: {}, properties: {}, \
         additional_properties: {}, null_only: &[{}], variants: {} }}",
        p.name,
        ty(p.ty),
        p.required,
        p.nullable,
        opt_str(&p.description),
        p.default
            .as_ref()
            .map_or("None".into(), |d| format!("Some({})", literal(d))),
        opt_f64(p.minimum),
        opt_f64(p.maximum),
        opt_u64(p.min_length),
        opt_u64(p.max_length),
        opt_u64(p.min_items),
        opt_u64(p.max_items),
        enums.join(", "),
        opt_str(&p.format),
        opt_str(&p.pattern),
        p.items
            .as_ref()
            .map_or("None".into(), |i| format!("Some(&{})", param(i))),
        params(&p.properties),
        p.additional_properties,
        p.null_only
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        params(&p.variants),
    )
}

fn cost(row: &CostRow) -> String {
    let conds: Vec<String> = row
        .conditions
        .iter()
        .map(|(k, v)| format!("({k:?}, {v:?})"))
        .collect();
    format!(
        "CostRow {{ conditions: &[{}], compute_units: {:?}, seconds: {} }}",
        conds.join(", "),
        row.compute_units,
        opt_f64(row.seconds)
    )
}

fn alias(a: &FieldAlias) -> String {
    format!(
        "FieldAlias {{ from: {:?}, to: {:?}, sunset_date: {}, migration_url: {} }}",
        a.from,
        a.to,
        opt_str(&a.sunset_date),
        opt_str(&a.migration_url)
    )
}

/// `pub static MODELS: &[ModelSpec] = &[...];` for `models`, expecting the catalog types
/// (`ModelSpec`, `ParamSpec`, `Literal`...) in scope.
pub fn catalog_source(models: &[ModelSpec]) -> String {
    let mut out = String::from(
        "/// Every generation model of the vendored description, sorted by id.\npub static MODELS: &[ModelSpec] = &[\n",
    );
    for m in models {
        let costs: Vec<String> = m.compute_units.iter().map(cost).collect();
        let aliases: Vec<String> = m.deprecated_aliases.iter().map(alias).collect();
        let _ = writeln!(
            out,
            "    ModelSpec {{ id: {:?}, provider: {:?}, slug: {:?}, kind: {}, title: {:?}, \
             path: {:?}, operation_id: {:?}, parameters: {}, additional_properties: {}, \
             compute_units: &[{}], typical_seconds: {}, deprecated_aliases: &[{}], deprecated: {} }},",
            m.id,
            m.provider,
            m.slug,
            kind(m.kind),
            m.title,
            m.path,
            m.operation_id,
            params(&m.parameters),
            m.additional_properties,
            costs.join(", "),
            opt_f64(m.typical_seconds),
            aliases.join(", "),
            m.deprecated,
        );
    }
    out.push_str("];\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn literals_keep_their_json_type() {
        assert_eq!(literal(&json!(5)), "Literal::Int(5)");
        assert_eq!(literal(&json!(1.5)), "Literal::Float(1.5)");
        assert_eq!(literal(&json!("16:9")), "Literal::Str(\"16:9\")");
        assert_eq!(literal(&json!([1])), "Literal::Json(\"[1]\")");
    }

    #[test]
    fn emits_a_static_slice_with_escaped_text() {
        let model = ModelSpec {
            id: "a/b".into(),
            provider: "a".into(),
            slug: "b".into(),
            kind: Kind::Video,
            title: "Quote \" and\nnewline".into(),
            path: "/generate/video/a/b".into(),
            operation_id: "generate_video_a_b".into(),
            parameters: vec![],
            additional_properties: false,
            compute_units: vec![CostRow {
                conditions: vec![("Duration".into(), "5s".into())],
                compute_units: 60.1,
                seconds: None,
            }],
            typical_seconds: Some(7.0),
            deprecated_aliases: vec![],
            deprecated: false,
        };
        let src = catalog_source(&[model]);
        assert!(src.starts_with("/// Every generation model"));
        assert!(src.contains(r#"title: "Quote \" and\nnewline""#), "{src}");
        assert!(
            src.contains(r#"conditions: &[("Duration", "5s")], compute_units: 60.1"#),
            "{src}"
        );
        assert!(src.contains("typical_seconds: Some(7.0)"));
    }
}
