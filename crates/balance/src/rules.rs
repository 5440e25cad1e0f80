//! Pure balance rules. Adapters call these on rows they hold locked, so the rule and
//! the write happen in one transaction.

use crate::model::{BalanceSnapshot, ChargeAmount, MAX_BALANCE};
use kernel::Money;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceRuleError {
    #[error("the balance would pass {MAX_BALANCE}")]
    LimitExceeded,
    #[error("the balance {balance} does not cover {required}")]
    Insufficient { balance: Money, required: Money },
}

/// May this charge be opened? The balance plus every unsettled charge plus this one
/// must stay within [`MAX_BALANCE`] (exactly the maximum is allowed), so that settling
/// every open charge can never pass the limit.
pub fn check_charge_headroom(
    snapshot: &BalanceSnapshot,
    amount: ChargeAmount,
) -> Result<(), BalanceRuleError> {
    let committed = snapshot
        .balance
        .checked_add(snapshot.pending_credit)
        .and_then(|m| m.checked_add(amount.money()))
        .map_err(|_| BalanceRuleError::LimitExceeded)?;
    if committed > MAX_BALANCE {
        Err(BalanceRuleError::LimitExceeded)
    } else {
        Ok(())
    }
}

/// The balance after paying `amount` from it; refuses to go below zero.
pub fn debit(balance: Money, amount: Money) -> Result<Money, BalanceRuleError> {
    balance
        .checked_sub(amount)
        .map_err(|_| BalanceRuleError::Insufficient {
            balance,
            required: amount,
        })
}

/// The balance after a refund or a settled charge. Refunds return money that was
/// already the user's, so only overflow (impossible within the limits) refuses.
pub fn credit(balance: Money, amount: Money) -> Result<Money, BalanceRuleError> {
    balance
        .checked_add(amount)
        .map_err(|_| BalanceRuleError::LimitExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(v: i64) -> Money {
        Money::try_from(v).unwrap()
    }

    fn snap(balance: i64, pending: i64) -> BalanceSnapshot {
        BalanceSnapshot {
            balance: m(balance),
            pending_credit: m(pending),
        }
    }

    fn amount(v: i64) -> ChargeAmount {
        ChargeAmount::try_from(v).unwrap()
    }

    #[test]
    fn reaching_exactly_the_limit_is_allowed() {
        assert_eq!(
            check_charge_headroom(&snap(999_999_000, 0), amount(1_000)),
            Ok(())
        );
    }

    #[test]
    fn passing_the_limit_by_one_won_is_refused() {
        assert_eq!(
            check_charge_headroom(&snap(999_999_000, 0), amount(1_001)),
            Err(BalanceRuleError::LimitExceeded)
        );
    }

    #[test]
    fn pending_charges_count_against_the_limit() {
        assert_eq!(
            check_charge_headroom(&snap(999_000_000, 1_000_000), amount(1)),
            Err(BalanceRuleError::LimitExceeded)
        );
    }

    #[test]
    fn debit_refuses_to_go_negative() {
        assert_eq!(
            debit(m(999), m(1_000)),
            Err(BalanceRuleError::Insufficient {
                balance: m(999),
                required: m(1_000)
            })
        );
        assert_eq!(debit(m(1_000), m(1_000)), Ok(Money::ZERO));
    }

    proptest! {
        // Invariant: an accepted charge never lets balance + open charges pass MAX_BALANCE.
        #[test]
        fn accepted_charges_stay_within_the_limit(
            balance in 0i64..=1_000_000_000,
            pending in 0i64..=1_000_000_000,
            a in 1i64..=10_000_000,
        ) {
            let s = snap(balance, pending);
            let ok = check_charge_headroom(&s, amount(a)).is_ok();
            prop_assert_eq!(ok, balance + pending + a <= 1_000_000_000);
        }

        // Invariant: a debit never produces a negative balance and is exact when allowed.
        #[test]
        fn debit_is_exact_or_refused(balance in 0i64..=2_000_000_000, a in 0i64..=2_000_000_000) {
            match debit(m(balance), m(a)) {
                Ok(after) => prop_assert_eq!(after.won(), balance - a),
                Err(_) => prop_assert!(a > balance),
            }
        }

        // Invariant: credit then debit of the same amount returns to the start.
        #[test]
        fn credit_then_debit_round_trips(balance in 0i64..=1_000_000_000, a in 0i64..=1_000_000_000) {
            let up = credit(m(balance), m(a)).unwrap();
            prop_assert_eq!(debit(up, m(a)).unwrap(), m(balance));
        }
    }
}
