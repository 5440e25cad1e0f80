//! Order events for the external data platform: their type names and bodies.
//!
//! An event is written to the transactional outbox in the same transaction as the order
//! change that caused it (so it is never lost), with the complete body that will be
//! sent; the `outbox` crate's relay delivers it later, at least once, the events of one
//! order in the order they were written.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Declares the event types: a variant and its wire name each. Adding an event type is
/// one line here (and the name in the outbox's CHECK constraint).
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)+) => {
        /// What happened to the order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($(#[$doc])* $variant,)+
        }

        impl EventType {
            /// Every event type, in declaration order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// The wire name, e.g. `order.paid`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)+
                }
            }

            /// The type of a wire name (exact); `None` for anything else.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($name => Some(EventType::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    /// The order was paid: `{"event_id", "event_type", "occurred_at", "order"}`.
    OrderPaid => "order.paid",
    /// A paid order was cancelled (and refunded in full).
    OrderCancelled => "order.cancelled",
    /// Part of a paid order was refunded: the body also carries `"refund": Refund`.
    OrderRefunded => "order.refunded",
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        EventType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type {name:?}")))
    }
}

/// One order event as delivered: `body` is the exact JSON document POSTed to the
/// platform, `{"event_id", "event_type", "occurred_at", "order": Order}` (plus
/// `"refund": Refund` for `order.refunded`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEvent {
    /// Unique; the platform drops duplicates by it.
    pub event_id: Uuid,
    /// What happened.
    pub event_type: EventType,
    /// The order it happened to (events of one order are delivered in order).
    pub order_id: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The document sent.
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

    /// An `order.refunded` event: the body of [`Self::new`] plus `"refund"`, the refund
    /// exactly as the API shows it (`Refund` of API.md).
    pub fn refunded(
        event_id: Uuid,
        order_id: i64,
        occurred_at: DateTime<Utc>,
        order: serde_json::Value,
        refund: serde_json::Value,
    ) -> Self {
        let mut event = Self::new(
            event_id,
            EventType::OrderRefunded,
            order_id,
            occurred_at,
            order,
        );
        if let Some(body) = event.body.as_object_mut() {
            body.insert("refund".into(), refund);
        }
        event
    }
}

/// The outbox's envelope of an order event: the aggregate is the order.
impl From<&OutboundEvent> for outbox::Event {
    fn from(e: &OutboundEvent) -> Self {
        outbox::Event {
            event_id: e.event_id,
            event_type: e.event_type.as_str().to_string(),
            aggregate_id: e.order_id,
            occurred_at: e.occurred_at,
            body: e.body.clone(),
        }
    }
}

impl From<OutboundEvent> for outbox::Event {
    fn from(e: OutboundEvent) -> Self {
        outbox::Event {
            event_id: e.event_id,
            event_type: e.event_type.as_str().to_string(),
            aggregate_id: e.order_id,
            occurred_at: e.occurred_at,
            body: e.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_body_is_the_envelope_of_api_md_around_the_order() {
        let id = Uuid::from_u128(7);
        let e = OutboundEvent::new(
            id,
            EventType::OrderCancelled,
            12,
            at(),
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
        assert_eq!((e.event_id, e.order_id, e.occurred_at), (id, 12, at()));
    }

    #[test]
    fn a_refund_event_carries_the_refund_next_to_the_order() {
        let e = OutboundEvent::refunded(
            Uuid::from_u128(8),
            12,
            at(),
            serde_json::json!({"id": 12}),
            serde_json::json!({"id": 3, "amount": 500}),
        );
        assert_eq!(e.event_type, EventType::OrderRefunded);
        assert_eq!(e.body["event_type"], "order.refunded");
        assert_eq!(e.body["order"], serde_json::json!({"id": 12}));
        assert_eq!(
            e.body["refund"],
            serde_json::json!({"id": 3, "amount": 500})
        );
    }

    #[test]
    fn the_outbox_envelope_keys_events_by_order() {
        let e = OutboundEvent::new(
            Uuid::from_u128(9),
            EventType::OrderPaid,
            42,
            at(),
            serde_json::json!({"id": 42}),
        );
        let env = outbox::Event::from(&e);
        assert_eq!(
            (env.event_type.as_str(), env.aggregate_id, &env.body),
            ("order.paid", 42, &e.body)
        );
        assert_eq!(outbox::Event::from(e.clone()), env);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(EventType::ALL.len(), 3);
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, t.as_str());
            assert_eq!(serde_json::from_value::<EventType>(json).unwrap(), *t);
        }
        assert_eq!(EventType::parse("order.PAID"), None);
        assert!(serde_json::from_value::<EventType>(serde_json::json!("order.x")).is_err());
    }
}
