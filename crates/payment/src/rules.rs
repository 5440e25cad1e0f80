//! Pure payment rules, on the balance row the adapter holds locked.

use kernel::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the balance {balance} does not cover {required}")]
pub struct InsufficientBalance {
    pub balance: Money,
    pub required: Money,
}

/// The balance after paying `total`; refuses when it does not cover it.
pub fn pay_from_balance(balance: Money, total: Money) -> Result<Money, InsufficientBalance> {
    balance::debit(balance, total).map_err(|_| InsufficientBalance {
        balance,
        required: total,
    })
}

/// The balance after refunding `amount` (a refund returns the user's own money, so the
/// charge limit does not apply).
pub fn refund_to_balance(balance: Money, amount: Money) -> anyhow::Result<Money> {
    balance::credit(balance, amount)
        .map_err(|e| anyhow::anyhow!("refund overflows the balance: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(v: i64) -> Money {
        Money::try_from(v).unwrap()
    }

    #[test]
    fn paying_needs_the_whole_total() {
        assert_eq!(pay_from_balance(m(10_000), m(10_000)), Ok(Money::ZERO));
        assert_eq!(
            pay_from_balance(m(9_999), m(10_000)),
            Err(InsufficientBalance {
                balance: m(9_999),
                required: m(10_000)
            })
        );
    }

    proptest! {
        // Invariant: pay then refund restores the balance exactly; a payment never goes negative.
        #[test]
        fn pay_then_refund_is_identity(balance in 0i64..=1_000_000_000, total in 0i64..=1_000_000_000) {
            match pay_from_balance(m(balance), m(total)) {
                Ok(after) => {
                    prop_assert_eq!(after.won(), balance - total);
                    prop_assert_eq!(refund_to_balance(after, m(total)).unwrap(), m(balance));
                }
                Err(_) => prop_assert!(total > balance),
            }
        }
    }
}
