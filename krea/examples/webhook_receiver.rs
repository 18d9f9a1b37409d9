//! Receive results by webhook instead of polling: an axum endpoint that accepts only jobs this
//! program created (Krea's webhooks are unsigned), then downloads them.
//!
//! Krea must reach the receiver, so against the real API run it behind a public https URL and
//! pass it as `WEBHOOK_URL`; with `--sim` it listens on loopback.
//!
//! ```text
//! cargo run -p krea --example webhook_receiver -- --sim [OUT_DIR]
//! ```
#![allow(clippy::print_stdout)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let s = common::session().await?;
    let ours: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
    let (tx, mut rx) = mpsc::channel::<krea::Job>(16);

    let known = ours.clone();
    let app = axum::Router::new().route(
        "/krea-webhook",
        post(move |body: Bytes| {
            let (known, tx) = (known.clone(), tx.clone());
            async move {
                let is_ours = |id| known.lock().map(|k| k.contains(&id)).unwrap_or(false);
                match krea::webhook::parse(&body, is_ours) {
                    Ok(job) => {
                        let _ = tx.send(job).await;
                        StatusCode::OK
                    }
                    Err(e) => {
                        eprintln!("ignored a webhook: {e}");
                        StatusCode::BAD_REQUEST
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = std::env::var("WEBHOOK_URL").unwrap_or_else(|_| {
        format!(
            "http://{}/krea-webhook",
            listener
                .local_addr()
                .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into())
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut handles = Vec::new();
    for prompt in ["a paper boat", "a copper kettle", "a pine forest"] {
        let job = s
            .krea
            .image("flux")
            .prompt(prompt)
            .webhook(url.clone())
            .submit()
            .await?;
        ours.lock().map_err(|_| "lock")?.insert(job.id());
        handles.push(job);
    }
    println!(
        "submitted {} jobs; waiting for webhooks at {url}",
        handles.len()
    );
    for _ in 0..handles.len() {
        let job = rx.recv().await.ok_or("the receiver stopped")?;
        let handle = handles
            .iter()
            .find(|h| h.id() == job.id)
            .ok_or("unknown job")?;
        // The delivered job is the outcome: no GET to the API before downloading.
        let done = s.krea.delivered(job)?;
        for path in done.download_to(common::out_dir()).await? {
            let model = handle.model().map_or("?", |m| m.id.as_str());
            println!("{model} (webhook) -> {}", path.display());
        }
    }
    Ok(())
}
