//! Listeners, the per-connection kill switch that lets a fault drop a connection mid-request,
//! and the middleware every API route passes through: fault injection, bearer auth, counting.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::api::error;
use crate::config::{Fault, Unreadable};
use crate::state::Sim;

/// Closes the connection a request arrived on (an injected reset).
#[derive(Clone, Debug)]
pub struct ConnKill(Arc<Notify>);

impl ConnKill {
    fn fire(&self) {
        self.0.notify_one();
    }
}

/// Marks a request the file origin forwarded after an API redirect: it needs no token.
#[derive(Clone, Copy, Debug)]
pub struct Mirrored;

/// Serves `router` on `listener` until the task is aborted. Each connection gets a
/// [`ConnKill`] in its requests' extensions.
pub async fn serve(listener: TcpListener, router: Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        tokio::spawn(async move {
            let kill = Arc::new(Notify::new());
            let handle = ConnKill(kill.clone());
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(handle.clone());
                    let router = router.clone();
                    async move {
                        Ok::<_, Infallible>(
                            router.oneshot(req.map(Body::new)).await.into_response(),
                        )
                    }
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection closes the socket without an answer.
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        });
    }
}

/// `"GET /jobs/{id}"` for a request.
pub fn route_name(req: &Request) -> String {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    format!("{} {path}", req.method())
}

fn is_request_fault(f: &Fault) -> bool {
    matches!(
        f,
        Fault::Status(_)
            | Fault::RateLimitBurst { .. }
            | Fault::ResetBeforeBody
            | Fault::ResetAfterBody
            | Fault::StatusAfterProcessing(_)
            | Fault::Slow(_)
            | Fault::RedirectToOtherHost
            | Fault::CommitAfter { .. }
            | Fault::UnreadableSuccess(_)
    )
}

/// The `Date` header the server's (possibly skewed) clock writes, in whole seconds.
fn date_header(sim: &Sim) -> Option<HeaderValue> {
    let now = chrono::Utc::now() + sim.config.clock_skew;
    HeaderValue::try_from(now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
}

/// Half the configured round trip (the way there, or back).
async fn one_way(sim: &Sim) {
    if !sim.config.latency.is_zero() {
        tokio::time::sleep(sim.config.latency / 2).await;
    }
}

/// The answer as sent: after the way back, with the server's `Date`.
async fn answered(sim: &Sim, mut response: Response) -> Response {
    one_way(sim).await;
    if let Some(date) = date_header(sim) {
        response.headers_mut().insert(header::DATE, date);
    }
    response
}

/// `body` instead of the job a success carried.
fn unreadable(kind: Unreadable) -> Response {
    let (content_type, body): (&str, &[u8]) = match kind {
        Unreadable::Html => (
            "text/html",
            b"<html><head><title>200 OK</title></head><body><h1>Request accepted</h1><p>upstream</p></body></html>",
        ),
        Unreadable::Empty => ("application/json", b""),
        Unreadable::TruncatedJson => ("application/json", b"{\"job_id\": \"4d0e5f97-97"),
    };
    let mut r = (StatusCode::OK, Body::from(body)).into_response();
    if let Ok(v) = HeaderValue::try_from(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// What the `Authorization` header says.
#[derive(Debug, PartialEq)]
enum Credentials {
    Valid,
    Missing,
    Invalid,
}

/// `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110 section 11.1).
fn credentials(sim: &Sim, req: &Request) -> Credentials {
    if req.extensions().get::<Mirrored>().is_some() {
        return Credentials::Valid;
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let text = value.to_str().unwrap_or_default().trim();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("bearer") && token.trim_start() == sim.config.token {
        Credentials::Valid
    } else {
        Credentials::Invalid
    }
}

/// 401 with the challenge RFC 6750 asks for: `error="invalid_token"` when a token was sent.
fn unauthorized(credentials: &Credentials) -> Response {
    let challenge = match credentials {
        Credentials::Invalid => "Bearer realm=\"krea\", error=\"invalid_token\"",
        _ => "Bearer realm=\"krea\"",
    };
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized: send `Authorization: Bearer <token>` with a valid API token",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

async fn authed(sim: &Sim, req: Request, next: Next) -> Response {
    let credentials = credentials(sim, &req);
    if credentials != Credentials::Valid {
        return unauthorized(&credentials);
    }
    let query = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri());
    let problem = match &query {
        Ok(pairs) => sim.query_rules.check(&route_name(&req), &pairs.0),
        Err(_) => Some("The query string could not be read: percent-encode its values".into()),
    };
    if let Some(problem) = problem {
        return error(StatusCode::BAD_REQUEST, problem);
    }
    next.run(req).await
}

/// Drops the connection and never answers.
async fn reset(sim: &Sim, route: &str, kill: Option<ConnKill>) -> Response {
    {
        let mut st = sim.lock();
        st.count(route, 0);
        st.counters.connections_reset += 1;
    }
    // The connection's end reaches the client after the way back, like any answer.
    one_way(sim).await;
    if let Some(kill) = kill {
        kill.fire();
    }
    std::future::pending::<Response>().await
}

/// Counts a generation request in flight while it lives (also when its connection is dropped).
struct Generating(Arc<Sim>);

impl Generating {
    fn start(sim: &Arc<Sim>) -> Generating {
        let mut st = sim.lock();
        st.counters.concurrent_generations += 1;
        st.counters.peak_concurrent_generations = st
            .counters
            .peak_concurrent_generations
            .max(st.counters.concurrent_generations);
        Generating(sim.clone())
    }
}

impl Drop for Generating {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.counters.concurrent_generations = st.counters.concurrent_generations.saturating_sub(1);
    }
}

/// Counts a request once: with the status it is answered, or, when its client goes away
/// before that (its handling dropped midway, whatever it did), as 0, like a reset. A server
/// counts what reached it, answered or not.
struct Arrived {
    sim: Arc<Sim>,
    route: String,
    counted: bool,
}

impl Arrived {
    fn count(&mut self, status: u16) {
        self.sim.lock().count(&self.route, status);
        self.counted = true;
    }

    /// Drops the connection (counted as 0 now) and never answers.
    async fn reset(&mut self, kill: Option<ConnKill>) -> Response {
        self.counted = true;
        reset(&self.sim, &self.route, kill).await
    }
}

impl Drop for Arrived {
    fn drop(&mut self) {
        if !self.counted {
            self.sim.lock().count(&self.route, 0);
        }
    }
}

/// Faults, then auth, then the handler; counts the outcome per route and status.
pub async fn api_layer(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let route = route_name(&req);
    let mut arrived = Arrived {
        sim: sim.clone(),
        route: route.clone(),
        counted: false,
    };
    let _generating = route
        .starts_with("POST /generate/")
        .then(|| Generating::start(&sim));
    let kill = req.extensions().get::<ConnKill>().cloned();
    let mirrored = req.extensions().get::<Mirrored>().is_some();
    one_way(&sim).await;
    // Rules limited to some bodies need the body first.
    let (req, body) = if sim.lock().wants_body(&route) {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 80 * 1024 * 1024).await else {
            return arrived.reset(kill).await;
        };
        (
            Request::from_parts(parts, Body::from(bytes.clone())),
            Some(bytes),
        )
    } else {
        (req, None)
    };
    let fault =
        sim.lock()
            .draw_fault_for(sim.config.seed, &route, body.as_deref(), is_request_fault);
    let response = match fault {
        Some(Fault::CommitAfter { status, delay }) => {
            // The body is read now (the connection answers before the backend acts).
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, 80 * 1024 * 1024).await else {
                return arrived.reset(kill).await;
            };
            let later = Request::from_parts(parts, Body::from(bytes));
            let backend = sim.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _processed = authed(&backend, later, next).await;
            });
            match status {
                None => return arrived.reset(kill).await,
                Some(code) => error(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::GATEWAY_TIMEOUT),
                    format!("simulated {code}: the gateway gave up waiting"),
                ),
            }
        }
        Some(Fault::UnreadableSuccess(kind)) => {
            let processed = authed(&sim, req, next).await;
            if processed.status().is_success() {
                unreadable(kind)
            } else {
                processed
            }
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, format!("simulated {code}"))
        }
        Some(Fault::RateLimitBurst { retry_after, .. }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests (simulated burst)",
            );
            let ms = retry_after.as_millis();
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            if let (Ok(ms), Ok(secs)) = (
                HeaderValue::try_from(ms.to_string()),
                HeaderValue::try_from(secs.to_string()),
            ) {
                r.headers_mut().insert("retry-after-ms", ms);
                r.headers_mut().insert(header::RETRY_AFTER, secs);
            }
            r
        }
        Some(Fault::ResetBeforeBody) => return arrived.reset(kill).await,
        Some(Fault::ResetAfterBody) => {
            let _processed = authed(&sim, req, next).await;
            return arrived.reset(kill).await;
        }
        Some(Fault::StatusAfterProcessing(code)) => {
            let _processed = authed(&sim, req, next).await;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            error(
                status,
                format!("simulated {code} after the request was processed"),
            )
        }
        Some(Fault::RedirectToOtherHost) if !mirrored => {
            let target = format!(
                "{}/mirror{}",
                sim.files_url,
                req.uri().path_and_query().map_or("/", |p| p.as_str())
            );
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::try_from(target) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            authed(&sim, req, next).await
        }
        _ => authed(&sim, req, next).await,
    };
    arrived.count(response.status().as_u16());
    answered(&sim, response).await
}

/// The file origin's middleware: counts requests and any `Authorization` header received,
/// and injects request-level faults on file routes.
pub async fn files_layer(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let route = route_name(&req);
    let kill = req.extensions().get::<ConnKill>().cloned();
    one_way(&sim).await;
    let fault = {
        let mut st = sim.lock();
        st.counters.file_requests += 1;
        if req.headers().contains_key(header::AUTHORIZATION) {
            st.counters.file_authorization_headers += 1;
        }
        let wanted: fn(&Fault) -> bool = |f| {
            matches!(
                f,
                Fault::Status(_) | Fault::ResetBeforeBody | Fault::Slow(_)
            )
        };
        st.draw_fault(sim.config.seed, &route, wanted)
    };
    let response = match fault {
        Some(Fault::Status(code)) => error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("simulated {code}"),
        ),
        Some(Fault::ResetBeforeBody) => return reset(&sim, &route, kill).await,
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        _ => next.run(req).await,
    };
    sim.lock().count(&route, response.status().as_u16());
    answered(&sim, response).await
}

/// The file origin's `/mirror/...`: what an API redirect to another host lands on. It answers
/// as the API would, without needing the token (so a client that leaks it gains nothing and
/// the counters show it).
pub async fn mirror(State(api): State<Router>, req: Request) -> Response {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let forwarded = path_and_query
        .strip_prefix("/mirror")
        .unwrap_or(&path_and_query)
        .to_string();
    let kill = req.extensions().get::<ConnKill>().cloned();
    let (parts, body) = req.into_parts();
    // A fresh request: the mirror route's own path parameters must not reach the API router.
    let mut inner = Request::new(body);
    *inner.method_mut() = parts.method;
    *inner.headers_mut() = parts.headers;
    match forwarded.parse() {
        Ok(uri) => *inner.uri_mut() = uri,
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad mirror path"),
    }
    inner.extensions_mut().insert(Mirrored);
    if let Some(kill) = kill {
        inner.extensions_mut().insert(kill);
    }
    match api.oneshot(inner).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}
