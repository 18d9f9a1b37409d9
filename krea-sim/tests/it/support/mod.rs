//! Helpers for driving a simulator over loopback with a plain HTTP client.
#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use krea_sim::{SimBuilder, Simulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub async fn start(builder: SimBuilder) -> Simulator {
    builder.start().await.expect("simulator starts on loopback")
}

pub fn http() -> reqwest::Client {
    krea_gen::net::client_builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn post(sim: &Simulator, path: &str, body: &Value) -> Reply {
    let r = http()
        .post(format!("{}{path}", sim.api_url()))
        .bearer_auth(sim.token())
        .json(body)
        .send()
        .await
        .expect("send");
    reply(r).await
}

pub async fn get(sim: &Simulator, path: &str) -> Reply {
    let r = http()
        .get(format!("{}{path}", sim.api_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .expect("send");
    reply(r).await
}

pub async fn delete(sim: &Simulator, path: &str) -> Reply {
    let r = http()
        .delete(format!("{}{path}", sim.api_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .expect("send");
    reply(r).await
}

/// Polls `GET /jobs/{id}` until the job is terminal, collecting the states seen.
pub async fn wait(sim: &Simulator, id: &str) -> (Value, Vec<String>) {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..2000 {
        let job = get(sim, &format!("/jobs/{id}")).await.body;
        let status = job["status"].as_str().expect("status").to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if matches!(status.as_str(), "completed" | "failed" | "cancelled") {
            return (job, seen);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} did not finish; states seen {seen:?}");
}

pub fn job_id(job: &Value) -> String {
    job["job_id"].as_str().expect("job_id").to_string()
}

/// Uploads `bytes` as an asset named `name` (`POST /assets`, multipart).
pub async fn upload(sim: &Simulator, bytes: Vec<u8>, name: &str) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("description", "a test upload");
    http()
        .post(format!("{}/assets", sim.api_url()))
        .bearer_auth(sim.token())
        .multipart(form)
        .send()
        .await
        .expect("send")
}

/// The bytes at `url`, fetched as an outside client would (no token: files are public).
pub async fn download(url: &str) -> Vec<u8> {
    http()
        .get(url)
        .send()
        .await
        .expect("answered")
        .bytes()
        .await
        .expect("bytes")
        .to_vec()
}

/// The document `sim` serves at `GET /openapi.json` (no token).
pub async fn openapi(sim: &Simulator) -> Value {
    http()
        .get(format!("{}/openapi.json", sim.api_url()))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("JSON")
}
