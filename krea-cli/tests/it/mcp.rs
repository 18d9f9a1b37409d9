//! `krea mcp` as an assistant meets it: the binary started as a child process and driven by
//! rmcp's own client over the child's stdio.

use crate::support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProgressNotificationParam, ProtocolVersion,
};
#[allow(deprecated)] // roots leave the protocol with SEP-2577; clients before it declare them
use rmcp::model::{ListRootsResult, Root};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use support::Env;

/// A client that keeps the progress notifications it receives.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().expect("progress").push(params);
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.progress.lock().expect("progress").len()
    }
}

pub(crate) type Client = RunningService<RoleClient, Recorder>;

/// `krea mcp ARGS` with `command`'s environment, its stderr kept in the scratch directory.
async fn start(command: std::process::Command, dir: &std::path::Path, args: &[&str]) -> Client {
    start_as(Recorder::default(), command, dir, args).await
}

/// `krea mcp ARGS` driven by `handler` (a client with capabilities of its own).
async fn start_as<H: ClientHandler>(
    handler: H,
    mut command: std::process::Command,
    dir: &std::path::Path,
    args: &[&str],
) -> RunningService<RoleClient, H> {
    command.args(["mcp", "--poll", "0.02"]).args(args);
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("mcp-stderr.log"))
        .expect("as set up");
    let command = tokio::process::Command::from(command).configure(|c| {
        c.kill_on_drop(true);
    });
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn krea mcp");
    handler.serve(transport).await.expect("initialize")
}

pub(crate) async fn call<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    if let Some(s) = &result.structured_content {
        assert_no_nulls(tool, s, "");
    }
    // A server started with --output-schemas holds every answer to its tool's schema.
    let listed = client.list_all_tools().await.expect("tools/list");
    if let Some(schema) = listed
        .iter()
        .find(|t| t.name == tool)
        .and_then(|t| t.output_schema.clone())
    {
        let schema = Value::Object((*schema).clone());
        let s = result
            .structured_content
            .as_ref()
            .unwrap_or_else(|| panic!("{tool}: no structuredContent"));
        let mut problems = Vec::new();
        crate::json_output::check(&schema, &schema, s, tool, &mut problems);
        undocumented(&schema, s, tool, &mut problems);
        assert!(problems.is_empty(), "{tool}: {problems:#?}\n{s:#}");
    }
    result
}

/// Members of `value` its `schema` does not name (the published schemas leave room for new
/// members, but every member sent today is documented).
fn undocumented(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (name, member) in members {
                match props.and_then(|p| p.get(name)) {
                    Some(sub) => undocumented(sub, member, &format!("{at}.{name}"), problems),
                    None if props.is_some() => {
                        problems.push(format!("{at}.{name} is undocumented"))
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    undocumented(item, v, &format!("{at}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

/// Structured results leave out what has nothing to say: no member of any object is null.
fn assert_no_nulls(tool: &str, value: &Value, at: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                assert!(!v.is_null(), "{tool}: {at}.{k} is null");
                assert_no_nulls(tool, v, &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                assert_no_nulls(tool, v, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

pub(crate) fn structured(r: &CallToolResult) -> &Value {
    r.structured_content.as_ref().expect("structuredContent")
}

pub(crate) fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn is_error(r: &CallToolResult) -> bool {
    r.is_error == Some(true)
}

pub(crate) fn files(r: &CallToolResult) -> Vec<PathBuf> {
    structured(r)["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| PathBuf::from(f.as_str().expect("as set up")))
        .collect()
}

/// POSTs the simulator has answered (generations, uploads), whatever their status.
pub(crate) fn posts(e: &Env) -> u64 {
    let counters = e.sim.control().counters();
    counters
        .requests
        .iter()
        .filter(|(route, _)| route.starts_with("POST "))
        .map(|(route, _)| counters.requests_to(route))
        .sum()
}

pub(crate) const TOOLS: [&str; 15] = [
    "cancel_job",
    "enhance_image",
    "estimate_cost",
    "generate_image",
    "generate_video",
    "get_job",
    "get_model_schema",
    "list_jobs",
    "list_models",
    "pipeline_status",
    "resume_jobs",
    "run_model",
    "run_pipeline",
    "upload_asset",
    "wait_job",
];

/// The acceptance flow, with `--sim`: tools listed, a schema read, an image made and seen, a
/// video that outlasts its wait answered `pending` and then finished by `wait_job`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assistant_drives_krea_mcp_sim_over_stdio() {
    let dir = support::scratch("mcp-sim");
    let out = dir.join("out");
    let command = || {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin!("krea"));
        command
            .current_dir(&dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("HOME", &dir)
            .env_remove("KREA_API_TOKEN")
            .env_remove("KREA_BASE_URL");
        command
    };
    let client = start(
        command(),
        &dir,
        &[
            "--sim",
            "--output-schemas",
            "--output-dir",
            out.to_str().expect("as set up"),
        ],
    )
    .await;

    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().expect("as set up").name, "krea");
    let tools = client.list_all_tools().await.expect("as set up");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(names, TOOLS);
    for t in &tools {
        let d = t.description.as_deref().unwrap_or_default();
        assert!(
            !d.is_empty() && d.len() <= 160,
            "{}: descriptions are short ({d:?})",
            t.name
        );
        assert!(
            t.title.as_deref().is_some_and(|x| !x.is_empty()),
            "{}: a title",
            t.name
        );
        let a = t.annotations.as_ref().expect("annotations");
        // A hint left out is the spec's default (read-only false, destructive true, idempotent
        // false, open-world true); only what differs is listed.
        let read_only = a.read_only_hint.unwrap_or(false);
        // A tool that may pay says so in its title and is never hinted read-only.
        let paid = t.title.as_deref().is_some_and(|x| x.ends_with("(paid)"));
        assert_eq!(
            read_only,
            !paid
                && !matches!(
                    t.name.as_ref(),
                    "wait_job" | "cancel_job" | "resume_jobs" | "upload_asset"
                ),
            "{}",
            t.name
        );
        assert!(
            a.read_only_hint != Some(false)
                && a.destructive_hint != Some(true)
                && a.idempotent_hint != Some(false)
                && a.open_world_hint != Some(true),
            "{}: a default is left out ({a:?})",
            t.name
        );
        if read_only {
            // Destructive and idempotent mean something only for a tool that changes things.
            assert!(
                a.destructive_hint.is_none() && a.idempotent_hint.is_none(),
                "{}",
                t.name
            );
        } else {
            assert_eq!(
                a.destructive_hint.unwrap_or(true),
                t.name == "cancel_job",
                "{}: only a cancel ends something",
                t.name
            );
        }
        if paid {
            assert!(
                !a.idempotent_hint.unwrap_or(false),
                "{}: calling twice pays twice",
                t.name
            );
        }
    }
    assert!(
        tools.iter().all(|t| t.output_schema.is_some()),
        "with --output-schemas every tool publishes one"
    );
    // Every byte of the listing sits in the assistant's context: by default, no output schemas.
    let plain = start(
        command(),
        &dir,
        &["--sim", "--output-dir", out.to_str().expect("as set up")],
    )
    .await;
    let plain_tools = plain.list_all_tools().await.expect("as set up");
    plain.cancel().await.expect("closed");
    assert!(plain_tools.iter().all(|t| t.output_schema.is_none()));
    let listing = serde_json::to_string(&json!({ "tools": plain_tools })).expect("as set up");
    assert!(
        listing.len() < 8 * 1024,
        "tools/list is {} bytes",
        listing.len()
    );
    let paid: Vec<&str> = tools
        .iter()
        .filter(|t| t.title.as_deref().is_some_and(|x| x.ends_with("(paid)")))
        .map(|t| t.name.as_ref())
        .collect();
    assert_eq!(paid.len(), 5, "{paid:?}");
    let generate = tools
        .iter()
        .find(|t| t.name == "generate_image")
        .expect("as set up");
    assert_eq!(generate.input_schema["required"], json!(["prompt"]));

    let schema = call(&client, "get_model_schema", json!({"model": "flux"})).await;
    assert!(!is_error(&schema), "{}", text(&schema));
    let s = structured(&schema);
    assert_eq!(s["id"], "bfl/flux-1-dev");
    assert!(s["parameters"].as_array().expect("as set up").len() > 3);
    assert_eq!(s["compute_units"], json!({"low": 3.0, "high": 3.0}));
    assert!(text(&schema).contains("Parameters:"));
    assert!(
        s.get("json_schema").is_none() && s.get("prices").is_none(),
        "compact unless asked"
    );
    // The big price tables stay out unless asked for: what a caller needs fits in 4 KB.
    let kling = call(&client, "get_model_schema", json!({"model": "kling-3.0"})).await;
    let size = serde_json::to_string(&kling).expect("as set up").len();
    assert!(
        size < 4 * 1024,
        "get_model_schema kling-3.0 is {size} bytes"
    );
    assert!(text(&kling).contains("estimate_cost"), "{}", text(&kling));
    let audio = structured(&kling)["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "generate_audio")
        .cloned()
        .expect("generate_audio");
    assert_eq!(audio["default"], false, "a false default is kept: {audio}");
    assert!(audio.get("nullable").is_none() && audio.get("enum").is_none());
    let full = call(
        &client,
        "get_model_schema",
        json!({"model": "flux", "full_schema": true}),
    )
    .await;
    assert!(structured(&full)["json_schema"]["properties"]["prompt"].is_object());
    assert!(
        !structured(&full)["prices"]
            .as_array()
            .expect("prices")
            .is_empty()
    );

    // An image: a file on disk, a resource link to it, a preview under 1 MB, progress.
    let image = call(
        &client,
        "generate_image",
        json!({"prompt": "a red fox in the snow", "model": "flux", "width": 640, "height": 512}),
    )
    .await;
    assert!(!is_error(&image), "{}", text(&image));
    let s = structured(&image);
    assert_eq!(s["status"], "completed");
    let png = std::fs::read(&files(&image)[0]).expect("the file");
    assert_eq!(
        (&png[16..20], &png[20..24]),
        (&640u32.to_be_bytes()[..], &512u32.to_be_bytes()[..]),
        "width and height reach the request"
    );
    assert_eq!(s["model"], "bfl/flux-1-dev");
    assert!(s["cost_cu"].as_f64().expect("as set up") > 0.0);
    assert_eq!(s["session_cu"], s["cost_cu"]);
    let made = files(&image);
    assert_eq!(made.len(), 1);
    assert!(made[0].is_file() && made[0].starts_with(&out), "{made:?}");
    let link = image
        .content
        .iter()
        .find_map(|c| c.as_resource_link())
        .expect("a resource link");
    assert!(link.uri.starts_with("file:///") && link.uri.ends_with(".png"));
    let preview = image
        .content
        .iter()
        .find_map(|c| c.as_image())
        .expect("a preview");
    assert_eq!(preview.mime_type, "image/jpeg");
    assert!(
        preview.data.len() < 1_000_000,
        "{} bytes",
        preview.data.len()
    );
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(&preview.data)
        .expect("as set up");
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
    let after_image = client.service().count();
    assert!(after_image >= 1, "progress notifications arrive");

    // A video outlasts a one-second wait (the simulator's videos take 1.8 s or more)...
    let video = call(
        &client,
        "generate_video",
        json!({"prompt": "waves at dusk", "wait_seconds": 1}),
    )
    .await;
    assert!(!is_error(&video), "{}", text(&video));
    let s = structured(&video);
    assert!(
        ["queued", "processing", "pending"].contains(&s["status"].as_str().expect("as set up")),
        "{s}"
    );
    assert!(s["next"].as_str().expect("as set up").contains("wait_job"));
    assert!(files(&video).is_empty());
    let id = s["id"].as_str().expect("as set up").to_string();
    // ... and wait_job (given a short id) finishes it.
    let done = call(&client, "wait_job", json!({"job_id": &id[..8]})).await;
    assert!(!is_error(&done), "{}", text(&done));
    let s = structured(&done);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["id"], id.as_str());
    let video_files = files(&done);
    assert_eq!(video_files.len(), 1);
    assert!(video_files[0].is_file());
    assert!(client.service().count() > after_image);

    // The other tools answer in their published shapes too (checked in `call`).
    let listed = call(&client, "list_models", json!({"kind": "video"})).await;
    assert!(
        structured(&listed)["models"]
            .as_array()
            .is_some_and(|m| m.len() > 3)
    );
    let got = call(&client, "get_job", json!({"job_id": &id})).await;
    assert_eq!(structured(&got)["status"], "completed");
    let any = call(
        &client,
        "run_model",
        json!({"model": "flux", "params": {"prompt": "a kite"}}),
    )
    .await;
    assert_eq!(structured(&any)["status"], "completed", "{}", text(&any));
    let cancel = call(&client, "cancel_job", json!({"job_id": &id})).await;
    assert!(structured(&cancel).get("cancelled").is_some() || is_error(&cancel));
    let jobs = call(&client, "list_jobs", json!({"limit": 5})).await;
    assert!(
        !structured(&jobs)["jobs"]
            .as_array()
            .expect("jobs")
            .is_empty()
    );
    let unknown = call(&client, "get_job", json!({"job_id": "ffffffff"})).await;
    assert!(is_error(&unknown) && structured(&unknown)["error"]["message"].is_string());

    // A pipeline, inline: two drawings, each animated; waited for until it finishes.
    let run = call(
        &client,
        "run_pipeline",
        json!({"pipeline": {"steps": [
            {"id": "draw", "model": "flux", "fan_out": {"animal": ["a fox", "an owl"]},
             "params": {"prompt": "{{animal}}"}},
            {"id": "animate", "model": "veo-3.1-fast",
             "params": {"prompt": "{{animal}} blinks", "start_image": "{{steps.draw.outputs}}"}}]},
            "wait_seconds": 60}),
    )
    .await;
    assert!(!is_error(&run), "{}", text(&run));
    let s = structured(&run);
    assert_eq!(s["status"], "finished", "{s}");
    assert_eq!(s["jobs_planned"], 4);
    assert_eq!(s["files"].as_array().map(Vec::len), Some(4));
    let status = call(
        &client,
        "pipeline_status",
        json!({"run_id": s["run_id"].clone()}),
    )
    .await;
    assert_eq!(structured(&status)["status"], "finished");
    assert!(text(&status).contains("animate 2/2"), "{}", text(&status));

    client.cancel().await.expect("as set up");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Against a simulator this test counts requests on: bad input and a call over the limit send
/// nothing; a job whose wait ended survives the server's exit and is finished by the next
/// server's `resume_jobs`, submitted once; the token shows in no result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_send_nothing_and_a_pending_job_outlives_the_server() {
    let e = support::env("mcp-limits", krea_sim::Simulator::builder()).await;
    let out = e.dir.join("out");
    let args = [
        "--output-schemas",
        "--output-dir",
        out.to_str().expect("as set up"),
        "--max-cu-per-call",
        "50",
        "--budget-cu",
        "4",
    ];
    let client = start(support::command(&e), &e.dir, &args).await;
    let mut seen = Vec::new();

    // A parameter out of range: a tool error naming it, nothing sent.
    let bad = call(
        &client,
        "generate_image",
        json!({"prompt": "a cat", "model": "flux", "params": {"steps": 9999}}),
    )
    .await;
    assert!(is_error(&bad));
    assert!(text(&bad).contains("steps"), "{}", text(&bad));
    assert!(
        text(&bad).contains("\n- get_model_schema"),
        "{}",
        text(&bad)
    );
    assert_eq!(structured(&bad)["error"]["kind"], "invalid_request");
    // The problem as data: which field, and what is allowed.
    assert_eq!(structured(&bad)["error"]["problems"][0]["field"], "steps");
    seen.push(bad);
    // A model of another kind: pointed to the right tool, nothing sent.
    let wrong = call(
        &client,
        "generate_image",
        json!({"prompt": "a cat", "model": "google/veo-3.1-fast"}),
    )
    .await;
    assert!(is_error(&wrong) && text(&wrong).contains("generate_video"));
    seen.push(wrong);
    // Over the per-call limit (a Veo video costs 183 CU or more): refused with the estimate.
    let dear = call(&client, "generate_video", json!({"prompt": "waves"})).await;
    assert!(is_error(&dear));
    assert_eq!(structured(&dear)["error"]["kind"], "over_budget");
    assert!(
        structured(&dear)["estimate_cu"]
            .as_f64()
            .expect("as set up")
            > 50.0
    );
    assert!(text(&dear).contains("ask the user"), "{}", text(&dear));
    let priced = call(
        &client,
        "estimate_cost",
        json!({"model": "veo-3.1-fast", "params": {"prompt": "waves"}}),
    )
    .await;
    assert_eq!(structured(&priced)["allowed"], false);
    assert!(text(&priced).contains("spent 0 CU"), "{}", text(&priced));
    let pipeline = call(
        &client,
        "run_pipeline",
        json!({"pipeline": {"steps": [{"id": "v", "model": "veo-3.1-fast",
                                        "params": {"prompt": "waves"}}]}}),
    )
    .await;
    assert!(is_error(&pipeline));
    assert_eq!(structured(&pipeline)["error"]["kind"], "over_budget");
    // A blank prompt: nothing to generate from, so nothing is paid for.
    let blank = call(
        &client,
        "generate_image",
        json!({"prompt": "  \n ", "model": "flux"}),
    )
    .await;
    assert!(is_error(&blank), "{}", text(&blank));
    assert_eq!(structured(&blank)["error"]["kind"], "invalid_request");
    assert!(
        text(&blank).contains("prompt: is empty"),
        "{}",
        text(&blank)
    );
    seen.push(dear);
    seen.push(priced);
    seen.push(pipeline);
    seen.push(blank);
    assert_eq!(posts(&e), 0, "refusals send nothing");
    assert_eq!(e.sim.control().counters().jobs_created, 0);

    // A wait of 0 s: pending at once; then the server goes away.
    let pending = call(
        &client,
        "generate_image",
        json!({"prompt": "a lighthouse", "model": "flux", "wait_seconds": 0}),
    )
    .await;
    assert!(!is_error(&pending), "{}", text(&pending));
    let id: uuid::Uuid = structured(&pending)["id"]
        .as_str()
        .expect("as set up")
        .parse()
        .expect("as set up");
    assert_eq!(structured(&pending)["session_cu"], 3.0);
    seen.push(pending);
    // A second 3 CU image would take the session past its budget of 4 CU.
    let over = call(
        &client,
        "generate_image",
        json!({"prompt": "a second lighthouse", "model": "flux"}),
    )
    .await;
    assert!(is_error(&over));
    assert!(text(&over).contains("session budget"), "{}", text(&over));
    assert_eq!(structured(&over)["session_cu"], 3.0);
    seen.push(over);
    client.cancel().await.expect("as set up");
    assert_eq!(e.sim.control().counters().jobs_created, 1);

    // A new server finishes it from the journal: no new POST, no DELETE, the file written.
    let client = start(support::command(&e), &e.dir, &args).await;
    let resumed = call(&client, "resume_jobs", json!({"wait_seconds": 60})).await;
    assert!(!is_error(&resumed), "{}", text(&resumed));
    let jobs = structured(&resumed)["jobs"]
        .as_array()
        .expect("as set up")
        .clone();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["id"], id.to_string());
    assert_eq!(jobs[0]["status"], "completed");
    let file = PathBuf::from(jobs[0]["files"][0].as_str().expect("as set up"));
    assert!(file.is_file() && file.starts_with(&out), "{file:?}");
    seen.push(resumed);
    let again = call(&client, "resume_jobs", json!({})).await;
    assert_eq!(structured(&again)["jobs"], json!([]));
    seen.push(again);
    let listed = call(&client, "list_jobs", json!({"limit": 5})).await;
    assert!(text(&listed).contains(&id.to_string()));
    seen.push(listed);
    client.cancel().await.expect("as set up");

    let counters = e.sim.control().counters();
    assert_eq!(counters.jobs_created, 1, "submitted once");
    assert_eq!(
        counters.requests_to("DELETE /jobs/{id}"),
        0,
        "never cancelled"
    );
    assert_eq!(e.sim.control().status(id).as_deref(), Some("completed"));
    let everything = serde_json::to_string(&seen).expect("as set up");
    assert!(!everything.contains(e.sim.token()), "the token never shows");
}

/// The README's `krea mcp --budget-cu 500`, as written there: an enhance, whose model has no
/// published price, counts at its assumed price and is allowed, not refused outright.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_budget_lets_an_assistant_enhance_an_image() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .expect("README.md");
    let line = readme
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("claude mcp add krea -- krea mcp")
        })
        .expect("the README's MCP command");
    let args: Vec<&str> = line
        .split("krea mcp")
        .nth(1)
        .expect("arguments")
        .split_whitespace()
        .collect();
    assert!(args.contains(&"--budget-cu"), "{line}");
    let e = support::env("mcp-readme", krea_sim::Simulator::builder()).await;
    let client = start(support::command(&e), &e.dir, &args).await;
    let priced = call(
        &client,
        "estimate_cost",
        json!({"model": "topaz/standard-enhance",
               "params": {"image_url": "https://example.com/cat.png", "width": 2048, "height": 2048}}),
    )
    .await;
    assert_eq!(structured(&priced)["allowed"], true, "{}", text(&priced));
    assert_eq!(structured(&priced)["assumed_price"], true);
    let enhanced = call(
        &client,
        "enhance_image",
        json!({"image": "https://example.com/cat.png",
               "params": {"width": 2048, "height": 2048}}),
    )
    .await;
    assert!(!is_error(&enhanced), "{}", text(&enhanced));
    assert_eq!(e.sim.control().counters().jobs_created, 1);
    client.cancel().await.expect("as set up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_at_once_cannot_pass_the_session_budget_together() {
    // A 200 ms round trip: every call is checked long before any answer comes back.
    let e = support::env(
        "mcp-race",
        krea_sim::Simulator::builder().latency(std::time::Duration::from_millis(200)),
    )
    .await;
    let out = e.dir.join("out");
    let args = [
        "--output-schemas",
        "--output-dir",
        out.to_str().expect("as set up"),
        "--budget-cu",
        "6",
    ];
    let client = start(support::command(&e), &e.dir, &args).await;
    // Six Flux images at 3 CU each: two fit in 6 CU.
    let calls = (0..6).map(|i| {
        call(
            &client,
            "generate_image",
            json!({"prompt": format!("cat {i}"), "model": "flux"}),
        )
    });
    let results = futures_util::future::join_all(calls).await;
    let refused: Vec<&CallToolResult> = results
        .iter()
        .filter(|r| is_error(r) && structured(r)["error"]["kind"] == "over_budget")
        .collect();
    let done = results.iter().filter(|r| !is_error(r)).count();
    assert_eq!(
        (done, refused.len()),
        (2, 4),
        "{:?}",
        results.iter().map(text).collect::<Vec<_>>()
    );
    assert_eq!(e.sim.control().counters().jobs_created, 2);
    assert_eq!(
        e.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/"),
        2,
        "a refused call sends nothing"
    );
    client.cancel().await.expect("as set up");
}

#[tokio::test]
async fn an_assistant_reads_and_writes_only_where_the_user_allowed() {
    let e = support::env("mcp-bounds", krea_sim::Simulator::builder()).await;
    let (out, allowed, private) = (
        e.dir.join("out"),
        e.dir.join("allowed"),
        e.dir.join("private"),
    );
    for d in [&out, &allowed, &private] {
        std::fs::create_dir_all(d).expect("as set up");
    }
    let png = krea_sim::render_png(64, 64, 3);
    std::fs::write(private.join("secret.png"), &png).expect("as set up");
    std::fs::write(allowed.join("ok.png"), &png).expect("as set up");
    #[cfg(unix)]
    std::os::unix::fs::symlink(private.join("secret.png"), out.join("link.png"))
        .expect("as set up");
    let args = [
        "--output-schemas",
        "--output-dir",
        out.to_str().expect("as set up"),
        "--allow-read",
        allowed.to_str().expect("as set up"),
    ];
    let client = start(support::command(&e), &e.dir, &args).await;
    let secret = private.join("secret.png").display().to_string();
    let dotdot = out.join("../private/secret.png").display().to_string();
    let link = out.join("link.png").display().to_string();
    let mut refused = vec![
        call(&client, "upload_asset", json!({"path": secret})).await,
        call(&client, "upload_asset", json!({"path": dotdot})).await,
        call(
            &client,
            "generate_image",
            json!({"prompt": "a cat", "model": "flux", "images": [secret]}),
        )
        .await,
        call(&client, "enhance_image", json!({"image": dotdot})).await,
        call(
            &client,
            "run_pipeline",
            json!({"pipeline": {"steps": [{"id": "a", "model": "flux", "params": {"prompt": "a cat"}}]},
                   "output_dir": "../../escaped-run"}),
        )
        .await,
        call(
            &client,
            "run_pipeline",
            json!({"pipeline": {"steps": [{"id": "up", "model": "topaz",
                   "params": {"image_url": secret, "width": 128, "height": 128}}]}}),
        )
        .await,
        call(&client, "pipeline_status", json!({"run_id": "../private"})).await,
    ];
    #[cfg(unix)]
    refused.push(call(&client, "upload_asset", json!({"path": link})).await);
    for r in &refused {
        assert!(is_error(r), "{}", text(r));
        let kind = structured(r)["error"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(kind.starts_with("outside_"), "{kind}: {}", text(r));
    }
    assert!(
        text(&refused[0]).contains("--allow-read"),
        "{}",
        text(&refused[0])
    );
    assert_eq!(posts(&e), 0, "nothing sent for a refused read or write");
    assert!(
        !e.dir.join("escaped-run").exists()
            && !e.dir.parent().expect("tmp").join("escaped-run").exists()
    );
    // Under an allowed directory: read and uploaded.
    let ok = call(
        &client,
        "upload_asset",
        json!({"path": allowed.join("ok.png").display().to_string()}),
    )
    .await;
    assert!(!is_error(&ok), "{}", text(&ok));
    assert_eq!(posts(&e), 1);
    client.cancel().await.expect("as set up");
}

#[tokio::test]
async fn a_job_adopted_after_a_lost_answer_counts_against_the_session_budget_once() {
    use krea_sim::{Fault, FaultRule};
    let flux = "POST /generate/image/bfl/flux-1-dev";
    // The gateway answers 504 and the backend creates the job 200 ms later, while the listing
    // fails: the call cannot find out what it created within its wait.
    let e = support::env(
        "mcp-adopted",
        krea_sim::Simulator::builder()
            .fault(
                flux,
                Fault::CommitAfter {
                    status: Some(504),
                    delay: std::time::Duration::from_millis(200),
                },
                1.0,
            )
            .fault("GET /jobs", Fault::Status(503), 1.0),
    )
    .await;
    let out = e.dir.join("out");
    let mut command = support::command(&e);
    command.args(["--settle-grace", "2"]);
    let args = [
        "--output-schemas",
        "--output-dir",
        out.to_str().expect("as set up"),
        "--budget-cu",
        "4",
    ];
    let client = start(command, &e.dir, &args).await;
    let lost = call(
        &client,
        "generate_image",
        json!({"prompt": "a cat", "model": "flux", "wait_seconds": 1}),
    )
    .await;
    assert!(is_error(&lost), "{}", text(&lost));
    // The backend commits 200 ms after the 504, whenever the call gave up.
    let committed = std::time::Instant::now();
    while e.sim.control().counters().jobs_created == 0 {
        assert!(
            committed.elapsed().as_secs() < 10,
            "the job is created after the 504"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Its 3 CU are still held: a second 3 CU call would pass the 4 CU budget.
    let second = call(
        &client,
        "generate_image",
        json!({"prompt": "a dog", "model": "flux"}),
    )
    .await;
    assert_eq!(
        structured(&second)["error"]["kind"],
        "over_budget",
        "{}",
        text(&second)
    );

    // The listing recovers; resume_jobs finds the job, and it counts in the hold's place.
    e.sim.control().set_faults(Vec::<FaultRule>::new());
    let resumed = call(&client, "resume_jobs", json!({"wait_seconds": 60})).await;
    assert!(!is_error(&resumed), "{}", text(&resumed));
    let jobs = structured(&resumed)["jobs"]
        .as_array()
        .expect("as set up")
        .clone();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["cost_cu"], 3.0, "{jobs:?}");
    assert_eq!(structured(&resumed)["session_cu"], 3.0, "counted once");
    let third = call(
        &client,
        "generate_image",
        json!({"prompt": "a dog", "model": "flux"}),
    )
    .await;
    assert_eq!(
        structured(&third)["error"]["kind"],
        "over_budget",
        "{}",
        text(&third)
    );
    assert_eq!(
        e.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/"),
        1,
        "one POST in all: refused calls send nothing, and the lost one is never sent again"
    );
    client.cancel().await.expect("as set up");
}

/// A client that declares roots, as an editor does for the folders the user opened.
#[derive(Clone)]
struct WithRoots(Vec<String>);

#[allow(deprecated)] // roots leave the protocol with SEP-2577; clients before it declare them
impl ClientHandler for WithRoots {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_roots().build(),
            Implementation::new("roots-client", "1"),
        )
        .with_protocol_version(ProtocolVersion::V_2025_06_18)
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, rmcp::ErrorData> {
        Ok(ListRootsResult::new(
            self.0.iter().map(|uri| Root::new(uri.clone())).collect(),
        ))
    }
}

/// A folder the client declares as a root may be read; a file outside every root, the output
/// directory and `--allow-read` is still refused with nothing sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roots_a_client_declares_may_be_read_and_nothing_beside_them() {
    let e = support::env("mcp-roots", krea_sim::Simulator::builder()).await;
    let (out, project, private) = (
        e.dir.join("out"),
        e.dir.join("project"),
        e.dir.join("private"),
    );
    for d in [&out, &project, &private] {
        std::fs::create_dir_all(d).expect("as set up");
    }
    let png = krea_sim::render_png(64, 64, 3);
    std::fs::write(project.join("sketch.png"), &png).expect("as set up");
    std::fs::write(private.join("secret.png"), &png).expect("as set up");
    let root = url::Url::from_directory_path(&project).expect("absolute");
    let client = start_as(
        WithRoots(vec![root.to_string()]),
        support::command(&e),
        &e.dir,
        &[
            "--output-schemas",
            "--output-dir",
            out.to_str().expect("as set up"),
        ],
    )
    .await;
    let secret = private.join("secret.png").display().to_string();
    let through = project.join("../private/secret.png").display().to_string();
    for path in [&secret, &through] {
        let r = call(&client, "upload_asset", json!({"path": path})).await;
        assert!(is_error(&r), "{}", text(&r));
        assert_eq!(structured(&r)["error"]["kind"], "outside_allowed_dirs");
    }
    assert_eq!(posts(&e), 0, "nothing sent for a refused read");
    let sketch = project.join("sketch.png").display().to_string();
    let r = call(&client, "upload_asset", json!({"path": sketch})).await;
    assert!(!is_error(&r), "{}", text(&r));
    assert_eq!(posts(&e), 1);
    client.cancel().await.expect("as set up");

    // The same file, asked by a client that declares no roots: refused.
    let plain = start(
        support::command(&e),
        &e.dir,
        &[
            "--output-schemas",
            "--output-dir",
            out.to_str().expect("as set up"),
        ],
    )
    .await;
    let r = call(&plain, "upload_asset", json!({"path": sketch})).await;
    assert!(is_error(&r), "{}", text(&r));
    assert_eq!(posts(&e), 1);
    plain.cancel().await.expect("as set up");
}
