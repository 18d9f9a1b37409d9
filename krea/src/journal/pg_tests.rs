//! The PostgreSQL store against a real throwaway cluster: its exclusive section between hosts,
//! run liveness, compaction.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::tests::{finished, scope, sending, submitted};
use super::*;

#[path = "../../tests/it/support/pg.rs"]
mod cluster;

fn open(url: &str) -> Journal {
    Journal::open_postgres_until(url, scope(), None).expect("open")
}

#[test]
fn of_two_hosts_settling_one_request_at_once_exactly_one_records_it() {
    let pg = cluster::Cluster::start();
    let url = pg.database("race");
    let hosts = [Arc::new(open(&url)), Arc::new(open(&url))];
    for round in 0..20 {
        let key = Uuid::from_u128(round);
        hosts[0].record(&sending(round)).expect("sending");
        let barrier = Arc::new(Barrier::new(2));
        let wrote: Vec<bool> = std::thread::scope(|s| {
            let racers: Vec<_> = hosts
                .iter()
                .map(|host| {
                    let (host, barrier) = (host.clone(), barrier.clone());
                    s.spawn(move || {
                        let entry = Entry::NotCreated {
                            key,
                            at: Utc::now(),
                            reason: format!("settled by {:?}", host.run_id()),
                            uncertain: None,
                        };
                        barrier.wait();
                        host.record_if(&[entry], |v| v.outcome(key) == KeyOutcome::Unresolved, None)
                            .expect("record_if")
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("join"))
                .collect()
        });
        assert_eq!(
            wrote.iter().filter(|w| **w).count(),
            1,
            "round {round}: {wrote:?}"
        );
    }
    let rows = pg.psql(
        "race",
        "SELECT count(*) FROM krea_journal WHERE event = 'not_created'",
    );
    assert_eq!(rows, "20");
}

#[test]
fn a_host_sees_what_another_appended_and_whether_its_run_is_alive() {
    let pg = cluster::Cluster::start();
    let url = pg.database("runs");
    let first = open(&url);
    let second = open(&url);
    // Job 2's request has key 1002.
    let (key, job) = (Uuid::from_u128(1_002), Uuid::from_u128(2));
    first.record(&sending(1_002)).expect("sending");
    assert_eq!(
        second.outcome(key).expect("outcome"),
        KeyOutcome::Unresolved
    );
    first.record(&submitted(2)).expect("submitted");
    assert_eq!(
        second.outcome(key).expect("outcome"),
        KeyOutcome::Created(job)
    );
    let run = first.run_id();
    assert!(second.run_alive(run), "the first host runs");
    drop(first);
    // Its connection closes with it; the server releases the lock when it sees that.
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !second.run_alive(run)
    });
    assert!(gone, "a closed host still counts as running");
    assert!(second.run_alive(second.run_id()));
}

#[test]
fn compaction_keeps_unresolved_pending_and_damaged_rows_and_the_newest_finished() {
    let pg = cluster::Cluster::start();
    let url = pg.database("compact");
    let j = open(&url);
    // Job n's request has key n + 1000.
    for n in 0..600u128 {
        j.record(&sending(n + 1_000)).expect("sending");
        j.record(&submitted(n)).expect("submitted");
        j.record(&finished(n)).expect("finished");
    }
    let pending_job = Uuid::from_u128(90_002);
    j.record(&sending(91_002)).expect("sending");
    j.record(&submitted(90_002)).expect("submitted");
    let unknown = Uuid::from_u128(90_003);
    j.record(&sending(90_003)).expect("sending");
    let refused = Uuid::from_u128(90_004);
    j.record(&sending(90_004)).expect("sending");
    j.record(&Entry::NotCreated {
        key: refused,
        at: Utc::now(),
        reason: "refused".into(),
        uncertain: None,
    })
    .expect("not created");
    // A row this version cannot read (a newer one wrote it), naming a job.
    let named = Uuid::from_u128(90_005);
    pg.psql(
        "compact",
        &format!(
            "INSERT INTO krea_journal (origin, account, event, job_id, entry) VALUES \
             ('{}', '{}', 'from_a_newer_krea', '{named}', \
             '{{\"event\": \"from_a_newer_krea\", \"job_id\": \"{named}\"}}')",
            scope().origin,
            scope().account
        ),
    );
    let (before, after) = j.compact().expect("compact");
    // 1,800 rows of finished jobs, 2 pending, 1 unknown, 2 refused, 1 damaged.
    assert_eq!(before, 1_806);
    // The newest 500 finished jobs (3 rows each), the pending job's 2, the unknown's 1, the
    // damaged 1; the refused request's rows go.
    assert_eq!(after, 1_504);
    let again = open(&url);
    assert_eq!(
        again
            .pending()
            .expect("pending")
            .iter()
            .map(|p| p.job_id)
            .collect::<Vec<_>>(),
        vec![pending_job]
    );
    assert_eq!(
        again
            .unresolved()
            .expect("unresolved")
            .iter()
            .map(|u| u.key)
            .collect::<Vec<_>>(),
        vec![unknown]
    );
    assert_eq!(
        again.outcome(Uuid::from_u128(1_599)).expect("o"),
        KeyOutcome::Created(Uuid::from_u128(599))
    );
    assert_eq!(
        again.outcome(Uuid::from_u128(1_000)).expect("o"),
        KeyOutcome::Absent
    );
    assert_eq!(
        again.damaged().iter().map(|d| d.job_id).collect::<Vec<_>>(),
        vec![Some(named)]
    );
}

#[test]
fn a_shared_lines_request_is_written_only_by_the_worker_holding_its_claim() {
    let pg = cluster::Cluster::start();
    let url = pg.database("claims");
    let (first, second) = (open(&url), open(&url));
    first.batch_open("b", "f", 2, None).expect("register");
    second
        .batch_open("b", "f", 2, None)
        .expect("the same batch");
    assert!(
        second.batch_open("b", "other", 2, None).is_err(),
        "other lines, same name"
    );
    let lease = Duration::from_secs(30);
    assert_eq!(
        first.claim_line("b", lease, &[], None).expect("claim"),
        Some(0)
    );
    assert_eq!(
        second.claim_line("b", lease, &[], None).expect("claim"),
        Some(1)
    );
    let for_line = |key: u128, line: u32| {
        let mut entry = sending(key);
        if let Entry::Sending { line: l, .. } = &mut entry {
            *l = Some(LineRef {
                batch: "b".into(),
                line,
            });
        }
        entry
    };
    // Line 0 is the first worker's: the second may not send it.
    let refused = second.record(&for_line(1, 0)).expect_err("not its claim");
    assert!(refused.to_string().contains("journal"), "{refused}");
    assert_eq!(
        first.outcome(Uuid::from_u128(1)).expect("o"),
        KeyOutcome::Absent
    );
    first.record(&for_line(2, 0)).expect("its claim");
    // The first hangs: its lease runs out, the second takes line 0 over and sees its request.
    pg.psql(
        "claims",
        "UPDATE krea_batch_lines SET lease_until = now() - interval '1 second' WHERE line = 0",
    );
    assert_eq!(
        second.claim_line("b", lease, &[], None).expect("claim"),
        Some(0)
    );
    second.refresh().expect("refresh");
    let line = LineRef {
        batch: "b".into(),
        line: 0,
    };
    assert_eq!(second.line_keys(&line), vec![Uuid::from_u128(2)]);
    // The first wakes and would send line 0 again: refused, nothing written.
    assert!(first.record(&for_line(3, 0)).is_err(), "its claim is gone");
    assert_eq!(
        second.outcome(Uuid::from_u128(3)).expect("o"),
        KeyOutcome::Absent
    );
    let end = LineEnd {
        job_id: Some(Uuid::from_u128(9)),
        status: "completed".into(),
        urls: vec!["https://cdn.example/a.png".into()],
    };
    second.line_done("b", 0, &end, None).expect("done");
    let lines = first.batch_lines("b", None).expect("lines");
    assert!(
        lines[0].done && !lines[1].done && lines[1].held_elsewhere,
        "{lines:?}"
    );
    // How it ended is there for the other workers (a pipeline's next step reads its URLs).
    assert_eq!(lines[0].end.as_ref(), Some(&end));
    assert_eq!(lines[1].end, None);
    // A worker that leaves its line (its files could not be fetched) frees it for the others,
    // and does not take it again itself.
    second.release_line("b", 1, None).expect("leave");
    assert_eq!(
        second.claim_line("b", lease, &[1], None).expect("claim"),
        None
    );
    assert_eq!(
        first.claim_line("b", lease, &[], None).expect("claim"),
        Some(1)
    );
}
