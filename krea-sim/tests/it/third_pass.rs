//! What independent tools found in the simulator's third review, each checked with raw requests
//! as an outside client sends them: auth challenges, whole-number floats in style training,
//! deprecated-field reporting, random ids, stamps, and enhance jobs that upscale their input.

use crate::support;

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use krea_sim::Simulator;
use serde_json::{Value, json};
use support::{get, http, job_id, post, start, upload, wait};

const FLUX: &str = "/generate/image/bfl/flux-1-dev";

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

#[tokio::test]
async fn a_401_carries_a_bearer_challenge_and_the_scheme_is_case_insensitive() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let url = format!("{}/jobs", sim.api_url());
    let bare = http().get(&url).send().await.expect("send");
    assert_eq!(bare.status(), 401);
    assert_eq!(bare.headers()["www-authenticate"], "Bearer realm=\"krea\"");
    let wrong = http()
        .get(&url)
        .header("authorization", "Bearer not-the-token")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Bearer realm=\"krea\", error=\"invalid_token\""
    );
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let r = http()
            .get(&url)
            .header("authorization", format!("{scheme} {}", sim.token()))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let basic = http()
        .get(&url)
        .header("authorization", format!("Basic {}", sim.token()))
        .send()
        .await
        .expect("send");
    assert_eq!(basic.status(), 401, "another scheme is not a bearer token");
}

#[tokio::test]
async fn style_training_takes_whole_number_floats_and_refuses_fractions() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let body = |steps: Value| json!({"name": "s", "urls": ["https://example.com/a.png"], "max_train_steps": steps});
    let whole = post(&sim, "/styles/train", &body(json!(5.0))).await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    let fraction = post(&sim, "/styles/train", &body(json!(5.5))).await;
    assert_eq!(fraction.status, 400);
    assert!(
        fraction.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("max_train_steps")),
        "{:?}",
        fraction.body
    );
    let listed = get(&sim, "/jobs?types=loraTraining").await.body;
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
}

#[tokio::test]
async fn every_retired_field_is_reported_and_conflicting_duplicates_are_refused() {
    let after = start(Simulator::builder().today(day("2026-07-01"))).await;
    let r = post(
        &after,
        FLUX,
        &json!({"prompt": "x", "imageUrl": "https://example.com/a.png", "styleImages": []}),
    )
    .await;
    assert_eq!(r.status, 400);
    let message = r.body["error"].as_str().expect("message");
    for word in ["imageUrl", "image_url", "styleImages", "style_images"] {
        assert!(message.contains(word), "{word} in {message}");
    }
    let fields: Vec<&str> = r.body["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, ["imageUrl", "styleImages"]);

    let before = start(
        Simulator::builder()
            .time_scale(0.0)
            .today(day("2026-06-01")),
    )
    .await;
    let veo = "/generate/video/google/veo-3";
    let conflict = post(
        &before,
        veo,
        &json!({"prompt": "x", "aspectRatio": "9:16", "aspect_ratio": "16:9"}),
    )
    .await;
    assert_eq!(conflict.status, 400, "{:?}", conflict.body);
    let message = conflict.body["error"].as_str().expect("message");
    assert!(
        message.contains("aspectRatio and aspect_ratio"),
        "names both: {message}"
    );
    let agreeing = post(
        &before,
        veo,
        &json!({"prompt": "x", "aspectRatio": "16:9", "aspect_ratio": "16:9"}),
    )
    .await;
    assert_eq!(agreeing.status, 200, "{:?}", agreeing.body);
    assert_eq!(agreeing.headers["deprecation"], "true");
    assert_eq!(
        before.control().counters().jobs_created,
        1,
        "only the agreeing request"
    );
}

#[tokio::test]
async fn ids_are_random_unless_a_seed_is_given() {
    async fn first_id(builder: krea_sim::SimBuilder) -> String {
        let sim = start(builder.time_scale(0.0)).await;
        job_id(&post(&sim, FLUX, &json!({"prompt": "x"})).await.body)
    }
    let (a, b) = (
        first_id(Simulator::builder()).await,
        first_id(Simulator::builder()).await,
    );
    assert_ne!(a, b, "two runs never share a job id");
    let (c, d) = (
        first_id(Simulator::builder().seed(5)).await,
        first_id(Simulator::builder().seed(5)).await,
    );
    assert_eq!(c, d, "a seed repeats them");
}

fn stamp(job: &Value, key: &str) -> DateTime<Utc> {
    let text = job[key].as_str().expect("a stamp");
    let fraction = text
        .rsplit_once('.')
        .map(|(_, f)| f.trim_end_matches('Z'))
        .unwrap_or_default();
    assert_eq!(fraction.len(), 3, "milliseconds: {text}");
    text.parse().expect("RFC 3339")
}

#[tokio::test]
async fn jobs_are_stamped_in_milliseconds_after_their_request_arrived_and_listed_newest_first() {
    let sim = start(
        Simulator::builder()
            .time_scale(0.0)
            .commit_delay(Duration::from_millis(20)),
    )
    .await;
    let sent = Utc::now();
    let answer = post(&sim, FLUX, &json!({"prompt": "x"})).await.body;
    let received = Utc::now();
    let created = stamp(&answer, "created_at");
    assert!(
        created >= sent + chrono::Duration::milliseconds(19) && created <= received,
        "stamped after the commit delay, before the answer: sent {sent}, created {created}, received {received}"
    );
    let (done, _) = wait(&sim, &job_id(&answer)).await;
    stamp(&done, "completed_at");

    let posts = (0..30).map(|i| {
        let sim = &sim;
        async move { post(sim, FLUX, &json!({"prompt": format!("{i}")})).await }
    });
    futures_util::future::join_all(posts).await;
    let listed = get(&sim, "/jobs?limit=100").await.body;
    let stamps: Vec<DateTime<Utc>> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|j| stamp(j, "created_at"))
        .collect();
    assert_eq!(stamps.len(), 31);
    assert!(
        stamps.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {stamps:?}"
    );
}

/// A 4 x 2 PNG: left half red, right half blue.
fn two_colours() -> Vec<u8> {
    let image = image::RgbImage::from_fn(4, 2, |x, _| {
        if x < 2 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    out.into_inner()
}

/// Enhances `image_url` to 64 x 64 PNG and returns the result's pixels.
async fn enhanced(sim: &Simulator, image_url: &str) -> image::RgbImage {
    let body = json!({"image_url": image_url, "width": 64, "height": 64, "output_format": "png", "model": "Standard V2"});
    let answer = post(sim, "/generate/enhance/topaz/standard-enhance", &body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let (done, _) = wait(sim, &job_id(&answer.body)).await;
    let url = done["result"]["urls"][0].as_str().expect("a file");
    let bytes = support::download(url).await;
    image::load_from_memory(&bytes).expect("an image").to_rgb8()
}

#[tokio::test]
async fn an_enhance_job_upscales_its_input_where_the_simulator_can_reach_it() {
    let sim = start(Simulator::builder().time_scale(0.0)).await;
    let asset: Value = upload(&sim, two_colours(), "two.png")
        .await
        .json()
        .await
        .expect("asset");
    let asset_url = asset["image_url"].as_str().expect("asset url");
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(two_colours())
    );
    for input in [asset_url, data_url.as_str()] {
        let out = enhanced(&sim, input).await;
        assert_eq!(out.dimensions(), (64, 64));
        // Above the label band: the input's halves, scaled.
        assert_eq!(out.get_pixel(5, 5).0, [255, 0, 0], "{input:.40}");
        assert_eq!(out.get_pixel(60, 5).0, [0, 0, 255], "{input:.40}");
    }
    // A result of another job here is reachable too: its picture, scaled.
    let flux = post(
        &sim,
        FLUX,
        &json!({"prompt": "x", "width": 512, "height": 512}),
    )
    .await;
    let (done, _) = wait(&sim, &job_id(&flux.body)).await;
    let source_url = done["result"]["urls"][0].as_str().expect("a file");
    let source = image::load_from_memory(&support::download(source_url).await)
        .expect("image")
        .to_rgb8();
    let out = enhanced(&sim, source_url).await;
    assert_eq!(out.get_pixel(8, 8), source.get_pixel(64, 64));
    // Out of reach: a stand-in, not the input.
    let elsewhere = enhanced(&sim, "https://example.com/two.png").await;
    assert_ne!(elsewhere.get_pixel(5, 5).0, [255, 0, 0]);
}
