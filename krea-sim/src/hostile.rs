//! A raw HTTP/1.1 server that answers as a test tells it to, including the ways a broken or
//! hostile server would: stalling mid-body, sending bodies of any size, refusing forever,
//! echoing the `Authorization` header back. For testing clients against what no well-behaved
//! server (the simulator included) would send.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use krea_sim::hostile::{Hostile, Reply};
//! let server = Hostile::start(|req| match req.path.as_str() {
//!     "/slow" => Reply::Stall { status: 200, headers: vec![], announced: 100 },
//!     _ => Reply::json(404, r#"{"error":"nothing here"}"#),
//! })
//! .await;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! # }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How to answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete answer.
    Full {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body (its length is sent).
        body: Vec<u8>,
    },
    /// Headers announcing `announced` bytes, then nothing, ever.
    Stall {
        /// Status code.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The `Content-Length` sent.
        announced: u64,
    },
    /// A body of `len` bytes of `chunk` repeated, streamed (`Content-Length` sent when `announce`).
    Huge {
        /// Status code.
        status: u16,
        /// What the body is made of.
        chunk: Vec<u8>,
        /// Its total length.
        len: u64,
        /// Whether to send `Content-Length` (else the connection's end marks the body's).
        announce: bool,
    },
    /// Close the connection without a word.
    Close,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct Hostile {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    /// Listens on 127.0.0.1 (any port) and answers each request with `handler`.
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind 127.0.0.1: {e}"));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .unwrap_or_else(|e| panic!("local address: {e}"))
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (handler, seen) = (handler.clone(), seen.clone());
                    tokio::spawn(async move { serve(stream, handler, seen).await });
                }
            }
        });
        Hostile { url, seen, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(16 * 1024 * 1024)];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn head(status: u16, headers: &[(String, String)], length: Option<u64>) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        h.push_str(&format!("{n}: {v}\r\n"));
    }
    match length {
        Some(n) => h.push_str(&format!("content-length: {n}\r\n")),
        None => h.push_str("connection: close\r\n"),
    }
    h.push_str("\r\n");
    h.into_bytes()
}

async fn serve(mut stream: TcpStream, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Request>>>) {
    while let Some(req) = read_request(&mut stream).await {
        let reply = handler(&req);
        if let Ok(mut s) = seen.lock() {
            s.push(req);
        }
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut out = head(status, &headers, Some(body.len() as u64));
                out.extend_from_slice(&body);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            Reply::Stall {
                status,
                headers,
                announced,
            } => {
                let _ = stream
                    .write_all(&head(status, &headers, Some(announced)))
                    .await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Reply::Huge {
                status,
                chunk,
                len,
                announce,
            } => {
                let _ = stream
                    .write_all(&head(status, &[], announce.then_some(len)))
                    .await;
                let mut sent = 0u64;
                while sent < len && !chunk.is_empty() {
                    let n = chunk.len().min((len - sent) as usize);
                    if stream.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    sent += n as u64;
                }
                return;
            }
            Reply::Close => return,
        }
    }
}
