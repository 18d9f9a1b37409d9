//! One pipeline, three workers: `krea pipeline --shared` on separate disks and one journal in a
//! real PostgreSQL, under the fault suite's faults, workers killed at random instants and
//! replaced with empty disks. A step is built from every job of the step before, whichever
//! worker did it; so every worker must build the same next step, from the URLs the store
//! keeps for the jobs it did not do.
//!
//! What must hold, from the simulator's and the database's records:
//! - every job of every step is done, with one job of its own, no job two lines';
//! - a drawing's prompt, or an upscale's input, has two jobs only where settling said it could
//!   not be sure (the doubt is in the journal), and every job created is a line's or so named;
//! - each drawing's output is upscaled once, by a request that names that output;
//! - the workers standing agree with the store on every job of every step.
//!
//! `KREA_FAULT_SEED=N` replays a run's faults and kills (the seed is printed).

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Instant;

use serde_json::Value;

use crate::against_faults::{paid_once, simulator};
use crate::shared_batch::{Work, supervise};
use crate::support::pg::Cluster;
use crate::support::{self, Env};

const DRAWINGS: usize = 60;

const WORK: Work = Work {
    file: "pipe.json",
    args: &[
        "pipeline",
        "pipe.json",
        "-o",
        "run",
        "--shared",
        "suite",
        "--concurrency",
        "16",
    ],
    kills: 3,
};

fn pipeline_file() -> String {
    let n: Vec<usize> = (0..DRAWINGS).collect();
    serde_json::json!({"steps": [
        {"id": "upscale", "model": "topaz",
         "params": {"image_url": "{{steps.draw.outputs}}", "width": 256, "height": 256}},
        {"id": "draw", "model": "flux", "fan_out": {"n": n},
         "params": {"prompt": "shared pipeline drawing {{n}}"}},
    ]})
    .to_string()
}

/// A step's lines as the store has them: (line, done, job, its URLs).
fn lines(pg: &Cluster, step: &str) -> Vec<(usize, bool, Option<uuid::Uuid>, Vec<String>)> {
    pg.psql(
        "pipe",
        &format!(
            "SELECT line, done, coalesce(job_id::text, ''), array_to_string(urls, ' ') \
             FROM krea_batch_lines WHERE batch = 'suite/{step}' ORDER BY line"
        ),
    )
    .lines()
    .map(|r| {
        let f: Vec<&str> = r.split('|').collect();
        (
            f[0].parse().expect("line"),
            f[1] == "t",
            f[2].parse().ok(),
            f[3].split_whitespace().map(String::from).collect(),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_killed_and_replaced_share_a_two_step_pipeline_and_pay_once_per_job() {
    let seed: u64 = std::env::var("KREA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("shared pipeline seed {seed} (replay with KREA_FAULT_SEED={seed})");
    let pg = Cluster::start();
    let url = pg.database("pipe");
    let e = support::env("shared-pipeline", simulator(seed)).await;
    std::fs::write(e.dir.join(WORK.file), pipeline_file()).expect("write");
    let started = Instant::now();
    let e = std::sync::Arc::new(e);
    let supervised = tokio::task::spawn_blocking({
        let (e, url) = (e.clone(), url.clone());
        move || supervise(&e, &url, seed, WORK)
    })
    .await
    .expect("join");
    let (codes, standing) = supervised.unwrap_or_else(|stuck| {
        let open = pg.psql(
            "pipe",
            "SELECT batch, line, worker, lease_until > now(), claims FROM krea_batch_lines \
             WHERE NOT done ORDER BY batch, line",
        );
        panic!("the workers did not finish: {stuck}\nlines not done:\n{open}")
    });
    // 1: a job of its failed (the simulator fails some), as for a worker alone.
    assert!(
        codes.iter().all(|c| matches!(c, 0 | 1)),
        "a worker that was not killed failed: {codes:?} (see {})",
        e.dir.display()
    );
    check(&e, &pg, &standing);
    eprintln!(
        "shared pipeline: {} jobs, {} workers standing, {:.1} s",
        e.sim.control().job_ids().len(),
        standing.len(),
        started.elapsed().as_secs_f64()
    );
}

fn check(e: &Env, pg: &Cluster, standing: &[std::path::PathBuf]) {
    let control = e.sim.control();
    let sent: HashMap<uuid::Uuid, Value> = control.requests().into_iter().collect();
    let doubts = pg.psql(
        "pipe",
        "SELECT coalesce(string_agg(entry::jsonb->>'uncertain', ' '), '') FROM krea_journal \
         WHERE entry::jsonb ? 'uncertain'",
    );
    let (draws, upscales) = (lines(pg, "draw"), lines(pg, "upscale"));
    assert_eq!(draws.len(), DRAWINGS);
    let mut line_of: HashMap<uuid::Uuid, String> = HashMap::new();
    for (step, rows) in [("draw", &draws), ("upscale", &upscales)] {
        for (line, done, job, _) in rows {
            assert!(done, "{step} line {line} is not done");
            let job = job.unwrap_or_else(|| panic!("{step} line {line} has no job"));
            if let Some(other) = line_of.insert(job, format!("{step} {line}")) {
                panic!("job {job} is both {other}'s and {step} {line}'s");
            }
        }
    }
    // What made each job: a drawing's prompt, an upscale's input.
    let key = |body: &Value| {
        body.get("prompt")
            .or_else(|| body.get("image_url"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut per_key: HashMap<String, Vec<uuid::Uuid>> = HashMap::new();
    let mut key_of: HashMap<uuid::Uuid, String> = HashMap::new();
    for (id, body) in &sent {
        per_key.entry(key(body)).or_default().push(*id);
        key_of.insert(*id, key(body));
    }
    paid_once(
        &per_key,
        &key_of,
        &control.job_ids(),
        |id| line_of.contains_key(id),
        &doubts,
    );
    // Every drawing that completed is upscaled once, by a request naming its output (where
    // settling was unsure, the job a line holds may be another request's).
    let drawn: HashSet<&str> = draws
        .iter()
        .flat_map(|d| &d.3)
        .map(String::as_str)
        .collect();
    assert_eq!(
        upscales.len(),
        draws.iter().filter(|d| !d.3.is_empty()).count(),
        "one upscale per drawing that completed"
    );
    let mut inputs = HashSet::new();
    for (line, _, job, _) in &upscales {
        let job = job.expect("job");
        let input = sent.get(&job).and_then(|b| b["image_url"].as_str());
        if doubts.contains(&job.to_string()) {
            continue;
        }
        let input = input.unwrap_or_else(|| panic!("upscale line {line}: not an upscale"));
        assert!(drawn.contains(input), "upscale line {line}: of no drawing");
        assert!(inputs.insert(input), "{input} upscaled twice");
    }
    for (line, _, job, _) in &draws {
        let job = job.expect("job");
        if !doubts.contains(&job.to_string()) {
            assert_eq!(
                sent.get(&job).map(key),
                Some(format!("shared pipeline drawing {line}")),
                "draw line {line} holds another prompt's job without saying so"
            );
        }
    }
    // The workers standing built the same steps as the store holds.
    for home in standing {
        let m: Value =
            serde_json::from_slice(&std::fs::read(home.join("run/pipeline.json")).expect("run"))
                .expect("json");
        assert_eq!(m["stopped_at"], Value::Null, "{}", home.display());
        for (step, rows) in [("draw", &draws), ("upscale", &upscales)] {
            let jobs = m["steps"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["id"] == step))
                .and_then(|s| s["jobs"].as_array())
                .unwrap_or_else(|| panic!("{}: no step {step}", home.display()));
            let theirs: Vec<Option<uuid::Uuid>> = jobs
                .iter()
                .map(|j| j["job_id"].as_str().and_then(|s| s.parse().ok()))
                .collect();
            let ours: Vec<Option<uuid::Uuid>> = rows.iter().map(|r| r.2).collect();
            assert_eq!(theirs, ours, "{}: step {step}", home.display());
        }
    }
}

/// `--shared` without a name: the run is known by the pipeline's content (its steps and
/// variables). Two workers with the same file share one run, each job made once; a worker
/// whose variables differ works a run of its own, not refused and not merged.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipeline_shared_by_content_is_one_run_for_the_same_file_and_another_for_other_vars() {
    let pg = Cluster::start();
    let url = pg.database("content");
    let e = support::env("shared-content", krea_sim::Simulator::builder()).await;
    std::fs::write(
        e.dir.join("pipe.json"),
        serde_json::json!({"vars": {"style": "ink"}, "steps": [
            {"id": "draw", "model": "flux", "fan_out": {"n": [0, 1, 2]},
             "params": {"prompt": "content drawing {{n}}, {{style}}"}},
            {"id": "upscale", "model": "topaz",
             "params": {"image_url": "{{steps.draw.outputs}}", "width": 256, "height": 256}}]})
        .to_string(),
    )
    .expect("write");
    let run = |out: &str, extra: &[&str]| {
        let mut cmd = support::command(&e);
        cmd.env("KREA_JOURNAL", &url)
            .args([
                "--poll",
                "0.02",
                "pipeline",
                "pipe.json",
                "-o",
                out,
                "--shared",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (run("a", &[]), run("b", &[]));
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            a.wait_with_output().expect("a"),
            b.wait_with_output().expect("b"),
        )
    })
    .await
    .expect("join");
    for o in [&a, &b] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(e.sim.control().counters().jobs_created, 6, "each job once");
    let other = run("c", &["--var", "style=chalk"]);
    let other = tokio::task::spawn_blocking(move || other.wait_with_output().expect("c"))
        .await
        .expect("join");
    assert_eq!(
        other.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert_eq!(
        e.sim.control().counters().jobs_created,
        12,
        "a run of its own"
    );
    let names = pg.psql(
        "content",
        "SELECT string_agg(batch, ' ' ORDER BY batch) FROM krea_batches",
    );
    let names: Vec<&str> = names.split(' ').collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.iter().all(
            |n| n.starts_with("pipeline-") && (n.ends_with("/draw") || n.ends_with("/upscale"))
        ),
        "{names:?}"
    );
}
