use chrono::{DateTime, Utc};
use kernel::Money;
use serde::{Deserialize, Serialize};

/// Where the payment of an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// The total was taken from the balance.
    Paid,
    /// All of it went back to the balance (cancelled, or every unit refunded).
    Refunded,
}

impl PaymentStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Paid => "PAID",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }

    /// The status of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PAID" => Some(PaymentStatus::Paid),
            "REFUNDED" => Some(PaymentStatus::Refunded),
            _ => None,
        }
    }
}

/// The payment of an order, serialised as API.md's `payment` member of `Order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderPayment {
    /// Its id.
    pub id: i64,
    /// The order total taken from the balance.
    pub amount: Money,
    /// PAID or REFUNDED.
    pub status: PaymentStatus,
    /// When it was paid.
    pub paid_at: DateTime<Utc>,
    /// When all of it went back.
    pub refunded_at: Option<DateTime<Utc>>,
}
