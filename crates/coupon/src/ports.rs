//! Ports of the coupon domain. Adapters implement them; the service uses them.

use crate::model::*;
use crate::rules::IssueRefusal;
use async_trait::async_trait;
use kernel::{CouponId, NotificationId, Page, PageRequest, Timestamp, UserId};

/// Why first-come-first-served issuing refused.
#[derive(Debug, thiserror::Error)]
pub enum IssueCouponError {
    /// No such coupon.
    #[error("no such coupon")]
    NotFound,
    /// The user already owns it (a user owns a coupon at most once).
    #[error("the user already owns this coupon")]
    AlreadyIssued,
    /// Every unit of `total_quantity` is issued.
    #[error("every unit of this coupon has been issued")]
    SoldOut,
    /// Now is outside the coupon's validity window.
    #[error("the coupon is outside its validity window")]
    NotActive,
    /// An admin deactivated the coupon.
    #[error("the coupon has been deactivated")]
    Deactivated,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<IssueRefusal> for IssueCouponError {
    fn from(refusal: IssueRefusal) -> Self {
        match refusal {
            IssueRefusal::AlreadyIssued => IssueCouponError::AlreadyIssued,
            IssueRefusal::Deactivated => IssueCouponError::Deactivated,
            IssueRefusal::NotActive => IssueCouponError::NotActive,
            IssueRefusal::SoldOut => IssueCouponError::SoldOut,
        }
    }
}

/// Persistence of coupons and the users who own them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CouponStore: Send + Sync {
    /// Creates the coupon and issues it to every user of `coupon.issue_to()`, in ONE
    /// transaction: the coupon, each ownership (AVAILABLE, issued at `now`) and each
    /// user's COUPON_ISSUED notification are all written or none is. Users who already
    /// own it are skipped. `issued_quantity` counts the owners written and MUST NOT pass
    /// `total_quantity`. MUST NOT call anything outside the database while the
    /// transaction is open.
    async fn create(&self, coupon: NewCoupon, now: Timestamp) -> anyhow::Result<Coupon>;

    /// The coupon, if it exists.
    async fn get(&self, id: CouponId) -> anyhow::Result<Option<Coupon>>;

    /// Deactivates the coupon (`active: false`) and returns it; `None` when there is no
    /// such coupon. Idempotent: deactivating it again changes nothing. Once it has
    /// committed, [`CouponStore::issue`] MUST refuse the coupon (`Deactivated`) and using
    /// it on an order MUST be refused ([`crate::Unusable::Inactive`]); orders already
    /// placed with it MUST NOT change.
    async fn deactivate(&self, id: CouponId, now: Timestamp) -> anyhow::Result<Option<Coupon>>;

    /// First come, first served: gives `user` one unit of the coupon.
    /// MUST issue at most `total_quantity` units in total and at most one per user,
    /// across processes and whatever the concurrency; a refused request MUST NOT consume
    /// a unit. Refuses a deactivated coupon (`Deactivated`) and outside the validity
    /// window (`NotActive`). When it refuses, it reports the reason with
    /// [`crate::issue_refusal`].
    async fn issue(
        &self,
        coupon: CouponId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserCoupon, IssueCouponError>;

    /// The user's coupons, newest first (descending ownership id); `page.after()` is the
    /// id to continue below. The status is derived at `now` (EXPIRED is never stored).
    async fn user_coupons(
        &self,
        user: UserId,
        now: Timestamp,
        page: PageRequest,
    ) -> anyhow::Result<Page<UserCoupon>>;
}

/// A user's inbox of notifications.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationInbox: Send + Sync {
    /// The user's notifications, newest first (descending id); `page.after()` is the id
    /// to continue below.
    async fn list(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Notification>>;

    /// Marks the user's notification read (at `now`, the first time only) and returns it
    /// with `read: true`. `None` when the user has no notification with this id (also
    /// when it is another user's: that one MUST NOT change). Idempotent.
    async fn mark_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: Timestamp,
    ) -> anyhow::Result<Option<Notification>>;
}
