//! Coupons and inboxes: [`coupon::CouponStore`] and [`coupon::NotificationInbox`].

use crate::paging::{keyset, Order};
use crate::state::{id, NotificationRow, UserCouponRow};
use crate::MemoryStore;
use anyhow::anyhow;
use async_trait::async_trait;
use coupon::{
    coupon_issued_message, issue_refusal, Coupon, CouponStore, IssueCouponError, NewCoupon,
    Notification, NotificationInbox, NotificationKind, StoredStatus, UserCoupon,
};
use kernel::{CouponId, NotificationId, Page, PageRequest, Timestamp, UserId};

impl crate::state::State {
    /// The user's copy of the coupon, if they own it.
    pub fn user_coupon_of(&self, coupon: CouponId, user: UserId) -> Option<&UserCouponRow> {
        self.user_coupons
            .values()
            .find(|row| row.coupon_id == coupon && row.user_id == user)
    }
}

#[async_trait]
impl CouponStore for MemoryStore {
    async fn create(&self, new: NewCoupon, now: Timestamp) -> anyhow::Result<Coupon> {
        let mut db = self.db();
        let mut coupon = Coupon {
            id: id(db.seq.coupon()),
            name: new.name.clone(),
            discount: new.discount,
            min_order_amount: new.min_order_amount,
            total_quantity: new.total_quantity,
            issued_quantity: 0,
            window: new.window,
            active: true,
        };
        let recipients = new.issue_to();
        if coupon
            .total_quantity
            .is_some_and(|total| recipients.len() as u64 > u64::from(total.get()))
        {
            return Err(anyhow!("more recipients than total_quantity"));
        }
        coupon.issued_quantity = recipients.len() as u64;
        let message = coupon_issued_message(&coupon);
        for user in recipients {
            let row = UserCouponRow {
                id: db.seq.user_coupon(),
                coupon_id: coupon.id,
                user_id: *user,
                stored: StoredStatus::Available,
                issued_at: now,
                used_at: None,
                order_id: None,
            };
            db.user_coupons.insert(row.id, row);
            let notification = Notification {
                id: id(db.seq.notification()),
                user_id: *user,
                kind: NotificationKind::CouponIssued,
                message: message.clone(),
                coupon_id: Some(coupon.id),
                created_at: now,
                read: false,
            };
            db.notifications.insert(
                notification.id.get(),
                NotificationRow {
                    notification,
                    read_at: None,
                },
            );
        }
        db.coupons.insert(coupon.id, coupon.clone());
        Ok(coupon)
    }

    async fn get(&self, id: CouponId) -> anyhow::Result<Option<Coupon>> {
        Ok(self.db().coupons.get(&id).cloned())
    }

    async fn deactivate(&self, id: CouponId, _now: Timestamp) -> anyhow::Result<Option<Coupon>> {
        let mut db = self.db();
        Ok(db.coupons.get_mut(&id).map(|coupon| {
            coupon.active = false;
            coupon.clone()
        }))
    }

    async fn issue(
        &self,
        coupon: CouponId,
        user: UserId,
        now: Timestamp,
    ) -> Result<UserCoupon, IssueCouponError> {
        let mut db = self.db();
        let owned = db.user_coupon_of(coupon, user).is_some();
        let definition = db
            .coupons
            .get_mut(&coupon)
            .ok_or(IssueCouponError::NotFound)?;
        if let Some(refusal) = issue_refusal(definition, owned, now) {
            return Err(refusal.into());
        }
        definition.issued_quantity += 1;
        let definition = definition.clone();
        let row = UserCouponRow {
            id: db.seq.user_coupon(),
            coupon_id: coupon,
            user_id: user,
            stored: StoredStatus::Available,
            issued_at: now,
            used_at: None,
            order_id: None,
        };
        db.user_coupons.insert(row.id, row.clone());
        Ok(row.with(&definition, now))
    }

    async fn user_coupons(
        &self,
        user: UserId,
        now: Timestamp,
        page: PageRequest,
    ) -> anyhow::Result<Page<UserCoupon>> {
        let db = self.db();
        let owned = db
            .user_coupons
            .values()
            .rev()
            .filter(|row| row.user_id == user)
            .filter_map(|row| Some(row.with(db.coupons.get(&row.coupon_id)?, now)));
        Ok(keyset(owned, page, Order::Descending, |c| c.id))
    }
}

#[async_trait]
impl NotificationInbox for MemoryStore {
    async fn list(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Notification>> {
        let db = self.db();
        let mine = db
            .notifications
            .values()
            .rev()
            .filter(|row| row.notification.user_id == user)
            .map(|row| row.notification.clone());
        Ok(keyset(mine, page, Order::Descending, |n| n.id.get()))
    }

    async fn mark_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: Timestamp,
    ) -> anyhow::Result<Option<Notification>> {
        let mut db = self.db();
        Ok(db
            .notifications
            .get_mut(&id.get())
            .filter(|row| row.notification.user_id == user)
            .map(|row| {
                row.read_at.get_or_insert(now);
                row.notification.read = true;
                row.notification.clone()
            }))
    }
}
