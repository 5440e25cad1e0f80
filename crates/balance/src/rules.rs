//! Pure balance rules. A store reads the rows a rule needs under lock, calls the rule,
//! and writes what it decided, all in one transaction.

use crate::model::*;
use kernel::{ChargeId, Money, MoneyError};

/// The balance does not cover an amount to pay. The one "insufficient balance" of the
/// workspace: order use cases return it as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the balance {balance} does not cover {required}")]
pub struct InsufficientBalance {
    /// The balance there is.
    pub balance: Money,
    /// The amount to pay.
    pub required: Money,
}

/// A charge would take the balance (with every charge still at the gateway) past
/// [`MAX_BALANCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the balance would pass {MAX_BALANCE}")]
pub struct BalanceLimitExceeded;

/// May this charge be opened? The balance plus every unsettled charge plus this one
/// must stay within [`MAX_BALANCE`] (exactly the maximum is allowed), so that settling
/// every open charge can never pass the limit. A balance already above the limit (money
/// given back by refunds, which is never refused) refuses every charge until it is
/// below again.
pub fn check_charge_headroom(
    snapshot: &BalanceSnapshot,
    amount: ChargeAmount,
) -> Result<(), BalanceLimitExceeded> {
    let committed = snapshot
        .balance
        .checked_add(snapshot.pending_credit)
        .and_then(|m| m.checked_add(amount.money()))
        .map_err(|_| BalanceLimitExceeded)?;
    if committed > MAX_BALANCE {
        Err(BalanceLimitExceeded)
    } else {
        Ok(())
    }
}

/// The balance after paying `amount` from it; refuses to go below zero.
pub fn debit(balance: Money, amount: Money) -> Result<Money, InsufficientBalance> {
    balance
        .checked_sub(amount)
        .map_err(|_| InsufficientBalance {
            balance,
            required: amount,
        })
}

/// The balance after money is given back to it (a refund): never refused by a business
/// rule, even past [`MAX_BALANCE`] (it was the user's money). Only an `i64` overflow,
/// which no real balance reaches, fails.
pub fn give_back(balance: Money, amount: Money) -> Result<Money, MoneyError> {
    balance.checked_add(amount)
}

/// What the store knows when a charge is opened: the user's balance (locked) and the
/// charge the same request opened before, if it did (a retry after a crash).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargeSnapshot {
    /// The balance row (zero for a user never charged).
    pub balance: BalanceSnapshot,
    /// The charge opened earlier by the same request (the same `claim_id`).
    pub existing: Option<Charge>,
}

/// What opening a charge does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenCharge {
    /// Record a new PENDING charge and reserve its headroom: `pending_credit` becomes this.
    Open {
        /// The user's unsettled charges, this one included.
        pending_credit_after: Money,
    },
    /// The same request opened this charge before: carry on with it (settle it if it is
    /// still pending, or answer with its outcome); nothing new is recorded.
    Resume(Charge),
}

/// Opening a charge: a retry of the request that opened one resumes it; otherwise the
/// headroom rule ([`check_charge_headroom`]) decides.
pub fn plan_open_charge(
    snapshot: &ChargeSnapshot,
    amount: ChargeAmount,
) -> Result<OpenCharge, BalanceLimitExceeded> {
    if let Some(existing) = &snapshot.existing {
        return Ok(OpenCharge::Resume(existing.clone()));
    }
    check_charge_headroom(&snapshot.balance, amount)?;
    let pending_credit_after = snapshot
        .balance
        .pending_credit
        .checked_add(amount.money())
        .map_err(|_| BalanceLimitExceeded)?;
    Ok(OpenCharge::Open {
        pending_credit_after,
    })
}

/// The charge was declined before, yet the gateway now approves it: a gateway fault an
/// operator must look at; nothing is credited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("charge {charge} was declined, but the gateway now approves it as {transaction}")]
pub struct SettleConflict {
    /// The charge.
    pub charge: ChargeId,
    /// What the gateway says now.
    pub transaction: GatewayTransactionId,
}

/// What settling an approved charge does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveCharge {
    /// Credit the balance: write `change` (CHARGE history), set `pending_credit`, and mark
    /// the charge APPROVED with `receipt`.
    Credit {
        /// The balance change and its CHARGE row.
        change: BalanceChange,
        /// The user's unsettled charges once this one is settled.
        pending_credit_after: Money,
        /// The answer.
        receipt: ChargeReceipt,
    },
    /// Approved before (a retry, or recovery got there first): change nothing.
    AlreadyApproved(ChargeReceipt),
}

/// Settling a charge the gateway approved, on the charge and the balance row held
/// locked: a PENDING charge is credited exactly once (its headroom was reserved when it
/// was opened, so the limit is not checked again); an APPROVED one is answered as it
/// is; a DECLINED one is a [`SettleConflict`].
pub fn plan_approve(
    charge: &Charge,
    balance: &BalanceSnapshot,
    transaction: GatewayTransactionId,
) -> Result<ApproveCharge, SettleConflict> {
    match &charge.status {
        ChargeStatus::Approved { .. } => Ok(ApproveCharge::AlreadyApproved(
            charge.receipt().expect("an approved charge has a receipt"),
        )),
        ChargeStatus::Declined { .. } => Err(SettleConflict {
            charge: charge.id,
            transaction,
        }),
        ChargeStatus::Pending => {
            // The headroom reserved at opening makes both exact: balance + amount stays
            // within the limit and the reservation covers this amount.
            let after = give_back(balance.balance, charge.amount).map_err(|_| SettleConflict {
                charge: charge.id,
                transaction: transaction.clone(),
            })?;
            let pending_credit_after = balance
                .pending_credit
                .checked_sub(charge.amount)
                .unwrap_or(Money::ZERO);
            let receipt = ChargeReceipt {
                charge_id: charge.id,
                user_id: charge.user_id,
                amount: charge.amount,
                balance: after,
                gateway_transaction_id: transaction,
            };
            Ok(ApproveCharge::Credit {
                change: BalanceChange {
                    before: Some(balance.balance),
                    entry: LedgerEntry {
                        user_id: charge.user_id,
                        kind: HistoryKind::Charge,
                        amount: charge.amount.won(),
                        balance_after: after,
                        order_id: None,
                        refund_id: None,
                        charge_id: Some(charge.id),
                    },
                },
                pending_credit_after,
                receipt,
            })
        }
    }
}

/// What settling a declined charge does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclineCharge {
    /// Mark it DECLINED and release its headroom: `pending_credit` becomes this.
    Release {
        /// The user's unsettled charges once this one is settled.
        pending_credit_after: Money,
    },
    /// Already settled (approved or declined): change nothing.
    AlreadySettled,
}

/// Settling a charge the gateway declined: only a PENDING charge changes.
pub fn plan_decline(charge: &Charge, balance: &BalanceSnapshot) -> DeclineCharge {
    match charge.status {
        ChargeStatus::Pending => DeclineCharge::Release {
            pending_credit_after: balance
                .pending_credit
                .checked_sub(charge.amount)
                .unwrap_or(Money::ZERO),
        },
        _ => DeclineCharge::AlreadySettled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kernel::testing::won as m;
    use kernel::UserId;
    use proptest::prelude::*;

    fn snap(balance: i64, pending: i64) -> BalanceSnapshot {
        BalanceSnapshot {
            balance: m(balance),
            pending_credit: m(pending),
        }
    }

    fn amount(v: i64) -> ChargeAmount {
        ChargeAmount::try_from(v).unwrap()
    }

    fn charge(amount: i64, status: ChargeStatus) -> Charge {
        Charge {
            id: ChargeId::try_from(9).unwrap(),
            user_id: UserId::try_from(3).unwrap(),
            amount: m(amount),
            method: PaymentMethod::try_from("card".to_string()).unwrap(),
            created_at: chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap(),
            status,
        }
    }

    fn tx() -> GatewayTransactionId {
        GatewayTransactionId("tx-9".into())
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
            Err(BalanceLimitExceeded)
        );
    }

    #[test]
    fn pending_charges_count_against_the_limit() {
        assert_eq!(
            check_charge_headroom(&snap(999_000_000, 1_000_000), amount(1)),
            Err(BalanceLimitExceeded)
        );
    }

    // Invariant (API.md, money given back): a refund is never refused, even past the
    // limit; charges are then refused until the balance is below it again.
    #[test]
    fn money_given_back_may_pass_the_limit_and_then_charges_are_refused() {
        let after = give_back(m(999_999_000), m(5_000)).unwrap();
        assert_eq!(after, m(1_000_004_000));
        assert_eq!(
            check_charge_headroom(&snap(after.won(), 0), amount(1)),
            Err(BalanceLimitExceeded)
        );
        let spent = debit(after, m(5_000)).unwrap();
        assert_eq!(
            check_charge_headroom(&snap(spent.won(), 0), amount(1)),
            Ok(())
        );
    }

    #[test]
    fn debit_refuses_to_go_negative() {
        assert_eq!(
            debit(m(999), m(1_000)),
            Err(InsufficientBalance {
                balance: m(999),
                required: m(1_000)
            })
        );
        assert_eq!(debit(m(1_000), m(1_000)), Ok(Money::ZERO));
    }

    // Invariant: a retry of the request that opened a charge never opens a second one,
    // whatever the balance looks like now.
    #[test]
    fn a_retried_request_resumes_its_charge_instead_of_opening_another() {
        let existing = charge(5_000, ChargeStatus::Pending);
        let s = ChargeSnapshot {
            balance: snap(1_000_000_000, 5_000),
            existing: Some(existing.clone()),
        };
        assert_eq!(
            plan_open_charge(&s, amount(5_000)),
            Ok(OpenCharge::Resume(existing))
        );
    }

    #[test]
    fn a_new_charge_reserves_its_headroom() {
        let s = ChargeSnapshot {
            balance: snap(100, 50),
            existing: None,
        };
        assert_eq!(
            plan_open_charge(&s, amount(25)),
            Ok(OpenCharge::Open {
                pending_credit_after: m(75)
            })
        );
        let full = ChargeSnapshot {
            balance: snap(999_999_999, 0),
            existing: None,
        };
        assert_eq!(
            plan_open_charge(&full, amount(2)),
            Err(BalanceLimitExceeded)
        );
    }

    // Invariant: an approval is credited exactly once, with its CHARGE history row.
    #[test]
    fn approving_credits_a_pending_charge_once() {
        let pending = charge(5_000, ChargeStatus::Pending);
        let plan = plan_approve(&pending, &snap(1_000, 5_000), tx()).unwrap();
        let ApproveCharge::Credit {
            change,
            pending_credit_after,
            receipt,
        } = plan
        else {
            panic!("a pending charge is credited");
        };
        assert_eq!(change.before, Some(m(1_000)));
        assert_eq!(change.after(), m(6_000));
        assert_eq!(change.entry.kind, HistoryKind::Charge);
        assert_eq!(change.entry.amount, 5_000);
        assert_eq!(change.entry.charge_id, Some(pending.id));
        assert_eq!(pending_credit_after, Money::ZERO);
        assert_eq!(receipt.balance, m(6_000));

        let approved = charge(
            5_000,
            ChargeStatus::Approved {
                transaction: tx(),
                balance_after: m(6_000),
            },
        );
        assert_eq!(
            plan_approve(&approved, &snap(6_000, 0), tx()),
            Ok(ApproveCharge::AlreadyApproved(receipt))
        );
        let declined = charge(
            5_000,
            ChargeStatus::Declined {
                reason: "no".into(),
            },
        );
        assert!(plan_approve(&declined, &snap(1_000, 0), tx()).is_err());
    }

    #[test]
    fn declining_releases_only_a_pending_charge() {
        assert_eq!(
            plan_decline(&charge(700, ChargeStatus::Pending), &snap(0, 1_000)),
            DeclineCharge::Release {
                pending_credit_after: m(300)
            }
        );
        let approved = charge(
            700,
            ChargeStatus::Approved {
                transaction: tx(),
                balance_after: m(700),
            },
        );
        assert_eq!(
            plan_decline(&approved, &snap(700, 0)),
            DeclineCharge::AlreadySettled
        );
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

        // Invariant: giving back then paying the same amount returns to the start.
        #[test]
        fn give_back_then_debit_round_trips(balance in 0i64..=1_000_000_000, a in 0i64..=1_000_000_000) {
            let up = give_back(m(balance), m(a)).unwrap();
            prop_assert_eq!(debit(up, m(a)).unwrap(), m(balance));
        }

        // Invariant: open then approve moves exactly the amount from pending to balance.
        #[test]
        fn opening_and_approving_conserve_money(
            balance in 0i64..=900_000_000,
            pending in 0i64..=50_000_000,
            a in 1i64..=10_000_000,
        ) {
            let s = ChargeSnapshot { balance: snap(balance, pending), existing: None };
            let OpenCharge::Open { pending_credit_after } = plan_open_charge(&s, amount(a)).unwrap() else {
                panic!("no charge existed");
            };
            prop_assert_eq!(pending_credit_after.won(), pending + a);
            let c = charge(a, ChargeStatus::Pending);
            let ApproveCharge::Credit { change, pending_credit_after, .. } =
                plan_approve(&c, &snap(balance, pending + a), tx()).unwrap() else {
                panic!("pending is credited");
            };
            prop_assert_eq!(change.after().won(), balance + a);
            prop_assert_eq!(pending_credit_after.won(), pending);
            prop_assert_eq!(change.entry.amount, change.after().won() - balance);
        }
    }
}
