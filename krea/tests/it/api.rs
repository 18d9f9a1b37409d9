//! Jobs, assets, styles and node apps through the library, against the simulator.

use crate::support;

use futures_util::StreamExt;
use krea::{JobQuery, StyleTraining};
use krea_sim::Simulator;
use support::setup;

#[tokio::test]
async fn waiting_for_many_jobs_lists_them_instead_of_polling_each() {
    let s = setup("wait-all", Simulator::builder()).await;
    let mut handles = Vec::new();
    for i in 0..30 {
        handles.push(
            s.krea
                .image("imagen-4")
                .prompt(format!("prompt {i}"))
                .submit()
                .await
                .expect("submitted"),
        );
    }
    let refs: Vec<&krea::JobHandle> = handles.iter().collect();
    let results = s.krea.jobs().wait_all(&refs).await;
    assert!(results.iter().all(Result::is_ok));
    let c = s.sim.control().counters();
    let lists = c.requests_to("GET /jobs");
    let gets = c.requests_to("GET /jobs/{id}");
    assert!(lists >= 1);
    assert!(lists + gets < 30, "{lists} lists + {gets} GETs for 30 jobs");
    eprintln!("30 jobs waited with {lists} listings and {gets} single GETs");
}

#[tokio::test]
async fn listing_pages_through_every_job_and_cancel_stops_a_pending_one() {
    let s = setup("list", Simulator::builder()).await;
    for i in 0..7 {
        s.krea
            .image("flux")
            .prompt(format!("p{i}"))
            .submit()
            .await
            .expect("submitted");
    }
    let all: Vec<_> = s
        .krea
        .jobs()
        .list(JobQuery::all().page_size(3))
        .collect()
        .await;
    assert_eq!(all.len(), 7);
    assert_eq!(s.sim.control().counters().requests_to("GET /jobs"), 3);
    let first_two: Vec<_> = s
        .krea
        .jobs()
        .list(JobQuery::all().page_size(3).max(2))
        .collect()
        .await;
    assert_eq!(first_two.len(), 2);

    let slow = s
        .krea
        .video("veo")
        .prompt("waves")
        .submit()
        .await
        .expect("submitted");
    assert!(slow.cancel().await.expect("cancel"));
    assert_eq!(slow.status(), krea::JobStatus::Cancelled);
    match slow.wait().await {
        Err(krea::Error::JobFailed { status, .. }) => {
            assert_eq!(status, krea::JobStatus::Cancelled)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !s.krea
            .jobs()
            .cancel(slow.id())
            .await
            .expect("second cancel"),
        "already ended"
    );
}

#[tokio::test]
async fn an_uploaded_asset_feeds_an_image_to_image_run() {
    let s = setup("assets", Simulator::builder()).await;
    let png = s.dir.join("input.png");
    std::fs::write(&png, krea_sim::render_png(64, 64, 3)).expect("write");
    let asset = s
        .krea
        .assets()
        .upload(&png, Some("input"))
        .await
        .expect("uploaded");
    assert_eq!(asset.mime_type.as_deref(), Some("image/png"));
    let job = s
        .krea
        .image("flux-kontext")
        .prompt("make it night")
        .image_url(asset.image_url.clone())
        .submit()
        .await;
    // The alias does not exist; the full id does.
    assert!(matches!(job, Err(krea::Error::UnknownModel { .. })));
    let job = s
        .krea
        .image("bfl/flux-1-kontext-dev")
        .prompt("make it night")
        .image_url(asset.image_url.clone())
        .submit()
        .await
        .expect("submitted");
    job.wait().await.expect("completed");
    let listed: Vec<_> = s.krea.assets().list().collect().await;
    assert_eq!(listed.len(), 1);
    s.krea.assets().delete(asset.id).await.expect("deleted");
    assert!(s.krea.assets().get(asset.id).await.is_err());
}

#[tokio::test]
async fn bad_uploads_are_refused_before_sending() {
    let s = setup("bad-upload", Simulator::builder()).await;
    let pdf = s.dir.join("doc.pdf");
    std::fs::write(&pdf, b"%PDF-1.7 not an image").expect("write");
    let err = s
        .krea
        .assets()
        .upload(&pdf, None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not a type Krea accepts"), "{err}");
    let big = s.dir.join("big.png");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(76 * 1024 * 1024).expect("size");
    let err = s
        .krea
        .assets()
        .upload(&big, None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("75 MB"), "{err}");
    assert_eq!(s.sim.control().counters().total_requests(), 0);
}

#[tokio::test]
async fn a_style_trains_and_can_be_updated_and_shared() {
    let s = support::setup_scaled("styles", Simulator::builder(), 0.0005).await;
    let training =
        StyleTraining::new("my style", ["https://example.com/1.png"]).max_train_steps(100);
    let done = s
        .krea
        .styles()
        .train(&training)
        .await
        .expect("training")
        .wait()
        .await
        .expect("trained");
    let id = done.style_id().expect("style id").to_string();
    let style = s.krea.styles().get(&id).await.expect("style");
    assert_eq!(style.title.as_deref(), Some("my style"));
    let updated = s
        .krea
        .styles()
        .update(&id, &krea::StyleUpdate::default().title("renamed"))
        .await
        .expect("updated");
    assert_eq!(updated.title.as_deref(), Some("renamed"));
    let link = s.krea.styles().share_link(&id).await.expect("link");
    assert!(link.is_new && !link.share_link.is_empty());
    s.krea.styles().share(&id).await.expect("shared");
    s.krea.styles().unshare(&id).await.expect("unshared");
    let invalid = s
        .krea
        .styles()
        .train(&StyleTraining::default())
        .await
        .expect_err("invalid");
    assert!(invalid.to_string().contains("name: is required"));
}

#[tokio::test]
async fn a_node_app_runs_and_its_inputs_are_checked() {
    let s = setup("node-apps", Simulator::builder()).await;
    let jobs = s
        .krea
        .node_apps()
        .execute(krea_sim::DEMO_APP, serde_json::json!({"prompt": "a cat"}))
        .await
        .expect("executed");
    assert_eq!(jobs.len(), 1);
    jobs[0].wait().await.expect("completed");
    let err = s
        .krea
        .node_apps()
        .execute(krea_sim::DEMO_APP, serde_json::json!({}))
        .await
        .expect_err("missing input");
    assert!(err.to_string().contains("prompt: is required"), "{err}");
}

#[tokio::test]
async fn cancel_on_drop_cancels_a_pending_job_and_only_when_asked() {
    let s = setup("cancel-on-drop", Simulator::builder()).await;
    let kept = s
        .krea
        .video("veo")
        .prompt("kept")
        .submit()
        .await
        .expect("submitted");
    let dropped = s
        .krea
        .video("veo")
        .prompt("dropped")
        .cancel_on_drop()
        .submit()
        .await
        .expect("submitted");
    let (kept_id, dropped_id) = (kept.id(), dropped.id());
    drop(kept);
    drop(dropped);
    let mut status = krea::JobStatus::Queued;
    for _ in 0..100 {
        status = s.krea.jobs().get(dropped_id).await.expect("job").status;
        if status.is_terminal() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(status, krea::JobStatus::Cancelled);
    assert!(
        !s.krea
            .jobs()
            .get(kept_id)
            .await
            .expect("job")
            .status
            .is_terminal(),
        "not cancelled unless asked"
    );
}
