//! Coupon use cases over the ports. Each is one port call: the adapter holds the
//! invariants in one transaction (or one statement); the service supplies "now".

use crate::model::*;
use crate::ports::*;
use kernel::{Clock, CouponId, NotificationId, Page, PageRequest, UserId};
use std::sync::Arc;

/// Why reading a coupon failed.
#[derive(Debug, thiserror::Error)]
pub enum GetCouponError {
    /// No such coupon.
    #[error("no such coupon")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why deactivating a coupon failed.
#[derive(Debug, thiserror::Error)]
pub enum DeactivateCouponError {
    /// No such coupon.
    #[error("no such coupon")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why marking a notification read failed.
#[derive(Debug, thiserror::Error)]
pub enum MarkReadError {
    /// The user has no notification with this id.
    #[error("no such notification")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The coupon use cases: creating, deactivating, issuing and reading coupons, and the
/// users' notification inbox.
///
/// A drop: an admin creates a coupon with a `total_quantity`, users take one each,
/// first come first served, until none is left.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use coupon::{CouponName, CouponService, Discount, DiscountType, IssueCouponError, NewCoupon, ValidityWindow};
/// use kernel::{Clock, Money, Quantity, SystemClock, UserId};
/// use std::sync::Arc;
///
/// let db = memory_adapter::MemoryStore::new();
/// let coupons = CouponService::new(Arc::new(db.clone()), Arc::new(db), Arc::new(SystemClock));
/// let now = SystemClock.now();
/// let drop = coupons
///     .create(
///         NewCoupon::new(
///             CouponName::try_from("Launch 10%".to_string()).unwrap(),
///             Discount::new(DiscountType::Percent, 10).unwrap(),
///             Money::ZERO,
///             Some(Quantity::try_from(2).unwrap()),
///             ValidityWindow::new(now, now + chrono::Duration::days(7)).unwrap(),
///             vec![],
///         )
///         .unwrap(),
///     )
///     .await
///     .unwrap();
/// let user = |id| UserId::try_from(id).unwrap();
/// coupons.issue(drop.id, user(1)).await.unwrap();
/// assert!(matches!(coupons.issue(drop.id, user(1)).await, Err(IssueCouponError::AlreadyIssued)));
/// coupons.issue(drop.id, user(2)).await.unwrap();
/// assert!(matches!(coupons.issue(drop.id, user(3)).await, Err(IssueCouponError::SoldOut)));
/// # }
/// ```
#[derive(Clone)]
pub struct CouponService {
    store: Arc<dyn CouponStore>,
    inbox: Arc<dyn NotificationInbox>,
    clock: Arc<dyn Clock>,
}

impl CouponService {
    /// The service over its ports.
    pub fn new(
        store: Arc<dyn CouponStore>,
        inbox: Arc<dyn NotificationInbox>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            inbox,
            clock,
        }
    }

    /// Creates a coupon and issues it to `coupon.issue_to()`, each with a notification,
    /// all in one transaction.
    pub async fn create(&self, coupon: NewCoupon) -> anyhow::Result<Coupon> {
        self.store.create(coupon, self.clock.now()).await
    }

    /// The coupon.
    pub async fn get(&self, id: CouponId) -> Result<Coupon, GetCouponError> {
        self.store.get(id).await?.ok_or(GetCouponError::NotFound)
    }

    /// Deactivates the coupon (idempotent): from now on it is neither issued nor used.
    pub async fn deactivate(&self, id: CouponId) -> Result<Coupon, DeactivateCouponError> {
        self.store
            .deactivate(id, self.clock.now())
            .await?
            .ok_or(DeactivateCouponError::NotFound)
    }

    /// First come, first served: one unit for `user`, if any is left.
    pub async fn issue(
        &self,
        coupon: CouponId,
        user: UserId,
    ) -> Result<UserCoupon, IssueCouponError> {
        self.store.issue(coupon, user, self.clock.now()).await
    }

    /// The user's coupons, newest first, with their status as of now.
    pub async fn user_coupons(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> anyhow::Result<Page<UserCoupon>> {
        self.store.user_coupons(user, self.clock.now(), page).await
    }

    /// The user's notifications, newest first.
    pub async fn notifications(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> anyhow::Result<Page<Notification>> {
        self.inbox.list(user, page).await
    }

    /// Marks the user's notification read (idempotent); another user's is not found.
    pub async fn mark_notification_read(
        &self,
        user: UserId,
        id: NotificationId,
    ) -> Result<Notification, MarkReadError> {
        self.inbox
            .mark_read(user, id, self.clock.now())
            .await?
            .ok_or(MarkReadError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kernel::testing::{cid, fixed_clock as clock, t0 as now, uid};
    use kernel::Money;

    use mockall::predicate::eq;

    fn coupon(id: i64) -> Coupon {
        Coupon {
            id: cid(id),
            name: CouponName::try_from("Ten off".to_string()).unwrap(),
            discount: Discount::new(DiscountType::Percent, 10).unwrap(),
            min_order_amount: Money::ZERO,
            total_quantity: Some(kernel::Quantity::try_from(5).unwrap()),
            issued_quantity: 1,
            window: ValidityWindow::new(now(), now() + Duration::days(1)).unwrap(),
            active: true,
        }
    }

    fn user_coupon(coupon_id: i64, user: i64) -> UserCoupon {
        UserCoupon {
            id: 9,
            coupon: coupon(coupon_id),
            user_id: uid(user),
            stored: StoredStatus::Available,
            status: UserCouponStatus::Available,
            issued_at: now(),
            used_at: None,
            order_id: None,
        }
    }

    fn service(store: MockCouponStore, inbox: MockNotificationInbox) -> CouponService {
        CouponService::new(Arc::new(store), Arc::new(inbox), clock())
    }

    // Invariant: issuing is decided by the store at the service's "now" (one call).
    #[tokio::test]
    async fn issue_asks_the_store_once_at_now() {
        let mut store = MockCouponStore::new();
        store
            .expect_issue()
            .with(eq(cid(3)), eq(uid(7)), eq(now()))
            .times(1)
            .returning(|c, u, _| Ok(user_coupon(c.get(), u.get())));
        let got = service(store, MockNotificationInbox::new())
            .issue(cid(3), uid(7))
            .await
            .unwrap();
        assert_eq!(got.user_id, uid(7));
        assert_eq!(got.coupon.id, cid(3));
    }

    #[tokio::test]
    async fn issue_refusals_pass_through_unchanged() {
        let mut store = MockCouponStore::new();
        store
            .expect_issue()
            .returning(|_, _, _| Err(IssueCouponError::SoldOut));
        let err = service(store, MockNotificationInbox::new())
            .issue(cid(3), uid(7))
            .await
            .unwrap_err();
        assert!(matches!(err, IssueCouponError::SoldOut));
    }

    #[tokio::test]
    async fn a_missing_coupon_is_not_found() {
        let mut store = MockCouponStore::new();
        store.expect_get().with(eq(cid(4))).returning(|_| Ok(None));
        store
            .expect_get()
            .with(eq(cid(5)))
            .returning(|id| Ok(Some(coupon(id.get()))));
        let svc = service(store, MockNotificationInbox::new());
        assert!(matches!(
            svc.get(cid(4)).await,
            Err(GetCouponError::NotFound)
        ));
        assert_eq!(svc.get(cid(5)).await.unwrap().id, cid(5));
    }

    // Invariant: creation is one store call (one transaction) carrying the recipients.
    #[tokio::test]
    async fn create_hands_the_whole_command_to_one_store_call() {
        let mut store = MockCouponStore::new();
        store
            .expect_create()
            .withf(|c, at| c.issue_to() == [uid(1), uid(2)] && *at == now())
            .times(1)
            .returning(|_, _| Ok(coupon(1)));
        let new = NewCoupon::new(
            CouponName::try_from("Ten off".to_string()).unwrap(),
            Discount::new(DiscountType::Percent, 10).unwrap(),
            Money::ZERO,
            None,
            ValidityWindow::new(now(), now() + Duration::days(1)).unwrap(),
            vec![uid(2), uid(1), uid(2)],
        )
        .unwrap();
        assert_eq!(
            service(store, MockNotificationInbox::new())
                .create(new)
                .await
                .unwrap()
                .id,
            cid(1)
        );
    }

    #[tokio::test]
    async fn lists_pass_now_and_the_page() {
        let mut store = MockCouponStore::new();
        let mut inbox = MockNotificationInbox::new();
        let page = PageRequest::new(5, Some(100)).unwrap();
        store
            .expect_user_coupons()
            .with(eq(uid(7)), eq(now()), eq(page))
            .times(1)
            .returning(|u, _, _| {
                Ok(Page {
                    items: vec![user_coupon(1, u.get())],
                    next: None,
                })
            });
        inbox
            .expect_list()
            .with(eq(uid(7)), eq(page))
            .times(1)
            .returning(|_, _| {
                Ok(Page {
                    items: vec![],
                    next: None,
                })
            });
        let svc = service(store, inbox);
        assert_eq!(svc.user_coupons(uid(7), page).await.unwrap().items.len(), 1);
        assert!(svc
            .notifications(uid(7), page)
            .await
            .unwrap()
            .items
            .is_empty());
    }

    // Invariant: deactivation is one store call at the service's "now"; a missing coupon
    // is NotFound, not an error.
    #[tokio::test]
    async fn deactivate_asks_the_store_once_and_reports_a_missing_coupon() {
        let mut store = MockCouponStore::new();
        store
            .expect_deactivate()
            .with(eq(cid(3)), eq(now()))
            .times(1)
            .returning(|id, _| {
                Ok(Some(Coupon {
                    active: false,
                    ..coupon(id.get())
                }))
            });
        store
            .expect_deactivate()
            .with(eq(cid(4)), eq(now()))
            .times(1)
            .returning(|_, _| Ok(None));
        let svc = service(store, MockNotificationInbox::new());
        assert!(!svc.deactivate(cid(3)).await.unwrap().active);
        assert!(matches!(
            svc.deactivate(cid(4)).await,
            Err(DeactivateCouponError::NotFound)
        ));
    }

    // Invariant: marking read is scoped to the user (one inbox call with the user and the
    // id); what the inbox does not find for that user is NotFound.
    #[tokio::test]
    async fn mark_read_is_scoped_to_the_user() {
        let nid = |v: i64| NotificationId::try_from(v).unwrap();
        let mut inbox = MockNotificationInbox::new();
        inbox
            .expect_mark_read()
            .with(eq(uid(7)), eq(nid(5)), eq(now()))
            .times(1)
            .returning(|u, id, at| {
                Ok(Some(Notification {
                    id,
                    user_id: u,
                    kind: NotificationKind::CouponIssued,
                    message: "hi".into(),
                    coupon_id: Some(cid(1)),
                    created_at: at,
                    read: true,
                }))
            });
        inbox
            .expect_mark_read()
            .with(eq(uid(8)), eq(nid(5)), eq(now()))
            .times(1)
            .returning(|_, _, _| Ok(None));
        let svc = service(MockCouponStore::new(), inbox);
        assert!(
            svc.mark_notification_read(uid(7), nid(5))
                .await
                .unwrap()
                .read
        );
        assert!(matches!(
            svc.mark_notification_read(uid(8), nid(5)).await,
            Err(MarkReadError::NotFound)
        ));
    }

    #[test]
    fn recipients_are_deduplicated_and_must_fit_the_quantity() {
        let make = |total: Option<i64>, to: Vec<i64>| {
            NewCoupon::new(
                CouponName::try_from("x".to_string()).unwrap(),
                Discount::new(DiscountType::Fixed, 100).unwrap(),
                Money::ZERO,
                total.map(|t| kernel::Quantity::try_from(t).unwrap()),
                ValidityWindow::new(now(), now() + Duration::days(1)).unwrap(),
                to.into_iter().map(uid).collect(),
            )
        };
        // 3 entries, 2 distinct users: fits in 2
        assert_eq!(
            make(Some(2), vec![5, 4, 5]).unwrap().issue_to(),
            [uid(4), uid(5)]
        );
        assert_eq!(
            make(Some(2), vec![1, 2, 3]),
            Err(NewCouponError::RecipientsExceedQuantity {
                distinct: 3,
                total: 2
            })
        );
        assert!(make(None, (1..=1000).collect()).is_ok());
        assert_eq!(
            make(None, (1..=1001).collect()),
            Err(NewCouponError::TooManyRecipients(1001))
        );
    }
}
