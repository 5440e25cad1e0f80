//! Ports of the balance domain. Adapters implement them; the service uses them.

use crate::model::*;
use async_trait::async_trait;
use kernel::{ChargeId, Money, Page, PageRequest, Timestamp, UserId};

/// Why a charge could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenChargeError {
    #[error("the balance would pass the limit")]
    LimitExceeded,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Persistence of balances, their history and charges.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BalanceStore: Send + Sync {
    /// The user's balance; zero for a user never charged.
    async fn balance(&self, user: UserId) -> anyhow::Result<Money>;

    /// History rows, newest first (descending id); `page.after()` is the id to continue below.
    async fn history(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<HistoryEntry>>;

    /// Records a PENDING charge and reserves its headroom.
    /// MUST decide with [`crate::check_charge_headroom`] on the user's balance and open
    /// charges read under a lock that serialises it with every other change of that
    /// balance (across processes), and MUST NOT credit anything yet.
    async fn open_charge(&self, charge: NewCharge) -> Result<PendingCharge, OpenChargeError>;

    /// Settles an approved charge: credits the balance and writes a CHARGE history row
    /// in one transaction. MUST credit at most once per charge: settling a charge that
    /// is already approved returns its receipt unchanged.
    async fn approve_charge(
        &self,
        id: ChargeId,
        transaction: GatewayTransactionId,
        now: Timestamp,
    ) -> anyhow::Result<ChargeReceipt>;

    /// Settles a declined charge: releases its headroom; the balance is unchanged.
    /// MUST NOT touch a charge that is already settled.
    async fn decline_charge(
        &self,
        id: ChargeId,
        reason: String,
        now: Timestamp,
    ) -> anyhow::Result<()>;

    /// Charges still PENDING that were opened before `before`, oldest first, for
    /// recovery after a crash or a gateway outage.
    async fn stale_charges(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> anyhow::Result<Vec<PendingCharge>>;
}

/// What the gateway said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutcome {
    Approved(GatewayTransactionId),
    Declined { reason: String },
}

/// A request to the gateway. `charge_id` is the idempotency reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayCharge {
    pub charge_id: ChargeId,
    pub user_id: UserId,
    pub amount: Money,
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
