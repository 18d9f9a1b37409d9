//! What a request costs in compute units, from the model's published pricing table: the rows
//! whose conditions the request meets (resolution, duration, audio, mode, references...). A
//! condition the request leaves open (no value and no default) keeps every row it allows, so
//! the answer is a range. Shared by the client (estimates before paying) and the simulator
//! (what it charges), so the two agree.

use serde_json::Value;

use crate::catalog::{CostRow, ModelSpec};

/// What the request says (or the model's default says) for a pricing column; `None` when it is
/// left open.
fn requested(model: &ModelSpec, body: &Value, column: &str) -> Option<String> {
    let value_or_default = |name: &str| {
        body.get(name)
            .cloned()
            .or_else(|| model.parameter(name).and_then(|p| p.default.clone()))
    };
    let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_string();
    let count = |name: &str| body.get(name).and_then(Value::as_array).map_or(0, Vec::len);
    match column {
        "Resolution" => value_or_default("resolution").and_then(|v| v.as_str().map(String::from)),
        "Duration" => value_or_default("duration")
            .and_then(|v| v.as_f64())
            .map(|d| format!("{d}s")),
        "Audio" => Some(yes_no(
            value_or_default("generate_audio").and_then(|v| v.as_bool()) == Some(true),
        )),
        "Mode" => value_or_default("mode").and_then(|v| v.as_str().map(String::from)),
        "Model" => value_or_default("model").and_then(|v| v.as_str().map(String::from)),
        "Character Reference" => Some(yes_no(count("character_reference_images") > 0)),
        "Video Reference" => Some(yes_no(
            body.get("video_reference").is_some_and(|v| !v.is_null()),
        )),
        "LoRA" => Some(yes_no(
            count("styles") > 0 || body.get("has_lora").and_then(Value::as_bool) == Some(true),
        )),
        "Reference Images" => Some(
            [
                "reference_images",
                "image_urls",
                "style_references",
                "element_references",
            ]
            .iter()
            .map(|n| count(n))
            .sum::<usize>()
            .to_string(),
        ),
        _ => None,
    }
}

fn row_allows(model: &ModelSpec, body: &Value, row: &CostRow) -> bool {
    row.conditions.iter().all(|(column, cell)| {
        match requested(model, body, column) {
            Some(v) => v.eq_ignore_ascii_case(cell),
            // Left open: this row may apply.
            None => true,
        }
    })
}

/// The compute units `body` costs on `model`, as `(lowest, highest)` of the pricing rows the
/// request may meet; `None` when Krea publishes no pricing for the model, or no row fits.
pub fn compute_units(model: &ModelSpec, body: &Value) -> Option<(f64, f64)> {
    let units: Vec<f64> = model
        .compute_units
        .iter()
        .filter(|r| row_allows(model, body, r))
        .map(|r| r.compute_units)
        .collect();
    let low = units.iter().copied().reduce(f64::min)?;
    let high = units.iter().copied().reduce(f64::max)?;
    Some((low, high))
}
