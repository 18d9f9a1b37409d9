//! Every command's `--json` document, on success and on failure, validated against the one
//! published schema (`krea-cli/schema/output-v1.json`).

use crate::support::{self, Env, code, krea, stderr, stdout};

use serde_json::{Value, json};

fn schema() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/output-v1.json");
    serde_json::from_slice(&std::fs::read(path).expect("the schema")).expect("the schema is JSON")
}

/// The JSON Schema keywords the schema may use; a keyword this checker does not know fails the
/// test, so the schema cannot promise what nothing checks.
const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
];

fn type_matches(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// Checks `value` against `schema` (a subset of JSON Schema 2020-12: the keywords in KNOWN).
pub(crate) fn check(
    root: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    problems: &mut Vec<String>,
) {
    let Value::Object(s) = schema else {
        panic!("{at}: a schema is an object")
    };
    for key in s.keys() {
        assert!(
            KNOWN.contains(&key.as_str()),
            "{at}: keyword {key} is not checked"
        );
    }
    if let Some(reference) = s.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("{at}: $ref {reference}"));
        let target = &root["$defs"][name];
        assert!(target.is_object(), "{at}: no $defs/{name}");
        check(root, target, value, at, problems);
    }
    if let Some(t) = s.get("type") {
        let names: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => panic!("{at}: type"),
        };
        if !names.iter().any(|n| type_matches(n, value)) {
            problems.push(format!("{at}: {value} is not {names:?}"));
            return;
        }
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        problems.push(format!("{at}: {value} is not {c}"));
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), value.as_f64())
        && n < min
    {
        problems.push(format!("{at}: {n} < {min}"));
    }
    if let Value::Object(members) = value {
        let props = s.get("properties").and_then(Value::as_object);
        for name in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().expect("names");
            if !members.contains_key(name) {
                problems.push(format!("{at}: {name} is missing"));
            }
        }
        for (name, member) in members {
            match props.and_then(|p| p.get(name)) {
                Some(sub) => check(root, sub, member, &format!("{at}.{name}"), problems),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{at}: {name} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item)) = (value, s.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(root, item, v, &format!("{at}[{i}]"), problems);
        }
    }
}

/// `krea --json ARGS`: its document, checked against the schema, naming the command, with the
/// exit code `exit`. A command that failed (exit 2 and up) says why in `error`; one whose jobs
/// failed (exit 1) shows them.
async fn document(e: &Env, args: &[&str], command: &str, exit: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = krea(e, &all).await;
    assert_eq!(code(&o), exit, "{args:?}: {}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|err| {
        panic!(
            "{args:?}: stdout is not one JSON document ({err}): {}",
            stdout(&o)
        )
    });
    let root = schema();
    let mut problems = Vec::new();
    check(&root, &root, &doc, "", &mut problems);
    assert!(problems.is_empty(), "{args:?}: {problems:#?}\n{doc:#}");
    assert_eq!(doc["command"], command, "{args:?}");
    assert_eq!(doc.get("error").is_some(), exit >= 2, "{args:?}: {doc:#}");
    if exit == 1 {
        assert!(
            doc["jobs"].as_array().is_some_and(|j| !j.is_empty()),
            "{doc:#}"
        );
    }
    doc
}

fn job_id(doc: &Value) -> String {
    doc["jobs"][0]["id"].as_str().expect("a job id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_one_documented_shape_with_json() {
    let e = support::env("json-output", krea_sim::Simulator::builder()).await;
    let png = e.dir.join("in.png");
    std::fs::write(&png, krea_sim::render_png(64, 64, 1)).expect("as set up");
    let png = png.to_str().expect("as set up").to_string();
    std::fs::write(e.dir.join("prompts.txt"), "a fox\nan owl\n").expect("as set up");
    std::fs::write(
        e.dir.join("p.json"),
        r#"{"steps": [{"id": "draw", "model": "flux", "params": {"prompt": "a hare"}}]}"#,
    )
    .expect("as set up");

    let image = document(&e, &["image", "a cat", "-m", "flux"], "image", 0).await;
    let job = &image["jobs"][0];
    assert_eq!(job["status"], "completed");
    assert!(
        job["created_at"].is_string() && job["completed_at"].is_string(),
        "{job}"
    );
    // A server on loopback is a simulator, as the contact sheet of the same run says.
    assert_eq!(image["simulated"], true);
    document(
        &e,
        &["image", "a cat", "-m", "flux", "--dry-run"],
        "image",
        0,
    )
    .await;
    document(&e, &["video", "waves", "--dry-run"], "video", 0).await;
    document(&e, &["enhance", &png, "--dry-run"], "enhance", 0).await;
    document(
        &e,
        &["run", "flux", "--body", r#"{"prompt": "a cat"}"#],
        "run",
        0,
    )
    .await;
    let queued = document(
        &e,
        &["video", "waves", "-m", "kling-2.5", "--no-wait"],
        "video",
        0,
    )
    .await;
    let video = job_id(&queued);
    let cancel = document(&e, &["jobs", "cancel", &video], "jobs cancel", 0).await;
    assert_eq!(cancel["jobs"][0]["status"], "cancelled");
    assert_eq!(cancel["cancelled"], true);
    let batch = document(
        &e,
        &["batch", "prompts.txt", "-m", "flux", "-o", "b"],
        "batch",
        0,
    )
    .await;
    assert_eq!(batch["jobs"].as_array().map(Vec::len), Some(2));
    assert_eq!(batch["cost_cu"], json!(6.0));
    document(
        &e,
        &["batch", "prompts.txt", "-m", "flux", "--dry-run"],
        "batch",
        0,
    )
    .await;
    document(
        &e,
        &["pipeline", "p.json", "-o", "p", "--dry-run"],
        "pipeline",
        0,
    )
    .await;
    document(&e, &["pipeline", "p.json", "-o", "p"], "pipeline", 0).await;
    let id = job_id(&image);
    document(&e, &["jobs", "list"], "jobs list", 0).await;
    document(&e, &["jobs", "get", &id], "jobs get", 0).await;
    document(&e, &["jobs", "wait", &id], "jobs wait", 0).await;
    document(&e, &["jobs", "settle"], "jobs settle", 0).await;
    // The cancelled video is in the journal: resuming reports it, and exits as a failed job.
    let resumed = document(&e, &["jobs", "resume"], "jobs resume", 1).await;
    assert_eq!(resumed["jobs"][0]["status"], "cancelled");
    let deleted = document(&e, &["jobs", "delete", &id], "jobs delete", 0).await;
    assert_eq!(deleted["deleted"], json!([id]));
    let models = document(&e, &["models"], "models", 0).await;
    assert!(models["models"].as_array().is_some_and(|m| m.len() > 50));
    document(&e, &["models", "flux"], "models", 0).await;
    let uploaded = document(&e, &["assets", "upload", &png], "assets upload", 0).await;
    let asset = uploaded["assets"][0]["id"]
        .as_str()
        .expect("an asset id")
        .to_string();
    document(&e, &["assets", "list"], "assets list", 0).await;
    document(&e, &["assets", "get", &asset], "assets get", 0).await;
    document(&e, &["assets", "delete", &asset], "assets delete", 0).await;
    let styles = document(&e, &["styles", "list"], "styles list", 0).await;
    let style = styles["styles"][0]["id"]
        .as_str()
        .expect("a style")
        .to_string();
    document(&e, &["styles", "get", &style], "styles get", 0).await;
    document(&e, &["apps", "get", krea_sim::DEMO_APP], "apps get", 0).await;
    document(
        &e,
        &[
            "apps",
            "run",
            krea_sim::DEMO_APP,
            "-p",
            "prompt=a cat",
            "-o",
            "apps",
        ],
        "apps run",
        0,
    )
    .await;
    document(&e, &["doctor"], "doctor", 0).await;
    document(&e, &["auth", "status"], "auth status", 0).await;

    // Failures: the same shape, with `error` and the exit code of the same failure without --json.
    document(&e, &["jobs", "get", "nosuchjob"], "jobs get", 2).await;
    let refused = document(
        &e,
        &["image", "a cat", "-m", "flux", "--steps", "9999"],
        "image",
        2,
    )
    .await;
    // What was wrong, as data: the field and the message.
    let problems = &refused["error"]["problems"];
    assert_eq!(problems[0]["field"], "steps", "{refused}");
    assert!(
        problems[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100"))
    );
    document(&e, &["models", "no-such-model"], "models", 2).await;
    document(&e, &["batch", "missing.txt"], "batch", 2).await;
}

/// A job this machine finished shows its files and cost in `jobs get --json`; a missing
/// token is explained in the CLI's words there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_get_shows_the_files_and_cost_of_a_finished_job() {
    let e = support::env("json-get", krea_sim::Simulator::builder()).await;
    let made = document(&e, &["image", "a cat", "-m", "flux"], "image", 0).await;
    let id = job_id(&made);
    let got = document(&e, &["jobs", "get", &id], "jobs get", 0).await;
    assert_eq!(got["jobs"][0]["files"], made["jobs"][0]["files"], "{got:#}");
    assert_eq!(got["jobs"][0]["cost_cu"], json!(3.0), "{got:#}");
    let mut cmd = support::command(&e);
    cmd.env_remove("KREA_API_TOKEN")
        .args(["--json", "jobs", "list"]);
    let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    let doc: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let message = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("krea auth login"), "{doc:#}");
    assert!(!message.contains("builder"), "{doc:#}");
}
