//! The journal (resume with no new POST) and downloads (no partial files, existing files kept).

use crate::support;

use krea::Error;
use krea_sim::{Fault, Simulator};
use support::{hidden_files, setup};

#[tokio::test]
async fn resuming_the_journal_finishes_the_job_with_no_new_post() {
    let s = setup("resume", Simulator::builder()).await;
    let out = s.dir.join("out");
    let job = s
        .krea
        .image("flux")
        .prompt("a lighthouse")
        .output_dir(&out)
        .submit()
        .await
        .expect("submitted");
    let id = job.id();
    drop(job); // the program stops here
    let posts = s
        .sim
        .control()
        .counters()
        .requests_with_prefix("POST /generate/");
    assert_eq!(posts, 1);

    let resumed = s.second_client().jobs().resume().await.expect("resume");
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].job_id, id);
    let files = resumed[0].outcome.as_ref().expect("finished");
    assert_eq!(files.len(), 1);
    assert_eq!(
        Some(std::fs::read(&files[0]).expect("file")),
        s.sim.control().result_bytes(id, 0)
    );
    assert_eq!(
        s.sim
            .control()
            .counters()
            .requests_with_prefix("POST /generate/"),
        1,
        "no new POST"
    );
    // Nothing is left to resume.
    assert!(
        s.second_client()
            .jobs()
            .resume()
            .await
            .expect("resume")
            .is_empty()
    );
}

#[tokio::test]
async fn an_expired_file_url_says_so_with_the_file_servers_status() {
    let s = setup(
        "expired",
        Simulator::builder().fault("GET /files/*", Fault::Status(403), 1.0),
    )
    .await;
    let job = s
        .krea
        .image("flux")
        .prompt("x")
        .output_dir(&s.dir)
        .submit()
        .await
        .expect("submitted");
    let done = job.wait().await.expect("completed");
    match done.download().await {
        Err(
            e @ Error::Download {
                status: Some(403), ..
            },
        ) => {
            assert!(e.to_string().contains("expired"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.sim.control().counters().file_requests,
        1,
        "a refusal is not a blip: not retried"
    );
}

#[tokio::test]
async fn a_truncated_download_leaves_no_partial_file_and_an_existing_file_untouched() {
    let s = setup(
        "truncated",
        Simulator::builder().fault("GET /files/*", Fault::TruncateBody, 1.0),
    )
    .await;
    let job = s
        .krea
        .image("flux")
        .prompt("x")
        .output_dir(&s.dir)
        .overwrite(true)
        .submit()
        .await
        .expect("submitted");
    let done = job.wait().await.expect("completed");
    let job8: String = done.job_id().simple().to_string().chars().take(8).collect();
    let existing = s.dir.join(format!("flux-1-dev-{job8}-0.png"));
    std::fs::write(&existing, b"keep me").expect("write");
    match done.download().await {
        Err(e @ Error::Download { .. }) => assert!(e.to_string().contains("bytes"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");
    assert!(
        hidden_files(&s.dir).is_empty(),
        "no partial file: {:?}",
        hidden_files(&s.dir)
    );
    assert!(
        s.sim.control().counters().file_requests > 1,
        "it was retried before giving up"
    );
}

#[tokio::test]
async fn an_existing_file_is_not_clobbered_unless_asked() {
    let s = setup("clobber", Simulator::builder()).await;
    let done = s
        .krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect("submitted")
        .wait()
        .await
        .expect("completed");
    let first = done.download_to(&s.dir).await.expect("first");
    let second = done.download_to(&s.dir).await.expect("second");
    assert_ne!(first, second, "a numbered name instead of overwriting");
    assert!(
        second[0].to_string_lossy().ends_with("-0-2.png"),
        "{second:?}"
    );
}

#[tokio::test]
async fn durable_downloads_write_the_same_bytes() {
    let s = setup("durable", Simulator::builder()).await;
    let krea = krea::Krea::builder()
        .token(s.sim.token())
        .base_url(s.sim.api_url())
        .journal(krea::StatePath::Disabled)
        .timings(krea::StatePath::Disabled)
        .poll_policy(krea::PollPolicy::default().scaled(support::SCALE))
        .durable_downloads(true)
        .build()
        .expect("client");
    let done = krea
        .image("flux")
        .prompt("x")
        .submit()
        .await
        .expect("submitted")
        .wait()
        .await
        .expect("completed");
    let files = done.download_to(&s.dir).await.expect("downloaded");
    assert_eq!(
        Some(std::fs::read(&files[0]).expect("file")),
        s.sim.control().result_bytes(done.job_id(), 0)
    );
}
