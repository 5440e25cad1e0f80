//! Paying and refunding, as pure functions of what the order use case holds locked.

use crate::model::*;
use balance::{debit, give_back, BalanceChange, HistoryKind, InsufficientBalance, LedgerEntry};
use kernel::{Money, MoneyError, OrderId, RefundId, Timestamp, UserId};

/// A payment decided: the payment record and the balance change (with its PAYMENT row)
/// to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The payment as the order shows it.
    pub payment: OrderPayment,
    /// The debit and its PAYMENT history row (written also when the total is 0).
    pub change: BalanceChange,
}

/// Pays `total` for `order` from `user`'s balance (`balance`: the locked balance, `None`
/// when the user has no balance row yet, i.e. zero). Refuses with the one
/// [`InsufficientBalance`] when the balance does not cover it; an order made free by a
/// coupon is paid with an amount of 0 and still writes its PAYMENT row.
pub fn pay(
    user: UserId,
    order: OrderId,
    total: Money,
    balance: Option<Money>,
    payment_id: i64,
    now: Timestamp,
) -> Result<Payment, InsufficientBalance> {
    let after = debit(balance.unwrap_or(Money::ZERO), total)?;
    Ok(Payment {
        payment: OrderPayment {
            id: payment_id,
            amount: total,
            status: PaymentStatus::Paid,
            paid_at: now,
            refunded_at: None,
        },
        change: BalanceChange {
            before: balance,
            entry: LedgerEntry {
                user_id: user,
                kind: HistoryKind::Payment,
                amount: -total.won(),
                balance_after: after,
                order_id: Some(order),
                refund_id: None,
                charge_id: None,
            },
        },
    })
}

/// What one refund of a paid order gives back.
///
/// `value` is the refunded units' `unit_price × quantity`. The amount is
/// `floor(total × value / subtotal)` (the discount shared out in proportion, rounded
/// down), except that the refund which returns the last unrefunded unit
/// (`returns_last_unit`) gives back exactly `total - refunded_total`: so the refunds of
/// an order add up to its total, never more. Computed exactly in `i128`.
///
/// ```
/// use kernel::Money;
/// let won = |v| Money::try_from(v).unwrap();
/// // 3 units of 1,000 with 10% off: total 2,700; refunding one unit gives back 900
/// assert_eq!(payment::refund_amount(won(2_700), won(3_000), won(0), won(1_000), false), won(900));
/// // the refund of the last units gives back exactly what is left
/// assert_eq!(payment::refund_amount(won(2_700), won(3_000), won(900), won(2_000), true), won(1_800));
/// ```
pub fn refund_amount(
    total: Money,
    subtotal: Money,
    refunded_total: Money,
    value: Money,
    returns_last_unit: bool,
) -> Money {
    let rest = total.checked_sub(refunded_total).unwrap_or(Money::ZERO);
    if returns_last_unit {
        return rest;
    }
    if subtotal == Money::ZERO {
        return Money::ZERO;
    }
    let share = i128::from(total.won()) * i128::from(value.won()) / i128::from(subtotal.won());
    // value <= subtotal, so share <= total and fits; never more than what is left
    let share = i64::try_from(share)
        .ok()
        .and_then(|won| Money::try_from(won).ok())
        .unwrap_or(rest);
    share.min(rest)
}

/// Gives `amount` back to `user`'s balance for `order` (`refund`: the partial refund it
/// records, `None` for a cancellation): the balance change with its REFUND row, written
/// also for an amount of 0. Never refused by a business rule (the balance may pass the
/// charge limit); only an impossible `i64` overflow fails.
pub fn give_back_to_balance(
    user: UserId,
    order: OrderId,
    refund: Option<RefundId>,
    amount: Money,
    balance: Option<Money>,
) -> Result<BalanceChange, MoneyError> {
    let after = give_back(balance.unwrap_or(Money::ZERO), amount)?;
    Ok(BalanceChange {
        before: balance,
        entry: LedgerEntry {
            user_id: user,
            kind: HistoryKind::Refund,
            amount: amount.won(),
            balance_after: after,
            order_id: Some(order),
            refund_id: refund,
            charge_id: None,
        },
    })
}

/// The payment once all of it went back (a cancellation, or the last unit refunded).
pub fn fully_refunded(payment: &OrderPayment, now: Timestamp) -> OrderPayment {
    OrderPayment {
        status: PaymentStatus::Refunded,
        refunded_at: Some(now),
        ..payment.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::testing::{t0 as now, won as m};
    use proptest::prelude::*;

    fn ids() -> (UserId, OrderId) {
        (UserId::try_from(1).unwrap(), OrderId::try_from(2).unwrap())
    }

    #[test]
    fn paying_needs_the_whole_total_and_writes_a_payment_row() {
        let (u, o) = ids();
        let p = pay(u, o, m(10_000), Some(m(10_000)), 5, now()).unwrap();
        assert_eq!(p.change.after(), Money::ZERO);
        assert_eq!(p.change.entry.amount, -10_000);
        assert_eq!(p.change.entry.kind, HistoryKind::Payment);
        assert_eq!(p.payment.status, PaymentStatus::Paid);
        assert_eq!(p.payment.amount, m(10_000));
        assert_eq!(
            pay(u, o, m(10_000), Some(m(9_999)), 5, now()),
            Err(InsufficientBalance {
                balance: m(9_999),
                required: m(10_000)
            })
        );
        // a user never charged has no balance row: zero
        assert!(pay(u, o, m(1), None, 5, now()).is_err());
    }

    // Invariant (API.md): a payment of 0 (an order made free by a coupon) still writes
    // its PAYMENT row, and its refund its REFUND row.
    #[test]
    fn a_free_order_is_paid_and_refunded_with_rows_of_zero() {
        let (u, o) = ids();
        let p = pay(u, o, Money::ZERO, None, 5, now()).unwrap();
        assert_eq!(p.change.entry.amount, 0);
        assert_eq!(p.change.before, None);
        let r = give_back_to_balance(u, o, None, Money::ZERO, Some(Money::ZERO)).unwrap();
        assert_eq!((r.entry.kind, r.entry.amount), (HistoryKind::Refund, 0));
    }

    #[test]
    fn a_refund_shares_the_discount_out_and_the_last_one_takes_the_rest() {
        // subtotal 3,000, discount 1,000: total 2,000
        let (total, subtotal) = (m(2_000), m(3_000));
        let first = refund_amount(total, subtotal, Money::ZERO, m(1_000), false);
        assert_eq!(first, m(666));
        let second = refund_amount(total, subtotal, first, m(1_000), false);
        assert_eq!(second, m(666));
        let last = refund_amount(total, subtotal, m(1_332), m(1_000), true);
        assert_eq!(last, m(668));
        assert_eq!(first.won() + second.won() + last.won(), 2_000);
    }

    // Invariant (API.md): money given back may pass the charge limit.
    #[test]
    fn refunds_may_pass_the_charge_limit() {
        let (u, o) = ids();
        let r = give_back_to_balance(u, o, None, m(10), Some(balance::MAX_BALANCE)).unwrap();
        assert!(r.after() > balance::MAX_BALANCE);
    }

    fn order_lines() -> impl Strategy<Value = (Vec<(i64, i64)>, i64)> {
        (
            proptest::collection::vec((1i64..=100_000_000, 1i64..=1000), 1..=8),
            0i64..=100,
        )
    }

    proptest! {
        // Invariant: pay then give back restores the balance exactly; a payment never
        // takes a balance below zero.
        #[test]
        fn pay_then_give_back_is_identity(balance in 0i64..=1_000_000_000, total in 0i64..=1_000_000_000) {
            let (u, o) = ids();
            match pay(u, o, m(total), Some(m(balance)), 1, now()) {
                Ok(p) => {
                    prop_assert_eq!(p.change.after().won(), balance - total);
                    let back = give_back_to_balance(u, o, None, m(total), Some(p.change.after())).unwrap();
                    prop_assert_eq!(back.after(), m(balance));
                }
                Err(_) => prop_assert!(total > balance),
            }
        }

        // Invariant: whatever the lines, the discount and the order in which units are
        // refunded, the refunds never add up to more than the total, and add up to
        // exactly the total once every unit is refunded.
        #[test]
        fn refunds_add_up_to_the_total_never_more(
            (lines, percent) in order_lines(),
            order in proptest::collection::vec(0usize..64, 1..64),
        ) {
            let subtotal: i64 = lines.iter().map(|(p, q)| p * q).sum();
            let discount = subtotal * percent / 100;
            let total = subtotal - discount;
            // every unit, in a random order of (line, units) refunds
            let mut left: Vec<i64> = lines.iter().map(|(_, q)| *q).collect();
            let mut refunded = 0i64;
            let mut steps = order.into_iter();
            while left.iter().any(|q| *q > 0) {
                let pick = steps.next().unwrap_or(0);
                let line = (0..left.len()).map(|i| (i + pick) % left.len()).find(|i| left[*i] > 0).unwrap();
                let units = 1 + (pick as i64 % left[line]);
                left[line] -= units;
                let last = left.iter().all(|q| *q == 0);
                let value = lines[line].0 * units;
                let amount = refund_amount(m(total), m(subtotal), m(refunded), m(value), last);
                refunded += amount.won();
                prop_assert!(refunded <= total, "refunded {} of {}", refunded, total);
            }
            prop_assert_eq!(refunded, total);
        }
    }
}
