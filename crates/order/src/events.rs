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
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderPaid => "order.paid",
            EventType::OrderCancelled => "order.cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "order.paid" => Some(EventType::OrderPaid),
            "order.cancelled" => Some(EventType::OrderCancelled),
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
