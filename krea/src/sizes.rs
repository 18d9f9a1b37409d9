//! Filling in what a model requires and the request left out, so a prompt alone is enough:
//! width and height from the aspect ratio asked for (or the model's default ratio, else
//! square), an aspect ratio or resolution from the model's default (else its first allowed
//! value), an enhancer's size from the input image and a scale, its variant from the default.
//! Every value chosen this way is reported as a note.

use serde_json::{Map, Value, json};

use crate::Problem;
use crate::models::{Kind, ModelSpec, ParamSpec};
use krea_gen::catalog::value_text;

/// Pixels of the default image (1024 x 1024) and video (1280 x 720) areas.
const IMAGE_AREA: f64 = 1024.0 * 1024.0;
const VIDEO_AREA: f64 = 1280.0 * 720.0;

/// `"16:9"` -> 16/9.
pub(crate) fn parse_ratio(text: &str) -> Option<f64> {
    let (w, h) = text.split_once(':')?;
    let (w, h): (f64, f64) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0.0 && h > 0.0 && w.is_finite() && h.is_finite()).then(|| w / h)
}

fn clamp(v: f64, p: Option<&ParamSpec>) -> u32 {
    let lo = p.and_then(|p| p.minimum).unwrap_or(1.0);
    let hi = p.and_then(|p| p.maximum).unwrap_or(f64::MAX);
    v.clamp(lo, hi).round() as u32
}

/// A width and height of about the model's usual area with `ratio`, on a grid of 64 pixels for
/// images (16 for videos), inside the model's bounds.
pub(crate) fn size_for_ratio(model: &ModelSpec, ratio: f64) -> (u32, u32) {
    let (area, grid) = match model.kind {
        Kind::Video => (VIDEO_AREA, 16.0),
        Kind::Image | Kind::Enhance => (IMAGE_AREA, 64.0),
    };
    let w = ((area * ratio).sqrt() / grid).round() * grid;
    let h = ((area / ratio).sqrt() / grid).round() * grid;
    (
        clamp(w, model.parameter("width")),
        clamp(h, model.parameter("height")),
    )
}

/// The default (else first allowed) value of `p`.
fn preset(p: &ParamSpec) -> Option<Value> {
    p.default.clone().or_else(|| p.enum_values.first().cloned())
}

/// What an enhancer's output size comes from when the request does not give one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SourceImage {
    pub width: u32,
    pub height: u32,
}

/// Fills `params` for `model`; returns notes (values chosen) and problems (values that
/// cannot be chosen).
/// Where a missing size is reported: both fields at once.
pub(crate) const SIZE: &str = "width, height";

pub(crate) fn fill(
    model: &ModelSpec,
    params: &mut Map<String, Value>,
    ratio_hint: Option<&str>,
    source: Option<SourceImage>,
    scale: Option<f64>,
) -> (Vec<String>, Vec<Problem>) {
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let required = |name: &str| model.parameter(name).is_some_and(|p| p.required);
    let missing = |params: &Map<String, Value>, name: &str| !params.contains_key(name);

    if model.kind == Kind::Enhance {
        if let Some(p) = model.parameter("image_scaling_factor")
            && let Some(s) = scale
            && missing(params, &p.name)
        {
            params.insert(p.name.clone(), json!(s));
        }
        if required("width") && (missing(params, "width") || missing(params, "height")) {
            let factor = scale.unwrap_or(2.0);
            match source {
                Some(src) => {
                    let w = clamp(f64::from(src.width) * factor, model.parameter("width"));
                    let h = clamp(f64::from(src.height) * factor, model.parameter("height"));
                    params.insert("width".into(), json!(w));
                    params.insert("height".into(), json!(h));
                    notes.push(format!(
                        "output size {w}x{h}: the input's {}x{} times {factor}",
                        src.width, src.height
                    ));
                }
                None => problems.push(Problem::at(
                    SIZE,
                    "required; give both, or a local image (its size is read) to scale (2x unless a scale is given)",
                )),
            }
        }
    }

    if model.kind != Kind::Enhance
        && required("width")
        && required("height")
        && (missing(params, "width") || missing(params, "height"))
    {
        let from_param = params
            .get("aspect_ratio")
            .and_then(Value::as_str)
            .map(String::from);
        let default_ratio = model
            .parameter("aspect_ratio")
            .and_then(|p| p.default.as_ref())
            .map(value_text);
        let (ratio_text, ratio) = from_param
            .or_else(|| ratio_hint.map(String::from))
            .or(default_ratio)
            .and_then(|t| parse_ratio(&t).map(|r| (t, r)))
            .unwrap_or_else(|| ("1:1".into(), 1.0));
        let (w, h) = size_for_ratio(model, ratio);
        params.entry("width").or_insert(json!(w));
        params.entry("height").or_insert(json!(h));
        notes.push(format!(
            "size {w}x{h} ({ratio_text}) chosen: {} requires a size (give a width and height, or an aspect ratio, to choose another)",
            model.id
        ));
    }

    for name in ["aspect_ratio", "resolution", "model"] {
        let Some(p) = model.parameter(name).filter(|p| p.required) else {
            continue;
        };
        if !missing(params, name) {
            continue;
        }
        let hinted = (name == "aspect_ratio")
            .then_some(ratio_hint)
            .flatten()
            .filter(|h| {
                p.enum_values.is_empty() || p.enum_values.iter().any(|v| v.as_str() == Some(*h))
            })
            .map(|h| json!(h));
        let square = (name == "aspect_ratio")
            .then(|| {
                p.enum_values
                    .iter()
                    .find(|v| v.as_str() == Some("1:1"))
                    .cloned()
            })
            .flatten();
        match hinted.or(square).or_else(|| preset(p)) {
            Some(v) => {
                notes.push(format!(
                    "{name} {v} chosen: {} requires one (set {name} to choose another)",
                    model.id
                ));
                params.insert(name.into(), v);
            }
            None => problems.push(Problem::at(name, format!("required by {}", model.id))),
        }
    }
    (notes, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> &'static ModelSpec {
        krea_gen::catalog::model(id).expect("in the catalog")
    }

    #[test]
    fn ratios_become_sizes_on_the_grid_and_inside_bounds() {
        let seedream = model("bytedance/seedream-4");
        assert_eq!(size_for_ratio(seedream, 16.0 / 9.0), (1344, 768));
        assert_eq!(size_for_ratio(seedream, 1.0), (1024, 1024));
        let pro = model("bfl/flux-1.1-pro");
        let (w, h) = size_for_ratio(pro, 21.0 / 9.0);
        assert!(w <= 1440 && h >= 256, "{w}x{h}");
        assert_eq!(
            size_for_ratio(model("alibaba/wan-2.1"), 16.0 / 9.0),
            (1280, 720)
        );
        assert_eq!(parse_ratio("16:9"), Some(16.0 / 9.0));
        assert_eq!(parse_ratio("0:9"), None);
    }

    #[test]
    fn a_prompt_alone_is_enough_and_each_choice_is_noted() {
        let mut p = Map::new();
        let (notes, problems) = fill(model("bytedance/seedream-4"), &mut p, None, None, None);
        assert!(problems.is_empty());
        assert_eq!(
            (p["width"].clone(), p["height"].clone()),
            (json!(1024), json!(1024))
        );
        assert_eq!(notes.len(), 1, "{notes:?}");

        let mut p = Map::new();
        let (notes, _) = fill(model("z-image/z-image"), &mut p, Some("16:9"), None, None);
        assert_eq!(p["aspect_ratio"], "16:9");
        assert_eq!(p["resolution"], "1K");
        assert_eq!(notes.len(), 2);

        let mut p = Map::new();
        fill(model("bfl/flux-1.1-pro"), &mut p, Some("16:9"), None, None);
        assert_eq!(
            (p["width"].clone(), p["height"].clone()),
            (json!(1344), json!(768))
        );
    }

    #[test]
    fn an_enhancer_takes_its_size_from_the_input_and_its_variant_from_the_default() {
        let topaz = model("topaz/standard-enhance");
        let mut p = Map::new();
        let src = SourceImage {
            width: 512,
            height: 256,
        };
        let (notes, problems) = fill(topaz, &mut p, None, Some(src), Some(4.0));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (p["width"].clone(), p["height"].clone()),
            (json!(2048), json!(1024))
        );
        assert!(p.contains_key("model"), "a variant was chosen: {p:?}");
        assert_eq!(notes.len(), 2);
        let (_, problems) = fill(topaz, &mut Map::new(), None, None, None);
        assert_eq!(problems.len(), 1, "a URL input gives no size: {problems:?}");
    }
}
