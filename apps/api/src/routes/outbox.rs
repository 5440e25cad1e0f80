//! The outbox of data-platform events, for operators: see what waits, send a DEAD
//! event again.

use crate::auth::Admin;
use crate::error::{ApiError, Problem, ProblemCode};
use crate::extract::{ListQuery, ListResponse, PathId};
use crate::idempotency::IdempotencyKey;
use crate::routes::{route, RouteSpec};
use crate::state::AppState;
use actix_web::http::Method;
use actix_web::web;
use order::events::{EventType, OutboxEntry, OutboxStatus, RetryEventError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, retry),
    components(schemas(OutboxEventView, OutboxStatusView, EventTypeView))
)]
pub struct Api;

pub fn routes() -> Vec<RouteSpec> {
    vec![
        route(Method::GET, "/admin/outbox", list),
        route(Method::POST, "/admin/outbox/{event_id}/retry", retry),
    ]
}

/// One event of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEventView {
    #[schema(value_type = String, format = Uuid, example = "0b5e3bb1-1f5c-4c8e-9d1e-6f2f2b4f3c11")]
    pub event_id: Uuid,
    pub event_type: EventTypeView,
    pub order_id: i64,
    pub status: OutboxStatusView,
    /// delivery attempts made so far (the successful one included); 0 again after a retry
    pub attempts: u32,
    /// what the last failed attempt got
    pub last_error: Option<String>,
    /// when a PENDING event is tried next; when a DEAD one was parked
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum EventTypeView {
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboxStatusView {
    Pending,
    Delivered,
    Dead,
}

impl From<OutboxEntry> for OutboxEventView {
    fn from(e: OutboxEntry) -> Self {
        OutboxEventView {
            event_id: e.event_id,
            event_type: match e.event_type {
                EventType::OrderPaid => EventTypeView::OrderPaid,
                EventType::OrderCancelled => EventTypeView::OrderCancelled,
                EventType::OrderRefunded => EventTypeView::OrderRefunded,
            },
            order_id: e.order_id,
            status: match e.status {
                OutboxStatus::Pending => OutboxStatusView::Pending,
                OutboxStatus::Delivered => OutboxStatusView::Delivered,
                OutboxStatus::Dead => OutboxStatusView::Dead,
            },
            attempts: e.attempts,
            last_error: e.last_error,
            next_attempt_at: e.next_attempt_at,
            created_at: e.created_at,
            delivered_at: e.delivered_at,
        }
    }
}

impl From<RetryEventError> for ApiError {
    fn from(e: RetryEventError) -> Self {
        match e {
            RetryEventError::NotFound(id) => ApiError::not_found(
                ProblemCode::EventNotFound,
                format!("no event {id} in the outbox"),
            ),
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

/// `?status=&limit=&cursor=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

/// Outbox events in the order they were written (oldest first), optionally of one status.
#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "outbox",
    params(OutboxQuery),
    responses((status = 200, body = ListResponse<OutboxEventView>),
              (status = 400, description = "VALIDATION_ERROR (unknown status, bad limit or cursor)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    _admin: Admin,
    query: web::Query<OutboxQuery>,
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

/// Sends a DEAD event again: it is PENDING, due now, with its attempts reset to 0.
#[utoipa::path(post, path = "/api/v1/admin/outbox/{event_id}/retry", tag = "outbox",
    params(("event_id" = String, Path, format = Uuid, description = "the event's UUID"),
           IdempotencyKey),
    responses((status = 200, body = OutboxEventView),
              (status = 400, description = "VALIDATION_ERROR (not a UUID)", body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, description = "EVENT_NOT_FOUND", body = Problem),
              (status = 409, description = "INVALID_EVENT_STATE (the event is not DEAD), REQUEST_IN_PROGRESS", body = Problem),
              (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = Problem)),
    security(("bearer" = [])))]
pub async fn retry(
    _admin: Admin,
    event_id: PathId<Uuid>,
    state: web::Data<AppState>,
) -> Result<web::Json<OutboxEventView>, ApiError> {
    let entry = state.outbox.retry(event_id.get()).await?;
    Ok(web::Json(entry.into()))
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
}
