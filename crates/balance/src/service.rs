//! The charge use case: record, ask the gateway (no transaction open), settle.

use crate::model::*;
use crate::ports::*;
use kernel::{Clock, Money, Page, PageRequest, UserId};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    #[error("the balance would pass {MAX_BALANCE}")]
    BalanceLimitExceeded,
    #[error("the payment gateway declined the charge: {reason}")]
    PaymentDeclined { reason: String },
    /// The outcome is unknown; the charge stays PENDING and recovery settles it later.
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable(#[source] GatewayUnavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<OpenChargeError> for ChargeError {
    fn from(e: OpenChargeError) -> Self {
        match e {
            OpenChargeError::LimitExceeded => ChargeError::BalanceLimitExceeded,
            OpenChargeError::Unexpected(e) => ChargeError::Unexpected(e),
        }
    }
}

/// What recovery did with stale charges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    pub approved: usize,
    pub declined: usize,
    pub still_pending: usize,
}

#[derive(Clone)]
pub struct ChargeService {
    store: Arc<dyn BalanceStore>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
}

impl ChargeService {
    pub fn new(
        store: Arc<dyn BalanceStore>,
        gateway: Arc<dyn PaymentGateway>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            gateway,
            clock,
        }
    }

    pub async fn balance(&self, user: UserId) -> anyhow::Result<Money> {
        self.store.balance(user).await
    }

    pub async fn history(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> anyhow::Result<Page<HistoryEntry>> {
        self.store.history(user, page).await
    }

    /// Charges the user's balance through the gateway.
    ///
    /// The charge is recorded (headroom reserved) before the gateway is called, and the
    /// gateway is called with no transaction open; only an approval credits the balance.
    pub async fn charge(
        &self,
        user_id: UserId,
        amount: ChargeAmount,
        method: PaymentMethod,
    ) -> Result<ChargeReceipt, ChargeError> {
        let pending = self
            .store
            .open_charge(NewCharge {
                user_id,
                amount,
                method,
                now: self.clock.now(),
            })
            .await?;
        self.settle(&pending).await
    }

    async fn settle(&self, pending: &PendingCharge) -> Result<ChargeReceipt, ChargeError> {
        let request = GatewayCharge {
            charge_id: pending.id,
            user_id: pending.user_id,
            amount: pending.amount,
            method: pending.method.clone(),
        };
        match self.gateway.authorize(&request).await {
            Ok(GatewayOutcome::Approved(tx)) => Ok(self
                .store
                .approve_charge(pending.id, tx, self.clock.now())
                .await?),
            Ok(GatewayOutcome::Declined { reason }) => {
                self.store
                    .decline_charge(pending.id, reason.clone(), self.clock.now())
                    .await?;
                Err(ChargeError::PaymentDeclined { reason })
            }
            Err(e) => Err(ChargeError::GatewayUnavailable(e)),
        }
    }

    /// Settles charges left PENDING for longer than `grace` (a crash between the
    /// gateway's approval and the credit, or a gateway outage) by asking the gateway
    /// again; it is idempotent on the charge id, so nothing is charged twice.
    pub async fn recover_stale(
        &self,
        grace: Duration,
        batch: i64,
    ) -> anyhow::Result<RecoveryReport> {
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let before = self.clock.now() - grace;
        let mut report = RecoveryReport::default();
        for pending in self.store.stale_charges(before, batch).await? {
            match self.settle(&pending).await {
                Ok(_) => report.approved += 1,
                Err(ChargeError::PaymentDeclined { .. }) => report.declined += 1,
                Err(ChargeError::GatewayUnavailable(_)) => report.still_pending += 1,
                Err(ChargeError::BalanceLimitExceeded) => report.still_pending += 1,
                Err(ChargeError::Unexpected(e)) => return Err(e),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kernel::{ChargeId, FixedClock};
    use mockall::predicate::eq;

    fn now() -> kernel::Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock(now()))
    }

    fn user() -> UserId {
        UserId::try_from(7).unwrap()
    }

    fn pending(id: i64, amount: i64) -> PendingCharge {
        PendingCharge {
            id: ChargeId::try_from(id).unwrap(),
            user_id: user(),
            amount: Money::try_from(amount).unwrap(),
            method: PaymentMethod::try_from("card".to_string()).unwrap(),
            created_at: now(),
        }
    }

    fn receipt(id: i64, amount: i64, balance: i64) -> ChargeReceipt {
        ChargeReceipt {
            charge_id: ChargeId::try_from(id).unwrap(),
            user_id: user(),
            amount: Money::try_from(amount).unwrap(),
            balance: Money::try_from(balance).unwrap(),
            gateway_transaction_id: GatewayTransactionId("tx-1".into()),
        }
    }

    fn amount(v: i64) -> ChargeAmount {
        ChargeAmount::try_from(v).unwrap()
    }

    fn method(s: &str) -> PaymentMethod {
        PaymentMethod::try_from(s.to_string()).unwrap()
    }

    // Invariant: an approved charge is credited, and only after the gateway approved it.
    #[tokio::test]
    async fn approved_charge_is_credited_after_the_gateway_approves() {
        let mut seq = mockall::Sequence::new();
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_open_charge()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|c| {
                assert_eq!(c.amount.money().won(), 5_000);
                Ok(pending(1, 5_000))
            });
        gateway
            .expect_authorize()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|r| {
                assert_eq!(r.amount.won(), 5_000);
                assert_eq!(r.method.as_str(), "card");
                Ok(GatewayOutcome::Approved(GatewayTransactionId(
                    "tx-1".into(),
                )))
            });
        store
            .expect_approve_charge()
            .with(
                eq(ChargeId::try_from(1).unwrap()),
                eq(GatewayTransactionId("tx-1".into())),
                eq(now()),
            )
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(receipt(1, 5_000, 5_000)));
        store.expect_decline_charge().never();

        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let got = svc
            .charge(user(), amount(5_000), method("card"))
            .await
            .unwrap();
        assert_eq!(got, receipt(1, 5_000, 5_000));
    }

    // Invariant: a declined charge credits nothing and is settled as declined.
    #[tokio::test]
    async fn declined_charge_credits_nothing() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_open_charge()
            .returning(|_| Ok(pending(2, 1_000)));
        gateway.expect_authorize().returning(|_| {
            Ok(GatewayOutcome::Declined {
                reason: "card declined".into(),
            })
        });
        store.expect_approve_charge().never();
        store
            .expect_decline_charge()
            .withf(|id, reason, _| id.get() == 2 && reason == "card declined")
            .times(1)
            .returning(|_, _, _| Ok(()));

        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let err = svc
            .charge(user(), amount(1_000), method("card_declined"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ChargeError::PaymentDeclined { reason } if reason == "card declined")
        );
    }

    // Invariant: over the limit, the gateway is never asked (no money moves).
    #[tokio::test]
    async fn limit_exceeded_never_reaches_the_gateway() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_open_charge()
            .returning(|_| Err(OpenChargeError::LimitExceeded));
        gateway.expect_authorize().never();
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let err = svc
            .charge(user(), amount(1), method("card"))
            .await
            .unwrap_err();
        assert!(matches!(err, ChargeError::BalanceLimitExceeded));
    }

    // Invariant: when the outcome is unknown the charge stays pending (neither settled).
    #[tokio::test]
    async fn gateway_outage_leaves_the_charge_pending() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_open_charge()
            .returning(|_| Ok(pending(3, 1_000)));
        gateway
            .expect_authorize()
            .returning(|_| Err(GatewayUnavailable(anyhow::anyhow!("connection refused"))));
        store.expect_approve_charge().never();
        store.expect_decline_charge().never();
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let err = svc
            .charge(user(), amount(1_000), method("card"))
            .await
            .unwrap_err();
        assert!(matches!(err, ChargeError::GatewayUnavailable(_)));
    }

    // Invariant: an approval is never lost: recovery settles stale charges by asking again.
    #[tokio::test]
    async fn recovery_settles_stale_charges_with_the_gateways_answer() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_stale_charges()
            .withf(|before, limit| *before == now() - chrono::Duration::seconds(60) && *limit == 10)
            .returning(|_, _| Ok(vec![pending(4, 100), pending(5, 200), pending(6, 300)]));
        gateway
            .expect_authorize()
            .returning(|r| match r.charge_id.get() {
                4 => Ok(GatewayOutcome::Approved(GatewayTransactionId(
                    "tx-4".into(),
                ))),
                5 => Ok(GatewayOutcome::Declined {
                    reason: "no".into(),
                }),
                _ => Err(GatewayUnavailable(anyhow::anyhow!("down"))),
            });
        store
            .expect_approve_charge()
            .withf(|id, tx, _| id.get() == 4 && tx.0 == "tx-4")
            .times(1)
            .returning(|_, _, _| Ok(receipt(4, 100, 100)));
        store
            .expect_decline_charge()
            .withf(|id, _, _| id.get() == 5)
            .times(1)
            .returning(|_, _, _| Ok(()));
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let report = svc
            .recover_stale(Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(
            report,
            RecoveryReport {
                approved: 1,
                declined: 1,
                still_pending: 1
            }
        );
    }
}
