//! Order events for the external data platform, and the port that delivers them.
//!
//! An event is written to the transactional outbox in the same transaction as the order
//! change that caused it (so it is never lost), with the complete body that will be
//! sent; a relay delivers it later, at least once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    /// Part of a paid order was refunded (the body adds `"refund": Refund`).
    #[serde(rename = "order.refunded")]
    OrderRefunded,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderPaid => "order.paid",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderRefunded => "order.refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "order.paid" => Some(EventType::OrderPaid),
            "order.cancelled" => Some(EventType::OrderCancelled),
            "order.refunded" => Some(EventType::OrderRefunded),
            _ => None,
        }
    }
}

/// One event as delivered: `body` is the exact JSON document POSTed to the platform,
/// `{"event_id", "event_type", "occurred_at", "order": Order}`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub order_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub body: serde_json::Value,
}

impl OutboundEvent {
    /// An event with the body API.md specifies:
    /// `{"event_id", "event_type", "occurred_at", "order"}`, where `order` MUST be the
    /// order exactly as the API shows it (`Order` of API.md, after the change) and
    /// `occurred_at` is the time of the change (RFC 3339, UTC).
    pub fn new(
        event_id: Uuid,
        event_type: EventType,
        order_id: i64,
        occurred_at: DateTime<Utc>,
        order: serde_json::Value,
    ) -> Self {
        let body = serde_json::json!({
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "order": order,
        });
        Self {
            event_id,
            event_type,
            order_id,
            occurred_at,
            body,
        }
    }

    /// The same event with one more top-level member in its body (e.g. `refund`).
    pub fn with_member(mut self, name: &str, value: serde_json::Value) -> Self {
        if let Some(body) = self.body.as_object_mut() {
            body.insert(name.to_string(), value);
        }
        self
    }
}

/// Why a delivery attempt failed; the relay retries or parks the event.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The platform answered, but not with a 2xx.
    #[error("the data platform answered {status}")]
    Rejected { status: u16 },
    /// No answer in time, or no connection.
    #[error("the data platform did not answer: {0}")]
    Unreachable(String),
}

/// The external data platform.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DataPlatform: Send + Sync {
    /// Delivers one event. MUST send `Idempotency-Key: <event_id>` so the platform can
    /// drop duplicates (delivery is at least once), and MUST treat only a 2xx as delivered.
    async fn deliver(&self, event: &OutboundEvent) -> Result<(), DeliveryError>;
}

/// Where an event is in its life in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for (its next) delivery attempt.
    Pending,
    /// Acknowledged by the platform with a 2xx.
    Delivered,
    /// Parked after the configured number of failed attempts; only an admin retry
    /// brings it back. Later events of the same order wait behind it.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "PENDING",
            OutboxStatus::Delivered => "DELIVERED",
            OutboxStatus::Dead => "DEAD",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(OutboxStatus::Pending),
            "DELIVERED" => Some(OutboxStatus::Delivered),
            "DEAD" => Some(OutboxStatus::Dead),
            _ => None,
        }
    }
}

/// One row of the outbox, as operators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The position in the outbox (write order); the key of list cursors.
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: EventType,
    pub order_id: i64,
    pub status: OutboxStatus,
    /// Delivery attempts made so far (the successful one included).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An event a relay has claimed for one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedEvent {
    /// The outbox row.
    pub id: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Until when the claim holds; after that the event is due again (the relay that
    /// claimed it is presumed dead). Also the claim's fencing token.
    pub lease_until: DateTime<Utc>,
    pub event: OutboundEvent,
}

/// What happens to an event after a failed attempt (decided by
/// [`crate::relay::RetryPolicy::after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Stays PENDING, due again at this time.
    RetryAt(DateTime<Utc>),
    /// Parked as DEAD.
    Dead,
}

/// How much is waiting, for metrics and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Events not yet delivered and still being tried.
    pub pending: i64,
    /// Events parked after too many failures.
    pub dead: i64,
    /// When the oldest PENDING event was written (how far behind the platform is).
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// Why a DEAD event could not be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryEventError {
    #[error("no event {0} in the outbox")]
    NotFound(Uuid),
    #[error("event {event_id} is {}, only a DEAD event can be retried", status.as_str())]
    NotDead {
        event_id: Uuid,
        status: OutboxStatus,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The transactional outbox, as the relay and operators use it. (Events are written
/// by the order adapter inside the order's own transaction, not through this port.)
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` due events for one delivery attempt each, oldest first.
    ///
    /// An event is due when it is PENDING, its `next_attempt_at <= now`, and no earlier
    /// (smaller id) event of the same order is still undelivered (PENDING or DEAD), so
    /// the events of one order are delivered one after the other, in write order (and a
    /// batch holds at most one event per order).
    /// MUST commit the claim (`next_attempt_at = lease_until`) before returning, so a
    /// relay that dies leaves the event due again once the lease ends, and MUST NOT hand
    /// an event to two relays while its claim holds (across processes: `SKIP LOCKED`).
    async fn claim_due(
        &self,
        limit: u16,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> anyhow::Result<Vec<ClaimedEvent>>;

    /// Records the acknowledgement: DELIVERED, `delivered_at = now`, one more attempt.
    /// Returns false (and changes nothing) when the event is no longer PENDING.
    async fn mark_delivered(
        &self,
        claim: &ClaimedEvent,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// Records a failed attempt: one more attempt, `last_error`, then due again at the
    /// given time, or DEAD (with `next_attempt_at = now`). MUST change nothing (and return
    /// false) when the claim was lost, i.e. the lease ended and another relay claimed the
    /// event since.
    async fn mark_failed(
        &self,
        claim: &ClaimedEvent,
        error: &str,
        next: AfterFailure,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;

    /// Outbox rows in write order (ascending id), optionally of one status;
    /// `page.after()` is the id to continue after.
    async fn list(
        &self,
        status: Option<OutboxStatus>,
        page: kernel::PageRequest,
    ) -> anyhow::Result<kernel::Page<OutboxEntry>>;

    /// Makes a DEAD event PENDING again, due `now`, with its attempts reset to zero (it
    /// gets the full number of attempts again); `last_error` is kept until the next
    /// attempt. MUST refuse any event that is not DEAD.
    async fn retry_dead(
        &self,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry, RetryEventError>;

    /// Counts of what waits.
    async fn backlog(&self) -> anyhow::Result<Backlog>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_envelope_of_api_md_around_the_order() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T09:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::from_u128(7);
        let e = OutboundEvent::new(
            id,
            EventType::OrderCancelled,
            12,
            at,
            serde_json::json!({"id": 12, "status": "CANCELLED"}),
        );
        assert_eq!(
            e.body,
            serde_json::json!({
                "event_id": "00000000-0000-0000-0000-000000000007",
                "event_type": "order.cancelled",
                "occurred_at": "2026-11-21T09:00:00.500Z",
                "order": {"id": 12, "status": "CANCELLED"},
            })
        );
        assert_eq!((e.event_id, e.order_id, e.occurred_at), (id, 12, at));
    }

    #[test]
    fn names_round_trip() {
        for t in [
            EventType::OrderPaid,
            EventType::OrderCancelled,
            EventType::OrderRefunded,
        ] {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        for s in [
            OutboxStatus::Pending,
            OutboxStatus::Delivered,
            OutboxStatus::Dead,
        ] {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxStatus::parse("pending"), None);
    }
}
