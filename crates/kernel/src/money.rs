use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Why an amount of money was refused.
pub enum MoneyError {
    #[error("an amount of money cannot be negative, got {0}")]
    /// A negative amount (the value given).
    Negative(i64),
    #[error("the amount overflows")]
    /// A result past `i64::MAX` won.
    Overflow,
    #[error("the result would be negative")]
    /// A subtraction that would go below zero.
    Underflow,
}

/// A non-negative amount of KRW (won). Arithmetic is checked: it never wraps.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0);

    /// For constants; a negative value fails to compile where used in a `const`.
    pub const fn from_const(won: i64) -> Money {
        assert!(won >= 0, "money cannot be negative");
        Money(won)
    }

    /// The amount in won.
    pub const fn won(self) -> i64 {
        self.0
    }

    /// `self + other`, refusing to overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`, refusing to go below zero.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        if other.0 > self.0 {
            return Err(MoneyError::Underflow);
        }
        Ok(Money(self.0 - other.0))
    }

    /// `self × quantity` (a line's subtotal), refusing to overflow.
    pub fn checked_mul(self, quantity: Quantity) -> Result<Money, MoneyError> {
        self.0
            .checked_mul(i64::from(quantity.get()))
            .map(Money)
            .ok_or(MoneyError::Overflow)
    }

    /// The smaller of the two.
    pub fn min(self, other: Money) -> Money {
        Money(self.0.min(other.0))
    }
}

impl TryFrom<i64> for Money {
    type Error = MoneyError;
    fn try_from(value: i64) -> Result<Self, MoneyError> {
        if value < 0 {
            Err(MoneyError::Negative(value))
        } else {
            Ok(Money(value))
        }
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} KRW", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a quantity must be positive, got {0}")]
/// A quantity that is not positive (the value given).
pub struct QuantityError(pub i64);

/// A positive number of units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(u32);

impl Quantity {
    /// The number of units, at least 1.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `self + other`; `None` past `u32::MAX`.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        self.0.checked_add(other.0).map(Quantity)
    }
}

impl TryFrom<i64> for Quantity {
    type Error = QuantityError;
    fn try_from(value: i64) -> Result<Self, QuantityError> {
        match u32::try_from(value) {
            Ok(v) if v > 0 => Ok(Quantity(v)),
            _ => Err(QuantityError(value)),
        }
    }
}

impl From<Quantity> for i64 {
    fn from(q: Quantity) -> i64 {
        i64::from(q.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::won as money;
    use proptest::prelude::*;

    #[test]
    fn money_refuses_negative_values() {
        assert_eq!(Money::try_from(-1), Err(MoneyError::Negative(-1)));
    }

    #[test]
    fn subtraction_never_goes_below_zero() {
        assert_eq!(money(5).checked_sub(money(6)), Err(MoneyError::Underflow));
        assert_eq!(money(5).checked_sub(money(5)), Ok(Money::ZERO));
    }

    #[test]
    fn quantity_must_be_positive_and_fit() {
        assert!(Quantity::try_from(0).is_err());
        assert!(Quantity::try_from(i64::from(u32::MAX) + 1).is_err());
        assert_eq!(Quantity::try_from(3).unwrap().get(), 3);
    }

    proptest! {
        // Invariant: checked arithmetic agrees with exact (i128) arithmetic or refuses.
        #[test]
        fn add_is_exact_or_refused(a in 0i64..=i64::MAX, b in 0i64..=i64::MAX) {
            let exact = i128::from(a) + i128::from(b);
            match money(a).checked_add(money(b)) {
                Ok(sum) => prop_assert_eq!(i128::from(sum.won()), exact),
                Err(e) => {
                    prop_assert_eq!(e, MoneyError::Overflow);
                    prop_assert!(exact > i128::from(i64::MAX));
                }
            }
        }

        #[test]
        fn sub_is_exact_or_refused(a in 0i64..=i64::MAX, b in 0i64..=i64::MAX) {
            match money(a).checked_sub(money(b)) {
                Ok(d) => { prop_assert!(a >= b); prop_assert_eq!(d.won(), a - b); }
                Err(_) => prop_assert!(b > a),
            }
        }

        #[test]
        fn mul_is_exact_or_refused(a in 0i64..=i64::MAX, q in 1u32..=u32::MAX) {
            let exact = i128::from(a) * i128::from(q);
            match money(a).checked_mul(Quantity::try_from(i64::from(q)).unwrap()) {
                Ok(p) => prop_assert_eq!(i128::from(p.won()), exact),
                Err(_) => prop_assert!(exact > i128::from(i64::MAX)),
            }
        }
    }
}
