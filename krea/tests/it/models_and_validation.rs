//! Every alias reaches the right endpoint, and every class of invalid request is refused with
//! zero requests sent.

use crate::support;

use krea::Error;
use krea_sim::Simulator;
use serde_json::json;
use support::setup;

/// DESIGN.md's aliases and where they must lead.
const ALIASES: &[(&str, &str)] = &[
    ("nano banana 2", "/generate/image/google/nano-banana-2"),
    ("nano2", "/generate/image/google/nano-banana-2"),
    ("flash", "/generate/image/google/nano-banana-2"),
    ("default", "/generate/image/google/nano-banana-2"),
    ("flux", "/generate/image/bfl/flux-1-dev"),
    ("flux-dev", "/generate/image/bfl/flux-1-dev"),
    ("bfl", "/generate/image/bfl/flux-1-dev"),
    ("imagen", "/generate/image/google/imagen-4-fast"),
    ("imagen4", "/generate/image/google/imagen-4-fast"),
    ("imagen-4", "/generate/image/google/imagen-4-fast"),
    ("google", "/generate/image/google/imagen-4-fast"),
    ("ideogram", "/generate/image/ideogram/ideogram-3"),
    ("ideogram3", "/generate/image/ideogram/ideogram-3"),
    ("ideogram-3", "/generate/image/ideogram/ideogram-3"),
    ("nano banana pro", "/generate/image/google/nano-banana-pro"),
    ("nano pro", "/generate/image/google/nano-banana-pro"),
    ("pro", "/generate/image/google/nano-banana-pro"),
    ("nano banana", "/generate/image/google/nano-banana"),
    ("nano", "/generate/image/google/nano-banana"),
    ("nano1", "/generate/image/google/nano-banana"),
    ("seedream", "/generate/image/bytedance/seedream-4"),
    ("bytedance", "/generate/image/bytedance/seedream-4"),
];

#[tokio::test]
async fn every_alias_submits_to_its_endpoint() {
    let s = setup("aliases", Simulator::builder()).await;
    for (alias, path) in ALIASES {
        s.sim.control().reset_counters();
        let model = krea::models::resolve(alias).expect("alias resolves");
        let body = krea_gen::validate::example_body(model, "a lighthouse at dusk");
        let job = s
            .krea
            .generate(alias, body)
            .submit()
            .await
            .unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert_eq!(job.model().map(|m| m.path.as_str()), Some(*path), "{alias}");
        let c = s.sim.control().counters();
        assert_eq!(
            c.requests_to(&format!("POST {path}")),
            1,
            "{alias} -> {path}: {:?}",
            c.requests
        );
    }
}

#[tokio::test]
async fn the_retired_seedream_3_is_explained_without_a_request() {
    let s = setup("retired", Simulator::builder()).await;
    for name in ["seedream3", "seedream-3"] {
        match s.krea.image(name).prompt("x").submit().await {
            Err(Error::ModelRetired { replacement, .. }) => {
                assert_eq!(replacement, "bytedance/seedream-4")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(s.sim.control().counters().total_requests(), 0);
}

#[tokio::test]
async fn each_validation_class_is_refused_with_zero_requests_sent() {
    let s = setup("invalid", Simulator::builder()).await;
    let cases: Vec<(&str, krea::GenerationRequest, &str)> = vec![
        (
            "required",
            s.krea.image("flux").width(1024),
            "prompt: is required",
        ),
        (
            "type",
            s.krea
                .generate("flux", json!({"prompt": "x", "width": "wide"})),
            "width: must be a number",
        ),
        (
            "range",
            s.krea.image("flux").prompt("x").width(9000),
            "width: 9000 is above the maximum 2368",
        ),
        (
            "enum",
            s.krea.image("nano2").prompt("a cat").aspect_ratio("7:3"),
            "aspect_ratio: \"7:3\" is not allowed",
        ),
        (
            "length",
            s.krea.image("nano2").prompt("ab"),
            "prompt: is 2 characters; at least 3",
        ),
        (
            "unknown field",
            s.krea
                .generate("flux", json!({"prompt": "x", "colour": "red"})),
            "colour: is not a known field",
        ),
        (
            "unsupported setter",
            s.krea.image("nano2").prompt("a cat").steps(20),
            "steps: google/nano-banana-2 has no such parameter",
        ),
        (
            "wrong kind",
            s.krea.image("veo").prompt("waves"),
            "is a video model, not an image",
        ),
        (
            "bad webhook",
            s.krea
                .image("flux")
                .prompt("x")
                .webhook("http://hooks.example.com/x"),
            "webhook",
        ),
    ];
    for (class, request, expected) in cases {
        match request.submit().await {
            Err(Error::InvalidRequest { problems, .. }) => {
                assert!(
                    problems.iter().any(|p| p.to_string().contains(expected)),
                    "{class}: {problems:?} lacks {expected:?}"
                );
            }
            other => panic!("{class}: {other:?}"),
        }
    }
    match s.krea.image("fluxx").prompt("x").submit().await {
        Err(Error::UnknownModel { suggestions, .. }) => {
            assert!(suggestions.iter().any(|s| s.contains("flux")))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.sim.control().counters().total_requests(),
        0,
        "nothing was sent"
    );
}

/// The simulator's document with one image model this build does not know: Flux's schema
/// under a new path, with one more parameter.
fn document_with_a_new_model() -> serde_json::Value {
    let mut doc = krea_sim::default_openapi_document();
    let mut op = doc["paths"]["/generate/image/bfl/flux-1-dev"]["post"].clone();
    op["operationId"] = json!("generate_image_newco_painter_9");
    op["x-krea-title"] = json!("Painter 9");
    op["requestBody"]["content"]["application/json"]["schema"]["properties"]["brush"] =
        json!({"type": "string", "enum": ["oil", "ink"]});
    doc["paths"]["/generate/image/newco/painter-9"] = json!({ "post": op });
    doc
}

#[tokio::test]
async fn a_model_added_after_the_build_validates_and_runs_once_the_catalog_is_refreshed() {
    let sim = Simulator::builder().openapi_document(document_with_a_new_model());
    let s = setup("refresh", sim).await;
    let cache = s.dir.join("catalog.json");
    let krea = krea::Krea::builder()
        .token(s.sim.token())
        .base_url(s.sim.api_url())
        .poll_policy(krea::PollPolicy::default().scaled(support::SCALE))
        .catalog_cache(krea::StatePath::At(cache.clone()))
        .build()
        .expect("client");

    let info = krea.refresh_catalog().await.expect("refresh");
    assert_eq!(info.models, 57);
    assert_eq!(info.not_built_in, vec!["newco/painter-9".to_string()]);
    assert!(info.gone.is_empty());
    assert_eq!(info.cache.as_deref(), Some(cache.as_path()));
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cache).expect("cache written")).expect("JSON");
    assert_eq!(cached["models"].as_array().map(Vec::len), Some(57));
    let c = s.sim.control().counters();
    assert_eq!(c.requests_with_prefix("GET /openapi.json"), 1);

    // Checked against the fetched schema before anything is sent.
    let err = krea
        .image("painter-9")
        .prompt("a cat")
        .param("brush", "crayon")
        .submit()
        .await
        .expect_err("not one of oil, ink");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
    assert_eq!(
        s.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/"),
        0
    );

    let job = krea
        .image("newco/painter-9")
        .prompt("a cat")
        .param("brush", "ink")
        .submit()
        .await
        .expect("submitted");
    let done = job.wait().await.expect("completed");
    assert_eq!(done.model_id(), Some("newco/painter-9"));
    assert_eq!(
        s.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/image/newco/painter-9"),
        1
    );
}

#[tokio::test]
async fn an_endpoint_no_catalog_lists_is_sent_unchecked_only_when_asked() {
    let s = setup("unlisted", Simulator::builder()).await;
    let err = s
        .krea
        .generate("/generate/video/nobody/ghost-1", json!({"prompt": "x"}))
        .submit()
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::UnknownModel { .. }), "{err:?}");
    let err = s
        .krea
        .generate_unchecked(
            "/generate/video/nobody/ghost-1",
            json!({"prompt": "x", "any": 1}),
        )
        .submit()
        .await
        .expect_err("the simulator has no such route");
    assert!(matches!(err, Error::Api { status: 404, .. }), "{err:?}");
    let c = s.sim.control().counters();
    assert_eq!(
        c.total_requests(),
        1,
        "sent once, as given: {:?}",
        c.requests
    );
    let err = s
        .krea
        .generate_unchecked("/jobs", json!({}))
        .check()
        .expect_err("not a generation endpoint");
    assert!(
        err.to_string().contains("not a generation endpoint"),
        "{err}"
    );
}
