use kernel::{check_text, ChargeId, Money, OrderId, TextError, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most a balance may hold after a charge (1,000,000,000 won, inclusive).
pub const MAX_BALANCE: Money = Money::from_const(1_000_000_000);

/// Smallest and largest single charge, inclusive.
pub const MIN_CHARGE: i64 = 1;
pub const MAX_CHARGE: i64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a charge must be between {MIN_CHARGE} and {MAX_CHARGE} won, got {0}")]
pub struct ChargeAmountError(pub i64);

/// The amount of one charge: 1..=10,000,000 won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeAmount(Money);

impl ChargeAmount {
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
    Charge,
    Payment,
    Refund,
}

impl HistoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Charge => "CHARGE",
            HistoryKind::Payment => "PAYMENT",
            HistoryKind::Refund => "REFUND",
        }
    }

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
    pub id: i64,
    pub user_id: UserId,
    pub kind: HistoryKind,
    /// The signed change: positive for CHARGE and REFUND, negative for PAYMENT.
    pub amount: i64,
    pub balance_after: Money,
    pub order_id: Option<OrderId>,
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
    pub user_id: UserId,
    pub amount: ChargeAmount,
    pub method: PaymentMethod,
    pub now: Timestamp,
}

/// A charge recorded but not yet settled with the gateway's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCharge {
    pub id: ChargeId,
    pub user_id: UserId,
    pub amount: Money,
    pub method: PaymentMethod,
    pub created_at: Timestamp,
}

/// An approved, credited charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeReceipt {
    pub charge_id: ChargeId,
    pub user_id: UserId,
    pub amount: Money,
    /// The balance right after this charge was credited.
    pub balance: Money,
    pub gateway_transaction_id: GatewayTransactionId,
}

/// The balance row as the adapter read it under lock, for the pure rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalanceSnapshot {
    pub balance: Money,
    /// Sum of charges opened but not settled: they may still be credited.
    pub pending_credit: Money,
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
