//! The token never shows up in Debug or Display of the client, its configuration, or any error.

use crate::support;

use std::time::Duration;

use krea::{Error, Krea};
use krea_sim::{Fault, Simulator};

const SENTINEL: &str = "sentinel-token-8c1f0e6a2d";

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SENTINEL), "{what} leaks the token: {text}");
}

#[tokio::test]
async fn no_debug_or_display_contains_the_token() {
    let sim = Simulator::builder()
        .token(SENTINEL)
        .time_scale(0.001)
        .fault(
            "POST /generate/image/google/imagen-4",
            Fault::ResetAfterBody,
            1.0,
        )
        .start()
        .await
        .expect("sim");
    let dir = support::scratch("secrets");
    let builder = Krea::builder()
        .token(SENTINEL)
        .base_url(sim.api_url())
        .journal(krea::StatePath::At(dir.join("j.jsonl")))
        .timings(krea::StatePath::Disabled);
    assert_clean("KreaBuilder Debug", &format!("{builder:?}"));
    let krea = builder.build().expect("client");
    assert_clean("Krea Debug", &format!("{krea:?}"));
    assert_clean("raw client Debug", &format!("{:?}", krea.raw()));

    let mut errors: Vec<Error> = Vec::new();
    let wrong = Krea::builder()
        .token("wrong")
        .base_url(sim.api_url())
        .journal(krea::StatePath::Disabled)
        .build()
        .expect("client");
    errors.push(
        wrong
            .image("flux")
            .prompt("x")
            .submit()
            .await
            .expect_err("401"),
    );
    errors.push(
        krea.image("flux")
            .prompt("x")
            .width(1)
            .submit()
            .await
            .expect_err("invalid"),
    );
    errors.push(krea.image("imagen-4").submit().await.expect_err("invalid"));
    errors.push(
        krea.generate("google/imagen-4", serde_json::json!({"prompt": "x"}))
            .submit()
            .await
            .expect_err("reset"),
    );
    errors.push(krea.jobs().get(uuid::Uuid::nil()).await.expect_err("404"));
    errors.push(
        Krea::builder()
            .token(SENTINEL)
            .base_url("http://example.com")
            .build()
            .expect_err("http refused"),
    );
    let job = krea
        .image("flux")
        .prompt("x")
        .poll_policy(
            krea::PollPolicy::default()
                .scaled(0.001)
                .with_deadline(Duration::from_millis(1)),
        )
        .submit()
        .await
        .expect("job");
    errors.push(job.wait().await.expect_err("timeout"));
    assert_clean("JobHandle Debug", &format!("{job:?}"));
    for e in &errors {
        assert_clean("error Display", &e.to_string());
        assert_clean("error Debug", &format!("{e:?}"));
    }
    assert!(
        matches!(errors[0], Error::Unauthorized { .. }),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(errors[3], Error::OutcomeUnknown { .. }),
        "{:?}",
        errors[3]
    );
    let journal = std::fs::read_to_string(dir.join("j.jsonl")).unwrap_or_default();
    assert_clean("the journal", &journal);
    let _ = std::fs::remove_dir_all(&dir);
}
