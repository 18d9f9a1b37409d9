//! What no server can make `krea` do, tried against servers that misbehave on purpose: run past
//! `--timeout` (a stalled answer, a huge `Retry-After`, 429 forever, a stalled download), hold a
//! huge answer in memory, or show the token or terminal escapes it sends back.

use crate::support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use krea_sim::hostile::{Hostile, Reply, Request};
use support::{code, scratch, stderr, stdout};

const TOKEN: &str = "test-secret-token-0123456789abcdef";
const JOB: &str = "4d0e5f97-9721-4422-b88c-73a9032d7de1";

fn krea_against(url: &str, name: &str) -> Command {
    let dir = scratch(name);
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("krea"));
    cmd.current_dir(&dir)
        .env("KREA_BASE_URL", url)
        .env("KREA_API_TOKEN", TOKEN)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("HOME", &dir)
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `krea ARGS` against `server` and times it.
async fn timed(server: &Hostile, name: &str, args: &[&str]) -> (Output, Duration) {
    let mut cmd = krea_against(server.url(), name);
    cmd.args(args);
    let dir = cmd.get_current_dir().map(std::path::Path::to_path_buf);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run krea"))
        .await
        .expect("join");
    let took = started.elapsed();
    // Its scratch directory (journal, cache) is not looked at afterwards.
    dir.map(std::fs::remove_dir_all);
    (out, took)
}

fn job(status: &str, urls: &[String]) -> String {
    let result = if urls.is_empty() {
        String::new()
    } else {
        format!(
            r#","completed_at":"2026-11-21T12:00:05Z","result":{{"urls":{}}}"#,
            serde_json::to_string(urls).expect("urls")
        )
    };
    format!(
        r#"{{"job_id":"{JOB}","status":"{status}","created_at":"2026-11-21T12:00:00Z"{result}}}"#
    )
}

/// `--timeout 2` is a promise whatever the server does (a margin for a loaded machine).
const BOUND: Duration = Duration::from_millis(3500);

#[tokio::test(flavor = "multi_thread")]
async fn timeout_bounds_a_generation_whose_answer_stalls() {
    let server = Hostile::start(|_| Reply::Stall {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        announced: 1000,
    })
    .await;
    let (o, took) = timed(&server, "stall", &["--timeout", "2", "image", "a cat"]).await;
    assert!(took < BOUND, "took {took:?}: {}", stderr(&o));
    assert!(matches!(code(&o), 4 | 5), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_bounds_a_huge_retry_after_and_429_forever() {
    for (name, retry_after) in [("huge-retry-after", "240"), ("429-forever", "0.2")] {
        let server = Hostile::start(move |_| Reply::Full {
            status: 429,
            headers: vec![("retry-after".into(), retry_after.into())],
            body: br#"{"error":"too many jobs"}"#.to_vec(),
        })
        .await;
        let (o, took) = timed(&server, name, &["--timeout", "2", "image", "a cat"]).await;
        assert!(took < BOUND, "{name}: took {took:?}: {}", stderr(&o));
        assert_ne!(code(&o), 0, "{name}");
        assert!(!server.requests().is_empty());
        if name == "429-forever" {
            assert!(server.requests().len() >= 2, "retried until the deadline");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_bounds_a_stalled_download_and_keeps_the_job_id() {
    let server = Hostile::start(|req: &Request| {
        let host = req.header("host").unwrap_or("127.0.0.1").to_string();
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", _) => Reply::json(200, &job("queued", &[])),
            ("GET", p) if p.starts_with("/files/") => Reply::Stall {
                status: 200,
                headers: vec![("content-type".into(), "image/png".into())],
                announced: 1_000_000,
            },
            _ => Reply::json(
                200,
                &job("completed", &[format!("http://{host}/files/a.png")]),
            ),
        }
    })
    .await;
    let (o, took) = timed(
        &server,
        "stalled-download",
        &["--timeout", "2", "--poll", "0.05", "image", "a cat"],
    )
    .await;
    assert!(took < BOUND, "took {took:?}: {}", stderr(&o));
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(JOB),
        "the job id is kept: {}",
        stderr(&o)
    );
}

/// Peak resident memory of a running process, from /proc (Linux).
fn watch_rss(pid: u32, until: impl Fn() -> bool) -> u64 {
    let mut peak = 0;
    while !until() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            for line in status.lines() {
                if let Some(kb) = line
                    .strip_prefix("VmHWM:")
                    .or_else(|| line.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak = peak.max(kb * 1024);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2_gib_answer_is_refused_without_being_held_in_memory() {
    for announce in [false, true] {
        let server = Hostile::start(move |_| Reply::Huge {
            status: 200,
            chunk: vec![b'a'; 64 * 1024],
            len: 2 << 30,
            announce,
        })
        .await;
        let mut cmd = krea_against(server.url(), "huge");
        let dir = cmd.get_current_dir().map(std::path::Path::to_path_buf);
        cmd.args(["jobs", "get", JOB])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let child = cmd.spawn().expect("spawn");
        let pid = child.id();
        let child = std::sync::Arc::new(std::sync::Mutex::new(child));
        let watched = child.clone();
        let peak = tokio::task::spawn_blocking(move || {
            watch_rss(pid, || {
                watched
                    .lock()
                    .map(|mut c| !matches!(c.try_wait(), Ok(None)))
                    .unwrap_or(true)
            })
        })
        .await
        .expect("join");
        let child = std::sync::Arc::try_unwrap(child)
            .expect("one owner")
            .into_inner()
            .expect("lock");
        let o = child.wait_with_output().expect("output");
        dir.map(std::fs::remove_dir_all);
        assert!(stderr(&o).contains("larger than"), "{}", stderr(&o));
        assert!(peak > 0 && peak < 64 << 20, "peak RSS {} MB", peak >> 20);
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_a_server_echoes_never_reaches_the_terminal() {
    let server = Hostile::start(|req: &Request| {
        let echoed = req.header("authorization").unwrap_or_default();
        Reply::json(
            400,
            &serde_json::json!({
                "error": format!("bad request; you sent {echoed}\u{1b}[2J\r\nfake: line\u{7}")
            })
            .to_string(),
        )
    })
    .await;
    for args in [&["image", "a cat"][..], &["-vvv", "image", "a cat"][..]] {
        let (o, _) = timed(&server, "echo", args).await;
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        for text in [stdout(&o), stderr(&o)] {
            assert!(!text.contains(TOKEN), "the token was shown: {text}");
            assert!(
                !text.contains("\u{1b}[2J") && !text.contains('\u{7}'),
                "a terminal escape from the server reached the terminal: {text:?}"
            );
            if args[0] != "-vvv" {
                assert!(!text.contains('\u{1b}'), "{text:?}");
            }
            assert!(!text.contains("fake: line\n"), "{text:?}");
        }
        assert!(stderr(&o).contains("<redacted>"), "{}", stderr(&o));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_from_a_server_are_shown_without_control_characters() {
    let server = Hostile::start(|_| {
        Reply::json(
            200,
            &job(
                "completed",
                &["https://cdn.example/a.png\u{1b}[31m\nfake line".to_string()],
            ),
        )
    })
    .await;
    let (o, _) = timed(&server, "urls", &["jobs", "get", JOB]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert_eq!(
        out.lines().count(),
        4,
        "a header, the job's row, its id, and its URL on one line: {out:?}"
    );
    assert!(
        out.lines().last().is_some_and(|l| l.contains("fake line")),
        "{out:?}"
    );
}

/// Context switches of every thread of process `pid` that it asked for (it slept or waited).
#[cfg(target_os = "linux")]
fn voluntary_switches(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process runs");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// A batch that the server holds back with 429s (each asking for 4 s) sleeps through the
/// pause, then stops at its deadline for the reason it could not send, having sent nothing
/// past it. It used to wake every millisecond while held back (33,410 context switches and
/// 0.9 s of CPU in 12 s; some 300 and 0.05 s now).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_held_back_by_429s_sleeps_through_the_pause() {
    let sim = krea_sim::Simulator::builder().fault(
        "POST /generate/*",
        krea_sim::Fault::RateLimitBurst {
            burst: 1_000_000,
            retry_after: Duration::from_secs(4),
        },
        1.0,
    );
    let e = support::env("held-back", sim).await;
    std::fs::write(e.dir.join("p.txt"), "a cat\n").expect("write");
    let child = support::command(&e)
        .args(["--timeout", "6", "batch", "p.txt", "-o", "out"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (switches, out) = tokio::task::spawn_blocking(move || {
        // Sampled just before the deadline, while held back since about 4 s.
        std::thread::sleep(Duration::from_millis(5_500));
        let switches = voluntary_switches(pid);
        (switches, child.wait_with_output().expect("wait"))
    })
    .await
    .expect("join");
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("rate limited"), "{}", stderr(&out));
    assert!(
        switches < 3_000,
        "{switches} context switches in 5.5 s: the batch woke while held back"
    );
    let posts = e
        .sim
        .control()
        .counters()
        .requests_with_prefix("POST /generate/");
    assert_eq!(
        posts, 2,
        "at 0 s and after the 4 s pause; none at the deadline"
    );
}
