//! How the client behaves when the API misbehaves: which failures are retried, and which are
//! never repeated because a paid job may exist.

use crate::support;

use std::time::Duration;

use krea::Error;
use krea_sim::{Fault, Overflow, Simulator};
use support::setup;

const FLUX: &str = "POST /generate/image/bfl/flux-1-dev";

#[tokio::test]
async fn a_429_on_submit_is_retried_and_exactly_one_job_is_created() {
    // The account runs one job at a time; the second submission meets the cap until the first ends.
    let s = setup("429", Simulator::builder().concurrency(1, Overflow::Reject)).await;
    s.krea
        .image("flux")
        .prompt("first")
        .submit()
        .await
        .expect("first");
    let second = s
        .krea
        .image("flux")
        .prompt("second")
        .submit()
        .await
        .expect("second, after retrying");
    let c = s.sim.control().counters();
    assert!(c.responses(FLUX, 429) >= 1, "{:?}", c.requests);
    assert_eq!(c.responses(FLUX, 200), 2);
    assert_eq!(c.jobs_created, 2, "one job each, none duplicated");
    second.wait().await.expect("completed");
}

#[tokio::test]
async fn retry_after_is_honoured_on_rate_limited_submissions() {
    let s = setup(
        "retry-after",
        Simulator::builder().seed(2).fault(
            FLUX,
            Fault::RateLimitBurst {
                burst: 2,
                retry_after: Duration::from_millis(300),
            },
            0.5,
        ),
    )
    .await;
    let started = std::time::Instant::now();
    for i in 0..4 {
        s.krea
            .image("flux")
            .prompt(format!("p{i}"))
            .submit()
            .await
            .expect("submitted");
    }
    let c = s.sim.control().counters();
    let limited = c.responses(FLUX, 429);
    assert!(limited >= 2, "the burst fired: {:?}", c.requests);
    assert!(
        started.elapsed() >= Duration::from_millis(300) * (limited as u32 / 2),
        "waited as told"
    );
    assert_eq!(c.jobs_created, 4);
}

#[tokio::test]
async fn a_connection_reset_after_sending_is_outcome_unknown_with_exactly_one_post() {
    let s = setup(
        "reset",
        Simulator::builder().fault(FLUX, Fault::ResetAfterBody, 1.0),
    )
    .await;
    match s.krea.image("flux").prompt("x").submit().await {
        Err(Error::OutcomeUnknown(u)) => assert_eq!(u.model, "bfl/flux-1-dev"),
        other => panic!("{other:?}"),
    }
    let c = s.sim.control().counters();
    assert_eq!(c.requests_to(FLUX), 1, "never resent");
    assert_eq!(
        c.jobs_created, 1,
        "the job the client could not hear about exists"
    );
}

#[tokio::test]
async fn a_503_on_polling_is_retried() {
    // Seed 15: the first two draws at 50% fire, and never five in a row (the retry limit).
    let s = setup(
        "503",
        Simulator::builder()
            .seed(15)
            .fault("GET /jobs/{id}", Fault::Status(503), 0.5),
    )
    .await;
    let job = s
        .krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect("submitted");
    job.wait().await.expect("completed despite 503s");
    let c = s.sim.control().counters();
    assert!(c.responses("GET /jobs/{id}", 503) >= 1, "{:?}", c.requests);
    assert!(c.responses("GET /jobs/{id}", 200) >= 1);
}

#[tokio::test]
async fn a_402_is_insufficient_credits_and_not_retried() {
    let s = setup("402", Simulator::builder().credits(0.0)).await;
    match s.krea.image("flux").prompt("x").submit().await {
        Err(e @ Error::InsufficientCredits { .. }) => assert!(e.to_string().contains("credits")),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.sim.control().counters().requests_to(FLUX), 1);
}

#[tokio::test]
async fn a_410_names_the_replacement() {
    let s = setup(
        "410",
        Simulator::builder().retire(
            "/generate/image/bfl/flux-1-dev",
            chrono::Utc::now() - chrono::Duration::days(1),
            "bfl/flux-1.1-pro",
        ),
    )
    .await;
    match s.krea.image("flux").prompt("x").submit().await {
        Err(e @ Error::ModelRetired { .. }) => assert!(
            e.to_string().contains("use bfl/flux-1.1-pro instead"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.sim.control().counters().requests_to(FLUX),
        1,
        "410 is not retried"
    );
}

#[tokio::test]
async fn a_deadline_ends_in_a_timeout_that_carries_the_job_id() {
    let s = setup(
        "deadline",
        Simulator::builder().fault(FLUX, Fault::StuckJob, 1.0),
    )
    .await;
    let job = s
        .krea
        .image("flux")
        .prompt("x")
        .poll_policy(
            krea::PollPolicy::default()
                .scaled(support::SCALE)
                .with_deadline(Duration::from_secs(20)),
        )
        .submit()
        .await
        .expect("submitted");
    match job.wait().await {
        Err(Error::Timeout { job_id, .. }) => assert_eq!(job_id, job.id()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_job_is_reported_with_its_id() {
    let s = setup(
        "failed",
        Simulator::builder().fault(FLUX, Fault::FailJob, 1.0),
    )
    .await;
    let job = s
        .krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect("submitted");
    match job.wait().await {
        Err(Error::JobFailed { job_id, status, .. }) => {
            assert_eq!(job_id, job.id());
            assert_eq!(status, krea::JobStatus::Failed);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_redirect_to_another_host_does_not_carry_the_token() {
    let s = setup(
        "redirect",
        Simulator::builder().fault("GET /jobs/{id}", Fault::RedirectToOtherHost, 1.0),
    )
    .await;
    let job = s
        .krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect("submitted");
    job.wait().await.expect("completed via the other host");
    assert_eq!(s.sim.control().counters().file_authorization_headers, 0);
}

#[tokio::test]
async fn a_502_after_the_job_was_created_is_settled_into_that_job_and_never_resent() {
    let s = setup(
        "502",
        Simulator::builder().fault(FLUX, Fault::StatusAfterProcessing(502), 1.0),
    )
    .await;
    let err = s
        .krea
        .image("flux")
        .prompt("a gateway said 502")
        .submit()
        .await
        .expect_err("502");
    let unknown = err.unknown_outcome().expect("an unknown outcome").clone();
    assert_eq!(unknown.model, "bfl/flux-1-dev");
    let c = s.sim.control().counters();
    assert_eq!((c.requests_to(FLUX), c.jobs_created), (1, 1), "sent once");
    let settled = s.krea.settle(&unknown).await.expect("settled");
    let krea::Settlement::Adopted { job_id, .. } = settled else {
        panic!("{settled:?}")
    };
    assert_eq!(
        s.sim.control().job_ids(),
        vec![job_id],
        "the job it created"
    );
    // Adopted into the journal: resuming finishes it without a new request.
    let resumed = s.krea.jobs().resume().await.expect("resume");
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].job_id, job_id);
    assert!(resumed[0].outcome.is_ok(), "{:?}", resumed[0].outcome);
    assert_eq!(
        s.sim.control().counters().requests_to(FLUX),
        1,
        "0 new POSTs"
    );
}

#[tokio::test]
async fn a_reset_before_the_request_was_read_settles_as_not_created() {
    let s = setup(
        "not-created",
        Simulator::builder().fault(FLUX, Fault::ResetBeforeBody, 1.0),
    )
    .await;
    let err = s
        .krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect_err("reset");
    let unknown = err.unknown_outcome().expect("unknown").clone();
    let settled = s.krea.settle(&unknown).await.expect("settled");
    assert!(
        matches!(settled, krea::Settlement::NotCreated { .. }),
        "{settled:?}"
    );
    assert_eq!(s.sim.control().counters().jobs_created, 0);
    let journal = s.krea.journal().expect("journal");
    assert!(journal.unresolved().expect("read").is_empty(), "recorded");
}

#[tokio::test]
async fn an_answer_that_names_its_job_but_does_not_decode_keeps_the_job() {
    use krea_sim::hostile::{Hostile, Reply, Request};
    const JOB: &str = "4d0e5f97-9721-4422-b88c-73a9032d7de1";
    let server = Hostile::start(|req: &Request| match req.method.as_str() {
        "POST" => Reply::json(
            200,
            &format!(r#"{{"job_id":"{JOB}","status":7,"created_at":"2026-11-21T12:00:00Z"}}"#),
        ),
        _ => Reply::json(
            200,
            &format!(
                r#"{{"job_id":"{JOB}","status":"completed","created_at":"2026-11-21T12:00:00Z","completed_at":"2026-11-21T12:00:05Z","result":{{"urls":[]}}}}"#
            ),
        ),
    })
    .await;
    let dir = support::scratch("undecodable");
    let krea = krea::Krea::builder()
        .token("t0ken-for-a-hostile-server")
        .base_url(server.url())
        .journal(krea::StatePath::At(dir.join("journal.jsonl")))
        .build()
        .expect("client");
    // A success status proves the job exists; its id is in the body: that job, not a resend.
    let job = krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect("the answer named its job");
    assert_eq!(job.id(), JOB.parse::<uuid::Uuid>().expect("uuid"));
    let pending = krea.journal().expect("journal").pending().expect("read");
    assert_eq!(pending.len(), 1, "journaled as submitted");
    assert_eq!(pending[0].job_id.to_string(), JOB);
    let resumed = krea.jobs().resume().await.expect("resume");
    assert!(resumed[0].outcome.is_ok(), "{:?}", resumed[0].outcome);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "never sent again");
    let _ = std::fs::remove_dir_all(&dir);
}
