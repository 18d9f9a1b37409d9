//! The journal in PostgreSQL, shared by replicas that keep nothing on their own disks: each
//! replica here is a client with its own scratch directory (wiped when it "dies") and the same
//! database, a real throwaway cluster started by the test. Every test counts what the
//! simulator saw: POSTs sent and jobs created.

use std::path::Path;
use std::time::Duration;

use krea::{Error, Krea, PollPolicy, RetryPolicy, Settlement};
use krea_sim::{Fault, Simulator};

use crate::support::pg::Cluster;
use crate::support::{SCALE, scratch};

const FLUX: &str = "POST /generate/image/bfl/flux-1-dev";

/// A replica: the database's journal, nothing else kept.
fn replica(sim: &Simulator, url: &str, grace: Duration) -> Krea {
    Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .journal_postgres(url)
        .poll_policy(PollPolicy::default().scaled(SCALE))
        .retry_policy(
            RetryPolicy::default()
                .with_delays(Duration::from_millis(20), Duration::from_millis(200)),
        )
        .settle_grace(grace)
        .listing_lag(Duration::from_millis(200))
        .build()
        .expect("a replica on the shared journal")
}

fn posts(sim: &Simulator) -> u64 {
    sim.control().counters().requests_to(FLUX)
}

fn wipe(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_job_one_replica_started_is_finished_by_another_after_its_disk_is_gone() {
    let pg = Cluster::start();
    let url = pg.database("replicas");
    let sim = Simulator::builder()
        .time_scale(SCALE)
        .start()
        .await
        .expect("simulator");
    let first_disk = scratch("pg-first");
    let first = replica(&sim, &url, Duration::from_millis(300));
    let job = first
        .image("flux")
        .prompt("a harbour at night")
        .output_dir(first_disk.join("out"))
        .submit()
        .await
        .expect("submitted");
    // The replica goes, and its container's disk with it.
    drop(first);
    wipe(&first_disk);

    let second = replica(&sim, &url, Duration::from_millis(300));
    let pending = second
        .journal()
        .expect("journal")
        .pending()
        .expect("pending");
    assert_eq!(
        pending.iter().map(|p| p.job_id).collect::<Vec<_>>(),
        vec![job.id()]
    );
    let resumed = second.jobs().resume().await.expect("resume");
    assert_eq!(resumed.len(), 1);
    let files = resumed[0].outcome.as_ref().expect("finished");
    assert_eq!(
        Some(std::fs::read(&files[0]).expect("file")),
        sim.control().result_bytes(job.id(), 0)
    );
    assert_eq!((posts(&sim), sim.control().counters().jobs_created), (1, 1));
    // Finished for every replica: nothing left to resume anywhere.
    let third = replica(&sim, &url, Duration::from_millis(300));
    assert!(third.jobs().resume().await.expect("resume").is_empty());
    wipe(&first_disk);
}

#[tokio::test]
async fn a_lost_answer_of_a_replica_that_died_is_settled_by_another_and_never_resent() {
    let pg = Cluster::start();
    let url = pg.database("lost");
    let sim = Simulator::builder()
        .time_scale(SCALE)
        .fault(
            FLUX,
            Fault::CommitAfter {
                status: Some(504),
                delay: Duration::from_millis(400),
            },
            1.0,
        )
        .start()
        .await
        .expect("simulator");
    let first = replica(&sim, &url, Duration::from_millis(1_000));
    let err = first
        .image("flux")
        .prompt("a lighthouse")
        .submit()
        .await
        .expect_err("a 504");
    assert!(err.unknown_outcome().is_some(), "{err:?}");
    drop(first);

    let second = replica(&sim, &url, Duration::from_millis(1_000));
    let settled = second.settle_all().await.expect("settled");
    let [Settlement::Adopted { job_id, .. }] = settled.as_slice() else {
        panic!("{settled:?}")
    };
    assert_eq!(sim.control().job_ids(), vec![*job_id]);
    let resumed = second.jobs().resume().await.expect("resume");
    assert_eq!(resumed.len(), 1);
    assert_eq!((posts(&sim), sim.control().counters().jobs_created), (1, 1));
}

#[tokio::test]
async fn a_replica_does_not_settle_a_request_another_live_replica_still_awaits() {
    let pg = Cluster::start();
    let url = pg.database("alive");
    let sim = Simulator::builder()
        .time_scale(SCALE)
        .latency(Duration::from_millis(1_500))
        .start()
        .await
        .expect("simulator");
    let sender = replica(&sim, &url, Duration::from_secs(10));
    let sending = {
        let sender = sender.clone();
        tokio::spawn(async move { sender.image("flux").prompt("slow link").submit().await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let other = replica(&sim, &url, Duration::from_secs(10));
    let started = std::time::Instant::now();
    let settled = other.settle_all().await.expect("settle");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?} for another replica's request",
        started.elapsed()
    );
    assert!(
        matches!(settled.as_slice(), [Settlement::StillUnknown { .. }]),
        "{settled:?}"
    );
    sending.await.expect("join").expect("created");
    let settled = other.settle_all().await.expect("settle");
    assert!(
        settled.is_empty(),
        "its answer is in the journal: {settled:?}"
    );
    assert_eq!((posts(&sim), sim.control().counters().jobs_created), (1, 1));
}

#[tokio::test]
async fn a_replicas_lost_answer_never_adopts_the_job_another_replica_made_that_second() {
    let pg = Cluster::start();
    let url = pg.database("twins");
    let sim = Simulator::builder()
        .time_scale(SCALE)
        .whole_second_stamps(true)
        .fault_when(FLUX, Fault::StatusAfterProcessing(502), "lost")
        .start()
        .await
        .expect("simulator");
    let a = replica(&sim, &url, Duration::from_millis(300));
    let b = replica(&sim, &url, Duration::from_millis(300));
    let (lost, made) = tokio::join!(
        a.image("flux").prompt("lost").submit(),
        b.image("flux").prompt("made").submit()
    );
    let unknown = lost
        .expect_err("a 502")
        .unknown_outcome()
        .expect("unknown")
        .clone();
    let made = made.expect("created").id();
    let settled = a.settle(&unknown).await.expect("settled");
    let Settlement::Adopted { job_id, .. } = settled else {
        panic!("{settled:?}")
    };
    assert_ne!(job_id, made, "adopted the other replica's job");
    let prompt_of = |id| {
        sim.control()
            .requests()
            .into_iter()
            .find(|(j, _)| *j == id)
            .map(|(_, r)| r["prompt"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(prompt_of(job_id).as_deref(), Some("lost"));
    assert_eq!((posts(&sim), sim.control().counters().jobs_created), (2, 2));
}

#[tokio::test]
async fn the_store_unreachable_is_a_clear_error_before_anything_is_paid() {
    let sim = Simulator::builder()
        .time_scale(SCALE)
        .start()
        .await
        .expect("simulator");
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let err = Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .journal_postgres(format!(
            "postgres://krea:hunter2@127.0.0.1:{port}/jobs?connect_timeout=2"
        ))
        .build()
        .expect_err("no database");
    let text = err.report();
    assert!(matches!(err, Error::Journal { .. }), "{text}");
    assert!(
        text.contains(&format!("postgres://127.0.0.1:{port}/jobs")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "the password shows: {text}");

    // Reachable when built, gone when a paid request is about to go out: nothing is sent.
    let pg = Cluster::start();
    let url = pg.database("gone");
    let krea = replica(&sim, &url, Duration::from_millis(300));
    pg.kill();
    let err = krea
        .image("flux")
        .prompt("not paid")
        .submit()
        .await
        .expect_err("no journal");
    assert!(matches!(err, Error::Journal { .. }), "{}", err.report());
    assert_eq!(posts(&sim), 0, "sent without a journal entry");
    // Back: the next request connects again.
    pg.restart();
    krea.image("flux")
        .prompt("paid once")
        .submit()
        .await
        .expect("submitted after the database came back");
    assert_eq!((posts(&sim), sim.control().counters().jobs_created), (1, 1));
}

#[tokio::test]
async fn tables_of_a_newer_krea_are_refused_saying_what_to_do() {
    let pg = Cluster::start();
    let url = pg.database("newer");
    let sim = Simulator::builder()
        .time_scale(SCALE)
        .start()
        .await
        .expect("simulator");
    // The first client creates the tables; a second opens them as they are.
    drop(replica(&sim, &url, Duration::from_millis(300)));
    drop(replica(&sim, &url, Duration::from_millis(300)));
    let version: i32 = pg
        .psql("newer", "SELECT max(version) FROM krea_schema")
        .parse()
        .expect("a version");
    assert!(version >= 2, "every migration applied once: {version}");
    // A newer krea migrated the tables one step further.
    pg.psql(
        "newer",
        &format!("INSERT INTO krea_schema (version) VALUES ({})", version + 1),
    );
    let err = Krea::builder()
        .token(sim.token())
        .base_url(sim.api_url())
        .journal_postgres(&url)
        .build()
        .expect_err("a newer schema");
    assert!(err.report().contains("upgrade krea"), "{}", err.report());
}
