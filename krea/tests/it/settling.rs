//! Settling lost answers on evidence, against the ways real gateways, backends and clocks
//! lose them (the settling issue's classes 1-10). Every test counts what the server saw: POSTs
//! sent and jobs created per prompt, and that every job created ends adopted by its line.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use krea::{BatchReport, Error, ItemStatus, Krea, PollPolicy, RetryPolicy, Settlement, StatePath};
use krea_sim::{Fault, Simulator, Unreadable};
use uuid::Uuid;

use crate::support::{self, SCALE, scratch};

const FLUX: &str = "POST /generate/image/bfl/flux-1-dev";

/// A client whose settle grace and listing lag suit a simulated world that commits late by
/// `commit` and lists late by `lag` (the defaults are seconds; tests wait a fraction).
fn client(sim: &Simulator, dir: &Path, commit: Duration, lag: Duration) -> Krea {
    Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .journal(StatePath::At(dir.join("journal.jsonl")))
        .poll_policy(PollPolicy::default().scaled(SCALE))
        .retry_policy(
            RetryPolicy::default()
                .with_delays(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .settle_grace(commit)
        .listing_lag(lag)
        .build()
        .expect("client")
}

struct World {
    sim: Simulator,
    krea: Krea,
    dir: std::path::PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn world(name: &str, sim: krea_sim::SimBuilder, commit_ms: u64, lag_ms: u64) -> World {
    let sim = sim.time_scale(SCALE).start().await.expect("simulator");
    let dir = scratch(name);
    let krea = client(
        &sim,
        &dir,
        Duration::from_millis(commit_ms),
        Duration::from_millis(lag_ms),
    );
    World { sim, krea, dir }
}

/// Runs `prompts` as a batch into `out/` (the path `krea image` and `krea batch` take).
async fn batch(w: &World, prompts: &[&str]) -> BatchReport {
    let mut b = w.krea.batch().dir(w.dir.join("out"));
    for p in prompts {
        b = b.item(*p, w.krea.image("flux").prompt(*p));
    }
    b.run(|_| {}).await.expect("the batch runs")
}

/// Jobs created per prompt (other programs' jobs left out).
fn jobs_per_prompt(sim: &Simulator) -> HashMap<String, Vec<Uuid>> {
    let mut out: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (id, request) in sim.control().requests() {
        let prompt = request["prompt"].as_str().unwrap_or_default().to_string();
        out.entry(prompt).or_default().push(id);
    }
    out
}

/// Every line completed with the one job its prompt made (or, where settling said it could not
/// be sure, a job of the batch), and every job created belongs to exactly one line.
fn every_line_paid_once(w: &World, report: &BatchReport) {
    let per_prompt = jobs_per_prompt(&w.sim);
    for (prompt, jobs) in &per_prompt {
        assert_eq!(jobs.len(), 1, "{prompt:?} was paid {} times", jobs.len());
    }
    let mut adopted = Vec::new();
    for item in &report.items {
        assert_eq!(item.status, ItemStatus::Completed, "{item:?}");
        let job = item.job_id.expect("a job");
        let own = per_prompt.get(&item.label).and_then(|j| j.first().copied());
        assert!(
            own == Some(job) || item.uncertain.is_some(),
            "{} holds another line's job without saying so: {item:?}",
            item.label
        );
        adopted.push(job);
    }
    adopted.sort();
    let mut created: Vec<Uuid> = w.sim.control().job_ids();
    created.sort();
    assert_eq!(adopted, created, "every job created is one line's");
}

fn posts(sim: &Simulator) -> u64 {
    sim.control().counters().requests_to(FLUX)
}

// 1. A gateway gives up (502/504/500 or a reset) while the backend creates the job later; a
//    listing that shows new jobs late.

#[tokio::test]
async fn a_504_whose_job_is_committed_two_seconds_later_is_adopted_not_resent() {
    let w = world(
        "late-504",
        Simulator::builder().fault(
            FLUX,
            Fault::CommitAfter {
                status: Some(504),
                delay: Duration::from_millis(700),
            },
            1.0,
        ),
        1_500,
        200,
    )
    .await;
    let err = w
        .krea
        .image("flux")
        .prompt("a lighthouse")
        .submit()
        .await
        .expect_err("504");
    let unknown = err.unknown_outcome().expect("an unknown outcome").clone();
    assert_eq!(w.sim.control().counters().jobs_created, 0, "not yet");
    let settled = w.krea.settle(&unknown).await.expect("settled");
    let Settlement::Adopted {
        job_id, uncertain, ..
    } = settled
    else {
        panic!("{settled:?}")
    };
    assert_eq!(w.sim.control().job_ids(), vec![job_id]);
    assert_eq!(uncertain, None, "alone in its window: {uncertain:?}");
    let resumed = w.krea.jobs().resume().await.expect("resume");
    assert_eq!(resumed.len(), 1);
    assert_eq!(
        (posts(&w.sim), w.sim.control().counters().jobs_created),
        (1, 1)
    );
}

#[tokio::test]
async fn a_reset_whose_job_is_committed_later_is_adopted_not_resent() {
    let w = world(
        "late-reset",
        Simulator::builder().fault(
            FLUX,
            Fault::CommitAfter {
                status: None,
                delay: Duration::from_millis(500),
            },
            1.0,
        ),
        1_500,
        200,
    )
    .await;
    let report = batch(&w, &["a reset, then a job"]).await;
    every_line_paid_once(&w, &report);
    assert_eq!(posts(&w.sim), 1);
}

#[tokio::test]
async fn a_listing_that_shows_new_jobs_late_never_makes_a_lost_answer_not_created() {
    let w = world(
        "listing-lag",
        Simulator::builder()
            .listing_lag(Duration::from_millis(1_200))
            .fault(FLUX, Fault::StatusAfterProcessing(502), 1.0),
        200,
        1_600,
    )
    .await;
    let report = batch(&w, &["listed late"]).await;
    every_line_paid_once(&w, &report);
    assert_eq!(posts(&w.sim), 1);
}

#[tokio::test]
async fn a_five_line_batch_behind_a_gateway_that_commits_after_each_504_pays_each_line_once() {
    let w = world(
        "late-batch",
        Simulator::builder().fault(
            FLUX,
            Fault::CommitAfter {
                status: Some(504),
                delay: Duration::from_millis(800),
            },
            1.0,
        ),
        1_500,
        200,
    )
    .await;
    let prompts = ["fox one", "fox two", "fox three", "fox four", "fox five"];
    let report = batch(&w, &prompts).await;
    every_line_paid_once(&w, &report);
    assert_eq!(posts(&w.sim), 5, "five POSTs, none resent");
}

// 2. A success status whose body does not parse proves the job exists.

#[tokio::test]
async fn a_200_with_an_html_page_an_empty_body_or_cut_json_is_found_never_resent() {
    for kind in [
        Unreadable::Html,
        Unreadable::Empty,
        Unreadable::TruncatedJson,
    ] {
        let w = world(
            "unreadable",
            Simulator::builder().fault(FLUX, Fault::UnreadableSuccess(kind), 1.0),
            200,
            200,
        )
        .await;
        let report = batch(&w, &["proxied"]).await;
        every_line_paid_once(&w, &report);
        assert_eq!(posts(&w.sim), 1, "{kind:?}: sent once");
        // Settled as created: nothing in the journal says otherwise.
        let journal = w.krea.journal().expect("journal");
        assert!(journal.unresolved().expect("read").is_empty(), "{kind:?}");
    }
}

// 3. Whole-second stamps and a fresh journal: a 500 that created nothing and an answer lost
//    after creating, in one batch, are told apart.

#[tokio::test]
async fn whole_second_stamps_tell_a_500_that_created_nothing_from_a_lost_answer() {
    let w = world(
        "whole-seconds",
        Simulator::builder()
            .whole_second_stamps(true)
            .fault_when(FLUX, Fault::Status(500), "line two")
            .fault_when(FLUX, Fault::ResetAfterBody, "line eight"),
        300,
        200,
    )
    .await;
    // The 500 would refuse line two every time: it ends after the first, so that only the
    // settlement decides whether line two is sent again.
    let control = w.sim.control();
    let clear = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if control.counters().responses(FLUX, 500) >= 1 {
                control.set_faults(vec![krea_sim::FaultRule {
                    route: FLUX.into(),
                    fault: Fault::ResetAfterBody,
                    rate: 1.0,
                    body_contains: Some("line eight".into()),
                }]);
                return;
            }
        }
    });
    let prompts: Vec<String> = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ]
    .iter()
    .map(|n| format!("line {n}"))
    .collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let report = batch(&w, &refs).await;
    clear.abort();
    every_line_paid_once(&w, &report);
    let line = |n: &str| {
        report
            .items
            .iter()
            .find(|i| i.label == n)
            .expect("line")
            .clone()
    };
    assert!(
        line("line two").uncertain.is_none(),
        "{:?}",
        line("line two")
    );
    assert!(
        line("line eight").uncertain.is_none(),
        "{:?}",
        line("line eight")
    );
    assert_eq!(
        posts(&w.sim),
        11,
        "ten lines, line two sent again after its 500"
    );
}

// 4. A server clock far from the client's, with nothing measured yet.

#[tokio::test]
async fn a_server_clock_45_seconds_off_is_measured_not_assumed() {
    for skew in [45, -45] {
        let w = world(
            "skew",
            Simulator::builder()
                .clock_skew(chrono::Duration::seconds(skew))
                .fault(FLUX, Fault::StatusAfterProcessing(502), 1.0),
            300,
            200,
        )
        .await;
        let report = batch(&w, &["a skewed clock"]).await;
        every_line_paid_once(&w, &report);
        assert_eq!(posts(&w.sim), 1, "skew {skew} s");
    }
}

// 5. An old job out of order at the top of the listing does not end the scan.

#[tokio::test]
async fn one_old_job_at_the_top_of_the_listing_does_not_end_the_scan() {
    let w = world(
        "out-of-order",
        Simulator::builder()
            // Another program's job stamped an hour ago, then heading every first page.
            .fault_when(
                FLUX,
                Fault::ForeignTwin {
                    offset_ms: -3_600_000,
                },
                "before",
            )
            .fault("GET /jobs", Fault::OutOfOrderListing, 1.0)
            .fault_when(FLUX, Fault::StatusAfterProcessing(502), "lost"),
        300,
        200,
    )
    .await;
    batch(&w, &["before"]).await;
    let report = batch_in(&w, "more", &["lost"]).await;
    assert_eq!(report.items[0].status, ItemStatus::Completed, "{report:?}");
    assert_eq!(jobs_per_prompt(&w.sim)["lost"].len(), 1, "paid once");
    assert_eq!(
        report.items[0].job_id,
        Some(jobs_per_prompt(&w.sim)["lost"][0])
    );
}

async fn batch_in(w: &World, dir: &str, prompts: &[&str]) -> BatchReport {
    let mut b = w.krea.batch().dir(w.dir.join(dir));
    for p in prompts {
        b = b.item(*p, w.krea.image("flux").prompt(*p));
    }
    b.run(|_| {}).await.expect("the batch runs")
}

// 6. Another program on the same account creates a job in the same second.

#[tokio::test]
async fn another_programs_job_in_the_same_second_is_left_and_ours_adopted() {
    for offset_ms in [-300, 300] {
        let w = world(
            "same-second",
            Simulator::builder()
                .fault_when(FLUX, Fault::ForeignTwin { offset_ms }, "mine")
                .fault_when(FLUX, Fault::StatusAfterProcessing(502), "mine"),
            300,
            200,
        )
        .await;
        // Answers before it measure the lag: where this client's jobs are stamped.
        let report = batch(&w, &["warm one", "warm two", "warm three", "mine"]).await;
        every_line_paid_once(&w, &report);
        let foreign = w.sim.control().foreign_job_ids();
        assert_eq!(foreign.len(), 1, "the other program's job");
        assert!(
            report.items.iter().all(|i| i.job_id != Some(foreign[0])),
            "offset {offset_ms}: another program's job adopted"
        );
        assert_eq!(posts(&w.sim), 4);
    }
}

// 7. Paid requests go out concurrently, paced by milliseconds, not one round trip at a time.

#[tokio::test]
async fn paid_requests_are_sent_concurrently_over_a_slow_link() {
    let w = world(
        "concurrent",
        Simulator::builder().latency(Duration::from_millis(300)),
        300,
        200,
    )
    .await;
    let prompts: Vec<String> = (0..24).map(|i| format!("concurrent {i}")).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let report = batch(&w, &refs).await;
    every_line_paid_once(&w, &report);
    let c = w.sim.control().counters();
    // One at a time would be 1: the spacing is milliseconds (40 at most), the trip 300.
    assert!(
        c.peak_concurrent_generations >= 4,
        "at most {} POSTs were in flight at once",
        c.peak_concurrent_generations
    );
    assert_eq!(posts(&w.sim), 24);
}

// 8. Bounds: a lock wait is inside the deadline; another client's journaled answer is not
//    waited for.

#[tokio::test]
async fn a_journal_locked_by_another_process_ends_within_the_deadline_with_nothing_sent() {
    let w = world("locked", Simulator::builder(), 300, 200).await;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(w.dir.join("journal.jsonl.lock"))
        .expect("lock file");
    lock.lock().expect("held");
    let started = std::time::Instant::now();
    let quick = w
        .krea
        .until(tokio::time::Instant::now() + Duration::from_millis(800));
    let err = quick
        .image("flux")
        .prompt("behind a lock")
        .submit()
        .await
        .expect_err("the journal stays locked");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, Error::Journal { .. } | Error::DeadlineExceeded { .. }),
        "{err}"
    );
    assert_eq!(posts(&w.sim), 0, "not written, not sent");
    lock.unlock().expect("release");
}

#[tokio::test]
async fn settling_does_not_wait_for_a_request_another_running_client_awaits() {
    let w = world(
        "other-client",
        Simulator::builder().latency(Duration::from_millis(1_500)),
        10_000,
        5_000,
    )
    .await;
    let sender = w.krea.clone();
    let sending =
        tokio::spawn(async move { sender.image("flux").prompt("slow link").submit().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another process on the same journal (a second client: its own run).
    let other = support::client(&w.sim, &w.dir, PollPolicy::default().scaled(SCALE));
    let started = std::time::Instant::now();
    let settled = other.settle_all().await.expect("settle");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?} for another client's request",
        started.elapsed()
    );
    assert!(
        settled
            .iter()
            .all(|s| matches!(s, Settlement::StillUnknown { .. })),
        "{settled:?}"
    );
    sending.await.expect("join").expect("created");
    let settled = other.settle_all().await.expect("settle");
    assert!(settled.is_empty(), "its answer is journaled: {settled:?}");
}

// 9. The journal: compaction keeps damaged lines (see the journal's unit tests); a large one
//    is compacted when opened.

#[tokio::test]
async fn a_journal_of_many_finished_jobs_is_compacted_when_opened_and_keeps_damaged_lines() {
    let w = world("big-journal", Simulator::builder(), 300, 200).await;
    let path = w.dir.join("journal.jsonl");
    // One real job, so the file holds a line in the client's own words: its API origin and
    // account fingerprint are what the old lines below must carry to be this client's.
    w.krea
        .image("flux")
        .prompt("first")
        .submit()
        .await
        .expect("submitted")
        .wait()
        .await
        .expect("completed");
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&path)
            .expect("the journal")
            .lines()
            .next()
            .expect("a line"),
    )
    .expect("JSON");
    let (origin, account) = (
        first["origin"].as_str().expect("origin"),
        first["account"].as_str().expect("account"),
    );
    let mut text = String::new();
    for i in 0..6_000u128 {
        let id = Uuid::from_u128(i + 1);
        text.push_str(&format!(
            r#"{{"event":"submitted","at":"2026-11-01T00:00:00Z","origin":"{}","account":"{}","job_id":"{id}","model":"bfl/flux-1-dev","request":{{"prompt":"old"}}}}"#,
            origin, account
        ));
        text.push('\n');
        text.push_str(&format!(
            r#"{{"event":"finished","at":"2026-11-01T00:00:01Z","job_id":"{id}","status":"completed"}}"#
        ));
        text.push('\n');
    }
    text.push_str(
        "{\"event\":\"submitted\",\"job_id\":\"00000000-0000-0000-0000-0000000000ff\",\u{1}\n",
    );
    std::fs::write(&path, &text).expect("write");
    let before = std::fs::metadata(&path).expect("size").len();
    let reopened = client(
        &w.sim,
        &w.dir,
        Duration::from_millis(300),
        Duration::from_millis(200),
    );
    let after = std::fs::metadata(&path).expect("size").len();
    assert!(after < before / 5, "{before} -> {after} bytes");
    let journal = reopened.journal().expect("journal");
    assert_eq!(journal.damaged().len(), 1, "the damaged line is kept");
    assert_eq!(
        journal.damaged()[0].job_id,
        Some(Uuid::from_u128(0xff)),
        "with the job it names"
    );
}

// 10. No redirect is followed on a paid POST; an interrupted download leaves no `.part`.

#[tokio::test]
async fn a_307_on_a_generation_is_not_followed_and_nothing_is_resent() {
    use krea_sim::hostile::{Hostile, Reply, Request};
    let elsewhere = Hostile::start(|_: &Request| Reply::json(200, "{}")).await;
    let target = format!("{}/generate/image/bfl/flux-1-dev", elsewhere.url());
    let api = Hostile::start(move |req: &Request| match req.method.as_str() {
        "POST" => Reply::Full {
            status: 307,
            headers: vec![("location".into(), target.clone())],
            body: Vec::new(),
        },
        _ => Reply::json(200, r#"{"items":[],"next_cursor":null}"#),
    })
    .await;
    let dir = scratch("redirect");
    let krea = Krea::builder()
        .token("t0ken-for-a-redirecting-server")
        .base_url(api.url())
        .journal(StatePath::At(dir.join("journal.jsonl")))
        .build()
        .expect("client");
    let err = krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not followed"), "{err}");
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1, "sent once");
    assert!(
        elsewhere.requests().is_empty(),
        "the body went nowhere else"
    );
    assert!(
        krea.journal()
            .expect("journal")
            .unresolved()
            .expect("read")
            .is_empty()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_download_cut_off_by_the_deadline_leaves_no_part_file() {
    use krea_sim::hostile::{Hostile, Reply, Request};
    let files = Hostile::start(|_: &Request| Reply::Stall {
        status: 200,
        headers: vec![("content-type".into(), "image/png".into())],
        announced: 1_000_000,
    })
    .await;
    let url = format!("{}/files/result.png", files.url());
    let job_id = "4d0e5f97-9721-4422-b88c-73a9032d7de1";
    let body = format!(
        r#"{{"job_id":"{job_id}","status":"completed","created_at":"2026-11-21T12:00:00Z","completed_at":"2026-11-21T12:00:05Z","result":{{"urls":["{url}"]}}}}"#
    );
    let api = Hostile::start(move |_: &Request| Reply::json(200, &body)).await;
    let dir = scratch("part");
    let krea = Krea::builder()
        .token("t0ken-for-a-stalling-server")
        .base_url(api.url())
        .build()
        .expect("client");
    let quick = krea.until(tokio::time::Instant::now() + Duration::from_millis(700));
    let done = quick
        .jobs()
        .wait(job_id.parse().expect("uuid"))
        .await
        .expect("completed");
    let err = done.download_to(&dir).await.expect_err("stalled");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err}");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

// `submit_settled`: one call that never pays twice.

#[tokio::test]
async fn submit_settled_returns_the_job_a_lost_answer_created_and_resends_one_that_created_none() {
    let w = world(
        "submit-settled",
        Simulator::builder()
            .fault_when(FLUX, Fault::StatusAfterProcessing(502), "created")
            .fault_when(FLUX, Fault::ResetBeforeBody, "never read"),
        300,
        200,
    )
    .await;
    let job = w
        .krea
        .image("flux")
        .prompt("created")
        .submit_settled()
        .await
        .expect("settled into its job");
    assert_eq!(jobs_per_prompt(&w.sim)["created"], vec![job.id()]);
    assert_eq!(posts(&w.sim), 1, "not sent again");
    // Created nothing: sent again once settled (the fault hits every send of it, so it ends
    // after three).
    let err = w
        .krea
        .image("flux")
        .prompt("never read")
        .submit_settled()
        .await
        .expect_err("never read");
    assert!(err.to_string().contains("created nothing"), "{err}");
    assert_eq!(
        posts(&w.sim),
        4,
        "three sends, each settled as not created first"
    );
    assert!(!jobs_per_prompt(&w.sim).contains_key("never read"));
}
