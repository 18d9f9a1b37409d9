//! `krea mcp --http` as a remote assistant meets it: the binary serving Streamable HTTP on a
//! loopback port, driven by rmcp's own HTTP client, and probed with plain requests that lack the
//! token, come from a foreign web page, or name a foreign host.

use crate::mcp::{Client, Recorder, TOOLS, call, files, is_error, posts, structured};
use crate::support::{self, KillOnDrop};

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

const TOKEN: &str = "test-token-0123456789abcdef";

/// What the server wrote on stderr, read until it closes.
struct Log {
    text: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Log {
    /// Everything, once the server closed stderr (it exited).
    fn all(self) -> String {
        let _ = self.reader.join();
        self.text.lock().expect("log").clone()
    }

    fn so_far(&self) -> String {
        self.text.lock().expect("log").clone()
    }
}

/// `krea mcp --http 127.0.0.1:0 ARGS` started; its URL read from stderr, which is kept.
fn serve(mut command: std::process::Command, args: &[&str]) -> (KillOnDrop, String, Log) {
    command
        .args(["mcp", "--poll", "0.02", "--http", "127.0.0.1:0"])
        .args(args)
        .env("KREA_MCP_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn krea mcp --http");
    let stderr = child.stderr.take().expect("piped");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let kept = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("krea mcp: serving ") {
                let _ = tx.send(url.to_string());
            }
            let mut log = kept.lock().expect("log");
            log.push_str(&line);
            log.push('\n');
        }
    });
    let child = KillOnDrop(child);
    let log = Log { text: log, reader };
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no URL on stderr: {}", log.so_far()));
    (child, url, log)
}

async fn connect(url: &str) -> Client {
    let transport = StreamableHttpClientTransport::with_client(
        http(),
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(TOKEN),
    );
    Recorder::default()
        .serve(transport)
        .await
        .expect("initialize over HTTP")
}

/// The first message of a session, as any client sends it.
fn initialize() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}})
}

/// An HTTP client (the workspace's reqwest brings no TLS provider of its own).
fn http() -> reqwest::Client {
    krea_gen::net::client_builder().build().expect("client")
}

async fn probe(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = http()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("loopback")
}

/// Only a caller with the token, addressing this machine, from no foreign page, gets in; two
/// assistants connected at once share one budget; stopping the server cancels no job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistants_connect_by_url_with_the_token_and_share_one_budget() {
    let e = support::env("mcp-http", krea_sim::Simulator::builder()).await;
    let out = e.dir.join("out");
    let (mut child, url, log) = serve(
        support::command(&e),
        &[
            "--output-dir",
            out.to_str().expect("as set up"),
            "--budget-cu",
            "207",
        ],
    );
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
        "{url}"
    );

    // Refused before the MCP layer: no token, a wrong one, a foreign page, a foreign host name.
    let none = probe(&url, &[]).await;
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .expect("as set up")
            .starts_with("Bearer"),
    );
    let wrong = probe(&url, &[("authorization", "Bearer not-the-token-at-all")]).await;
    assert_eq!(wrong.status(), 401);
    let bearer = format!("Bearer {TOKEN}");
    let page = probe(
        &url,
        &[
            ("authorization", &bearer),
            ("origin", "http://rebind.example"),
        ],
    )
    .await;
    assert_eq!(page.status(), 403, "a foreign page's call is refused");
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/mcp");
    let host = format!("rebind.example:{port}");
    let rebound = probe(&url, &[("authorization", &bearer), ("host", &host)]).await;
    assert_eq!(
        rebound.status(),
        403,
        "a request for another host name is refused"
    );
    // The scheme's case does not matter, and a local page may call.
    let local = probe(
        &url,
        &[
            ("authorization", &format!("bearer {TOKEN}")),
            ("origin", "http://localhost:6274"),
        ],
    )
    .await;
    assert_eq!(local.status(), 200);

    // Two assistants at once: the same tools, one budget of 207 CU for a 200 CU video left
    // running and two 3 CU images.
    let first = connect(&url).await;
    let second = connect(&url).await;
    let tools = first.list_all_tools().await.expect("tools");
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(names, TOOLS);
    let video = call(
        &second,
        "generate_video",
        json!({"prompt": "waves", "model": "kling-2.5", "wait_seconds": 0}),
    )
    .await;
    assert!(
        structured(&video)["next"]
            .as_str()
            .is_some_and(|n| n.contains("wait_job")),
        "left running: {video:?}"
    );
    let a = call(
        &first,
        "generate_image",
        json!({"prompt": "a red fox", "model": "flux"}),
    )
    .await;
    assert!(!is_error(&a), "{:?}", a);
    assert!(files(&a).iter().all(|f| f.starts_with(&out) && f.exists()));
    let b = call(
        &second,
        "generate_image",
        json!({"prompt": "a blue jay", "model": "flux"}),
    )
    .await;
    assert!(!is_error(&b), "{:?}", b);
    let c = call(
        &first,
        "generate_image",
        json!({"prompt": "a grey owl", "model": "flux"}),
    )
    .await;
    assert!(is_error(&c));
    assert_eq!(structured(&c)["error"]["kind"], "over_budget");
    assert_eq!(
        posts(&e),
        3,
        "one POST per admitted call, none for the refused one"
    );

    // SIGTERM with the video still running: the server stops, the job is not cancelled.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    // The whole of stderr, read to its end (the server exited), and how it exited.
    let (status, log, _child) = tokio::task::spawn_blocking(move || {
        let status = child.0.wait();
        (status, log.all(), child)
    })
    .await
    .expect("join");
    assert!(status.expect("wait").success(), "{log}");
    let counters = e.sim.control().counters();
    assert!(
        !counters
            .requests
            .keys()
            .any(|route| route.starts_with("DELETE") || route.contains("cancel")),
        "stopping cancels nothing: {:?}",
        counters.requests.keys().collect::<Vec<_>>()
    );
    assert!(log.contains("stopped"), "{log}");
}
