//! The static model catalog the build script emits.

use krea_gen::catalog::{self, Kind, ParamType, MODELS};
use serde_json::json;

#[test]
fn holds_all_56_generation_models_with_unique_ids() {
    assert_eq!(MODELS.len(), 56);
    let mut ids: Vec<&str> = MODELS.iter().map(|m| m.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 56, "sorted and unique");
    let count = |k: Kind| MODELS.iter().filter(|m| m.kind == k).count();
    assert_eq!(
        (count(Kind::Image), count(Kind::Video), count(Kind::Enhance)),
        (22, 31, 3)
    );
}

#[test]
fn flux_has_its_parameters_timing_cost_and_aliases() {
    let flux = catalog::model("bfl/flux-1-dev").expect("flux");
    assert_eq!(flux.path, "/generate/image/bfl/flux-1-dev");
    assert_eq!(flux.operation_id, "generate_image_bfl_flux_1_dev");
    assert_eq!(flux.typical_seconds, Some(7.0));
    assert_eq!(flux.min_compute_units(), Some(3.0));
    let prompt = flux.parameter("prompt").expect("prompt");
    assert!(prompt.required);
    assert_eq!(prompt.max_length, Some(1800));
    let width = flux.parameter("width").expect("width");
    assert_eq!(
        (width.ty, width.minimum, width.maximum),
        (ParamType::Number, Some(512.0), Some(2368.0))
    );
    assert_eq!(width.default, Some(json!(1024)));
    assert!(flux
        .deprecated_aliases
        .iter()
        .any(|a| a.from == "imageUrl" && a.to == "image_url"));
    assert!(!flux.additional_properties);
}

#[test]
fn video_durations_are_enumerated() {
    let kling = catalog::model("kling/kling-2.1").expect("kling 2.1");
    let duration = kling.parameter("duration").expect("duration");
    assert_eq!(duration.ty, ParamType::Integer);
    assert_eq!(duration.enum_values, [json!(5), json!(10)]);
    assert!(kling.compute_units.iter().any(|r| r
        .conditions
        .iter()
        .any(|(k, v)| k == "Mode" && v == "master")));
}

#[test]
fn lookup_by_path_finds_the_same_model() {
    let veo = catalog::by_path("/generate/video/google/veo-3.1-fast").expect("veo");
    assert_eq!(veo.id, "google/veo-3.1-fast");
    assert_eq!(veo.kind, Kind::Video);
}

#[test]
fn bodies_decode_through_the_generated_types() {
    use serde_json::json;
    let ok = catalog::decode_body(
        "generate_image_bfl_flux_1_dev",
        &json!({"prompt": "x", "steps": 20}),
    );
    assert_eq!(ok, Some(Ok(())));
    let unknown = catalog::decode_body(
        "generate_image_bfl_flux_1_dev",
        &json!({"prompt": "x", "colour": 1}),
    );
    assert!(unknown
        .expect("generation op")
        .expect_err("unknown field")
        .contains("colour"));
    assert_eq!(catalog::decode_body("get_job", &json!({})), None);
    for m in MODELS.iter() {
        assert!(
            catalog::decode_body(&m.operation_id, &json!({})).is_some(),
            "{} has a body type",
            m.id
        );
    }
}

#[test]
fn every_model_has_a_json_schema_for_its_body() {
    for m in MODELS.iter() {
        let json = m.json_schema();
        assert!(
            json["properties"].get("prompt").is_some() || m.kind == Kind::Enhance,
            "{}",
            m.id
        );
        assert_eq!(json["type"], "object");
        // Every valid example body is valid against it too: required fields all listed.
        let example = krea_gen::validate::example_body(m, "a lighthouse");
        for r in json["required"].as_array().into_iter().flatten() {
            assert!(
                example.get(r.as_str().expect("name")).is_some(),
                "{}: {r}",
                m.id
            );
        }
    }
    let flux = catalog::model("bfl/flux-1-dev").expect("flux");
    let schema = flux.json_schema();
    assert_eq!(schema["properties"]["steps"]["maximum"], 100.0);
    assert_eq!(
        schema["properties"]["prompt"]["description"],
        "What to generate, in words."
    );
}
