//! `Idempotency-Key` for every state-changing POST (API.md "Conventions"): the first
//! request with a key runs and its response is stored; the same key and body from the
//! same caller replays it; another body gets 422 IDEMPOTENCY_KEY_REUSED; a duplicate
//! while the first still runs gets 409 REQUEST_IN_PROGRESS. Stored in PostgreSQL.
//!
//! Crash-safe: the middleware claims the key before the handler runs and hands the
//! claim to it ([`Idempotency`]); a use case that changes state records its answer IN
//! ITS OWN TRANSACTION (a `kernel::Completion`), so if the server dies after the work
//! committed, a retry finds the record and replays it instead of doing the work again.
//! Such a response is marked and not stored a second time. Answers with nothing
//! committed (refusals) are stored by the middleware afterwards, as before.

use crate::auth::JwtKeys;
use crate::error::{ApiError, ProblemCode};
use actix_web::body::{self, BoxBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use futures::StreamExt;
use kernel::{BeginOutcome, Completion, IdempotencyClaim, IdempotencyStore, RecordedResponse};
use postgres_adapter::PgIdempotencyStore;
use sha2::{Digest, Sha256};
use std::future::{ready, Ready};

/// The claim this request holds on its `Idempotency-Key` (set by the middleware).
#[derive(Clone)]
struct HeldClaim(IdempotencyClaim);

/// Marks a response whose answer the use case recorded in its own transaction.
#[derive(Clone, Copy)]
struct RecordedInTransaction;

/// The request's claim on its `Idempotency-Key`, for handlers: they pass
/// [`Idempotency::completion`] to the use case, which records the answer with its
/// effects, and answer with [`Idempotency::respond`].
pub struct Idempotency(Option<IdempotencyClaim>);

impl FromRequest for Idempotency {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Ok(Idempotency(
            req.extensions().get::<HeldClaim>().map(|h| h.0.clone()),
        )))
    }
}

impl Idempotency {
    /// What the use case needs to record its answer (none without a key).
    pub fn completion<T: 'static>(
        &self,
        render: fn(&T) -> RecordedResponse,
    ) -> Option<Completion<T>> {
        self.0
            .as_ref()
            .map(|claim| Completion::new(claim.clone(), render))
    }

    /// The response for an answer the use case recorded (when there was a key): byte
    /// for byte the record.
    pub fn respond(&self, answer: RecordedResponse) -> HttpResponse {
        let mut res =
            HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
        for (name, value) in answer.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                res.insert_header((n, v));
            }
        }
        let mut res = res.body(answer.body);
        if self.0.is_some() {
            res.extensions_mut().insert(RecordedInTransaction);
        }
        res
    }
}

/// An answer with a JSON body (and a `Location`, for a creation).
pub fn json_answer<T: serde::Serialize>(
    status: StatusCode,
    location: Option<String>,
    value: &T,
) -> RecordedResponse {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(location) = location {
        headers.push(("location".to_string(), location));
    }
    RecordedResponse {
        status: status.as_u16(),
        headers,
        // serialising our own response types cannot fail
        body: serde_json::to_vec(value).unwrap_or_default(),
    }
}

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
        Ok(BeginOutcome::Claimed(claim_id)) => {
            req.extensions_mut().insert(HeldClaim(IdempotencyClaim {
                caller: caller.clone(),
                key: key.clone(),
                request_hash: hash.clone(),
                claim_id,
            }));
            None
        }
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
    if res
        .response()
        .extensions()
        .get::<RecordedInTransaction>()
        .is_some()
    {
        // recorded with the work, in its transaction
        return Ok(res);
    }
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
    let stored = RecordedResponse {
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

fn replay(stored: RecordedResponse) -> HttpResponse<BoxBody> {
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
