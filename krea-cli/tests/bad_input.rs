//! Bad input gets its exit code and a message saying what to do, and nothing is sent.

mod support;

use krea_sim::Simulator;
use support::{code, command, env, krea, stderr};

async fn refused(args: &[&str], exit: i32, message: &str) {
    let e = env("bad", Simulator::builder()).await;
    let o = krea(&e, args).await;
    assert_eq!(code(&o), exit, "{args:?}: {}", stderr(&o));
    assert!(
        stderr(&o).contains(message),
        "{args:?}: {:?} lacks {message:?}",
        stderr(&o)
    );
    assert_eq!(
        e.sim.control().counters().total_requests(),
        0,
        "{args:?} sent a request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_model_suggests_one() {
    refused(&["image", "a cat", "-m", "nanobananna"], 2, "did you mean").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_too_short_for_the_model() {
    refused(&["image", "ab"], 2, "prompt: is 2 characters; at least 3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_width_out_of_range() {
    refused(
        &["image", "a cat", "-m", "flux", "--width", "4000"],
        2,
        "width: 4000 is above the maximum 2368",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_file() {
    refused(
        &["image", "a cat", "--image", "nope.png"],
        2,
        "cannot read nope.png",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_body() {
    refused(
        &["run", "flux", "--body", "@missing.json"],
        2,
        "cannot read --body file missing.json",
    )
    .await;
    refused(
        &["run", "flux", "--body", "{not json"],
        2,
        "--body is not valid JSON",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_model_names_its_replacement() {
    refused(
        &["image", "a cat", "-m", "seedream-3"],
        2,
        "use bytedance/seedream-4 instead",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_says_how_to_get_one() {
    let e = support::env("notoken", Simulator::builder()).await;
    let mut cmd = command(&e);
    cmd.env_remove("KREA_API_TOKEN").args(["image", "a cat"]);
    let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    assert_eq!(code(&o), 3);
    assert_eq!(
        stderr(&o).trim(),
        "error: Krea API token not configured: set KREA_API_TOKEN (create one at https://krea.ai/settings/api-tokens) or use --sim"
    );
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    refused(&["image"], 2, "PROMPT").await;
    refused(&["--poll", "often", "image", "a cat"], 2, "--poll").await;
}
