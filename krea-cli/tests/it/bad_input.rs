//! Bad input gets its exit code and a message saying what to do, and nothing is sent.

use crate::support;

use krea_sim::Simulator;
use support::{code, command, env, krea, stderr, stdout};

async fn refused(args: &[&str], exit: i32, message: &str) {
    refused_beside(&[], args, exit, message).await;
}

/// As [`refused`], with `files` already in the working directory.
async fn refused_beside(files: &[&str], args: &[&str], exit: i32, message: &str) {
    let e = env("bad", Simulator::builder()).await;
    for f in files {
        std::fs::write(e.dir.join(f), b"already here").expect("write");
    }
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
        "error: Krea API token not configured: run `krea auth login`, or set KREA_API_TOKEN (create a token at https://krea.ai/settings/api-tokens); or try everything with --sim"
    );
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    refused(&["image"], 2, "PROMPT").await;
    refused(&["--poll", "often", "image", "a cat"], 2, "--poll").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_written_is_refused_before_paying() {
    let exists = ["taken.png"];
    refused_beside(
        &exists,
        &["image", "a cat", "-o", "taken.png"],
        2,
        "taken.png exists",
    )
    .await;
    let file = ["afile"];
    let not_dir = "afile is a file, not a directory";
    refused_beside(&file, &["image", "a cat", "-o", "afile"], 2, not_dir).await;
    refused_beside(
        &file,
        &["image", "a cat", "-n", "2", "-o", "afile"],
        2,
        not_dir,
    )
    .await;
    refused(
        &["video", "waves", "-o", "clip.png"],
        2,
        "needs one of the extensions",
    )
    .await;
    let e = env("bad-batch", Simulator::builder()).await;
    std::fs::write(e.dir.join("prompts.txt"), "a cat\na dog\n").expect("write");
    std::fs::write(e.dir.join("afile"), b"x").expect("write");
    let o = krea(&e, &["batch", "prompts.txt", "-o", "afile"]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("afile"),
        "names the path: {}",
        stderr(&o)
    );
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_parameter_and_a_model_of_another_kind_point_to_the_fix() {
    refused(
        &["image", "a cat", "-m", "flux", "-p", "widht=512"],
        2,
        "did you mean width?",
    )
    .await;
    let veo = "/generate/video/google/veo-3.1-fast";
    refused(&["image", "a cat", "-m", veo], 2, "run it with `krea video").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generation_path_ending_in_a_known_slug_resolves() {
    let e = env("path", Simulator::builder()).await;
    let path = "/generate/image/google/nano-banana-flash";
    let o = krea(&e, &["image", "a cat", "-m", path, "--dry-run"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("POST /generate/image/google/"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blank_prompt_is_not_paid_for() {
    refused(&["image", "   ", "-m", "flux"], 2, "prompt: is empty").await;
    refused(&["video", "\t \n"], 2, "prompt: is empty").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_written_is_found_before_paying() {
    // A file where the directory should be, as `-o DIR/` and as a directory below it.
    refused_beside(
        &["taken"],
        &["image", "a cat", "-m", "flux", "-o", "taken/"],
        2,
        "taken is a file, not a directory",
    )
    .await;
    refused_beside(
        &["taken"],
        &["image", "a cat", "-m", "flux", "-o", "taken/sub/"],
        2,
        "taken is a file, not a directory",
    )
    .await;
    // Nobody can create files in /proc, root included.
    refused(
        &["image", "a cat", "-m", "flux", "-o", "/proc/krea-out/"],
        2,
        "cannot write in /proc",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_input_file_is_named_as_unreadable_not_as_the_wrong_type() {
    // A regular file whose first read fails (for root too).
    refused(
        &["image", "a cat", "--image", "/proc/self/mem"],
        2,
        "cannot read /proc/self/mem",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vendor_that_does_not_match_never_resolves_to_another_vendors_model() {
    refused(&["image", "a cat", "-m", "openai/flux"], 2, "openai/flux").await;
    let e = env("vendor", Simulator::builder()).await;
    let o = krea(&e, &["models", "kling/veo-3.1-fast"]).await;
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(!stdout(&o).contains("Veo"), "{}", stdout(&o));
}

/// A file in the way names the flag that replaces it, and only a parameter problem points to
/// the model's parameter list.
#[tokio::test(flavor = "multi_thread")]
async fn an_existing_output_file_names_force_and_no_parameter_list() {
    let e = env("bad-exists", Simulator::builder()).await;
    std::fs::write(e.dir.join("cat.png"), b"already here").expect("write");
    let o = krea(&e, &["image", "a cat", "-m", "flux", "-o", "cat.png"]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--force replaces"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("lists its parameters"),
        "{}",
        stderr(&o)
    );
    assert_eq!(e.sim.control().counters().total_requests(), 0);
    let o = krea(&e, &["image", "a cat", "-m", "flux", "--steps", "9999"]).await;
    assert!(
        stderr(&o).contains("lists its parameters"),
        "{}",
        stderr(&o)
    );
}

/// Under --sim, the jobs of earlier commands are gone with their simulators: said plainly, in
/// the CLI's words, not the library's. The banner fits 80 columns.
#[tokio::test(flavor = "multi_thread")]
async fn sim_jobs_commands_say_earlier_simulated_jobs_are_gone() {
    let e = env("bad-sim-jobs", Simulator::builder()).await;
    for args in [
        vec!["--sim", "jobs", "resume"],
        vec!["--sim", "jobs", "wait", "0123456789ab"],
    ] {
        let o = krea(&e, &args).await;
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("ended with it"), "{}", stderr(&o));
        assert!(!stderr(&o).contains("KreaBuilder"), "{}", stderr(&o));
        let banner = stderr(&o).lines().next().unwrap_or_default().to_string();
        assert!(
            banner.starts_with("(simulated") && banner.chars().count() <= 80,
            "{banner}"
        );
    }
    let o = krea(&e, &["--sim", "jobs", "list"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// An upscale of a URL with no size says so once, the way to fix it included; nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn an_upscale_of_a_url_without_a_size_is_one_problem() {
    let e = env("bad-enhance-size", Simulator::builder()).await;
    let o = krea(&e, &["enhance", "https://example.com/a.png"]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("width, height: required; give both"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("width: is required"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("bytes input"), "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

/// A ratio given to a model that takes a size is said once, with the size it became.
#[tokio::test(flavor = "multi_thread")]
async fn a_ratio_on_a_model_that_takes_a_size_says_what_size() {
    let e = env("ratio-note", Simulator::builder()).await;
    let o = krea(
        &e,
        &[
            "image",
            "a cat",
            "-m",
            "flux",
            "--aspect-ratio",
            "16:9",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let all = stderr(&o) + &stdout(&o);
    assert!(all.contains("aspect ratio 16:9 sent as 1344x768"), "{all}");
}

/// `--no-download` under --sim says the URLs end with the process.
#[tokio::test(flavor = "multi_thread")]
async fn sim_urls_are_said_to_end_with_the_process() {
    let e = env("sim-urls", Simulator::builder()).await;
    let o = krea(
        &e,
        &["--sim", "image", "a cat", "-m", "flux", "--no-download"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("http://127.0.0.1:"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("end with it"), "{}", stderr(&o));
}

/// Errors say things once, in our words: a job the API does not know points to the listing,
/// not to a route; a timed-out line names its job once, in the command that continues it.
#[tokio::test(flavor = "multi_thread")]
async fn errors_say_each_thing_once_in_our_words() {
    let e = env("messages", Simulator::builder()).await;
    let o = krea(&e, &["jobs", "get", "0b439ef3-0000-4000-8000-000000000000"]).await;
    assert!(
        stderr(&o).contains("no such job for this token"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("`krea jobs list`"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("/jobs/{id}"), "{}", stderr(&o));
    // A video of real length: the two-second deadline ends the wait, whatever the load.
    let e = support::env_scaled("messages-timeout", Simulator::builder(), 1.0).await;
    let o = krea(
        &e,
        &[
            "--timeout",
            "2",
            "video",
            "waves",
            "-m",
            "kling-2.5",
            "--yes",
        ],
    )
    .await;
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let id = e.sim.control().job_ids()[0].to_string();
    assert_eq!(stderr(&o).matches(&id).count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("krea jobs wait {id}")),
        "{}",
        stderr(&o)
    );
}
