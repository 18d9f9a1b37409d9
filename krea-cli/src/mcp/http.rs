//! `krea mcp --http`: the same tools over Streamable HTTP (rmcp's server transport on axum),
//! for assistants that connect by URL. Every request must carry the server's bearer token;
//! requests addressed to another host name, or sent by a web page of another origin, are
//! refused (DNS rebinding). All sessions share one server: one budget, one journal, one
//! output directory. Stopping the server ends the sessions, never a Krea job: what was
//! running stays journaled and `resume_jobs` (or `krea jobs resume`) finishes it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::Server;
use crate::cli::McpArgs;
use crate::exit::Usage;

/// Where the tools are served.
pub const ENDPOINT: &str = "/mcp";

/// The environment variable that sets the bearer token clients must send.
pub const TOKEN_VAR: &str = "KREA_MCP_TOKEN";

/// The shortest token accepted from the environment: a guessable token guards nothing.
const MIN_TOKEN_LEN: usize = 16;

/// The token clients must present: `$KREA_MCP_TOKEN`, else 244 random bits made now.
fn token() -> anyhow::Result<(String, bool)> {
    match std::env::var(TOKEN_VAR) {
        Ok(t) if t.trim().len() >= MIN_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok((t.trim().to_string(), true))
        }
        Ok(_) => Err(Usage(format!(
            "{TOKEN_VAR} must be at least {MIN_TOKEN_LEN} printable characters without spaces; \
             unset it to have one made at start"
        ))
        .into()),
        Err(_) => Ok((
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            false,
        )),
    }
}

/// Host names requests may be addressed to: loopback's, the address served on, and the
/// user's.
fn hosts(served: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !served.ip().is_unspecified() {
        hosts.push(served.ip().to_string());
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

/// Origins whose pages may call: pages served from this machine's loopback, and the user's.
fn origins(extra: &[String]) -> Vec<String> {
    let mut origins: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .flat_map(|h| [format!("http://{h}:*"), format!("https://{h}:*")])
        .collect();
    origins.extend(extra.iter().cloned());
    origins
}

/// Compares in time that does not depend on where the two differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lets through only requests that carry the token.
async fn require_token(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if given.is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
        let ends_session = request.method() == Method::DELETE;
        let mut response = next.run(request).await;
        // rmcp answers a closed session 202; clients (the Python SDK) expect 200 or 204.
        if ends_session && response.status() == StatusCode::ACCEPTED {
            *response.status_mut() = StatusCode::NO_CONTENT;
        }
        return response;
    }
    let why = if given.is_some() {
        "this bearer token is not the one krea mcp was started with"
    } else {
        "send the token krea mcp printed at start (or $KREA_MCP_TOKEN) as `Authorization: Bearer TOKEN`"
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "error": why })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"krea mcp\""),
    );
    response
}

/// Ctrl-C, or SIGTERM where there are signals.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match term.as_mut() {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Serves `server` at `addr` until Ctrl-C or SIGTERM.
pub async fn serve(server: Server, addr: SocketAddr, a: &McpArgs) -> anyhow::Result<()> {
    let (token, from_env) = token()?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Usage(format!(
            "cannot serve on {addr} ({e}): give another address with --http ADDR"
        ))
    })?;
    let served = listener.local_addr()?;
    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts(served, &a.allow_host))
        .with_allowed_origins(origins(&a.allow_origin))
        .with_cancellation_token(stop.child_token());
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app =
        axum::Router::new()
            .nest_service(ENDPOINT, service)
            .layer(middleware::from_fn_with_state(
                Arc::<str>::from(token.as_str()),
                require_token,
            ));
    let shown = match served.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], served.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, served.port()))
        }
        _ => served,
    };
    eprintln!("krea mcp: serving http://{shown}{ENDPOINT}");
    if from_env {
        eprintln!("krea mcp: clients authenticate with the token in ${TOKEN_VAR}");
    } else {
        eprintln!("krea mcp: token {token}");
        eprintln!(
            "krea mcp: clients send `Authorization: Bearer <token>` (set ${TOKEN_VAR} to choose it)"
        );
    }
    let stopping = stop.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_signal().await;
            // Sessions end first, so their open streams do not hold the shutdown.
            stopping.cancel();
        })
        .await?;
    stop.cancel();
    eprintln!("krea mcp: stopped; jobs still running are journaled (`krea jobs resume`)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(same(b"abcdef", b"abcdef"));
        assert!(!same(b"abcdef", b"abcdeg"));
        assert!(!same(b"abc", b"abcdef"));
    }

    #[test]
    fn the_served_address_and_loopback_are_accepted_hosts() {
        let h = hosts(
            "10.1.2.3:80".parse().expect("as set up"),
            &["box.lan".into()],
        );
        for want in ["localhost", "127.0.0.1", "::1", "10.1.2.3", "box.lan"] {
            assert!(h.iter().any(|x| x == want), "{want} in {h:?}");
        }
        let h = hosts("0.0.0.0:80".parse().expect("as set up"), &[]);
        assert!(!h.iter().any(|x| x == "0.0.0.0"));
    }
}
