//! `krea image | video | enhance | run` against the simulator.

use crate::support;

use krea_sim::Simulator;
use support::{code, env, files_in, json, krea, stderr, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn image_downloads_a_png_equal_to_the_simulators_and_says_which_model() {
    let e = env("image", Simulator::builder()).await;
    let o = krea(
        &e,
        &["image", "a lighthouse at dusk", "--aspect-ratio", "16:9"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let pngs = files_in(&e.dir, "png");
    assert_eq!(pngs.len(), 1);
    assert_eq!(
        stdout(&o).trim(),
        format!("./{}", pngs[0].file_name().expect("name").to_string_lossy())
    );
    assert!(
        stderr(&o).contains("Generated with Nano Banana 2, cost ~"),
        "the model and what it cost: {}",
        stderr(&o)
    );
    let id = e.sim.control().job_ids()[0];
    assert_eq!(
        Some(std::fs::read(&pngs[0]).expect("png")),
        e.sim.control().result_bytes(id, 0)
    );
    let c = e.sim.control().counters();
    assert_eq!(
        c.requests_to("POST /generate/image/google/nano-banana-2"),
        1
    );
    assert_eq!(c.file_authorization_headers, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_describes_every_job() {
    let e = env("json", Simulator::builder()).await;
    let o = krea(
        &e,
        &[
            "--json",
            "image",
            "a red bicycle",
            "-m",
            "flux",
            "-n",
            "3",
            "-o",
            "bikes",
            "--seed",
            "7",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["model"], "bfl/flux-1-dev");
    // The simulator on loopback: simulated, as the contact sheet would say.
    assert_eq!(v["simulated"], true);
    let jobs = v["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3);
    for j in jobs {
        assert_eq!(j["status"], "completed");
        let file = j["files"][0].as_str().expect("file");
        assert!(e.dir.join(file).exists(), "{file}");
    }
    assert_eq!(
        e.sim.control().counters().jobs_created,
        3,
        "-n 3 submits three jobs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_wait_prints_ids_and_no_download_prints_urls() {
    let e = env("nowait", Simulator::builder()).await;
    let o = krea(&e, &["image", "a fox", "--no-wait"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id: uuid::Uuid = stdout(&o).trim().parse().expect("a job id");
    assert_eq!(e.sim.control().job_ids(), vec![id]);
    let o = krea(&e, &["image", "a fox", "--no-download"]).await;
    assert!(
        stdout(&o).trim().starts_with(e.sim.files_url()),
        "{}",
        stdout(&o)
    );
    assert!(files_in(&e.dir, "png").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_image_is_uploaded_first_and_a_file_output_is_named_as_asked() {
    let e = env("upload", Simulator::builder()).await;
    std::fs::write(e.dir.join("in.png"), krea_sim::render_png(64, 64, 1)).expect("write");
    let o = krea(
        &e,
        &[
            "image",
            "make it night",
            "-m",
            "bfl/flux-1-kontext-dev",
            "--image",
            "in.png",
            "-o",
            "night.png",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(e.dir.join("night.png").exists());
    let c = e.sim.control().counters();
    assert_eq!(c.requests_to("POST /assets"), 1);
    assert_eq!(c.jobs_created, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn styles_and_params_reach_the_request() {
    let e = env("params", Simulator::builder()).await;
    let o = krea(
        &e,
        &[
            "image",
            "a harbour",
            "-m",
            "flux",
            "--style",
            "krea-watercolor:0.8",
            "-p",
            "guidance_scale_flux=4.5",
            "--steps",
            "30",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn video_from_a_start_image_and_enhance_with_a_scale() {
    let e = env("video", Simulator::builder().video_bytes(10_000)).await;
    let o = krea(
        &e,
        &[
            "video",
            "waves at night",
            "-m",
            "kling/kling-2.1",
            "--start-image",
            "https://example.com/start.png",
            "--duration",
            "5",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(files_in(&e.dir, "mp4").len(), 1);

    std::fs::write(e.dir.join("small.png"), krea_sim::render_png(100, 50, 2)).expect("write");
    let o = krea(
        &e,
        &[
            "enhance",
            "small.png",
            "--scale",
            "2",
            "-p",
            "output_format=png",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = files_in(&e.dir, "png")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("standard-enhance"))
        .expect("the enhanced file");
    let bytes = std::fs::read(out).expect("png");
    assert_eq!(
        krea_gen::media::image_dimensions(&bytes),
        Some((200, 100)),
        "twice the input"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_takes_params_or_a_body() {
    let e = env("run", Simulator::builder()).await;
    let o = krea(
        &e,
        &[
            "run",
            "google/imagen-4",
            "-p",
            "prompt=a cat",
            "--no-download",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = krea(
        &e,
        &[
            "run",
            "flux",
            "--body",
            r#"{"prompt": "a dog", "steps": 12}"#,
            "--no-download",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::write(e.dir.join("body.json"), br#"{"prompt": "a bird"}"#).expect("write");
    let o = krea(
        &e,
        &["run", "flux", "--body", "@body.json", "--no-download"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().jobs_created, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_exits_1_and_a_timeout_exits_4_with_the_way_to_continue() {
    let e = env(
        "failed",
        Simulator::builder()
            .fault(
                "POST /generate/image/bfl/flux-1-dev",
                krea_sim::Fault::FailJob,
                1.0,
            )
            .fault(
                "POST /generate/image/google/imagen-4",
                krea_sim::Fault::StuckJob,
                1.0,
            ),
    )
    .await;
    let o = krea(&e, &["image", "x", "-m", "flux"]).await;
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("failed"), "{}", stderr(&o));
    let o = krea(
        &e,
        &["--timeout", "0.3", "image", "x", "-m", "google/imagen-4"],
    )
    .await;
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let id = e.sim.control().job_ids()[1];
    let hint = format!("krea jobs wait {id}");
    assert_eq!(stderr(&o).matches(&hint).count(), 1, "once: {}", stderr(&o));
    assert!(!stderr(&o).contains("Generated with"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn minus_n_65_submits_65_jobs_and_finishes() {
    let e = env("n65", Simulator::builder()).await;
    let o = krea(&e, &["image", "a fox", "-n", "65", "-o", "out"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let c = e.sim.control().counters();
    assert_eq!(c.requests_with_prefix("POST /generate/"), 65);
    assert_eq!(c.jobs_created, 65);
    assert_eq!(files_in(&e.dir.join("out"), "png").len(), 65);
    assert_eq!(stdout(&o).lines().count(), 65);
}

#[tokio::test(flavor = "multi_thread")]
async fn minus_n_2_finishes_when_a_post_meets_the_concurrency_cap() {
    let e = env(
        "n2-429",
        Simulator::builder().concurrency(1, krea_sim::Overflow::Reject),
    )
    .await;
    let o = krea(&e, &["image", "a fox", "-n", "2", "-o", "out"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let c = e.sim.control().counters();
    assert_eq!(c.jobs_created, 2, "each job once");
    assert!(
        c.responses("POST /generate/image/google/nano-banana-2", 429) >= 1,
        "the cap was met: {:?}",
        c.requests
    );
    assert_eq!(files_in(&e.dir.join("out"), "png").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prices_without_sending_and_max_cu_refuses_before_paying() {
    let e = env("cost", Simulator::builder()).await;
    let o = krea(&e, &["video", "waves at night", "--dry-run"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("dry run: 1 job(s)"), "{}", stdout(&o));
    assert!(stdout(&o).contains(" CU; nothing sent"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("\"prompt\": \"waves at night\""),
        "{}",
        stdout(&o)
    );
    let o = krea(&e, &["--json", "image", "a cat", "-n", "3", "--dry-run"]).await;
    let priced = json(&o);
    assert_eq!(priced["dry_run"], true);
    assert_eq!(priced["count"], 3);
    assert!(
        priced["estimate_cu"]["high"]
            .as_f64()
            .is_some_and(|h| h > 0.0),
        "{priced}"
    );
    let mut cmd = support::command(&e);
    cmd.env_remove("KREA_API_TOKEN")
        .args(["video", "waves at night", "--dry-run"]);
    let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    assert_eq!(code(&o), 0, "a dry run needs no token: {}", stderr(&o));
    assert!(stdout(&o).contains("nothing sent"), "{}", stdout(&o));
    let o = krea(&e, &["video", "waves at night", "--max-cu", "10"]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("above --max-cu 10"), "{}", stderr(&o));
    assert_eq!(
        e.sim.control().counters().total_requests(),
        0,
        "nothing sent"
    );

    let o = krea(&e, &["image", "a cat", "--max-cu", "1000"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().jobs_created, 1);
}

/// The one shape of a job in `--json` output (README, "JSON output").
fn assert_job_shape(job: &serde_json::Value, what: &str) {
    let mut keys: Vec<&str> = job
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {job}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut want = [
        "id",
        "model",
        "status",
        "created_at",
        "completed_at",
        "urls",
        "files",
        "cost_cu",
        "error",
        "uncertain",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "{what}: {job}");
    let text_or_null = |k: &str| job[k].is_string() || job[k].is_null();
    assert!(job["id"].is_string(), "{what}: {job}");
    assert!(
        job["model"].is_string() && job["status"].is_string(),
        "{what}: {job}"
    );
    for k in ["created_at", "completed_at", "error", "uncertain"] {
        assert!(text_or_null(k), "{what}: {k} in {job}");
    }
    assert!(
        job["urls"].is_array() && job["files"].is_array(),
        "{what}: {job}"
    );
    assert!(
        job["cost_cu"].is_number() || job["cost_cu"].is_null(),
        "{what}: {job}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_prints_jobs_in_one_json_shape_and_errors_as_json() {
    let e = env("shape", Simulator::builder()).await;
    std::fs::write(e.dir.join("lines.txt"), "a cat\na dog\n").expect("write");
    let runs: [&[&str]; 6] = [
        &["image", "a cat", "-n", "2"],
        &["video", "waves"],
        &["run", "flux", "-p", "prompt=a bird"],
        &["image", "a fox", "--no-wait"],
        &["batch", "lines.txt", "-o", "out"],
        &["jobs", "list"],
    ];
    for args in runs {
        let o = krea(&e, &[&["--json"], args].concat()).await;
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        let v = json(&o);
        let jobs = v["jobs"]
            .as_array()
            .unwrap_or_else(|| panic!("{args:?}: {v}"));
        assert!(!jobs.is_empty(), "{args:?}");
        jobs.iter()
            .for_each(|j| assert_job_shape(j, &format!("{args:?}")));
    }
    let id = e.sim.control().job_ids()[0].to_string();
    for args in [["jobs", "get", &id[..8]], ["jobs", "wait", &id]] {
        let o = krea(&e, &[&["--json"], &args[..]].concat()).await;
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        let v = json(&o);
        assert_job_shape(&v["jobs"][0], &format!("{args:?}"));
        assert_eq!(v["jobs"][0]["id"], id.as_str());
    }
    let o = krea(&e, &["--json", "image", "ab"]).await;
    assert_eq!(code(&o), 2);
    let v = json(&o);
    assert_eq!(v["error"]["kind"], "invalid_request", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("prompt")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_name_whose_extension_does_not_match_the_bytes_gets_the_right_one() {
    let e = env("ext", Simulator::builder()).await;
    let o = krea(&e, &["image", "a cat", "-m", "flux", "-o", "cat.jpg"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The simulator answers a PNG: it is not written under a .jpg name.
    assert!(e.dir.join("cat.png").exists());
    assert!(!e.dir.join("cat.jpg").exists());
    assert_eq!(stdout(&o).trim(), "./cat.png");
    // Said in one sentence, not as a log record with fields.
    assert!(
        stderr(&o).contains("cat.jpg would hold a .png file: written as cat.png instead"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("asked="), "{}", stderr(&o));
    // Again, with cat.png taken: the warning names the file actually written.
    let o = krea(&e, &["image", "a cat", "-m", "flux", "-o", "cat.jpg"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let written = stdout(&o).trim().trim_start_matches("./").to_string();
    assert_ne!(written, "cat.png");
    assert!(
        stderr(&o).contains(&format!("written as {written} instead")),
        "{}",
        stderr(&o)
    );
}
