//! `krea batch` and `krea pipeline`: manifests and reports; resumable, also after SIGKILL,
//! with no line or job submitted twice.

use crate::support;

use krea_sim::Simulator;
use support::{code, env, krea, stderr, stdout};

const LINES: &str = "# five prompts\na lighthouse at dusk\na red bicycle\n{\"prompt\": \"a fox in snow\", \"model\": \"flux\", \"params\": {\"steps\": 20}}\n{\"prompt\": \"a teapot\", \"aspect_ratio\": \"4:3\"}\na glacier\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_writes_files_a_manifest_and_a_contact_sheet() {
    let e = env("batch", Simulator::builder()).await;
    std::fs::write(e.dir.join("prompts.txt"), LINES).expect("write");
    let o = krea(&e, &["batch", "prompts.txt", "-o", "out"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 5, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("5 of 5 lines completed, cost ~"),
        "a batch ends with what it cost: {}",
        stderr(&o)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.dir.join("out/manifest.json")).expect("manifest"))
            .expect("json");
    let items = manifest["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["status"] == "completed"));
    assert_eq!(items[2]["model"], "bfl/flux-1-dev");
    assert_eq!(items[3]["request"]["aspect_ratio"], "4:3");
    let html = std::fs::read_to_string(e.dir.join("out/index.html")).expect("contact sheet");
    assert!(html.contains("5 of 5 lines completed, cost ~"), "{html}");
    for item in items {
        assert!(html.contains(item["request"]["prompt"].as_str().expect("prompt")));
        assert!(html.contains(item["job_id"].as_str().expect("job id")));
        let file = std::path::Path::new(item["files"][0].as_str().expect("file"));
        assert!(
            file.is_absolute() && file.starts_with(e.dir.join("out")),
            "{file:?}"
        );
        let name = file.file_name().expect("name").to_string_lossy();
        assert!(html.contains(name.as_ref()));
    }
    let again = krea(&e, &["batch", "prompts.txt", "-o", "out"]).await;
    assert_eq!(
        code(&again),
        2,
        "an existing batch needs --resume: {}",
        stderr(&again)
    );
    let resumed = krea(&e, &["batch", "prompts.txt", "-o", "out", "--resume"]).await;
    assert_eq!(code(&resumed), 0);
    assert_eq!(
        e.sim.control().counters().jobs_created,
        5,
        "nothing submitted twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_line_stops_the_batch_before_anything_is_sent() {
    let e = env("batch-bad", Simulator::builder()).await;
    std::fs::write(
        e.dir.join("p.txt"),
        "a fine prompt\n{\"prompt\": \"x\", \"model\": \"flux\", \"params\": {\"width\": 99999}}\n{\"model\": \"nope\", \"prompt\": \"a cat\"}\n{broken\n",
    )
    .expect("write");
    let o = krea(&e, &["batch", "p.txt"]).await;
    assert_eq!(code(&o), 2);
    // Every bad line at once, whether it does not parse, names no model, or is refused.
    let err = stderr(&o);
    assert!(err.contains("3 bad line(s)"), "{err}");
    assert!(err.contains("line 2: width: 99999"), "{err}");
    assert!(err.contains("line 3: unknown model"), "{err}");
    assert!(err.contains("line 4: not valid JSON"), "{err}");
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sigkill_resume_finishes_with_no_new_post_for_created_jobs() {
    // Slower jobs (~1 s each) so the kill lands mid-batch.
    let e = support::env_scaled("batch-kill", Simulator::builder(), 0.05).await;
    let prompts: String = (0..16).map(|i| format!("prompt number {i}\n")).collect();
    std::fs::write(e.dir.join("p.txt"), prompts).expect("write");
    let mut child = support::command(&e)
        .args([
            "--poll",
            "0.05",
            "batch",
            "p.txt",
            "-o",
            "out",
            "--concurrency",
            "4",
        ])
        .spawn()
        .expect("spawn");
    while e.sim.control().job_ids().len() < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let created_before = e.sim.control().job_ids().len();
    assert!(created_before < 16, "killed mid-batch");
    let o = krea(&e, &["batch", "p.txt", "-o", "out", "--resume"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let c = e.sim.control().counters();
    assert_eq!(
        c.jobs_created, 16,
        "every line once: {created_before} before the kill, the rest after"
    );
    assert_eq!(
        c.requests_with_prefix("POST /generate/"),
        16,
        "no line was submitted twice"
    );
    assert_eq!(support::files_in(&e.dir.join("out"), "png").len(), 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_prices_every_line_and_max_cu_refuses_before_anything_is_sent() {
    let e = env("batch-cost", Simulator::builder()).await;
    std::fs::write(e.dir.join("p.txt"), "a cat\na dog\na fox\n").expect("write");
    let o = krea(&e, &["batch", "p.txt", "-m", "flux", "--dry-run"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("dry run: 3 lines checked, estimated 9 CU"),
        "{}",
        stdout(&o)
    );
    assert!(!e.dir.join("krea-batch").exists(), "no output directory");
    let o = krea(&e, &["batch", "p.txt", "-m", "flux", "--max-cu", "5"]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("above --max-cu 5"), "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

/// Three prompts drawn, each upscaled, each animated: 9 jobs.
const ANIMALS: &str = r#"{"vars": {"style": "watercolor"},
 "steps": [
   {"id": "animate", "model": "veo-3.1-fast",
    "params": {"prompt": "{{animal}} looks around", "start_image": "{{steps.upscale.outputs}}"}},
   {"id": "draw", "model": "flux", "fan_out": {"animal": ["a fox", "an owl", "a hare"]},
    "params": {"prompt": "{{animal}}, {{style}}"}},
   {"id": "upscale", "model": "topaz",
    "params": {"image_url": "{{steps.draw.outputs}}", "width": 2048, "height": 2048}}]}"#;

/// The simulator's recorded request bodies, by job.
fn bodies(e: &support::Env) -> std::collections::HashMap<uuid::Uuid, serde_json::Value> {
    e.sim.control().requests().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_wires_each_output_into_the_next_step() {
    let e = env("pipeline", Simulator::builder()).await;
    std::fs::write(e.dir.join("animals.json"), ANIMALS).expect("write");
    let o = krea(&e, &["pipeline", "animals.json", "-o", "run"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The terminal says what the report says: the known cost, and the jobs with no price.
    assert!(
        stderr(&o).contains("9 job(s) completed in 3 step(s), cost ~")
            && stderr(&o).contains("and 3 job(s) with no published price"),
        "{}",
        stderr(&o)
    );
    let c = e.sim.control().counters();
    assert_eq!(c.jobs_created, 9);
    let run = e.dir.join("run");
    assert_eq!(support::files_in(&run.join("draw"), "png").len(), 3);
    assert_eq!(
        support::files_in(&run.join("upscale"), "jpg").len()
            + support::files_in(&run.join("upscale"), "png").len(),
        3
    );
    assert_eq!(support::files_in(&run.join("animate"), "mp4").len(), 3);
    // The wiring, from what the simulator was sent: each video starts from the upscale of the
    // image drawn for the same animal.
    let sent = bodies(&e);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("pipeline.json")).expect("manifest"))
            .expect("json");
    let step = |id: &str| -> Vec<serde_json::Value> {
        manifest["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == id)
            .expect("step")["jobs"]
            .as_array()
            .expect("jobs")
            .clone()
    };
    let url_of = |job: &serde_json::Value| job["urls"][0].as_str().expect("url").to_string();
    let body_of = |job: &serde_json::Value| {
        let id: uuid::Uuid = job["job_id"].as_str().expect("id").parse().expect("uuid");
        sent[&id].clone()
    };
    let (draws, upscales, videos) = (step("draw"), step("upscale"), step("animate"));
    assert_eq!(
        manifest["steps"]
            .as_array()
            .map(|s| s.iter().map(|s| s["id"].clone()).collect::<Vec<_>>()),
        Some(vec!["draw".into(), "upscale".into(), "animate".into()]),
        "steps run in the order their references need, not the file's"
    );
    for video in &videos {
        let start = body_of(video)["start_image"]
            .as_str()
            .expect("start_image")
            .to_string();
        let upscale = upscales
            .iter()
            .find(|u| url_of(u) == start)
            .expect("an upscale's output");
        let source = body_of(upscale)["image_url"]
            .as_str()
            .expect("image_url")
            .to_string();
        let draw = draws
            .iter()
            .find(|d| url_of(d) == source)
            .expect("a drawing's output");
        let animal = draw["vars"]["animal"].as_str().expect("animal");
        assert_eq!(
            body_of(draw)["prompt"],
            format!("{animal}, watercolor"),
            "variables and fan-out values fill the templates"
        );
        assert_eq!(body_of(video)["prompt"], format!("{animal} looks around"));
    }
    let html = std::fs::read_to_string(run.join("index.html")).expect("report");
    assert_eq!(html.matches("<video").count(), 3);
    assert!(
        html.contains("start_image ← upscale"),
        "outputs shown beside their inputs"
    );
    // Its cost, that it was simulated, videos showing their first frame, and an arrow only
    // where something came in (the six jobs of the two later steps).
    assert!(html.contains("9 of 9 jobs completed, cost ~"), "{html}");
    assert!(html.contains("(simulated"), "{html}");
    assert_eq!(html.matches("#t=0.1\" preload=\"metadata\"").count(), 3);
    assert_eq!(html.matches("<div>→</div>").count(), 6);
    // The directory holds a run: refused without --resume; with it, nothing is redone.
    let o = krea(&e, &["pipeline", "animals.json", "-o", "run"]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already holds a pipeline run"),
        "{}",
        stderr(&o)
    );
    let o = krea(&e, &["pipeline", "animals.json", "-o", "run", "--resume"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().jobs_created, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_dry_run_prices_what_the_run_is_charged_and_max_cu_refuses() {
    let e = env("pipeline-cost", Simulator::builder()).await;
    // Topaz publishes no price: the three-step plan says so.
    std::fs::write(e.dir.join("animals.json"), ANIMALS).expect("write");
    let o = krea(&e, &["--json", "pipeline", "animals.json", "--dry-run"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(plan["job_count"], 9);
    assert_eq!(plan["unpriced"], 3);
    // Priced steps only: the dry run's total is what the simulator charges.
    let priced = r#"{"steps": [
        {"id": "draw", "model": "flux", "fan_out": {"animal": ["a fox", "an owl", "a hare"]},
         "params": {"prompt": "{{animal}}"}},
        {"id": "animate", "model": "veo-3.1-fast",
         "params": {"prompt": "{{animal}} runs", "start_image": "{{steps.draw.outputs}}"}}]}"#;
    std::fs::write(e.dir.join("priced.json"), priced).expect("write");
    let o = krea(&e, &["--json", "pipeline", "priced.json", "--dry-run"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(plan["unpriced"], 0, "{plan}");
    let estimate = plan["estimate_cu"]["high"].as_f64().expect("estimate");
    assert_eq!(plan["estimate_cu"]["low"].as_f64(), Some(estimate));
    assert_eq!(
        e.sim.control().counters().total_requests(),
        0,
        "a dry run sends nothing"
    );
    assert!(!e.dir.join("priced").exists());
    // Below the estimate: refused, nothing sent.
    let below = format!("{}", estimate - 1.0);
    let o = krea(&e, &["pipeline", "priced.json", "--max-cu", &below]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("above --max-cu"), "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().total_requests(), 0);
    // The run is charged exactly the estimate.
    let before = e.sim.control().credits();
    let o = krea(&e, &["--json", "pipeline", "priced.json"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(e.sim.control().counters().jobs_created, 6);
    assert_eq!(before - e.sim.control().credits(), estimate);
    // --json: the run's steps and jobs, with their costs adding up to the charge.
    let run: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(run["finished"], true);
    let jobs: Vec<&serde_json::Value> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["jobs"].as_array().expect("jobs"))
        .collect();
    assert_eq!(jobs.len(), 6);
    let cost: f64 = jobs.iter().filter_map(|j| j["cost_cu"].as_f64()).sum();
    assert_eq!(cost, estimate);
    assert!(std::path::Path::new(run["manifest"].as_str().expect("manifest")).is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_pipeline_fails_before_any_request_naming_the_step() {
    let e = env("pipeline-bad", Simulator::builder()).await;
    let cases = [
        (
            ANIMALS.replace("{{steps.upscale.outputs}}", "{{steps.upscale2.outputs}}"),
            "steps.animate.params: {{steps.upscale2.outputs}} names no step",
        ),
        (
            ANIMALS.replace(
                r#""prompt": "{{animal}}, {{style}}""#,
                r#""prompt": "{{animal}} {{steps.animate.outputs[0]}}""#,
            ),
            "refer to each other in a cycle",
        ),
        (
            ANIMALS.replace("looks around\"", "looks around\", \"duration\": 99"),
            "steps.animate.duration: 99 is not allowed",
        ),
        (
            ANIMALS.replace("{{style}}", "{{mood}}"),
            "{{mood}}: no such variable",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(e.dir.join("bad.json"), &text).expect("write");
        let o = krea(&e, &["pipeline", "bad.json", "-o", "bad"]).await;
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(
            stderr(&o).contains(expected),
            "{expected:?} in {}",
            stderr(&o)
        );
    }
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

/// SIGKILL at a random instant, then `--resume`: every job once, every output there. Ten runs,
/// five at a time, each with its own simulator.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_killed_anywhere_resumes_without_paying_twice() {
    for round in 0..2 {
        let runs = (0..5).map(|n| async move {
            let e = support::env_scaled(
                &format!("pipeline-kill-{round}-{n}"),
                Simulator::builder(),
                0.02,
            )
            .await;
            std::fs::write(e.dir.join("animals.json"), ANIMALS).expect("write");
            let mut child = support::KillOnDrop(
                support::command(&e)
                    .args(["--poll", "0.02", "pipeline", "animals.json", "-o", "run"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn"),
            );
            // Here the 9 jobs are all created within ~1.2 s (the three videos then run ~2.4 s):
            // kills land while steps submit, while they wait, and between steps.
            let at = std::time::Duration::from_millis(fastrand::u64(0..2500));
            tokio::time::sleep(at).await;
            child.0.kill().expect("SIGKILL");
            let _ = child.0.wait();
            let before = e.sim.control().counters().jobs_created;
            let o = krea(&e, &["pipeline", "animals.json", "-o", "run", "--resume"]).await;
            assert_eq!(code(&o), 0, "killed at {at:?}: {}", stderr(&o));
            let c = e.sim.control().counters();
            assert_eq!(
                c.jobs_created, 9,
                "killed at {at:?} with {before} jobs created"
            );
            assert_eq!(
                c.requests_with_prefix("POST /generate/"),
                9,
                "no job submitted twice"
            );
            let run = e.dir.join("run");
            assert_eq!(support::files_in(&run.join("draw"), "png").len(), 3);
            assert_eq!(support::files_in(&run.join("animate"), "mp4").len(), 3);
            let manifest = std::fs::read_to_string(run.join("pipeline.json")).expect("manifest");
            assert!(
                manifest.contains("\"stopped_at\": null"),
                "finished after {at:?}"
            );
        });
        futures_util::future::join_all(runs).await;
    }
}

/// The README's pipeline and its commands, as written there (its Topaz step has no published
/// price and counts at the assumed one).
#[tokio::test(flavor = "multi_thread")]
async fn the_readmes_pipeline_runs_as_written() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .expect("README.md");
    let section = &readme[readme.find("## Pipelines").expect("the section")..];
    let file = section
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the pipeline file");
    let e = env("readme-pipeline", Simulator::builder()).await;
    std::fs::write(e.dir.join("animals.json"), file).expect("write");
    let commands: Vec<Vec<&str>> = section
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.strip_prefix("krea pipeline "))
        .map(|l| {
            std::iter::once("pipeline")
                .chain(l.split_whitespace())
                .collect()
        })
        .collect();
    assert_eq!(commands.len(), 3, "dry run, run, resume");
    for args in &commands {
        let o = krea(&e, args).await;
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    }
    assert_eq!(e.sim.control().counters().jobs_created, 9, "paid once");
}
