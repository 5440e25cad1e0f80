//! What the outbox holds and what its use cases exchange.

use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// One event as it is stored and delivered (the envelope around the body).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique; the destination drops duplicates by it (`Idempotency-Key`, `webhook-id`).
    pub event_id: Uuid,
    /// The type name, e.g. `order.paid`; the writer's domain owns the list of names.
    pub event_type: String,
    /// Events with the same aggregate id (for order events: the order id) are delivered
    /// one after the other, in write order.
    pub aggregate_id: i64,
    /// When the change happened; the event is due from then on.
    pub occurred_at: DateTime<Utc>,
    /// The exact JSON document sent to the destination.
    pub body: serde_json::Value,
}

/// Where an event is in its life in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for (its next) delivery attempt.
    Pending,
    /// Acknowledged by the destination with a 2xx.
    Delivered,
    /// Parked after the configured number of failed attempts; only an operator's retry
    /// brings it back. Later events of the same aggregate wait behind it.
    Dead,
}

impl OutboxStatus {
    /// The name stored and shown: `PENDING`, `DELIVERED` or `DEAD`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "PENDING",
            OutboxStatus::Delivered => "DELIVERED",
            OutboxStatus::Dead => "DEAD",
        }
    }

    /// The status of a stored name (exact, upper case); `None` for anything else.
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
    /// The event's id.
    pub event_id: Uuid,
    /// The event's type name.
    pub event_type: String,
    /// The aggregate (order) the event is about.
    pub aggregate_id: i64,
    /// Where the event is in its life.
    pub status: OutboxStatus,
    /// Delivery attempts since it was written or last retried by an operator (the
    /// successful one included).
    pub attempts: u32,
    /// What the last failed attempt got.
    pub last_error: Option<String>,
    /// PENDING: when it is tried next (or until when a relay's claim holds it).
    /// DELIVERED: when it was delivered. DEAD: when it was parked. Never in the future
    /// for a DELIVERED or DEAD event.
    pub next_attempt_at: DateTime<Utc>,
    /// When it was written (= when the change happened).
    pub created_at: DateTime<Utc>,
    /// When the destination acknowledged it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// For an undelivered event: the earliest undelivered (PENDING or DEAD) event
    /// written before it for the same aggregate, which it waits behind. `None` when
    /// nothing holds it back.
    pub blocked_by: Option<Uuid>,
}

/// One event with the body that is (or was) sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetail {
    /// The outbox row.
    pub entry: OutboxEntry,
    /// The exact document sent to the destination.
    pub payload: serde_json::Value,
}

/// An event a relay has claimed for one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedEvent {
    /// The outbox row.
    pub id: i64,
    /// Attempts made before this one (since written or last retried).
    pub attempts: u32,
    /// Until when the claim holds; after that the event is due again (the relay that
    /// claimed it is presumed dead). Also the claim's fencing token.
    pub lease_until: DateTime<Utc>,
    /// The event to deliver.
    pub event: Event,
}

/// What happens to an event after a failed attempt (decided by
/// [`crate::RetryPolicy::after_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Stays PENDING, due again at this time.
    RetryAt(DateTime<Utc>),
    /// Parked as DEAD.
    Dead,
}

/// What one delivery attempt got, as the relay records it in the attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// How long it took, up to the answer or the timeout.
    pub duration: Duration,
    /// The destination's HTTP status; `None` when it did not answer.
    pub status_code: Option<u16>,
    /// Why it failed; `None` when it was acknowledged.
    pub error: Option<String>,
}

/// One entry of an event's attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the event's first attempt ever; it keeps counting across operator retries
    /// (unlike [`OutboxEntry::attempts`]). Also the key of list cursors.
    pub attempt: u32,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The destination's HTTP status; `None` when it did not answer.
    pub status_code: Option<u16>,
    /// Why it failed; `None` when it was acknowledged.
    pub error: Option<String>,
}

/// How much is waiting, for metrics and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Events not yet delivered and still being tried.
    pub pending: i64,
    /// Events parked after too many failures.
    pub dead: i64,
    /// Events delivered and not yet deleted by retention.
    pub delivered: i64,
    /// When the oldest PENDING event was written (how far behind the destination is).
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// Which DEAD events an operator sends again at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryFilter {
    event_type: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
}

/// Why a [`RetryFilter`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRetryFilter {
    /// The range is empty: `created_from` is not before `created_to`.
    #[error("created_to must be after created_from")]
    EmptyRange,
}

impl RetryFilter {
    /// DEAD events of this type (any type when `None`), written at or after
    /// `created_from` (inclusive) and before `created_to` (exclusive). An empty range is
    /// refused: it is a mistake, not a request to retry nothing.
    pub fn new(
        event_type: Option<String>,
        created_from: Option<DateTime<Utc>>,
        created_to: Option<DateTime<Utc>>,
    ) -> Result<Self, InvalidRetryFilter> {
        if let (Some(from), Some(to)) = (created_from, created_to) {
            if from >= to {
                return Err(InvalidRetryFilter::EmptyRange);
            }
        }
        Ok(Self {
            event_type,
            created_from,
            created_to,
        })
    }

    /// Only events of this type, when set.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// Only events written at or after this time, when set.
    pub fn created_from(&self) -> Option<DateTime<Utc>> {
        self.created_from
    }

    /// Only events written before this time, when set.
    pub fn created_to(&self) -> Option<DateTime<Utc>> {
        self.created_to
    }

    /// Whether an event of this type written at this time matches (the rule the store's
    /// statement MUST implement).
    pub fn matches(&self, event_type: &str, created_at: DateTime<Utc>) -> bool {
        self.event_type.as_deref().is_none_or(|t| t == event_type)
            && self.created_from.is_none_or(|from| created_at >= from)
            && self.created_to.is_none_or(|to| created_at < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn statuses_round_trip_exactly() {
        for s in [
            OutboxStatus::Pending,
            OutboxStatus::Delivered,
            OutboxStatus::Dead,
        ] {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxStatus::parse("pending"), None);
    }

    // Invariant: a filter range is half open (from inclusive, to exclusive) and never empty.
    #[test]
    fn a_retry_filter_is_a_half_open_non_empty_range() {
        let (a, b) = (at("2026-11-21T09:00:00Z"), at("2026-11-22T09:00:00Z"));
        assert_eq!(
            RetryFilter::new(None, Some(b), Some(a)),
            Err(InvalidRetryFilter::EmptyRange)
        );
        assert_eq!(
            RetryFilter::new(None, Some(a), Some(a)),
            Err(InvalidRetryFilter::EmptyRange)
        );
        let f = RetryFilter::new(Some("order.paid".into()), Some(a), Some(b)).unwrap();
        assert!(f.matches("order.paid", a));
        assert!(!f.matches("order.paid", b));
        assert!(!f.matches("order.cancelled", a));
        assert!(RetryFilter::default().matches("anything", b));
    }
}
