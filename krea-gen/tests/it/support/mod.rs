//! A one-shot HTTP server on loopback: answers one request with a canned response and hands
//! back the raw request it received, so tests assert what the client sent.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct OneShot {
    pub base_url: String,
    pub request: oneshot::Receiver<String>,
}

pub async fn serve_once(status: u16, body: &'static str) -> OneShot {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Read the head, then as many body bytes as Content-Length says.
        loop {
            let n = socket.read(&mut chunk).await.expect("read");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if buf.len() >= head_end + 4 + length || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let reason = match status {
            200 => "OK",
            402 => "Payment Required",
            404 => "Not Found",
            _ => "Status",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.expect("write");
        let _ = tx.send(String::from_utf8_lossy(&buf).to_string());
    });
    OneShot {
        base_url,
        request: rx,
    }
}

pub fn client(base_url: &str, token: &str) -> krea_gen::Client {
    let http = krea_gen::net::client_builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("reqwest client");
    krea_gen::Client::new_with_client(
        base_url,
        http,
        krea_gen::ApiAuth::bearer(token).expect("token"),
    )
}
