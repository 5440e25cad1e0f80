//! The outbox of data-platform events, for operators: see what waits and why, read an
//! event with its body and its attempts, send DEAD events again (one, or every one a
//! filter matches).

use crate::auth::Admin;
use crate::error::{ApiError, FieldError, Problem, ProblemCode};
use crate::extract::{FieldErrors, Json, ListQuery, ListResponse, PathId, Query, TryIntoDomain};
use crate::idempotency::IdempotencyKey;
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::Method;
use actix_web::web;
use chrono::{DateTime, Utc};
use order::events::EventType;
use outbox::{
    Attempt, EventDetail, EventNotFound, InvalidRetryFilter, OutboxEntry, OutboxStatus,
    RetryEventError, RetryFilter,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, get_event, attempts, retry, retry_dead),
    components(schemas(
        OutboxEventView,
        OutboxEventDetailView,
        AttemptView,
        OutboxStatusView,
        RetryDeadRequest,
        RetriedView
    ))
)]
pub struct Api;

pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::GET, "/admin/outbox", list),
        route(Method::POST, "/admin/outbox/retries", retry_dead),
        route(Method::GET, "/admin/outbox/{event_id}", get_event),
        route(Method::GET, "/admin/outbox/{event_id}/attempts", attempts),
        route(Method::POST, "/admin/outbox/{event_id}/retry", retry),
    ]
}

/// `event_type`: one of the order event types.
fn event_type_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(EventType::ALL.iter().map(|t| t.as_str())))
        .description(Some("what happened to the order"))
        .build()
}

/// One event of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEventView {
    #[schema(value_type = String, format = Uuid, example = "0b5e3bb1-1f5c-4c8e-9d1e-6f2f2b4f3c11")]
    pub event_id: Uuid,
    #[schema(schema_with = event_type_schema)]
    pub event_type: String,
    pub order_id: i64,
    pub status: OutboxStatusView,
    /// delivery attempts made so far (the successful one included); 0 again after a retry
    pub attempts: u32,
    /// what the last failed attempt got
    pub last_error: Option<String>,
    /// PENDING: when it is tried next; DELIVERED: when it was delivered; DEAD: when it
    /// was parked
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// the earlier undelivered (PENDING or DEAD) event of the same order this one waits
    /// behind: events of one order are delivered in order; null when nothing holds it back
    #[schema(value_type = Option<String>, format = Uuid)]
    pub blocked_by: Option<Uuid>,
}

/// One event with the body sent to the platform.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEventDetailView {
    #[serde(flatten)]
    pub event: OutboxEventView,
    /// the body as sent: `{"event_id", "event_type", "occurred_at", "order"}` (and
    /// `"refund"` for order.refunded)
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// 1 for the event's first attempt; keeps counting across retries
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// the platform's HTTP status; null: no answer (timeout, no connection)
    pub status_code: Option<u16>,
    /// why it failed; null on success
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboxStatusView {
    Pending,
    Delivered,
    Dead,
}

/// `POST /admin/outbox/retries`: which DEAD events to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDeadRequest {
    /// only DEAD events can be retried
    #[schema(example = "DEAD", pattern = "^DEAD$")]
    pub status: String,
    /// only events of this type
    #[schema(schema_with = event_type_schema, nullable)]
    pub event_type: Option<String>,
    /// only events written at or after this time (RFC 3339)
    #[schema(example = "2026-11-21T00:00:00Z", format = DateTime)]
    pub created_from: Option<String>,
    /// only events written before this time (RFC 3339), after created_from
    #[schema(example = "2026-11-22T00:00:00Z", format = DateTime)]
    pub created_to: Option<String>,
}

/// How many DEAD events are PENDING again.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetriedView {
    pub retried: u64,
}

fn status_view(s: OutboxStatus) -> OutboxStatusView {
    match s {
        OutboxStatus::Pending => OutboxStatusView::Pending,
        OutboxStatus::Delivered => OutboxStatusView::Delivered,
        OutboxStatus::Dead => OutboxStatusView::Dead,
    }
}

impl From<OutboxEntry> for OutboxEventView {
    fn from(e: OutboxEntry) -> Self {
        OutboxEventView {
            event_id: e.event_id,
            event_type: e.event_type,
            order_id: e.aggregate_id,
            status: status_view(e.status),
            attempts: e.attempts,
            last_error: e.last_error,
            next_attempt_at: e.next_attempt_at,
            created_at: e.created_at,
            delivered_at: e.delivered_at,
            blocked_by: e.blocked_by,
        }
    }
}

impl From<EventDetail> for OutboxEventDetailView {
    fn from(d: EventDetail) -> Self {
        OutboxEventDetailView {
            event: d.entry.into(),
            payload: d.payload,
        }
    }
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
        }
    }
}

impl From<RetryEventError> for ApiError {
    fn from(e: RetryEventError) -> Self {
        match e {
            RetryEventError::NotFound(id) => not_found(id),
            RetryEventError::NotDead { event_id, status } => ApiError::conflict(
                ProblemCode::InvalidEventState,
                format!(
                    "event {event_id} is {}; only a DEAD event can be retried",
                    status.as_str()
                ),
            ),
            RetryEventError::Unexpected(e) => ApiError::from(e),
        }
    }
}

impl From<EventNotFound> for ApiError {
    fn from(e: EventNotFound) -> Self {
        match e {
            EventNotFound::NotFound(id) => not_found(id),
            EventNotFound::Unexpected(e) => ApiError::from(e),
        }
    }
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(
        ProblemCode::EventNotFound,
        format!("no event {id} in the outbox"),
    )
}

/// `?status=&limit=&cursor=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// PENDING, DELIVERED or DEAD; all events when absent
    #[param(value_type = Option<OutboxStatusView>)]
    pub status: Option<String>,
    /// 1..=100, default 20
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page
    pub cursor: Option<String>,
}

fn parse_status(raw: Option<&str>) -> Result<Option<OutboxStatus>, ApiError> {
    raw.map(|s| {
        OutboxStatus::parse(s)
            .ok_or_else(|| ApiError::bad_request("status", "must be PENDING, DELIVERED or DEAD"))
    })
    .transpose()
}

impl TryIntoDomain for RetryDeadRequest {
    type Domain = RetryFilter;
    fn try_into_domain(self) -> Result<RetryFilter, ApiError> {
        let mut errors = FieldErrors::default();
        if self.status != OutboxStatus::Dead.as_str() {
            errors.push("status", "must be DEAD: only DEAD events are retried");
        }
        if let Some(t) = self.event_type.as_deref() {
            if EventType::parse(t).is_none() {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                errors.push("event_type", format!("must be one of {}", names.join(", ")));
            }
        }
        let mut time = |field: &str, raw: Option<&str>| {
            raw.and_then(|s| match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.push(field, "must be an RFC 3339 timestamp");
                    None
                }
            })
        };
        let from = time("created_from", self.created_from.as_deref());
        let to = time("created_to", self.created_to.as_deref());
        if !errors.is_empty() {
            return errors.finish(None);
        }
        RetryFilter::new(self.event_type, from, to).map_err(|e| match e {
            InvalidRetryFilter::EmptyRange => ApiError::validation(vec![FieldError::new(
                "created_to",
                "must be after created_from",
            )]),
        })
    }
}

/// Outbox events in the order they were written (oldest first), optionally of one
/// status; an event held back behind an undelivered earlier event of its order names it
/// in `blocked_by`.
#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "outbox",
    params(OutboxQuery),
    responses((status = 200, body = ListResponse<OutboxEventView>),
              (status = 400, description = "VALIDATION_ERROR (unknown status, bad limit or cursor)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    _admin: Admin,
    query: Query<OutboxQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ListResponse<OutboxEventView>>, ApiError> {
    let query = query.into_inner();
    let status = parse_status(query.status.as_deref())?;
    let page = ListQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page()?;
    let page = state.outbox.list(status, page).await?;
    Ok(web::Json(ListResponse::from_page(
        page,
        OutboxEventView::from,
    )))
}

/// One event with `payload`, the body as sent to the platform.
#[utoipa::path(get, path = "/api/v1/admin/outbox/{event_id}", tag = "outbox",
    params(("event_id" = String, Path, format = Uuid, description = "the event's UUID")),
    responses((status = 200, body = OutboxEventDetailView),
              (status = 400, description = "VALIDATION_ERROR (not a UUID)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "EVENT_NOT_FOUND", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn get_event(
    _admin: Admin,
    event_id: PathId<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<OutboxEventDetailView>, ApiError> {
    Ok(web::Json(state.outbox.get(event_id.get()).await?.into()))
}

/// Every delivery attempt of one event, oldest first: when, how long, what the platform
/// answered (null: no answer) and the error (null on success).
#[utoipa::path(get, path = "/api/v1/admin/outbox/{event_id}/attempts", tag = "outbox",
    params(("event_id" = String, Path, format = Uuid, description = "the event's UUID"), ListQuery),
    responses((status = 200, body = ListResponse<AttemptView>),
              (status = 400, description = "VALIDATION_ERROR (not a UUID, bad limit or cursor)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "EVENT_NOT_FOUND", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn attempts(
    _admin: Admin,
    event_id: PathId<Uuid>,
    query: Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<web::Json<ListResponse<AttemptView>>, ApiError> {
    let page = query.page()?;
    let page = state.outbox.attempts(event_id.get(), page).await?;
    Ok(web::Json(ListResponse::from_page(page, AttemptView::from)))
}

/// Sends a DEAD event again: it is PENDING, due now, with its attempts reset to 0.
#[utoipa::path(post, path = "/api/v1/admin/outbox/{event_id}/retry", tag = "outbox",
    params(("event_id" = String, Path, format = Uuid, description = "the event's UUID"),
           IdempotencyKey),
    responses((status = 200, body = OutboxEventView),
              (status = 400, description = "VALIDATION_ERROR (not a UUID)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "EVENT_NOT_FOUND", body = Problem),
              (status = 409, description = "INVALID_EVENT_STATE (the event is not DEAD), REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry(
    _admin: Admin,
    event_id: PathId<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<OutboxEventView>, ApiError> {
    let entry = state.outbox.retry(event_id.get()).await?;
    Ok(web::Json(entry.into()))
}

/// Sends every DEAD event that matches again, in one step: each is PENDING, due now,
/// with its attempts reset to 0; each order's events are still delivered in order.
#[utoipa::path(post, path = "/api/v1/admin/outbox/retries", tag = "outbox",
    params(IdempotencyKey),
    request_body = RetryDeadRequest,
    responses((status = 200, body = RetriedView),
              (status = 400, description = "VALIDATION_ERROR (malformed JSON)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 409, description = "REQUEST_IN_PROGRESS", body = Problem),
              (status = 413, description = "PAYLOAD_TOO_LARGE", body = Problem),
              (status = 415, description = "UNSUPPORTED_MEDIA_TYPE", body = Problem),
              (status = 422, description = "VALIDATION_ERROR (status not DEAD, unknown event_type, bad or empty created range, unknown field), IDEMPOTENCY_KEY_REUSED", body = Problem),
              (status = 503, description = "SERVICE_UNAVAILABLE", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry_dead(
    _admin: Admin,
    body: Json<RetryDeadRequest>,
    state: web::Data<AppState>,
) -> Result<web::Json<RetriedView>, ApiError> {
    let filter = body.try_into_domain()?;
    let retried = state.outbox.retry_dead(&filter).await?;
    Ok(web::Json(RetriedView { retried }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_exactly() {
        assert_eq!(parse_status(None).unwrap(), None);
        assert_eq!(
            parse_status(Some("DEAD")).unwrap(),
            Some(OutboxStatus::Dead)
        );
        for bad in ["dead", "", "FAILED"] {
            assert_eq!(
                parse_status(Some(bad)).unwrap_err().code(),
                "VALIDATION_ERROR"
            );
        }
    }

    fn request(
        status: &str,
        event_type: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> RetryDeadRequest {
        RetryDeadRequest {
            status: status.into(),
            event_type: event_type.map(Into::into),
            created_from: from.map(Into::into),
            created_to: to.map(Into::into),
        }
    }

    #[actix_web::test]
    async fn a_retry_filter_names_every_bad_field() {
        let ok = request(
            "DEAD",
            Some("order.refunded"),
            Some("2026-11-21T00:00:00Z"),
            None,
        )
        .try_into_domain()
        .unwrap();
        assert_eq!(ok.event_type(), Some("order.refunded"));
        async fn fields(r: RetryDeadRequest) -> Vec<String> {
            let err = r.try_into_domain().unwrap_err();
            assert_eq!(err.code(), "VALIDATION_ERROR");
            let response = actix_web::ResponseError::error_response(&err);
            assert_eq!(response.status(), 422);
            let bytes = actix_web::body::to_bytes(response.into_body())
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_string())
                .collect()
        }
        assert_eq!(
            fields(request("PENDING", None, None, None)).await,
            ["status"]
        );
        assert_eq!(
            fields(request(
                "DEAD",
                Some("order.shipped"),
                Some("yesterday"),
                Some("2026-13-01")
            ))
            .await,
            ["event_type", "created_from", "created_to"]
        );
        assert_eq!(
            fields(request(
                "DEAD",
                None,
                Some("2026-11-22T00:00:00Z"),
                Some("2026-11-21T00:00:00Z")
            ))
            .await,
            ["created_to"]
        );
    }
}
