//! A 5-prompt image run end to end: files on disk equal the simulator's bytes, and the file
//! origin never saw the token.

use crate::support;

use krea_sim::Simulator;
use support::setup;

#[tokio::test]
async fn five_prompts_complete_and_the_files_equal_the_simulators_bytes() {
    let s = setup("five", Simulator::builder().seed(5)).await;
    let prompts = [
        "a lighthouse at dusk",
        "a red bicycle",
        "a bowl of ramen",
        "a snowy owl",
        "a desert road",
    ];
    let mut handles = Vec::new();
    for p in prompts {
        handles.push(
            s.krea
                .image("flux")
                .prompt(p)
                .width(768)
                .height(512)
                .submit()
                .await
                .expect("submitted"),
        );
    }
    let out = s.dir.join("out");
    for h in &handles {
        let done = h.wait().await.expect("completed");
        assert_eq!(done.model_id(), Some("bfl/flux-1-dev"));
        let files = done.download_to(&out).await.expect("downloaded");
        assert_eq!(files.len(), 1);
        let name = files[0]
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let job8: String = done.job_id().simple().to_string().chars().take(8).collect();
        assert_eq!(name, format!("flux-1-dev-{job8}-0.png"));
        let on_disk = std::fs::read(&files[0]).expect("read");
        assert_eq!(
            Some(on_disk),
            s.sim.control().result_bytes(done.job_id(), 0),
            "byte for byte"
        );
    }
    assert!(
        support::hidden_files(&out).is_empty(),
        "no temporaries left"
    );
    let c = s.sim.control().counters();
    assert_eq!(c.jobs_created, 5);
    assert_eq!(c.file_requests, 5);
    assert_eq!(
        c.file_authorization_headers, 0,
        "the token never went to the file origin"
    );
    // Each job cost a few GETs, not a poll every few hundred milliseconds of its run.
    let gets = c.requests_to("GET /jobs/{id}");
    assert!(gets <= 5 * 8, "{gets} GETs for 5 jobs");
}

#[tokio::test]
async fn a_video_from_an_image_downloads_as_mp4() {
    let s = setup("video", Simulator::builder().video_bytes(50_000)).await;
    let job = s
        .krea
        .video("kling/kling-2.1")
        .prompt("the waves roll in")
        .image_url("https://example.com/start.png")
        .duration(5)
        .submit()
        .await
        .expect("submitted");
    let done = job.wait().await.expect("completed");
    let files = done.download_to(&s.dir).await.expect("downloaded");
    assert!(
        files[0].extension().is_some_and(|e| e == "mp4"),
        "{files:?}"
    );
    assert_eq!(std::fs::metadata(&files[0]).expect("file").len(), 50_000);
}

#[tokio::test]
async fn progress_reports_each_state_change() {
    let s = setup("progress", Simulator::builder()).await;
    let job = s
        .krea
        .image("gpt-image")
        .prompt("a clock tower")
        .submit()
        .await
        .expect("submitted");
    let policy = krea::PollPolicy::fixed(std::time::Duration::from_millis(50)).scaled(1.0);
    let job = job.with_policy(policy);
    let mut seen = Vec::new();
    job.wait_with(|u| seen.push(u.status.to_string()))
        .await
        .expect("completed");
    assert_eq!(seen.last().map(String::as_str), Some("completed"));
    assert!(seen.len() >= 2, "{seen:?}");
}
