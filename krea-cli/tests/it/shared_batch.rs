//! One batch, three workers: separate homes and state directories (each its own container),
//! one journal in a real PostgreSQL, `krea batch --shared`, under the fault suite's faults
//! (lost answers of every kind, late commits and listings, a skewed clock in whole seconds,
//! another program on the account). Workers are killed with SIGKILL at random instants, their
//! disks wiped, and new ones started in their place, until every line is done.
//!
//! What must hold, read from the simulator's and the database's own records:
//! - every line is done, with one job, and no job is two lines';
//! - a prompt has two jobs only where settling said it could not be sure (the doubt is in the
//!   journal), and every job created is a line's or named in such a doubt;
//! - a line's job is its own prompt's unless the doubt is said;
//! - the files of the workers still standing equal the simulator's bytes.
//!
//! `KREA_FAULT_SEED=N` replays a run's faults and kills (the seed is printed).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::against_faults::{paid_once, same_bytes, simulator};
use crate::support::pg::Cluster;
use crate::support::{self, Env};

const LINES: usize = 300;
const WORKERS: usize = 3;
const KILLS: usize = 4;

/// What the workers run: the input file (copied to each worker's disk) and the command.
#[derive(Clone, Copy)]
pub(crate) struct Work<'a> {
    pub file: &'a str,
    pub args: &'a [&'a str],
    /// Workers killed (and replaced) along the way.
    pub kills: usize,
}

const BATCH: Work = Work {
    file: "prompts.txt",
    args: &[
        "batch",
        "prompts.txt",
        "-o",
        "out",
        "--shared",
        "suite",
        "--concurrency",
        "16",
    ],
    kills: KILLS,
};

/// A worker on its own disk `home`, running `work` (its file copied there first). What it says
/// goes to `<home>.log`, beside its disk (kept when the test fails).
fn worker(e: &Env, home: &Path, url: &str, work: Work) -> Child {
    let mut cmd = support::machine(e, home, url);
    std::fs::copy(e.dir.join(work.file), home.join(work.file)).expect("input");
    cmd.args([
        "--poll",
        "0.02",
        "--request-timeout",
        "2",
        "--settle-grace",
        "2",
    ])
    .args(work.args)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(format!("{}.log", home.display())).expect("log"))
    .spawn()
    .expect("spawn a worker")
}

fn manifest(home: &Path) -> Vec<Value> {
    std::fs::read(home.join("out/manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|m| m["items"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_workers_killed_and_replaced_share_a_300_line_batch_and_pay_once_per_line() {
    let seed: u64 = std::env::var("KREA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("shared batch seed {seed} (replay with KREA_FAULT_SEED={seed})");
    let pg = Cluster::start();
    let url = pg.database("shared");
    let e = support::env("shared-batch", simulator(seed)).await;
    let lines: String = (0..LINES)
        .map(|i| format!("shared batch prompt number {i}\n"))
        .collect();
    std::fs::write(e.dir.join("prompts.txt"), lines).expect("write");
    let started = Instant::now();
    let e = std::sync::Arc::new(e);
    let supervised = tokio::task::spawn_blocking({
        let (e, url) = (e.clone(), url.clone());
        move || supervise(&e, &url, seed, BATCH)
    })
    .await
    .expect("join");
    let (codes, standing) = supervised.unwrap_or_else(|stuck| {
        let lines = pg.psql(
            "shared",
            "SELECT line, done, worker, lease_until > now(), claims FROM krea_batch_lines \
             WHERE NOT done ORDER BY line",
        );
        let unresolved = pg.psql(
            "shared",
            "SELECT count(*) FROM krea_journal s WHERE event = 'sending' AND NOT EXISTS \
             (SELECT 1 FROM krea_journal r WHERE r.key = s.key \
              AND r.event IN ('submitted', 'not_created'))",
        );
        panic!(
            "the workers did not finish: {stuck}\nlines not done:\n{lines}\n\
             requests unresolved: {unresolved}"
        )
    });
    eprintln!(
        "workers ended with {codes:?} at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    check(&e, &pg, &standing, started);
    assert!(
        codes.iter().all(|c| matches!(c, 0 | 1)),
        "a worker that was not killed failed: {codes:?}"
    );
}

/// Runs the workers: kills one at a random instant (its disk wiped, a new worker started in
/// its place) `work.kills` times, then waits for every worker to end. Returns the exit codes
/// of the workers that ended by themselves, and their disks.
pub(crate) fn supervise(
    e: &Env,
    url: &str,
    seed: u64,
    work: Work,
) -> Result<(Vec<i32>, Vec<PathBuf>), String> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let mut next = 0;
    let mut start = |rng: &mut fastrand::Rng| {
        let _ = rng;
        next += 1;
        let home = e.dir.join(format!("worker-{next}"));
        (worker(e, &home, url, work), home)
    };
    let mut workers: Vec<(Child, PathBuf)> = (0..WORKERS).map(|_| start(&mut rng)).collect();
    let mut ended: Vec<(i32, PathBuf, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut kills = 0;
    let mut kill_at = Instant::now() + Duration::from_millis(rng.u64(500..6_000));
    while !workers.is_empty() {
        if Instant::now() >= deadline {
            let mut tails = String::new();
            for (mut child, home) in workers.drain(..) {
                let _ = child.kill();
                let _ = child.wait();
                let err =
                    std::fs::read_to_string(format!("{}.log", home.display())).unwrap_or_default();
                let tail: Vec<&str> = err.lines().rev().take(15).collect();
                tails += &format!("{}:\n{}\n", home.display(), tail.join("\n"));
            }
            return Err(tails);
        }
        let mut i = 0;
        while i < workers.len() {
            if let Ok(Some(status)) = workers[i].0.try_wait() {
                let (_, home) = workers.remove(i);
                let err =
                    std::fs::read_to_string(format!("{}.log", home.display())).unwrap_or_default();
                ended.push((status.code().unwrap_or(-1), home, err));
            } else {
                i += 1;
            }
        }
        if kills < work.kills && Instant::now() >= kill_at && !workers.is_empty() {
            let victim = rng.usize(..workers.len());
            let (mut child, home) = workers.remove(victim);
            let _ = child.kill();
            let _ = child.wait();
            // Its container is gone, disk and all.
            std::fs::remove_dir_all(&home).expect("wipe");
            kills += 1;
            eprintln!(
                "killed a worker ({kills} of {}); a new one takes its place",
                work.kills
            );
            workers.push(start(&mut rng));
            kill_at = Instant::now() + Duration::from_millis(rng.u64(500..6_000));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (code, home, err) in &ended {
        if !matches!(code, 0 | 1) {
            eprintln!("{} exited {code}: {err}", home.display());
        }
    }
    Ok((
        ended.iter().map(|(c, _, _)| *c).collect(),
        ended.into_iter().map(|(_, h, _)| h).collect(),
    ))
}

/// The properties, from the simulator's and the database's records.
fn check(e: &Env, pg: &Cluster, standing: &[PathBuf], started: Instant) {
    let control = e.sim.control();
    let rows = pg.psql(
        "shared",
        "SELECT line, done, coalesce(job_id::text, '') FROM krea_batch_lines \
         WHERE batch = 'suite' ORDER BY line",
    );
    let lines: Vec<(usize, bool, String)> = rows
        .lines()
        .map(|r| {
            let f: Vec<&str> = r.split('|').collect();
            (f[0].parse().expect("line"), f[1] == "t", f[2].to_string())
        })
        .collect();
    assert_eq!(lines.len(), LINES);
    let doubts = pg.psql(
        "shared",
        "SELECT coalesce(string_agg(entry::jsonb->>'uncertain', ' '), '') FROM krea_journal \
         WHERE entry::jsonb ? 'uncertain'",
    );
    let ours: Vec<uuid::Uuid> = control.job_ids();
    let foreign: HashSet<uuid::Uuid> = control.foreign_job_ids().into_iter().collect();
    let mut prompt_of: HashMap<uuid::Uuid, String> = HashMap::new();
    let mut per_prompt: HashMap<String, Vec<uuid::Uuid>> = HashMap::new();
    for (id, request) in control.requests() {
        let prompt = request["prompt"].as_str().unwrap_or_default().to_string();
        per_prompt.entry(prompt.clone()).or_default().push(id);
        prompt_of.insert(id, prompt);
    }
    let mut adopted: HashMap<uuid::Uuid, usize> = HashMap::new();
    for (line, done, job) in &lines {
        assert!(done, "line {line} is not done");
        let id: uuid::Uuid = job
            .parse()
            .unwrap_or_else(|_| panic!("line {line} has no job"));
        if let Some(other) = adopted.insert(id, *line) {
            panic!("job {id} is both line {other}'s and line {line}'s");
        }
        let prompt = format!("shared batch prompt number {line}");
        if !doubts.contains(&id.to_string()) {
            assert_eq!(
                prompt_of.get(&id),
                Some(&prompt),
                "line {line} holds another prompt's job (or another program's) without saying so"
            );
            assert!(
                !foreign.contains(&id),
                "line {line}: another program's job, unsaid"
            );
        }
    }
    paid_once(
        &per_prompt,
        &prompt_of,
        &ours,
        |id| adopted.contains_key(id),
        &doubts,
    );
    // The files of the workers still standing: each line's file once, the simulator's bytes.
    let mut files = Vec::new();
    let mut here = 0;
    for home in standing {
        for item in manifest(home) {
            if item["status"] == "completed" {
                here += 1;
                let file = PathBuf::from(item["files"][0].as_str().expect("file"));
                let id: uuid::Uuid = item["job_id"].as_str().expect("id").parse().expect("uuid");
                assert_eq!(
                    adopted.get(&id),
                    item["index"].as_u64().map(|i| i as usize).as_ref()
                );
                files.push((file, id));
            }
        }
    }
    same_bytes(&control, &files);
    let c = control.counters();
    eprintln!(
        "shared batch: {LINES} lines done, {} jobs, {} other program's jobs, {here} files on the \
         {} workers standing, {} doubts, peak {} POSTs at once, {:.1} s",
        ours.len(),
        foreign.len(),
        standing.len(),
        pg.psql(
            "shared",
            "SELECT count(*) FROM krea_journal WHERE entry::jsonb ? 'uncertain'"
        ),
        c.peak_concurrent_generations,
        started.elapsed().as_secs_f64()
    );
}

/// A worker that hangs (SIGSTOP: its process and database session stay, it renews nothing)
/// loses its lines when their 2 s lease runs out; another takes them over and waits for what
/// the first had sent; when the first wakes, both end, with one job per line.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_hangs_loses_its_lines_after_the_lease_and_nothing_is_paid_twice() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    const N: usize = 60;
    let pg = Cluster::start();
    let url = pg.database("hang");
    // 0.4 s round trips: requests are in flight when the worker stops. An account that runs
    // 4 jobs at once: the worker holds a claimed line back (waiting for a slot) as it stops.
    let e = support::env(
        "shared-hang",
        krea_sim::Simulator::builder()
            .latency(Duration::from_millis(400))
            .concurrency(4, krea_sim::Overflow::Reject),
    )
    .await;
    let lines: String = (0..N)
        .map(|i| format!("hung worker prompt {i}\n"))
        .collect();
    std::fs::write(e.dir.join("prompts.txt"), lines).expect("write");
    let start = |name: &str| {
        let home = e.dir.join(name);
        support::machine(&e, &home, &url)
            .args(["--poll", "0.02", "--settle-grace", "2"])
            .args(["batch", "../prompts.txt", "-o", "out", "--shared", "hang"])
            .args(["--lease", "2", "--concurrency", "8"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(format!("{}.log", home.display())).expect("log"))
            .spawn()
            .expect("spawn")
    };
    let mut hung = start("hung");
    while e.sim.control().counters().jobs_created < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = Pid::from_raw(hung.id() as i32);
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let mut other = start("other");
    // Its lines are taken over once their lease ran out.
    let taken = Instant::now();
    loop {
        let over: u32 = pg
            .psql(
                "hang",
                "SELECT count(*) FROM krea_batch_lines WHERE claims > 1",
            )
            .parse()
            .expect("count");
        if over > 0 {
            break;
        }
        assert!(
            taken.elapsed() < Duration::from_secs(30),
            "no line of the hung worker was taken over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    kill(pid, Signal::SIGCONT).expect("SIGCONT");
    let codes = tokio::task::spawn_blocking(move || {
        let a = hung.wait().expect("wait");
        let b = other.wait().expect("wait");
        (a.code(), b.code())
    })
    .await
    .expect("join");
    assert_eq!(codes, (Some(0), Some(0)), "see {}", e.dir.display());
    let done = pg.psql("hang", "SELECT count(*) FROM krea_batch_lines WHERE done");
    assert_eq!(done, N.to_string());
    let control = e.sim.control();
    let mut per_prompt: HashMap<String, usize> = HashMap::new();
    for (_, request) in control.requests() {
        *per_prompt
            .entry(request["prompt"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_prompt.len(), N);
    assert!(per_prompt.values().all(|n| *n == 1), "{per_prompt:?}");
    // One accepted POST per line (the account's cap refused others with 429s).
    let c = control.counters();
    let route = "POST /generate/image/google/nano-banana-2";
    assert_eq!(c.requests_to(route) - c.responses(route, 429), N as u64);
}

/// A line a worker cannot finish (its job's files cannot be fetched) is left to the others,
/// not held forever: each worker tries it once, waits for the job already made (never sends
/// its request again), and ends, saying what is left. Before, the first worker kept renewing
/// its claim and never ended.
#[tokio::test(flavor = "multi_thread")]
async fn a_line_whose_files_cannot_be_fetched_is_left_to_other_workers_and_never_resent() {
    const N: usize = 3;
    let pg = Cluster::start();
    let url = pg.database("left");
    let e = support::env(
        "shared-left",
        krea_sim::Simulator::builder().fault("GET /files/*", krea_sim::Fault::Status(404), 1.0),
    )
    .await;
    let lines: String = (0..N)
        .map(|i| format!("unfetchable prompt {i}\n"))
        .collect();
    std::fs::write(e.dir.join("prompts.txt"), lines).expect("write");
    for name in ["first", "second"] {
        let mut cmd = support::machine(&e, &e.dir.join(name), &url);
        cmd.args(["--poll", "0.02", "--timeout", "30"]).args([
            "batch",
            "../prompts.txt",
            "-o",
            "out",
            "--shared",
            "left",
        ]);
        let o = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
            .await
            .expect("join");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{name}: {err}");
        // It ended by itself, not at the deadline (a worker holding the lines never ends).
        assert_ne!(o.status.code(), Some(4), "{name}: {err}");
        assert!(!err.contains("before the deadline"), "{name}: {err}");
        assert!(
            err.contains("failed") && !err.contains("did not finish in time"),
            "{name}: the files could not be fetched, and it says so: {err}"
        );
        assert!(err.contains("--resume --shared left"), "{name}: {err}");
    }
    let claims = pg.psql(
        "left",
        "SELECT string_agg(claims::text, ',' ORDER BY line) FROM krea_batch_lines WHERE NOT done",
    );
    assert_eq!(claims, "2,2,2", "each worker took each line once");
    let c = e.sim.control().counters();
    assert_eq!(c.jobs_created, N as u64, "one job per line, never resent");
}

/// A line a worker left (its files could not be fetched) and another worker then finished is
/// that worker's in the first one's report (`elsewhere`, with its URLs), and the first ends
/// with everything done: one stops (SIGSTOP) holding line 0; the other takes line 1, cannot
/// fetch its files and leaves it; the files come back, the first wakes and finishes both.
#[tokio::test(flavor = "multi_thread")]
async fn a_line_left_by_one_worker_and_finished_by_another_reads_elsewhere_in_its_report() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pg = Cluster::start();
    let url = pg.database("rescued");
    // Jobs of real duration: the first worker stops while its job runs, before any download.
    let e = support::env_scaled(
        "shared-rescued",
        krea_sim::Simulator::builder().fault("GET /files/*", krea_sim::Fault::Status(404), 1.0),
        0.5,
    )
    .await;
    std::fs::write(
        e.dir.join("prompts.txt"),
        "rescued line 0\nrescued line 1\n",
    )
    .expect("write");
    let start = |name: &str, extra: &[&str]| {
        let home = e.dir.join(name);
        support::machine(&e, &home, &url)
            .args(["--poll", "0.05", "--timeout", "120", "--json"])
            .args([
                "batch",
                "../prompts.txt",
                "-o",
                "out",
                "--shared",
                "rescued",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(format!("{}.log", home.display())).expect("log"))
            .spawn()
            .expect("spawn")
    };
    let sql = |q: &str| pg.psql("rescued", q);
    let wait_for = |what: &str, q: &str| {
        let t = Instant::now();
        while sql(q) != "1" {
            assert!(t.elapsed() < Duration::from_secs(60), "never: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let holder = start("holder", &["--concurrency", "1", "--lease", "60"]);
    wait_for(
        "the tables",
        "SELECT count(*) FROM pg_tables WHERE tablename = 'krea_batch_lines'",
    );
    wait_for(
        "the holder's job for line 0",
        "SELECT count(*) FROM krea_journal WHERE event = 'submitted'",
    );
    let pid = Pid::from_raw(holder.id() as i32);
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    let leaver = start("leaver", &[]);
    wait_for(
        "the leaver leaving line 1",
        "SELECT count(*) FROM krea_batch_lines WHERE line = 1 AND claims = 1 AND worker IS NULL",
    );
    e.sim.control().set_faults(Vec::new());
    kill(pid, Signal::SIGCONT).expect("SIGCONT");
    let (held, left) = tokio::task::spawn_blocking(move || {
        (
            holder.wait_with_output().expect("wait"),
            leaver.wait_with_output().expect("wait"),
        )
    })
    .await
    .expect("join");
    let log =
        |name: &str| std::fs::read_to_string(e.dir.join(format!("{name}.log"))).unwrap_or_default();
    assert_eq!(held.status.code(), Some(0), "{}", log("holder"));
    assert_eq!(left.status.code(), Some(0), "{}", log("leaver"));
    let report: Value = serde_json::from_slice(&left.stdout).expect("json");
    let jobs = report["jobs"].as_array().expect("jobs");
    assert!(
        jobs.iter().all(|j| j["status"] == "elsewhere"),
        "both lines are the holder's: {report}"
    );
    let manifest = manifest(&e.dir.join("leaver"));
    assert!(
        manifest[1]["urls"]
            .as_array()
            .is_some_and(|u| !u.is_empty()),
        "{manifest:?}"
    );
    assert_eq!(e.sim.control().counters().jobs_created, 2);
}
