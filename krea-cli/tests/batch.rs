//! `krea batch`: a manifest and contact sheet; resumable, also after SIGKILL, with no line
//! submitted twice.

mod support;

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
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.dir.join("out/manifest.json")).expect("manifest"))
            .expect("json");
    let items = manifest["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["status"] == "completed"));
    assert_eq!(items[2]["model"], "bfl/flux-1-dev");
    assert_eq!(items[3]["request"]["aspect_ratio"], "4:3");
    let html = std::fs::read_to_string(e.dir.join("out/index.html")).expect("contact sheet");
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
