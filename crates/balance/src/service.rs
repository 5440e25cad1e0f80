//! The charge use case: record, ask the gateway (no transaction open), settle.

use crate::model::*;
use crate::ports::*;
use crate::rules::*;
use kernel::{Clock, Completion, Money, Page, PageRequest, UserId};
use std::sync::Arc;
use std::time::Duration;

/// Why a charge did not credit the balance.
#[derive(Debug, thiserror::Error)]
pub enum ChargeError {
    /// The balance, with every charge still at the gateway, would pass the limit.
    #[error("the balance would pass {MAX_BALANCE}")]
    BalanceLimitExceeded,
    /// The gateway refused; nothing was credited.
    #[error("the payment gateway declined the charge: {reason}")]
    PaymentDeclined {
        /// The gateway's reason.
        reason: String,
    },
    /// The outcome is unknown; the charge stays PENDING and recovery settles it later.
    #[error("the payment gateway is unavailable")]
    GatewayUnavailable(#[source] GatewayUnavailable),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<OpenChargeError> for ChargeError {
    fn from(e: OpenChargeError) -> Self {
        match e {
            OpenChargeError::LimitExceeded(_) => ChargeError::BalanceLimitExceeded,
            OpenChargeError::Unexpected(e) => ChargeError::Unexpected(e),
        }
    }
}

/// What recovery did with stale charges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Charges the gateway approved: credited now.
    pub approved: usize,
    /// Charges the gateway declined: settled as declined.
    pub declined: usize,
    /// Charges whose outcome is still unknown (the gateway did not answer).
    pub still_pending: usize,
}

/// Charging balances through the payment gateway: the charge is recorded first, the
/// gateway is called with no transaction open, and only an approval credits the
/// balance, once.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use balance::*;
/// use kernel::{SystemClock, UserId};
/// use std::sync::Arc;
///
/// /// A gateway that declines the method "card_declined" and approves the rest.
/// struct Sandbox;
/// #[async_trait::async_trait]
/// impl PaymentGateway for Sandbox {
///     async fn authorize(&self, r: &GatewayCharge) -> Result<GatewayOutcome, GatewayUnavailable> {
///         Ok(match r.method.as_str() {
///             "card_declined" => GatewayOutcome::Declined { reason: "declined".into() },
///             _ => GatewayOutcome::Approved(GatewayTransactionId(format!("tx-{}", r.charge_id))),
///         })
///     }
/// }
///
/// let charges = ChargeService::new(
///     Arc::new(memory_adapter::MemoryStore::new()),
///     Arc::new(Sandbox),
///     Arc::new(SystemClock),
/// );
/// let alice = UserId::try_from(1).unwrap();
/// let method = |m: &str| PaymentMethod::try_from(m.to_string()).unwrap();
/// let receipt = charges
///     .charge(alice, ChargeAmount::try_from(10_000).unwrap(), method("card"), None)
///     .await
///     .unwrap();
/// assert_eq!(receipt.balance.won(), 10_000);
/// // the sandbox declines this method: nothing is credited
/// let declined = charges
///     .charge(alice, ChargeAmount::try_from(500).unwrap(), method("card_declined"), None)
///     .await;
/// assert!(matches!(declined, Err(ChargeError::PaymentDeclined { .. })));
/// assert_eq!(charges.balance(alice).await.unwrap().won(), 10_000);
/// # }
/// ```
#[derive(Clone)]
pub struct ChargeService {
    store: Arc<dyn BalanceStore>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
}

impl ChargeService {
    /// A service over `store` and `gateway`.
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

    /// The user's balance (zero for a user never charged).
    pub async fn balance(&self, user: UserId) -> anyhow::Result<Money> {
        self.store.balance(user).await
    }

    /// The user's history, newest first.
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
    /// gateway is called with no transaction open; only an approval credits the balance,
    /// and the credit records `completion`'s answer in its own transaction. A retry of a
    /// request (same `completion` claim) that opened a charge before carries on with that
    /// charge: settles it if it is still pending (the gateway is idempotent on the charge
    /// id), or answers with its outcome. It never opens a second one.
    pub async fn charge(
        &self,
        user_id: UserId,
        amount: ChargeAmount,
        method: PaymentMethod,
        completion: Option<Completion<ChargeReceipt>>,
    ) -> Result<ChargeReceipt, ChargeError> {
        let charge = self
            .store
            .open_charge(
                NewCharge {
                    user_id,
                    amount,
                    method,
                    now: self.clock.now(),
                    claim_id: completion.as_ref().map(|c| c.claim.claim_id),
                },
                Box::new(move |snapshot| plan_open_charge(snapshot, amount)),
            )
            .await?;
        match &charge.status {
            ChargeStatus::Pending => self.settle(&charge, completion).await,
            ChargeStatus::Approved { .. } => Ok(charge
                .receipt()
                .ok_or_else(|| anyhow::anyhow!("an approved charge without a receipt"))?),
            ChargeStatus::Declined { reason } => Err(ChargeError::PaymentDeclined {
                reason: reason.clone(),
            }),
        }
    }

    async fn settle(
        &self,
        charge: &Charge,
        completion: Option<Completion<ChargeReceipt>>,
    ) -> Result<ChargeReceipt, ChargeError> {
        let request = GatewayCharge {
            charge_id: charge.id,
            user_id: charge.user_id,
            amount: charge.amount,
            method: charge.method.clone(),
        };
        match self.gateway.authorize(&request).await {
            Ok(GatewayOutcome::Approved(tx)) => Ok(self
                .store
                .approve_charge(
                    charge.id,
                    Box::new(move |charge, balance| plan_approve(charge, balance, tx)),
                    completion,
                    self.clock.now(),
                )
                .await?),
            Ok(GatewayOutcome::Declined { reason }) => {
                self.store
                    .decline_charge(
                        charge.id,
                        reason.clone(),
                        Box::new(plan_decline),
                        self.clock.now(),
                    )
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
            match self.settle(&pending, None).await {
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

    use kernel::testing::{fixed_clock as clock, t0 as now, won as m};
    use kernel::{ChargeId, IdempotencyClaim, RecordedResponse};

    fn user() -> UserId {
        UserId::try_from(7).unwrap()
    }

    fn charge(id: i64, amount: i64, status: ChargeStatus) -> Charge {
        Charge {
            id: ChargeId::try_from(id).unwrap(),
            user_id: user(),
            amount: m(amount),
            method: PaymentMethod::try_from("card".to_string()).unwrap(),
            created_at: now(),
            status,
        }
    }

    fn amount(v: i64) -> ChargeAmount {
        ChargeAmount::try_from(v).unwrap()
    }

    fn method(s: &str) -> PaymentMethod {
        PaymentMethod::try_from(s.to_string()).unwrap()
    }

    fn completion() -> Completion<ChargeReceipt> {
        Completion::new(
            IdempotencyClaim {
                caller: "user:7".into(),
                key: "k-1".into(),
                request_hash: "h".into(),
                claim_id: uuid::Uuid::from_u128(42),
            },
            |r: &ChargeReceipt| RecordedResponse {
                status: 201,
                headers: vec![],
                body: r.balance.won().to_string().into_bytes(),
            },
        )
    }

    fn approved(tx: &str) -> Result<GatewayOutcome, GatewayUnavailable> {
        Ok(GatewayOutcome::Approved(GatewayTransactionId(tx.into())))
    }

    // Invariant: an approved charge is credited, only after the gateway approved it, and
    // the credit carries the request's answer (rendered from the receipt) into its
    // transaction.
    #[tokio::test]
    async fn approved_charge_is_credited_after_the_gateway_approves() {
        let mut seq = mockall::Sequence::new();
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_open_charge()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|c, decide| {
                assert_eq!(c.amount.money().won(), 5_000);
                assert_eq!(c.claim_id, Some(uuid::Uuid::from_u128(42)));
                // the fake store hands the decision a snapshot and checks its plan
                let plan = decide(&ChargeSnapshot {
                    balance: BalanceSnapshot {
                        balance: m(1_000),
                        pending_credit: Money::ZERO,
                    },
                    existing: None,
                })
                .unwrap();
                assert_eq!(
                    plan,
                    OpenCharge::Open {
                        pending_credit_after: m(5_000)
                    }
                );
                Ok(charge(1, 5_000, ChargeStatus::Pending))
            });
        gateway
            .expect_authorize()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|r| {
                assert_eq!(r.amount.won(), 5_000);
                assert_eq!(r.method.as_str(), "card");
                approved("tx-1")
            });
        store
            .expect_approve_charge()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|id, decide, completion, at| {
                assert_eq!((id.get(), at), (1, now()));
                let plan = decide(
                    &charge(1, 5_000, ChargeStatus::Pending),
                    &BalanceSnapshot {
                        balance: m(1_000),
                        pending_credit: m(5_000),
                    },
                )
                .unwrap();
                let ApproveCharge::Credit {
                    change, receipt, ..
                } = plan
                else {
                    panic!("a pending charge is credited");
                };
                assert_eq!(change.after(), m(6_000));
                assert_eq!(receipt.gateway_transaction_id.0, "tx-1");
                let record = completion.expect("the claim comes along").record(&receipt);
                assert_eq!(record.response.body, b"6000");
                Ok(receipt)
            });
        store.expect_decline_charge().never();

        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let got = svc
            .charge(user(), amount(5_000), method("card"), Some(completion()))
            .await
            .unwrap();
        assert_eq!(got.balance, m(6_000));
    }

    // Invariant: a retry of a request whose charge was approved (by it or by recovery)
    // answers with that charge's receipt and never reaches the gateway again.
    #[tokio::test]
    async fn a_retry_answers_with_the_charge_its_request_opened() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        let done = charge(
            4,
            5_000,
            ChargeStatus::Approved {
                transaction: GatewayTransactionId("tx-4".into()),
                balance_after: m(5_000),
            },
        );
        let existing = done.clone();
        store.expect_open_charge().returning(move |_, decide| {
            let plan = decide(&ChargeSnapshot {
                balance: BalanceSnapshot::default(),
                existing: Some(existing.clone()),
            })
            .unwrap();
            match plan {
                OpenCharge::Resume(c) => Ok(c),
                other => panic!("a retry resumes, got {other:?}"),
            }
        });
        gateway.expect_authorize().never();
        store.expect_approve_charge().never();
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let got = svc
            .charge(user(), amount(5_000), method("card"), Some(completion()))
            .await
            .unwrap();
        assert_eq!(Some(got), done.receipt());
    }

    // Invariant: a retry of a request whose charge is still pending settles that charge
    // (the gateway is asked again for the same charge id), it does not open another.
    #[tokio::test]
    async fn a_retry_settles_the_pending_charge_of_its_request() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store.expect_open_charge().returning(|_, decide| {
            match decide(&ChargeSnapshot {
                balance: BalanceSnapshot::default(),
                existing: Some(charge(8, 300, ChargeStatus::Pending)),
            })
            .unwrap()
            {
                OpenCharge::Resume(c) => Ok(c),
                other => panic!("a retry resumes, got {other:?}"),
            }
        });
        gateway
            .expect_authorize()
            .withf(|r| r.charge_id.get() == 8)
            .times(1)
            .returning(|_| approved("tx-8"));
        store
            .expect_approve_charge()
            .withf(|id, _, _, _| id.get() == 8)
            .times(1)
            .returning(|_, decide, _, _| {
                match decide(
                    &charge(8, 300, ChargeStatus::Pending),
                    &BalanceSnapshot {
                        balance: Money::ZERO,
                        pending_credit: m(300),
                    },
                )
                .unwrap()
                {
                    ApproveCharge::Credit { receipt, .. } => Ok(receipt),
                    ApproveCharge::AlreadyApproved(r) => Ok(r),
                }
            });
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let got = svc
            .charge(user(), amount(300), method("card"), Some(completion()))
            .await
            .unwrap();
        assert_eq!(got.balance, m(300));
    }

    // Invariant: a declined charge credits nothing and is settled as declined.
    #[tokio::test]
    async fn declined_charge_credits_nothing() {
        let mut store = MockBalanceStore::new();
        let mut gateway = MockPaymentGateway::new();
        store
            .expect_open_charge()
            .returning(|_, _| Ok(charge(2, 1_000, ChargeStatus::Pending)));
        gateway.expect_authorize().returning(|_| {
            Ok(GatewayOutcome::Declined {
                reason: "card declined".into(),
            })
        });
        store.expect_approve_charge().never();
        store
            .expect_decline_charge()
            .withf(|id, reason, _, _| id.get() == 2 && reason == "card declined")
            .times(1)
            .returning(|_, _, decide, _| {
                let plan = decide(
                    &charge(2, 1_000, ChargeStatus::Pending),
                    &BalanceSnapshot {
                        balance: Money::ZERO,
                        pending_credit: m(1_000),
                    },
                );
                assert_eq!(
                    plan,
                    DeclineCharge::Release {
                        pending_credit_after: Money::ZERO
                    }
                );
                Ok(())
            });

        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let err = svc
            .charge(user(), amount(1_000), method("card_declined"), None)
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
        store.expect_open_charge().returning(|_, decide| {
            let refused = decide(&ChargeSnapshot {
                balance: BalanceSnapshot {
                    balance: MAX_BALANCE,
                    pending_credit: Money::ZERO,
                },
                existing: None,
            })
            .unwrap_err();
            Err(refused.into())
        });
        gateway.expect_authorize().never();
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let err = svc
            .charge(user(), amount(1), method("card"), None)
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
            .returning(|_, _| Ok(charge(3, 1_000, ChargeStatus::Pending)));
        gateway
            .expect_authorize()
            .returning(|_| Err(GatewayUnavailable(anyhow::anyhow!("connection refused"))));
        store.expect_approve_charge().never();
        store.expect_decline_charge().never();
        let svc = ChargeService::new(Arc::new(store), Arc::new(gateway), clock());
        let err = svc
            .charge(user(), amount(1_000), method("card"), None)
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
            .returning(|_, _| {
                Ok(vec![
                    charge(4, 100, ChargeStatus::Pending),
                    charge(5, 200, ChargeStatus::Pending),
                    charge(6, 300, ChargeStatus::Pending),
                ])
            });
        gateway
            .expect_authorize()
            .returning(|r| match r.charge_id.get() {
                4 => approved("tx-4"),
                5 => Ok(GatewayOutcome::Declined {
                    reason: "no".into(),
                }),
                _ => Err(GatewayUnavailable(anyhow::anyhow!("down"))),
            });
        store
            .expect_approve_charge()
            .withf(|id, _, completion, _| id.get() == 4 && completion.is_none())
            .times(1)
            .returning(|_, _, _, _| {
                Ok(charge(
                    4,
                    100,
                    ChargeStatus::Approved {
                        transaction: GatewayTransactionId("tx-4".into()),
                        balance_after: m(100),
                    },
                )
                .receipt()
                .unwrap())
            });
        store
            .expect_decline_charge()
            .withf(|id, _, _, _| id.get() == 5)
            .times(1)
            .returning(|_, _, _, _| Ok(()));
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
