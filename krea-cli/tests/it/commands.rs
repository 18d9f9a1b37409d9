//! jobs, assets, styles, apps, sim and completions against the simulator.

use crate::support;

use std::io::{BufRead, BufReader};

use krea_sim::Simulator;
use support::{code, env, json, krea, stderr, stdout};

#[tokio::test(flavor = "multi_thread")]
async fn jobs_list_get_wait_cancel_delete() {
    let e = env("jobs", Simulator::builder()).await;
    for p in ["one", "two", "three"] {
        assert_eq!(code(&krea(&e, &["image", p, "--no-wait"]).await), 0);
    }
    let o = krea(&e, &["jobs", "list", "--limit", "2"]).await;
    assert_eq!(
        stdout(&o).lines().count(),
        3,
        "a header and two rows: {}",
        stdout(&o)
    );
    let rows = stdout(&o);
    assert!(rows.starts_with("ID"), "{rows}");
    assert!(
        rows.contains("google/nano-banana-2") && rows.contains("three"),
        "{rows}"
    );
    assert!(
        rows.lines().all(|l| l.chars().count() <= 80),
        "fits 80 columns: {rows}"
    );
    let o = krea(&e, &["--json", "jobs", "list", "--all"]).await;
    assert_eq!(json(&o)["jobs"].as_array().expect("jobs").len(), 3);
    let id = e.sim.control().job_ids()[0].to_string();
    let o = krea(&e, &["jobs", "wait", &id, "-o", "waited"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("waited/"), "{}", stdout(&o));
    let o = krea(&e, &["--json", "jobs", "get", &id]).await;
    assert_eq!(json(&o)["jobs"][0]["status"], "completed");
    // The short ids progress rows and file names show work wherever an id does.
    let o = krea(&e, &["--json", "jobs", "get", &id[..8]]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["jobs"][0]["id"], id.as_str());
    let o = krea(&e, &["jobs", "get", "nonsense"]).await;
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a job id"), "{}", stderr(&o));
    let unknown = if id.starts_with("ffffff") {
        "eeeeee"
    } else {
        "ffffff"
    };
    let o = krea(&e, &["jobs", "get", unknown]).await;
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no job id begins with"),
        "{}",
        stderr(&o)
    );
    let o = krea(&e, &["jobs", "cancel", &id]).await;
    assert!(stdout(&o).contains("had already ended"), "{}", stdout(&o));
    let o = krea(&e, &["jobs", "delete", &id]).await;
    assert_eq!(code(&o), 0);
    let o = krea(&e, &["jobs", "get", &id]).await;
    assert_eq!(code(&o), 2, "a deleted job is not found: {}", stderr(&o));

    let slow = krea(&e, &["video", "slow waves", "-m", "veo", "--no-wait"]).await;
    let slow_id = stdout(&slow).trim().to_string();
    let o = krea(&e, &["jobs", "cancel", &slow_id]).await;
    assert!(stdout(&o).contains("cancelled"), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_resume_finishes_a_job_left_by_an_earlier_run() {
    let e = env("resume", Simulator::builder()).await;
    let o = krea(&e, &["image", "a lighthouse", "-o", "out", "--no-wait"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = krea(&e, &["jobs", "resume"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("out/"), "{}", stdout(&o));
    assert_eq!(support::files_in(&e.dir.join("out"), "png").len(), 1);
    assert_eq!(
        e.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/"),
        1,
        "no new POST"
    );
    let again = krea(&e, &["jobs", "resume"]).await;
    assert!(
        stderr(&again).contains("nothing to resume"),
        "{}",
        stderr(&again)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn assets_upload_list_get_delete() {
    let e = env("assets", Simulator::builder()).await;
    std::fs::write(e.dir.join("a.png"), krea_sim::render_png(20, 10, 4)).expect("write");
    let o = krea(
        &e,
        &[
            "--json",
            "assets",
            "upload",
            "a.png",
            "--description",
            "mine",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = json(&o)["assets"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let o = krea(&e, &["assets", "list"]).await;
    assert!(
        stdout(&o).contains(&id) && stdout(&o).contains("20x10"),
        "{}",
        stdout(&o)
    );
    assert_eq!(code(&krea(&e, &["assets", "get", &id]).await), 0);
    assert_eq!(code(&krea(&e, &["assets", "delete", &id]).await), 0);
    let o = krea(&e, &["assets", "upload", "missing.png"]).await;
    assert_eq!(code(&o), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn styles_train_then_update_share_unshare() {
    // Training takes 600 simulated seconds: 0.6 s at this scale.
    let e = support::env_scaled("styles", Simulator::builder(), 0.001).await;
    let o = krea(
        &e,
        &[
            "styles",
            "train",
            "--name",
            "ink",
            "--image",
            "https://example.com/1.png",
            "--steps",
            "100",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let o = krea(&e, &["styles", "list", "--filter", "user"]).await;
    assert!(stdout(&o).contains(&id), "{}", stdout(&o));
    let o = krea(
        &e,
        &[
            "--json",
            "styles",
            "update",
            &id,
            "--title",
            "ink sketches",
            "--public",
        ],
    )
    .await;
    assert_eq!(json(&o)["styles"][0]["title"], "ink sketches");
    assert_eq!(json(&o)["styles"][0]["public"], true);
    let o = krea(&e, &["styles", "share", &id]).await;
    assert!(stdout(&o).contains("/styles/shared/"), "{}", stdout(&o));
    assert_eq!(code(&krea(&e, &["styles", "unshare", &id]).await), 0);
    assert_eq!(code(&krea(&e, &["styles", "get", &id]).await), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_get_and_run() {
    let e = env("apps", Simulator::builder()).await;
    let o = krea(&e, &["apps", "get", krea_sim::DEMO_APP]).await;
    assert!(
        stdout(&o).contains("prompt") && stdout(&o).contains("required"),
        "{}",
        stdout(&o)
    );
    let o = krea(
        &e,
        &[
            "apps",
            "run",
            krea_sim::DEMO_APP,
            "-p",
            "prompt=a cat",
            "-o",
            "app-out",
        ],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(support::files_in(&e.dir.join("app-out"), "png").len(), 1);
    let o = krea(&e, &["apps", "run", krea_sim::DEMO_APP]).await;
    assert_eq!(
        code(&o),
        2,
        "a missing input is a usage error: {}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_prints_its_address_and_token_and_serves() {
    let e = env("sim", Simulator::builder()).await;
    let mut child = support::KillOnDrop(
        support::command(&e)
            .args(["sim", "--time-scale", "0.01"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    // Keep reading the pipe: closing it would end the simulator (a broken pipe ends `krea`).
    let mut reader = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let lines: Vec<String> = reader.by_ref().take(4).map(|l| l.expect("line")).collect();
    let base = lines
        .iter()
        .find_map(|l| l.strip_prefix("export KREA_BASE_URL="))
        .expect("base URL line")
        .to_string();
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("export KREA_API_TOKEN="))
        .expect("token line")
        .to_string();
    let http = krea_gen::net::client_builder()
        .build()
        .expect("http client");
    let r = http
        .get(format!("{base}/_sim/counters"))
        .send()
        .await
        .expect("served");
    assert!(r.status().is_success());
    let jobs = http
        .get(format!("{base}/jobs"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("jobs");
    assert_eq!(jobs.status(), 200);
    drop(child);
    drop(reader);
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_are_printed_for_each_shell() {
    let e = env("completions", Simulator::builder()).await;
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = krea(&e, &["completions", shell]).await;
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("krea"), "{shell}");
        // `-m` completes to model ids and aliases (clap's powershell and elvish scripts
        // complete option names only).
        if matches!(shell, "bash" | "zsh" | "fish") {
            assert!(stdout(&o).contains("bfl/flux-1-dev"), "{shell}");
        }
    }
    assert_eq!(e.sim.control().counters().total_requests(), 0);
}

/// Starts `cmd`, waits until it has created `jobs` more jobs, sends it SIGINT (Ctrl-C), and
/// returns what it printed.
async fn interrupt_after_jobs(
    e: &support::Env,
    mut cmd: std::process::Command,
    jobs: usize,
) -> std::process::Output {
    let before = e.sim.control().job_ids().len();
    let child = cmd
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    while e.sim.control().job_ids().len() < before + jobs {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
        .await
        .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_lists_the_pending_jobs_or_cancels_them() {
    let e = env(
        "ctrlc",
        Simulator::builder().fault("POST /generate/*", krea_sim::Fault::StuckJob, 1.0),
    )
    .await;
    for cancel in [false, true] {
        let mut cmd = support::command(&e);
        cmd.args(["--poll", "0.02", "image", "a cat"]);
        if cancel {
            cmd.arg("--cancel-on-interrupt");
        }
        let o = interrupt_after_jobs(&e, cmd, 1).await;
        let id = *e.sim.control().job_ids().last().expect("job");
        assert_eq!(code(&o), 130, "{}", stderr(&o));
        assert!(stderr(&o).contains(&id.to_string()), "{}", stderr(&o));
        let status = krea(&e, &["--json", "jobs", "get", &id.to_string()]).await;
        let expected = if cancel { "cancelled" } else { "processing" };
        assert_eq!(json(&status)["jobs"][0]["status"], expected);
        if !cancel {
            assert!(stderr(&o).contains("krea jobs resume"), "{}", stderr(&o));
        }
    }

    // A batch is resumed as a batch, and its contact sheet is written on the way out.
    std::fs::write(e.dir.join("two.txt"), "a cat\na dog\n").expect("write");
    let mut cmd = support::command(&e);
    cmd.args(["--poll", "0.02", "batch", "two.txt", "-o", "sheet"]);
    let o = interrupt_after_jobs(&e, cmd, 2).await;
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("krea batch two.txt -o sheet --resume"),
        "{}",
        stderr(&o)
    );
    assert!(e.dir.join("sheet/index.html").exists(), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_is_not_an_error() {
    let e = env("pipe", Simulator::builder()).await;
    // 340 KB of JSON: more than a pipe holds, so the writer meets the closed pipe.
    let mut child = support::command(&e)
        .args(["--json", "models"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read one line, then hang up, like `krea --json models | head -1`.
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("a line");
    drop(reader);
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
        .await
        .expect("join");
    assert!(first.starts_with('{'), "{first}");
    assert_eq!(code(&o), 0);
    assert_eq!(stderr(&o), "", "no error for a reader that went away");
}

/// A model Krea added after this build: `models --refresh` fetches and caches it, and the
/// next run of the program validates and generates with it; an endpoint no list has is sent
/// only through `run`, with a warning.
#[tokio::test(flavor = "multi_thread")]
async fn models_added_after_the_build_work_after_a_refresh() {
    let mut doc = krea_sim::default_openapi_document();
    let mut op = doc["paths"]["/generate/image/bfl/flux-1-dev"]["post"].clone();
    op["operationId"] = serde_json::json!("generate_image_newco_painter_9");
    op["x-krea-title"] = serde_json::json!("Painter 9");
    doc["paths"]["/generate/image/newco/painter-9"] = serde_json::json!({ "post": op });
    let e = env("refresh", Simulator::builder().openapi_document(doc)).await;

    let o = krea(&e, &["run", "newco/painter-9", "-p", "prompt=a cat"]).await;
    assert_eq!(code(&o), 2, "unknown before a refresh: {}", stderr(&o));
    let o = krea(&e, &["models", "--refresh"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("new since this build: newco/painter-9"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("newco/painter-9"),
        "listed: {}",
        stdout(&o)
    );
    assert!(e.dir.join("cache/krea/catalog.json").is_file());

    let o = krea(
        &e,
        &[
            "run",
            "newco/painter-9",
            "-p",
            "prompt=a cat",
            "-p",
            "steps=500",
        ],
    )
    .await;
    assert_eq!(
        code(&o),
        2,
        "validated against the fetched schema: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("steps"), "{}", stderr(&o));
    let posts = || {
        e.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/image/newco/painter-9")
    };
    assert_eq!(posts(), 0);
    let o = krea(
        &e,
        &["run", "newco/painter-9", "-p", "prompt=a cat", "-o", "out"],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(posts(), 1);
    assert_eq!(support::files_in(&e.dir.join("out"), "png").len(), 1);

    let o = krea(
        &e,
        &["run", "/generate/image/nobody/ghost-1", "-p", "prompt=x"],
    )
    .await;
    assert!(
        stderr(&o).contains("in neither the built-in model list nor the cached one"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        e.sim
            .control()
            .counters()
            .requests_with_prefix("POST (unmatched)"),
        1,
        "sent once, unchecked"
    );
}

/// A torn or garbage journal line costs nothing else: the other jobs resume, and the damaged
/// line is named with the job it was about.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_journal_line_loses_no_other_job_and_names_what_it_lost() {
    let e = env("torn", Simulator::builder()).await;
    let o = krea(&e, &["image", "a heron", "--no-wait", "-o", "out"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let journal = e.dir.join("state/krea/journal.jsonl");
    let lost = "11111111-2222-3333-4444-555555555555";
    let mut text = std::fs::read(&journal).expect("journal");
    // A garbage line in the middle, then a torn last line.
    let garbage = format!("{{\"event\":\"submitted\",\"job_id\":\"{lost}\",\u{0}\u{ff}\n");
    text.splice(0..0, garbage.into_bytes());
    text.extend_from_slice(b"{\"event\":\"finished\",\"job_");
    std::fs::write(&journal, text).expect("write");
    let o = krea(&e, &["jobs", "resume"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains(lost), "names the job: {}", stderr(&o));
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    assert_eq!(
        support::files_in(&e.dir.join("out"), "png").len(),
        1,
        "{}",
        stdout(&o)
    );
    assert_eq!(
        e.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/"),
        1,
        "resuming sent nothing new"
    );
}

/// `krea ARGS` without KREA_API_TOKEN in the environment, `stdin` written to it.
async fn without_env_token(e: &support::Env, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut cmd = support::command(e);
    cmd.env_remove("KREA_API_TOKEN")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let input = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("run krea");
        let mut pipe = child.stdin.take().expect("stdin");
        let _ = pipe.write_all(input.as_bytes());
        drop(pipe);
        child.wait_with_output().expect("output")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_login_stores_a_verified_token_and_doctor_checks_everything() {
    let e = env("auth", Simulator::builder()).await;
    let token = format!("{}\n", e.sim.token());

    let refused = without_env_token(&e, &["auth", "login"], "not-the-token-1234\n").await;
    assert_eq!(code(&refused), 3, "{}", stderr(&refused));
    let store = e.dir.join("config/krea/credentials.json");
    assert!(!store.exists(), "a refused token is not stored");

    let o = without_env_token(&e, &["auth", "login"], &token).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("accepted by"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains(e.sim.token()),
        "the token is never shown"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&store)
        .expect("stored")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let api = e.sim.api_url();
    let o = without_env_token(&e, &["--base-url", api, "image", "a cat"], "").await;
    assert_eq!(code(&o), 0, "the stored token is used: {}", stderr(&o));
    let o = without_env_token(&e, &["auth", "status"], "").await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("credentials.json"), "{}", stdout(&o));
    assert!(stdout(&o).contains("accepted by"), "{}", stdout(&o));

    let o = without_env_token(&e, &["doctor"], "").await;
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let report = stdout(&o);
    for check in ["token", "api", "clock", "catalog", "journal", "output"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check} ok: {report}"
        );
    }
    assert!(
        !report.contains("warn") && !report.contains("FAIL"),
        "{report}"
    );

    let journal = e.dir.join("state/krea/journal.jsonl");
    let mut text = std::fs::read_to_string(&journal).expect("journal");
    text.push_str("{\"torn\": tr\n");
    std::fs::write(&journal, text).expect("write");
    let o = without_env_token(&e, &["doctor"], "").await;
    assert_eq!(code(&o), 0, "a warning is not a failure: {}", stdout(&o));
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with("warn") && l.contains("damaged line")),
        "{}",
        stdout(&o)
    );

    let o = without_env_token(&e, &["auth", "logout"], "").await;
    assert_eq!(code(&o), 0);
    let o = without_env_token(&e, &["auth", "status"], "").await;
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    assert!(stdout(&o).contains("krea auth login"), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_fit_80_columns_and_wider_terminals_show_more() {
    let e = env("widths", Simulator::builder()).await;
    let narrow = krea(&e, &["models"]).await;
    let rows = stdout(&narrow);
    assert_eq!(rows.lines().count(), 57, "a header and 56 models: {rows}");
    assert!(rows.lines().all(|l| l.chars().count() <= 80), "{rows}");
    assert!(
        rows.contains("bfl/flux-1-dev") && !rows.contains("PARAMETERS"),
        "{rows}"
    );
    let mut cmd = support::command(&e);
    cmd.env("COLUMNS", "200").arg("models");
    let wide = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    let rows = stdout(&wide);
    assert!(rows.lines().all(|l| l.chars().count() <= 200), "{rows}");
    assert!(
        rows.contains("PARAMETERS (* required)") && rows.contains("prompt*"),
        "{rows}"
    );
}

/// `words` split as a shell would split a simple command: on spaces, double quotes kept whole.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Every example under `Examples:` in a command's help runs as written (in a directory holding
/// the files they name, the pipeline file the README's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_in_help_run_as_written() {
    let e = env("help-examples", Simulator::builder()).await;
    let png = krea_sim::render_png(64, 48, 2);
    std::fs::write(e.dir.join("fox.png"), &png).expect("write");
    image::load_from_memory(&png)
        .expect("a PNG")
        .into_rgb8()
        .save(e.dir.join("photo.jpg"))
        .expect("a JPEG");
    std::fs::write(e.dir.join("prompts.txt"), "a fox\nan owl\n").expect("write");
    std::fs::write(
        e.dir.join("prompts.jsonl"),
        "{\"prompt\": \"a fox\", \"model\": \"flux\"}\n{\"prompt\": \"an owl\", \"model\": \"flux\"}\n",
    )
    .expect("write");
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .expect("README.md");
    let pipeline = readme[readme.find("## Pipelines").expect("the section")..]
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the pipeline file");
    std::fs::write(e.dir.join("animals.json"), pipeline).expect("write");
    let mut ran = 0;
    for command in ["image", "video", "enhance", "batch", "pipeline"] {
        let help = stdout(&krea(&e, &[command, "-h"]).await);
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{command} -h shows examples:\n{help}"));
        for line in examples
            .lines()
            .filter_map(|l| l.trim().strip_prefix("krea "))
        {
            // A note after two spaces and a parenthesis is not part of the command.
            let line = line.split("  (").next().unwrap_or_default();
            let words = shell_words(line);
            let args: Vec<&str> = words.iter().map(String::as_str).collect();
            let o = krea(&e, &args).await;
            assert_eq!(code(&o), 0, "krea {line}: {}", stderr(&o));
            ran += 1;
        }
    }
    assert!(ran >= 12, "{ran} examples");
}

/// A finished job keeps its prompt in `jobs list` (the journal keeps its start).
#[tokio::test(flavor = "multi_thread")]
async fn jobs_list_shows_the_prompt_of_a_finished_job() {
    let e = env("list-prompt", Simulator::builder()).await;
    let o = krea(&e, &["image", "a red fox in deep snow", "-m", "flux"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = krea(&e, &["jobs", "list"]).await;
    let row = stdout(&o)
        .lines()
        .find(|l| l.contains("completed"))
        .map(String::from)
        .unwrap_or_else(|| panic!("{}", stdout(&o)));
    assert!(
        row.contains("bfl/flux-1-dev") && row.contains("a red fox in deep snow"),
        "{row}"
    );
}

/// A job that ended while no command waited is reported as ended before the run that finds
/// it, not as taking 0 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_ended_while_away_says_so_on_resume() {
    let e = env("ended-away", Simulator::builder()).await;
    let o = krea(&e, &["image", "a red fox", "-m", "flux", "--no-wait"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The simulator, 100x fast, ends a Flux job in well under a second.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let o = krea(&e, &["jobs", "resume"]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("completed before this run"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("after 0s"), "{}", stderr(&o));
}
