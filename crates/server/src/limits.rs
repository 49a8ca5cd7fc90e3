//! Limits every request is held to: a deadline for ordinary requests, a least rate of progress
//! for transfers (uploads, downloads, WebSockets, which may rightly take long), a cap on open
//! WebSockets, and the security headers of every response.

use crate::envelope::error_for_path;
use crate::state::AppState;
use app::settings::ServerSettings;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::{Stream, StreamExt};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Whether a request is a transfer whose length depends on the client's data rather than on
/// our work: archive and image uploads, dataset exports, signed file downloads, WebSockets.
fn is_transfer(request: &Request) -> bool {
    let path = request.uri().path();
    request.headers().contains_key(header::UPGRADE)
        || path.ends_with("/upload")
        || path.ends_with("/export")
        || path.starts_with("/api/v1/files/")
}

/// Middleware: ordinary requests get `server.request_timeout_secs` (503 past it); a transfer's
/// request body must keep up `server.min_transfer_bytes_per_sec` over each
/// `server.transfer_window_secs` window or the request ends with 408.
pub async fn bound_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let settings = &state.app.settings.server;
    let path = request.uri().path().to_owned();
    if !is_transfer(&request) {
        let limit = Duration::from_secs(settings.request_timeout_secs.max(1));
        return match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(timeout_secs = limit.as_secs(), "request timed out");
                error_for_path(
                    &path,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    format!("The request took longer than {} s", limit.as_secs()),
                    json!({ "timeout_secs": limit.as_secs() }),
                )
            }
        };
    }
    let rate = Rate {
        min_bytes: settings
            .min_transfer_bytes_per_sec
            .saturating_mul(settings.transfer_window_secs.max(1)),
        window: Duration::from_secs(settings.transfer_window_secs.max(1)),
    };
    let stalled = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::from_stream(paced(body.into_data_stream(), rate, stalled.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    if !stalled.load(Ordering::Relaxed) {
        return response;
    }
    tracing::warn!("upload cut off: too slow");
    error_for_path(
        &path,
        StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
        format!(
            "The upload was slower than {} bytes/s over {} s",
            settings.min_transfer_bytes_per_sec,
            rate.window.as_secs()
        ),
        json!({ "min_bytes_per_sec": settings.min_transfer_bytes_per_sec }),
    )
}

/// The least progress a transfer must make: `min_bytes` in every `window`.
#[derive(Debug, Clone, Copy)]
struct Rate {
    min_bytes: u64,
    window: Duration,
}

/// The body's chunks, ending in an error (and setting `stalled`) as soon as a window passes
/// with fewer than `rate.min_bytes`.
fn paced<S, E>(
    body: S,
    rate: Rate,
    stalled: Arc<AtomicBool>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    let start = (body, Instant::now(), 0u64, stalled, false);
    futures::stream::unfold(
        start,
        move |(mut body, mut window_start, mut bytes, stalled, done)| async move {
            if done {
                return None;
            }
            loop {
                let deadline = window_start + rate.window;
                match tokio::time::timeout_at(deadline, body.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        bytes += chunk.len() as u64;
                        if Instant::now() >= deadline {
                            if bytes < rate.min_bytes {
                                break;
                            }
                            (window_start, bytes) = (Instant::now(), 0);
                        }
                        return Some((Ok(chunk), (body, window_start, bytes, stalled, false)));
                    }
                    Ok(Some(Err(e))) => {
                        let error = std::io::Error::other(e.to_string());
                        return Some((Err(error), (body, window_start, bytes, stalled, true)));
                    }
                    Ok(None) => return None,
                    Err(_) if bytes >= rate.min_bytes => (window_start, bytes) = (deadline, 0),
                    Err(_) => break,
                }
            }
            stalled.store(true, Ordering::Relaxed);
            let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "upload too slow");
            Some((Err(error), (body, window_start, bytes, stalled, true)))
        },
    )
}

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
    script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

/// `X-Content-Type-Options`, `Referrer-Policy` and `X-Frame-Options` on every response, a
/// Content-Security-Policy on HTML that sets none itself, HSTS when the public URL is https.
pub fn add_security_headers(settings: &ServerSettings, headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    if settings.public_url.starts_with("https://") {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        plan: Vec<(u64, usize)>,
    ) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + Unpin {
        Box::pin(
            futures::stream::iter(plan).then(|(wait_ms, len)| async move {
                tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                Ok(Bytes::from(vec![0u8; len]))
            }),
        )
    }

    async fn run(plan: Vec<(u64, usize)>) -> (usize, bool, bool) {
        let stalled = Arc::new(AtomicBool::new(false));
        let rate = Rate {
            min_bytes: 1000,
            window: Duration::from_millis(100),
        };
        let items: Vec<_> = paced(chunks(plan), rate, stalled.clone()).collect().await;
        let bytes = items.iter().flatten().map(Bytes::len).sum();
        let failed = items.iter().any(Result::is_err);
        (bytes, failed, stalled.load(Ordering::Relaxed))
    }

    // Windows of 100 ms needing 1000 bytes each.
    #[tokio::test]
    async fn a_steady_transfer_passes() {
        let plan = (0..10).map(|_| (20, 600)).collect();
        assert_eq!(run(plan).await, (6000, false, false));
    }

    #[tokio::test]
    async fn a_trickle_is_cut_off() {
        // 100 bytes every 30 ms: ~330 bytes per window.
        let plan = (0..100).map(|_| (30, 100)).collect();
        let (bytes, failed, stalled) = run(plan).await;
        assert!(failed && stalled);
        assert!(bytes <= 600, "{bytes}");
    }

    #[tokio::test]
    async fn a_silent_client_is_cut_off() {
        let (bytes, failed, stalled) = run(vec![(1, 2000), (5_000, 10)]).await;
        assert_eq!(bytes, 2000);
        assert!(failed && stalled);
    }

    #[test]
    fn security_headers() {
        let mut settings = app::Settings::defaults().unwrap().server;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        add_security_headers(&settings, &mut headers);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("content-security-policy"));
        assert!(!headers.contains_key("strict-transport-security"));
        settings.public_url = "https://vision.example.com".into();
        let mut headers = HeaderMap::new();
        add_security_headers(&settings, &mut headers);
        assert!(!headers.contains_key("content-security-policy"));
        assert!(headers.contains_key("strict-transport-security"));
    }
}
