//! The catalog tools: what models there are, what one takes, what a call would cost. None of
//! them sends a request.

use krea::models::{self, Kind};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};
use serde_json::{Value, json};

use super::Server;
use super::args::{EstimateCost, ListModels, ModelArg};
use super::reply::number;
use crate::cmd_models::{describe, detail, model_json, param_json, time, units};

#[tool_router(router = catalog_router, vis = "pub(super)")]
impl Server {
    /// Lists Krea's models: id, kind, cost in CU, typical seconds, aliases.
    #[tool(
        title = "List models",
        annotations(
            title = "List models",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_models(
        &self,
        Parameters(a): Parameters<ListModels>,
    ) -> Result<CallToolResult, ErrorData> {
        let kind = match a.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("all") => None,
            Some("image") => Some(Kind::Image),
            Some("video") => Some(Kind::Video),
            Some("enhance") | Some("upscale") => Some(Kind::Enhance),
            Some(other) => {
                return Ok(self.refused(
                    "usage",
                    &format!("kind takes image, video or enhance, not {other:?}"),
                ));
            }
        };
        let mut lines = Vec::new();
        let mut list = Vec::new();
        let found = models::search(a.search.as_deref().unwrap_or_default());
        for m in found.filter(|m| kind.is_none_or(|k| m.kind == k)) {
            let aliases = models::aliases_of(&m.id);
            lines.push(format!(
                "{} ({}, {}): {} CU, {}{}",
                m.id,
                m.title,
                m.kind.as_str(),
                units(&m.compute_units),
                time(m),
                if aliases.is_empty() {
                    String::new()
                } else {
                    format!("; aliases {}", aliases.join(", "))
                }
            ));
            list.push(json!({
                "id": m.id, "title": m.title, "kind": m.kind.as_str(), "aliases": aliases,
                "compute_units": units(&m.compute_units), "typical_seconds": m.typical_seconds,
            }));
        }
        let text = if lines.is_empty() {
            "no model matches; call list_models without search to see them all".to_string()
        } else {
            lines.join("\n")
        };
        Ok(self.reply(json!({"models": list}), &text, false))
    }

    /// One model's parameters (types, ranges, defaults, choices) and its price table.
    #[tool(
        title = "Model parameters and prices",
        annotations(
            title = "Model parameters and prices",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_model_schema(
        &self,
        Parameters(a): Parameters<ModelArg>,
    ) -> Result<CallToolResult, ErrorData> {
        self.answer(self.schema(&a.model, a.full_schema))
    }

    /// Prices a call in CU without sending it; says whether this server's limits allow it.
    #[tool(
        title = "Estimate a cost",
        annotations(
            title = "Estimate a cost",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn estimate_cost(
        &self,
        Parameters(a): Parameters<EstimateCost>,
    ) -> Result<CallToolResult, ErrorData> {
        self.answer(self.estimate(a))
    }
}

impl Server {
    /// What a caller needs to build a request: each parameter with its type, bounds, choices
    /// and default, and the price range. Every price row, the deprecated names and the body's
    /// JSON Schema (several times the size) only on request.
    fn schema(&self, model: &str, full: bool) -> krea::Result<CallToolResult> {
        let m = models::resolve(model)?;
        let mut structured = json!({
            "id": m.id, "title": m.title, "kind": m.kind.as_str(), "path": m.path,
            "aliases": models::aliases_of(&m.id), "typical_seconds": m.typical_seconds,
            "parameters": m.parameters.iter().map(|p| lean(param_json(p))).collect::<Vec<_>>(),
        });
        let low = m
            .compute_units
            .iter()
            .map(|r| r.compute_units)
            .min_by(f64::total_cmp);
        let high = m
            .compute_units
            .iter()
            .map(|r| r.compute_units)
            .max_by(f64::total_cmp);
        if let (Some(low), Some(high)) = (low, high) {
            structured["compute_units"] = json!({"low": low, "high": high});
        }
        let mut text = format!(
            "{} ({}), {} model, POST {}; typical time {}; {} CU",
            m.title,
            m.id,
            m.kind.as_str(),
            m.path,
            time(m),
            units(&m.compute_units)
        );
        let columns = price_columns(m);
        if full {
            let mut full_json = model_json(m);
            structured["prices"] = full_json["compute_units"].take();
            structured["deprecated_aliases"] = full_json["deprecated_aliases"].take();
            structured["json_schema"] = m.json_schema();
        } else if !columns.is_empty() {
            text.push_str(&format!(
                " by {} ({} prices: estimate_cost prices one request, full_schema lists them)",
                columns.join(", "),
                m.compute_units.len()
            ));
        }
        text.push_str("\nParameters:");
        for p in &m.parameters {
            text.push_str(&format!("\n- {}: {}", p.name, describe(p)));
            if let Some(d) = &p.description {
                text.push_str(&format!(". {d}"));
            }
        }
        if full {
            text = format!("{}\n\n{}", text, detail(m, 100));
        }
        Ok(self.reply(structured, &text, false))
    }

    fn estimate(&self, a: EstimateCost) -> krea::Result<CallToolResult> {
        let m = models::resolve(&a.model)?;
        let count = a.count.unwrap_or(1).max(1) as usize;
        let checked = self
            .ctx
            .krea
            .generate(&m.id, Value::Object(a.params))
            .check()?;
        let total = checked.worst_case.times(count);
        // Priced as a call would be, without holding anything.
        let refusal = self
            .money
            .reserve(total)
            .err()
            .map(|over| super::money::refusal(&m.id, &over));
        let mut text = format!("{count} x {} ({}): {total}", m.title, m.id);
        text.push_str(&format!(
            "; this session has spent {} CU",
            number(self.money.spent())
        ));
        if let Some(why) = &refusal {
            text.push_str(&format!(". Would be {why}"));
        }
        Ok(self.reply(
            json!({
                "model": m.id,
                "count": count,
                "estimate_cu": checked.estimate.map(|e| json!({"low": e.low, "high": e.high})),
                "total_cu": json!({"low": total.low, "high": total.high}),
                "assumed_price": total.assumed,
                "notes": checked.notes,
                "allowed": refusal.is_none(),
                "refusal": refusal,
                "session_cu": self.money.spent(),
            }),
            &text,
            false,
        ))
    }
}

/// The columns a model's prices depend on (`Duration`, `Mode`), in order of appearance.
fn price_columns(m: &models::ModelSpec) -> Vec<&str> {
    let mut columns: Vec<&str> = Vec::new();
    for (k, _) in m.compute_units.iter().flat_map(|r| r.conditions.iter()) {
        if !columns.contains(&k.as_str()) {
            columns.push(k);
        }
    }
    columns
}

/// A parameter without the members that say nothing: `required`/`nullable` when false, no
/// choices or members (empty lists), and an array item's name (`item`) and description (its
/// array's). A default of `false` or `[]` stays: it says something.
fn lean(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            map.retain(|k, v| match k.as_str() {
                "required" | "nullable" => v != &Value::Bool(false),
                "enum" | "properties" => v.as_array().is_none_or(|a| !a.is_empty()),
                _ => true,
            });
            let description = map.get("description").cloned();
            if let Some(Value::Object(item)) = map.get_mut("items") {
                item.remove("name");
                if item.get("description") == description.as_ref() {
                    item.remove("description");
                }
            }
            for v in map.values_mut() {
                *v = lean(v.take());
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = lean(v.take());
            }
        }
        _ => {}
    }
    value
}
