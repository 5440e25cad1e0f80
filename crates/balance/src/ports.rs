//! Ports of the balance domain. Adapters implement them; the service uses them.

use crate::model::*;
use crate::rules::*;
use async_trait::async_trait;
use kernel::{ChargeId, Completion, Money, Page, PageRequest, Timestamp, UserId};

/// Why a charge could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenChargeError {
    /// The balance, with every charge still at the gateway, would pass the limit.
    #[error(transparent)]
    LimitExceeded(#[from] BalanceLimitExceeded),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The decision a store calls when it opens a charge (normally [`crate::plan_open_charge`]).
pub type OpenDecision =
    Box<dyn FnOnce(&ChargeSnapshot) -> Result<OpenCharge, BalanceLimitExceeded> + Send>;
/// The decision a store calls when it settles an approved charge (normally
/// [`crate::plan_approve`] with the gateway's transaction).
pub type ApproveDecision =
    Box<dyn FnOnce(&Charge, &BalanceSnapshot) -> Result<ApproveCharge, SettleConflict> + Send>;
/// The decision a store calls when it settles a declined charge (normally
/// [`crate::plan_decline`]).
pub type DeclineDecision = Box<dyn FnOnce(&Charge, &BalanceSnapshot) -> DeclineCharge + Send>;

/// Persistence of balances, their history and charges. Each method is one transaction
/// that locks the rows its decision needs (a charge row before its balance row), calls
/// the decision with what it read, and writes what the decision says.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BalanceStore: Send + Sync {
    /// The user's balance; zero for a user never charged.
    async fn balance(&self, user: UserId) -> anyhow::Result<Money>;

    /// History rows, newest first (descending id); `page.after()` is the id to continue below.
    async fn history(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<HistoryEntry>>;

    /// Opens a charge. MUST read the user's balance and open charges under a lock that
    /// serialises it with every other change of that balance (across processes), and the
    /// charge earlier opened with the same `charge.claim_id` if there is one; then call
    /// `decide` and write what it says: a new PENDING charge with `pending_credit` set
    /// ([`OpenCharge::Open`]), or nothing ([`OpenCharge::Resume`], returning that charge).
    /// MUST NOT credit anything, and MUST keep one charge per `claim_id`.
    async fn open_charge(
        &self,
        charge: NewCharge,
        decide: OpenDecision,
    ) -> Result<Charge, OpenChargeError>;

    /// Settles a charge the gateway approved: locks the charge, then the balance; calls
    /// `decide`; on [`ApproveCharge::Credit`] writes the balance change with its CHARGE
    /// row, `pending_credit` and the APPROVED charge, and `completion`'s record of the
    /// receipt (the request's answer) in the same transaction. MUST credit at most once
    /// per charge. A [`SettleConflict`] changes nothing and is returned as an error.
    async fn approve_charge(
        &self,
        id: ChargeId,
        decide: ApproveDecision,
        completion: Option<Completion<ChargeReceipt>>,
        now: Timestamp,
    ) -> anyhow::Result<ChargeReceipt>;

    /// Settles a charge the gateway declined: locks it and its balance, calls `decide`,
    /// on [`DeclineCharge::Release`] marks it DECLINED with `reason` and releases its
    /// headroom. MUST NOT touch a charge that is already settled.
    async fn decline_charge(
        &self,
        id: ChargeId,
        reason: String,
        decide: DeclineDecision,
        now: Timestamp,
    ) -> anyhow::Result<()>;

    /// Charges still PENDING that were opened before `before`, oldest first, for
    /// recovery after a crash or a gateway outage.
    async fn stale_charges(&self, before: Timestamp, limit: i64) -> anyhow::Result<Vec<Charge>>;
}

/// What the gateway said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutcome {
    /// The money moved; this is the gateway's transaction.
    Approved(GatewayTransactionId),
    /// Refused; nothing moved.
    Declined {
        /// The gateway's reason.
        reason: String,
    },
}

/// A request to the gateway. `charge_id` is the idempotency reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayCharge {
    /// The charge, the gateway's idempotency reference.
    pub charge_id: ChargeId,
    /// Who pays.
    pub user_id: UserId,
    /// How much.
    pub amount: Money,
    /// How.
    pub method: PaymentMethod,
}

/// The gateway could not be reached or answered nonsense; the outcome is unknown.
#[derive(Debug, thiserror::Error)]
#[error("payment gateway unavailable: {0}")]
pub struct GatewayUnavailable(#[source] pub anyhow::Error);

/// An external payment gateway that moves real money.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Authorises and captures `request.amount`.
    /// MUST be idempotent on `request.charge_id`: asking again for the same charge
    /// returns the first outcome and moves money at most once.
    async fn authorize(
        &self,
        request: &GatewayCharge,
    ) -> Result<GatewayOutcome, GatewayUnavailable>;
}
