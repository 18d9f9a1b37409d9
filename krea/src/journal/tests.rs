use super::*;
use serde_json::json;
use std::fs::OpenOptions;
use std::io::Write;

pub(super) fn scope() -> Scope {
    Scope {
        origin: "http://127.0.0.1:1".into(),
        account: "0123456789abcdef".into(),
    }
}

/// A journal in a scratch directory that goes when the test ends.
fn journal(name: &str) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("krea-journal-{name}-"))
        .tempdir()
        .expect("scratch");
    let journal = Journal::open(dir.path().join("journal.jsonl"), scope()).expect("open");
    (dir, journal)
}

pub(super) fn submitted(id: u128) -> Entry {
    Entry::Submitted {
        key: Some(Uuid::from_u128(id + 1000)),
        at: Utc::now(),
        scope: scope(),
        job_id: Uuid::from_u128(id),
        model: "bfl/flux-1-dev".into(),
        request: json!({"prompt": "x"}),
        output: Some(OutputPlan::dir("/tmp/out")),
        sent_at: None,
        created_at: None,
        adopted: false,
        uncertain: None,
    }
}

pub(super) fn finished(id: u128) -> Entry {
    Entry::Finished {
        at: Utc::now(),
        job_id: Uuid::from_u128(id),
        status: "completed".into(),
        files: vec![],
    }
}

pub(super) fn sending(key: u128) -> Entry {
    Entry::Sending {
        key: Uuid::from_u128(key),
        at: Utc::now(),
        scope: scope(),
        model: "bfl/flux-1-dev".into(),
        path: "/generate/image/bfl/flux-1-dev".into(),
        fingerprint: "f".into(),
        request: json!({"prompt": "x"}),
        output: None,
        run: None,
        line: None,
    }
}

#[test]
fn a_job_is_pending_until_it_is_finished_and_unknowns_until_resolved() {
    let (_dir, j) = journal("pending");
    j.record(&sending(1001)).expect("append");
    j.record(&submitted(1)).expect("append");
    j.record(&submitted(2)).expect("append");
    j.record(&sending(77)).expect("append");
    j.record(&finished(1)).expect("append");
    let pending = j.pending().expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].job_id, Uuid::from_u128(2));
    assert!(
        pending[0]
            .output
            .as_ref()
            .is_some_and(|o| o.dir.is_absolute())
    );
    let unknown = j.unresolved().expect("unresolved");
    assert_eq!(unknown.len(), 1, "key 1001 was resolved by job 1");
    assert_eq!(unknown[0].key, Uuid::from_u128(77));
}

#[test]
fn torn_and_garbage_lines_lose_nothing_else_and_say_what_they_were() {
    let (_dir, j) = journal("torn");
    j.record(&submitted(3)).expect("append");
    // A garbage line in the middle, with invalid UTF-8, naming a job.
    let mut f = OpenOptions::new()
        .append(true)
        .open(j.path().expect("a file"))
        .expect("open");
    f.write_all(
        b"{\"event\":\"submitted\",\"job_id\":\"00000000-0000-0000-0000-000000000009\",\xff\xfe\n",
    )
    .expect("write");
    drop(f);
    j.record(&submitted(4)).expect("append");
    // A torn last line: the next append must not be glued to it.
    let mut f = OpenOptions::new()
        .append(true)
        .open(j.path().expect("a file"))
        .expect("open");
    f.write_all(b"{\"event\":\"finished\",\"job_id\":")
        .expect("write");
    drop(f);
    j.record(&submitted(5)).expect("append");

    let again = Journal::open(j.path().expect("a file"), scope()).expect("reopen");
    let ids: Vec<Uuid> = again
        .pending()
        .expect("pending")
        .iter()
        .map(|p| p.job_id)
        .collect();
    assert_eq!(
        ids,
        vec![Uuid::from_u128(3), Uuid::from_u128(4), Uuid::from_u128(5)]
    );
    let damaged = again.damaged();
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    assert_eq!(damaged[0].job_id, Some(Uuid::from_u128(9)));
    assert!(
        damaged[0]
            .to_string()
            .contains("00000000-0000-0000-0000-000000000009")
    );
}

#[test]
fn another_process_appends_are_seen_and_other_scopes_are_not() {
    let (_dir, j) = journal("shared");
    let other = Journal::open(j.path().expect("a file"), scope()).expect("second opener");
    other.record(&submitted(6)).expect("append");
    assert_eq!(j.pending().expect("pending").len(), 1, "read incrementally");
    let elsewhere = Journal::open(
        j.path().expect("a file"),
        Scope {
            origin: "https://api.krea.ai".into(),
            account: "fedcba9876543210".into(),
        },
    )
    .expect("other scope");
    assert!(elsewhere.pending().expect("pending").is_empty());
}

#[test]
fn compaction_keeps_what_is_still_needed() {
    let (_dir, j) = journal("compact");
    for i in 0..20 {
        j.record(&submitted(100 + i)).expect("append");
        if i % 2 == 0 {
            j.record(&finished(100 + i)).expect("append");
        }
    }
    j.record(&sending(5000)).expect("append");
    let before = j.pending().expect("pending");
    let (lines, kept) = j.compact().expect("compact");
    assert_eq!(lines, 31);
    assert!(kept <= lines);
    assert_eq!(j.pending().expect("pending"), before);
    assert_eq!(j.unresolved().expect("unresolved").len(), 1);
}

#[test]
fn a_failed_write_is_an_error_naming_the_job() {
    let scratch = tempfile::Builder::new()
        .prefix("krea-journal-ro-")
        .tempdir()
        .expect("scratch");
    let dir = scratch.path();
    // A directory where the file should be: every append fails.
    let path = dir.join("journal.jsonl");
    std::fs::create_dir_all(&path).expect("blocker");
    let j = Journal {
        store: Store::File(FileStore::open(path.clone()).expect("run lock")),
        scope: scope(),
        index: Mutex::new(Index::default()),
    };
    let err = j.record(&submitted(7)).expect_err("cannot write");
    assert_eq!(err.job_id(), Some(Uuid::from_u128(7)));
    assert!(err.to_string().contains("keep its id"), "{err}");
}

#[test]
fn compaction_keeps_damaged_lines_and_what_they_name() {
    let (_dir, j) = journal("compact-damaged");
    j.record(&submitted(1)).expect("append");
    let mut f = OpenOptions::new()
        .append(true)
        .open(j.path().expect("a file"))
        .expect("open");
    f.write_all(
        b"{\"event\":\"submitted\",\"job_id\":\"00000000-0000-0000-0000-00000000002a\",\xff\n",
    )
    .expect("write");
    drop(f);
    for i in 0..10 {
        j.record(&submitted(100 + i)).expect("append");
        j.record(&finished(100 + i)).expect("append");
    }
    j.compact().expect("compact");
    let again = Journal::open(j.path().expect("a file"), scope()).expect("reopen");
    let damaged = again.damaged();
    assert_eq!(damaged.len(), 1, "{damaged:?}");
    assert_eq!(damaged[0].job_id, Some(Uuid::from_u128(42)));
    assert_eq!(again.pending().expect("pending").len(), 1);
}

#[test]
fn paced_appends_keep_sends_apart_across_openers() {
    let (_dir, j) = journal("paced");
    let other = Journal::open(j.path().expect("a file"), scope()).expect("second opener");
    let spacing = chrono::TimeDelta::milliseconds(200);
    assert!(matches!(
        j.record_paced(&sending(1), spacing, None).expect("append"),
        Paced::Written
    ));
    match other
        .record_paced(&sending(2), spacing, None)
        .expect("append")
    {
        Paced::TooSoon(wait) => assert!(wait > std::time::Duration::from_millis(100), "{wait:?}"),
        Paced::Written => panic!("written 0 ms after another process's send"),
    }
    assert_eq!(other.unresolved().expect("read").len(), 1);
}

#[test]
fn a_run_is_alive_while_its_journal_is_open() {
    let (_dir, j) = journal("runs");
    let other = Journal::open(j.path().expect("a file"), scope()).expect("second opener");
    let run = other.run_id();
    assert!(j.run_alive(run));
    drop(other);
    assert!(!j.run_alive(run), "its lock went with it");
    assert!(j.run_alive(j.run_id()), "this one runs");
    assert!(!j.run_alive(None), "a request of an older version's client");
}
