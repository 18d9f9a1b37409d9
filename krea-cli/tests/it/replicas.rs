//! Several machines, one account, one journal in PostgreSQL (`--journal postgres://...`): a
//! replica killed with a paid request in flight, its disk gone, is finished by another. The
//! database is a real throwaway cluster; each replica has its own home and state directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use krea_sim::Simulator;

use crate::support::pg::Cluster;
use crate::support::{self, Env, KillOnDrop, code, json, stderr, stdout};

/// Every paid request, whatever the model.
const PAID: &str = "POST /generate/";

/// `krea ARGS` as a replica with its own disk at `home`, on the shared journal at `url`.
fn replica(env: &Env, home: &Path, url: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = support::machine(env, home, url);
    cmd.args(["--poll", "0.02", "--settle-grace", "2"])
        .args(args);
    cmd
}

fn disk(env: &Env, name: &str) -> PathBuf {
    let dir = env.dir.join(name);
    std::fs::create_dir_all(&dir).expect("replica disk");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_with_a_request_in_flight_is_finished_by_another_from_an_empty_disk() {
    let pg = Cluster::start();
    let url = pg.database("replicas");
    // Half a second each way: the job is created half a second before its answer arrives.
    let env = support::env(
        "replicas-kill",
        Simulator::builder().latency(Duration::from_secs(1)),
    )
    .await;
    let first = disk(&env, "first");
    let out = first.join("out");
    let mut child = KillOnDrop(
        replica(
            &env,
            &first,
            &url,
            &["image", "a harbour at night", "-o", &out.to_string_lossy()],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn"),
    );
    let started = Instant::now();
    while env.sim.control().counters().jobs_created == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job was never created"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Created; its answer is still on the way: the replica dies, and its disk with it.
    child.0.kill().expect("SIGKILL");
    let _ = child.0.wait();
    std::fs::remove_dir_all(&first).expect("wipe");

    let second = disk(&env, "second");
    let resumed = tokio::task::spawn_blocking({
        let (env_dir, url) = (second.clone(), url.clone());
        let mut cmd = replica(&env, &env_dir, &url, &["--json", "jobs", "resume"]);
        move || cmd.output().expect("run krea")
    })
    .await
    .expect("join");
    assert_eq!(code(&resumed), 0, "{}", stderr(&resumed));
    let report = json(&resumed);
    let ids = env.sim.control().job_ids();
    assert_eq!(ids.len(), 1);
    assert!(stdout(&resumed).contains(&ids[0].to_string()), "{report:#}");
    // Its file where the journal said, written by the second replica.
    let files = support::files_in(&out, "png");
    assert_eq!(files.len(), 1, "{report:#}");
    assert_eq!(
        Some(std::fs::read(&files[0]).expect("file")),
        env.sim.control().result_bytes(ids[0], 0)
    );
    assert_eq!(
        (
            env.sim.control().counters().requests_with_prefix(PAID),
            env.sim.control().counters().jobs_created
        ),
        (1, 1)
    );
    // Nothing left for any replica.
    let third = disk(&env, "third");
    let again = tokio::task::spawn_blocking({
        let mut cmd = replica(&env, &third, &url, &["--json", "jobs", "resume"]);
        move || cmd.output().expect("run krea")
    })
    .await
    .expect("join");
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(support::files_in(&out, "png").len(), 1);
    assert_eq!(env.sim.control().counters().requests_with_prefix(PAID), 1);
}

#[tokio::test]
async fn doctor_reports_a_journal_database_it_cannot_reach_with_the_fix() {
    let env = support::env("replicas-doctor", Simulator::builder()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let home = disk(&env, "home");
    let url = format!("postgres://krea:hunter2@127.0.0.1:{port}/jobs?connect_timeout=2");
    let out = tokio::task::spawn_blocking({
        let mut cmd = replica(&env, &home, &url, &["doctor"]);
        move || cmd.output().expect("run krea")
    })
    .await
    .expect("join");
    let text = stdout(&out);
    assert_ne!(code(&out), 0, "{text}");
    assert!(text.contains("FAIL  journal"), "{text}");
    assert!(
        text.contains(&format!("postgres://127.0.0.1:{port}/jobs")),
        "{text}"
    );
    assert!(text.contains("KREA_JOURNAL"), "{text}");
    assert!(!text.contains("hunter2") && !stderr(&out).contains("hunter2"));
}

/// The README's commands for several machines, as written there: the first on one replica,
/// the rest on another with an empty disk (only the database's address is the test's own).
#[tokio::test(flavor = "multi_thread")]
async fn the_readmes_replica_commands_run_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let block = readme[readme
        .find("## Several machines, one account")
        .expect("the section")..]
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("its commands");
    let pg = Cluster::start();
    let url = pg.database("readme");
    let env = support::env("replicas-readme", Simulator::builder()).await;
    let mut ran = 0;
    for (n, line) in block.lines().enumerate() {
        let command = line.split("  #").next().unwrap_or_default().trim();
        if command.starts_with("export KREA_JOURNAL=postgres://") {
            continue;
        }
        let args = command.strip_prefix("krea ").expect("a krea command");
        let words: Vec<String> = args
            .split('"')
            .enumerate()
            .flat_map(|(i, part)| match i % 2 {
                1 => vec![part.to_string()],
                _ => part.split_whitespace().map(String::from).collect(),
            })
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let home = disk(&env, &format!("replica-{n}"));
        let out = tokio::task::spawn_blocking({
            let mut cmd = replica(&env, &home, &url, &words);
            move || cmd.output().expect("run krea")
        })
        .await
        .expect("join");
        assert_eq!(code(&out), 0, "krea {args}: {}", stderr(&out));
        ran += 1;
    }
    assert_eq!(ran, 2, "{block}");
    // The first replica's file, where it asked for it.
    assert_eq!(
        support::files_in(&env.dir.join("replica-1/out"), "png").len(),
        1
    );
    assert_eq!(env.sim.control().counters().requests_with_prefix(PAID), 1);
}

/// A shared batch without a shared journal is refused before anything is sent, saying what to
/// do.
#[tokio::test]
async fn a_shared_batch_on_a_file_journal_is_refused_before_sending() {
    let env = support::env("replicas-shared-file", Simulator::builder()).await;
    std::fs::write(env.dir.join("p.txt"), "a fox\nan owl\n").expect("write");
    let out = support::krea(&env, &["batch", "p.txt", "--shared", "nightly"]).await;
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(err.contains("postgres://"), "{err}");
    assert_eq!(env.sim.control().counters().requests_with_prefix(PAID), 0);
}
