//! The dashboard's HTTP server (axum on tokio, [`crate::http::serve_router`]).
//!
//! - `GET /`: the page (HTML, JavaScript and CSS embedded in the binary; no CDN);
//! - `GET /api/views`: the frontier and the views with their columns;
//! - `GET /api/views/NAME`: `{frontier, columns, documents}`; `GET /api/views/NAME.csv`: CSV;
//! - `GET /api/changes?since=T`: the change feed as JSON lines (the change log's records) of
//!   the times after `T`; `410 Gone` when some of them already left the bounded feed;
//! - `GET /api/events`: server-sent events, one `update` per change of the dashboard;
//! - `GET /metrics`: the Prometheus text of `--metrics`.
//!
//! Access: a loopback address is served to anyone who can reach it; any other address needs a
//! token ([`HttpAccess`]), given as `Authorization: Bearer T` or `?token=T`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Dashboard;
use crate::http::{MetricsRegistry, MetricsServer, metrics_router, serve_router};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Who may read the dashboard.
#[derive(Clone, Debug)]
pub struct HttpAccess {
    /// The token every request must carry, when set.
    pub token: Option<String>,
}

impl HttpAccess {
    /// Checks the rule: binding anything but loopback needs a token.
    pub fn for_addr(addr: SocketAddr, token: Option<String>) -> anyhow::Result<HttpAccess> {
        if token.as_deref() == Some("") {
            bail!("--http-token must not be empty");
        }
        if !addr.ip().is_loopback() && token.is_none() {
            bail!("--http {addr} is not a loopback address: give --http-token (or bind 127.0.0.1)");
        }
        Ok(HttpAccess { token })
    }
}

/// Serves the dashboard on `addr` until the returned handle is dropped.
pub fn serve(
    addr: SocketAddr,
    access: HttpAccess,
    dashboard: Arc<Dashboard>,
    registry: Arc<MetricsRegistry>,
) -> anyhow::Result<MetricsServer> {
    serve_router(addr, "the dashboard", router(access, dashboard, registry))
}

/// The dashboard's routes.
pub fn router(
    access: HttpAccess,
    dashboard: Arc<Dashboard>,
    registry: Arc<MetricsRegistry>,
) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/api/views", get(views))
        .route("/api/views/{name}", get(view))
        .route("/api/changes", get(changes))
        .route("/api/events", get(events))
        .with_state(dashboard)
        .merge(metrics_router(registry))
        .layer(middleware::from_fn_with_state(Arc::new(access), authorize))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn json(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

/// The value of query parameter `name`, percent-decoded.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b as u8);
                i += 2;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The page and its code carry no data: they are served without a token (the page then asks
/// for the data with the token of its own address).
fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/app.js" | "/app.css")
}

async fn authorize(
    State(access): State<Arc<HttpAccess>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = access
        .token
        .as_ref()
        .filter(|_| !is_public(request.uri().path()))
    {
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let given = bearer.or_else(|| query_param(request.uri(), "token"));
        if !given.is_some_and(|g| same_secret(&g, token)) {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "a token is required: `Authorization: Bearer TOKEN` or `?token=TOKEN`".into(),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cdcflow\""),
            );
            return response;
        }
    }
    next.run(request).await
}

async fn views(State(dashboard): State<Arc<Dashboard>>) -> Response {
    json(dashboard.views_json())
}

async fn view(State(dashboard): State<Arc<Dashboard>>, Path(name): Path<String>) -> Response {
    if let Some(i) = dashboard.view_index(&name) {
        return json(dashboard.view_json(i));
    }
    if let Some(i) = name
        .strip_suffix(".csv")
        .and_then(|n| dashboard.view_index(n))
    {
        let disposition = format!("attachment; filename=\"{}.csv\"", dashboard.views()[i].name);
        let mut response = (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            dashboard.view_csv(i),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            response
                .headers_mut()
                .insert(header::CONTENT_DISPOSITION, v);
        }
        return response;
    }
    error(StatusCode::NOT_FOUND, format!("no view {name}"))
}

async fn changes(State(dashboard): State<Arc<Dashboard>>, uri: Uri) -> Response {
    let since = match query_param(&uri, "since") {
        None => None,
        Some(s) => match s.parse() {
            Ok(t) => Some(t),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("since={s} is not a time (milliseconds)"),
                );
            }
        },
    };
    match dashboard.changes_since(since) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(gone) => error(
            StatusCode::GONE,
            format!(
                "the feed keeps only the latest changes: it is complete for times after {}; \
                 read /api/views/NAME for the current documents",
                gone.complete_after
            ),
        ),
    }
}

/// Server-sent events: `update` (data: the sequence number) now and after every change,
/// coalesced to at most about four a second.
async fn events(State(dashboard): State<Arc<Dashboard>>) -> impl IntoResponse {
    let mut updates = dashboard.subscribe();
    updates.mark_changed();
    let stream = futures_util::stream::unfold(updates, |mut updates| async move {
        updates.changed().await.ok()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let seq = *updates.borrow_and_update();
        let event = Event::default().event("update").data(seq.to_string());
        Some((Ok::<_, std::convert::Infallible>(event), updates))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_decoded() {
        let uri: Uri = "/api/changes?since=5&token=a%2Bb+c%".parse().unwrap();
        assert_eq!(query_param(&uri, "since").as_deref(), Some("5"));
        assert_eq!(query_param(&uri, "token").as_deref(), Some("a+b c%"));
        assert_eq!(query_param(&uri, "none"), None);
    }

    #[test]
    fn non_loopback_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(HttpAccess::for_addr(any, None).is_err());
        assert!(HttpAccess::for_addr(any, Some("t".into())).is_ok());
        assert!(HttpAccess::for_addr(local, None).is_ok());
        assert!(HttpAccess::for_addr(local, Some(String::new())).is_err());
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
