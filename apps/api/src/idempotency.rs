//! `Idempotency-Key` for every state-changing POST (API.md "Conventions"): the first
//! request with a key runs and its response is stored; the same key and body from the
//! same caller replays it; another body gets 422 IDEMPOTENCY_KEY_REUSED; a duplicate
//! while the first still runs gets 409 REQUEST_IN_PROGRESS. Stored in PostgreSQL.

use crate::auth::JwtKeys;
use crate::error::{ApiError, ProblemCode};
use actix_web::body::{self, BoxBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use futures::StreamExt;
use postgres_adapter::{BeginOutcome, PgIdempotencyStore, StoredResponse};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "Idempotency-Key";

/// The `Idempotency-Key` header as every state-changing POST documents it
/// (`params(IdempotencyKey)`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKey {
    /// 1..=255 visible ASCII characters: the same key and body from the same caller
    /// replays the first response; another body is 422 IDEMPOTENCY_KEY_REUSED
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: String,
}
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// Response headers worth replaying.
const KEPT_HEADERS: [&str; 2] = ["content-type", "location"];

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The middleware, for `middleware::from_fn`.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST {
        return next.call(req).await;
    }
    let Some(raw_key) = req.headers().get(HEADER).cloned() else {
        return next.call(req).await;
    };
    let key = match raw_key.to_str() {
        Ok(k) if valid_key(k) => k.to_string(),
        _ => {
            return Ok(refuse(
                req,
                ApiError::bad_request(HEADER, "must be 1 to 255 visible ASCII characters"),
            ))
        }
    };
    let (Some(store), Some(keys)) = (
        req.app_data::<web::Data<PgIdempotencyStore>>().cloned(),
        req.app_data::<web::Data<JwtKeys>>().cloned(),
    ) else {
        return next.call(req).await;
    };
    // Unauthenticated requests are refused by the handler; nothing to remember.
    let Ok(caller) = keys.caller_of(req.request()) else {
        return next.call(req).await;
    };
    let limit = req
        .app_data::<web::Data<crate::startup::BodyLimit>>()
        .map_or(65_536, |l| l.0);
    let body = match read_body(&mut req, limit).await {
        Ok(body) => body,
        Err(e) => return Ok(refuse(req, e)),
    };
    let hash = fingerprint(req.method().as_str(), &req.uri().to_string(), &body);
    let caller = caller.key();

    let refusal = match store.begin(&caller, &key, &hash).await {
        Ok(BeginOutcome::Claimed) => None,
        Ok(BeginOutcome::Replay(stored)) => return Ok(req.into_response(replay(stored))),
        Ok(BeginOutcome::Mismatch) => Some(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request",
        )),
        Ok(BeginOutcome::InProgress) => Some(ApiError::conflict(
            ProblemCode::RequestInProgress,
            "a request with this Idempotency-Key is still being processed",
        )),
        Err(e) => Some(ApiError::from(e)),
    };
    if let Some(e) = refusal {
        return Ok(refuse(req, e));
    }

    req.set_payload(actix_web::dev::Payload::from(body));
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            let _ = store.release(&caller, &key).await;
            return Err(e);
        }
    };
    let status = res.status();
    if status.is_server_error() {
        // The outcome is unknown to the client; let a retry run the request again.
        if let Err(e) = store.release(&caller, &key).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not release an idempotency key"
            );
        }
        return Ok(res);
    }
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = body::to_bytes(body)
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("reading a response body")))?;
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            head.headers()
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| (name.to_string(), v.to_string()))
        })
        .collect();
    let stored = StoredResponse {
        status: status.as_u16(),
        headers,
        body: bytes.to_vec(),
    };
    if let Err(e) = store.complete(&caller, &key, &stored).await {
        // The work is done; the response still goes out. A retry will get 409 until the lease ends.
        tracing::error!(
            error = format!("{e:#}"),
            "could not store an idempotent response"
        );
    }
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}

/// What "the same request" means: method, path with query, and body bytes.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method);
    hasher.update([0]);
    hasher.update(path_and_query);
    hasher.update([0]);
    hasher.update(body);
    format!("{:x}", hasher.finalize())
}

fn refuse(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(e.error_response())
}

async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(crate::extract::BodyLimit(limit).too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn replay(stored: StoredResponse) -> HttpResponse<BoxBody> {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            res.insert_header((n, v));
        }
    }
    res.insert_header((REPLAYED_HEADER, "true"));
    res.body(stored.body).map_into_boxed_body()
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys_are_1_to_255_visible_ascii() {
        assert!(valid_key("a"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("has space"));
        assert!(!valid_key("tab\t"));
        assert!(!valid_key("é"));
    }
}
