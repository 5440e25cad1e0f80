//! Cross-cutting middleware: request ids, logs and metrics, `HEAD` answered like `GET`,
//! and turning a panic into a 500 problem instead of a dropped connection.

use crate::error::ApiError;
use crate::metrics::Metrics;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: &str = "x-request-id";

fn valid_request_id(v: &str) -> bool {
    (1..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// The method as a metrics label: one of a fixed set, `OTHER` for anything else (actix
/// accepts made-up methods, and a label per method would let any caller grow the
/// metrics without bound).
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// The most characters of a request path a log line shows.
const MAX_LOGGED_PATH_CHARS: usize = 256;

/// One span per request with its id (taken from `X-Request-Id` or generated, echoed
/// back), and one log line when it completes.
pub async fn request_span<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = method_label(req.method());
    let path = crate::error::excerpt(req.path(), MAX_LOGGED_PATH_CHARS);
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    // Middleware below answers errors as responses, so an Err here is actix's own.
    let mut res = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(metrics) = res.request().app_data::<web::Data<Metrics>>() {
        // labels from fixed sets only: the route template (never the raw path; unknown
        // paths share one label) and the method label
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        metrics.observe_request(&route, method, status, elapsed);
    }
    let latency_ms = millis(elapsed);
    span.in_scope(|| tracing::info!(status, latency_ms, "request completed"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), v);
    }
    Ok(res)
}

/// A duration in milliseconds to the microsecond (`1.783`, not `1.7826520000000001`).
fn millis(d: std::time::Duration) -> f64 {
    // exact below 2^53 µs (285 years), then divided once: the shortest form is short
    d.as_micros() as f64 / 1000.0
}

/// `HEAD` is answered wherever `GET` is (API.md): the request is routed as a `GET`, and
/// the HTTP layer, which saw the `HEAD`, sends the same status and headers
/// (`Content-Length` included) without the body. Every `GET` route, the route table's
/// and the documentation's alike, so answers `HEAD` with nothing registered twice.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// A panic in a handler becomes a 500 problem (and an error log), not a dropped connection.
/// (The request cannot be kept across the call: routing needs it unshared. The error is
/// rendered by actix through `ApiError`.)
pub async fn catch_panic(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latency_is_logged_in_milliseconds_to_the_microsecond() {
        assert_eq!(millis(Duration::from_nanos(1_782_652)).to_string(), "1.782");
        assert_eq!(millis(Duration::from_micros(1_783)).to_string(), "1.783");
        assert_eq!(millis(Duration::from_secs(2)).to_string(), "2000");
        assert_eq!(millis(Duration::ZERO).to_string(), "0");
    }
}
