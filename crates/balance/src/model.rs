//! Validated values of balances and charges, and what their stores hold.

use kernel::{check_text, ChargeId, Money, OrderId, RefundId, TextError, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most a balance may hold after a charge (1,000,000,000 won, inclusive).
pub const MAX_BALANCE: Money = Money::from_const(1_000_000_000);

/// The smallest single charge (won), inclusive.
pub const MIN_CHARGE: i64 = 1;
/// The largest single charge (won), inclusive.
pub const MAX_CHARGE: i64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a charge must be between {MIN_CHARGE} and {MAX_CHARGE} won, got {0}")]
/// A charge amount outside 1..=10,000,000 won (the value given).
pub struct ChargeAmountError(pub i64);

/// The amount of one charge: 1..=10,000,000 won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeAmount(Money);

impl ChargeAmount {
    /// The amount as money.
    pub fn money(self) -> Money {
        self.0
    }
}

impl TryFrom<i64> for ChargeAmount {
    type Error = ChargeAmountError;
    fn try_from(value: i64) -> Result<Self, ChargeAmountError> {
        if (MIN_CHARGE..=MAX_CHARGE).contains(&value) {
            Money::try_from(value)
                .map(ChargeAmount)
                .map_err(|_| ChargeAmountError(value))
        } else {
            Err(ChargeAmountError(value))
        }
    }
}

/// Most characters in a payment method.
pub const MAX_PAYMENT_METHOD_CHARS: usize = 64;

/// Why a payment method was refused (the shared text rule, [`kernel::check_text`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payment method {0}")]
pub struct PaymentMethodError(pub TextError);

/// How the user pays the gateway (`card`, `bank_transfer`, ...); passed to it as is.
/// 1..=64 characters, not blank, no control characters ([`kernel::check_text`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod(String);

impl PaymentMethod {
    /// The method as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PaymentMethod {
    type Error = PaymentMethodError;
    fn try_from(value: String) -> Result<Self, PaymentMethodError> {
        check_text(&value, MAX_PAYMENT_METHOD_CHARS).map_err(PaymentMethodError)?;
        Ok(PaymentMethod(value))
    }
}

/// What kind of change a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HistoryKind {
    /// Money charged through the gateway (positive).
    Charge,
    /// An order paid from the balance (negative, or zero for a free order).
    Payment,
    /// Money given back by a cancellation or a partial refund (positive).
    Refund,
}

impl HistoryKind {
    /// The stored and wire form: `CHARGE`, `PAYMENT` or `REFUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Charge => "CHARGE",
            HistoryKind::Payment => "PAYMENT",
            HistoryKind::Refund => "REFUND",
        }
    }

    /// The kind of a stored form, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CHARGE" => Some(HistoryKind::Charge),
            "PAYMENT" => Some(HistoryKind::Payment),
            "REFUND" => Some(HistoryKind::Refund),
            _ => None,
        }
    }
}

/// One immutable row of a user's balance history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its id (the list's paging key).
    pub id: i64,
    /// Whose balance.
    pub user_id: UserId,
    /// What the change was.
    pub kind: HistoryKind,
    /// The signed change: positive for CHARGE and REFUND, negative for PAYMENT.
    pub amount: i64,
    /// The balance right after the change.
    pub balance_after: Money,
    /// The order a PAYMENT or REFUND belongs to.
    pub order_id: Option<OrderId>,
    /// When.
    pub created_at: Timestamp,
}

/// The gateway's id for an approved transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayTransactionId(pub String);

impl fmt::Display for GatewayTransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A charge to open: recorded (and its headroom reserved) before the gateway is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharge {
    /// Whose balance grows.
    pub user_id: UserId,
    /// How much.
    pub amount: ChargeAmount,
    /// Passed to the gateway as is.
    pub method: PaymentMethod,
    /// When the charge is opened.
    pub now: Timestamp,
    /// The request that opens it (its `Idempotency-Key` claim), if any: a retry of the
    /// same request finds this charge again instead of opening (and paying) another.
    pub claim_id: Option<uuid::Uuid>,
}

/// Where a charge is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeStatus {
    /// Recorded, its headroom reserved; the gateway's answer is not settled yet.
    Pending,
    /// The gateway approved it and the balance was credited.
    Approved {
        /// The gateway's transaction.
        transaction: GatewayTransactionId,
        /// The balance right after the credit.
        balance_after: Money,
    },
    /// The gateway declined it; nothing was credited.
    Declined {
        /// The gateway's reason.
        reason: String,
    },
}

/// A charge as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Its id, the gateway's idempotency reference.
    pub id: ChargeId,
    /// Whose balance it credits.
    pub user_id: UserId,
    /// How much.
    pub amount: Money,
    /// How the user pays the gateway.
    pub method: PaymentMethod,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Pending, approved or declined.
    pub status: ChargeStatus,
}

impl Charge {
    /// The receipt of an approved charge (`None` while pending or when declined).
    pub fn receipt(&self) -> Option<ChargeReceipt> {
        match &self.status {
            ChargeStatus::Approved {
                transaction,
                balance_after,
            } => Some(ChargeReceipt {
                charge_id: self.id,
                user_id: self.user_id,
                amount: self.amount,
                balance: *balance_after,
                gateway_transaction_id: transaction.clone(),
            }),
            _ => None,
        }
    }
}

/// An approved, credited charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeReceipt {
    /// The charge.
    pub charge_id: ChargeId,
    /// Whose balance it credited.
    pub user_id: UserId,
    /// How much.
    pub amount: Money,
    /// The balance right after this charge was credited.
    pub balance: Money,
    /// The gateway's transaction.
    pub gateway_transaction_id: GatewayTransactionId,
}

/// The balance row as the adapter read it under lock, for the pure rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalanceSnapshot {
    /// What the user may spend now.
    pub balance: Money,
    /// Sum of charges opened but not settled: they may still be credited.
    pub pending_credit: Money,
}

/// One immutable history row to write with a balance change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Whose balance.
    pub user_id: UserId,
    /// CHARGE, PAYMENT or REFUND.
    pub kind: HistoryKind,
    /// The signed change: positive for CHARGE and REFUND, negative (or zero, for an
    /// order made free by a coupon) for PAYMENT.
    pub amount: i64,
    /// The balance right after the change.
    pub balance_after: Money,
    /// The order a PAYMENT or REFUND belongs to.
    pub order_id: Option<OrderId>,
    /// The partial refund a REFUND row records (none for a cancellation's refund).
    pub refund_id: Option<RefundId>,
    /// The charge a CHARGE row records.
    pub charge_id: Option<ChargeId>,
}

/// A change of a user's balance as a use case must write it: the new value, guarded by
/// the value it was decided on, and the history row that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceChange {
    /// The balance the decision saw (`None`: the user had no balance row yet).
    pub before: Option<Money>,
    /// The history row, whose `balance_after` is the new balance.
    pub entry: LedgerEntry,
}

impl BalanceChange {
    /// The balance after the change.
    pub fn after(&self) -> Money {
        self.entry.balance_after
    }
}

#[cfg(test)]
mod payment_method_tests {
    use super::*;

    /// Invariant: a payment method follows the shared text rule.
    #[test]
    fn payment_methods_refuse_control_characters_blank_and_overlong() {
        assert!(PaymentMethod::try_from("card".to_string()).is_ok());
        assert_eq!(
            PaymentMethod::try_from("ca\0rd".to_string()),
            Err(PaymentMethodError(TextError::ControlCharacter))
        );
        assert_eq!(
            PaymentMethod::try_from(" ".to_string()),
            Err(PaymentMethodError(TextError::Blank))
        );
        assert!(PaymentMethod::try_from("x".repeat(65)).is_err());
    }
}
