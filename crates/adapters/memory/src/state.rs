//! The tables of the in-memory database, and its sequences.

use balance::{Charge, HistoryEntry};
use chrono::{DateTime, Utc};
use coupon::{Coupon, Notification, StoredStatus, UserCoupon, UserCouponStatus};
use kernel::{ChargeId, CouponId, Money, OrderId, ProductId, RecordedResponse, Timestamp, UserId};
use order::cart::CartQuantity;
use order::Order;
use outbox::{Event, OutboxStatus};
use std::collections::{BTreeMap, HashMap};
use stock::{Product, Slot};

/// Every table; the [`crate::MemoryStore`]'s one lock guards all of them together.
#[derive(Default)]
pub(crate) struct State {
    pub seq: Sequences,
    /// Products; each one's `stock` is kept equal to the sum of its slots.
    pub products: BTreeMap<ProductId, Product>,
    /// Each product's stock slots, ascending index.
    pub slots: BTreeMap<ProductId, Vec<Slot>>,
    pub coupons: BTreeMap<CouponId, Coupon>,
    pub user_coupons: BTreeMap<i64, UserCouponRow>,
    pub notifications: BTreeMap<i64, NotificationRow>,
    pub balances: BTreeMap<UserId, BalanceRow>,
    pub history: BTreeMap<i64, HistoryEntry>,
    pub charges: BTreeMap<ChargeId, ChargeRow>,
    pub carts: BTreeMap<(UserId, ProductId), CartQuantity>,
    pub orders: BTreeMap<OrderId, Order>,
    /// Units sold per (order, product), for best sellers.
    pub sales: BTreeMap<(OrderId, ProductId), SaleRow>,
    pub outbox: BTreeMap<i64, OutboxRow>,
    pub keys: HashMap<(String, String), KeyRow>,
}

/// The next value of each id sequence (ids start at 1, as in PostgreSQL).
#[derive(Default)]
pub(crate) struct Sequences {
    product: i64,
    coupon: i64,
    user_coupon: i64,
    notification: i64,
    history: i64,
    charge: i64,
    order: i64,
    payment: i64,
    refund: i64,
    outbox: i64,
}

macro_rules! next_ids {
    ($($name:ident),+) => {
        impl Sequences {
            $(
                pub fn $name(&mut self) -> i64 {
                    self.$name += 1;
                    self.$name
                }
            )+
        }
    };
}

next_ids!(
    product,
    coupon,
    user_coupon,
    notification,
    history,
    charge,
    order,
    payment,
    refund,
    outbox
);

/// Turns a sequence value into an id type (sequences start at 1, so it always fits).
pub(crate) fn id<T: TryFrom<i64>>(value: i64) -> T {
    T::try_from(value).unwrap_or_else(|_| unreachable!("a sequence value is a positive id"))
}

/// A user's copy of a coupon, as stored.
#[derive(Debug, Clone)]
pub(crate) struct UserCouponRow {
    pub id: i64,
    pub coupon_id: CouponId,
    pub user_id: UserId,
    pub stored: StoredStatus,
    pub issued_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub order_id: Option<OrderId>,
}

impl UserCouponRow {
    /// The copy with its coupon's definition and its status at `now`.
    pub fn with(&self, coupon: &Coupon, now: Timestamp) -> UserCoupon {
        UserCoupon {
            id: self.id,
            coupon: coupon.clone(),
            user_id: self.user_id,
            stored: self.stored,
            status: UserCouponStatus::derive(self.stored, &coupon.window, now),
            issued_at: self.issued_at,
            used_at: self.used_at,
            order_id: self.order_id,
        }
    }
}

/// A notification and when it was first read.
#[derive(Debug, Clone)]
pub(crate) struct NotificationRow {
    pub notification: Notification,
    pub read_at: Option<Timestamp>,
}

/// A user's balance row.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BalanceRow {
    pub balance: Money,
    pub pending_credit: Money,
}

/// A charge and the request that opened it.
#[derive(Debug, Clone)]
pub(crate) struct ChargeRow {
    pub charge: Charge,
    pub claim_id: Option<uuid::Uuid>,
}

/// Units of a product an order counts as sold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SaleRow {
    pub quantity: i64,
    pub paid_at: Timestamp,
}

/// One outbox row and its attempt log.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub event: Event,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub log: Vec<outbox::AttemptOutcome>,
}

/// Where an `Idempotency-Key` stands.
#[derive(Debug, Clone)]
pub(crate) enum KeyStatus {
    InProgress,
    Completed(RecordedResponse),
}

/// One `Idempotency-Key`.
#[derive(Debug, Clone)]
pub(crate) struct KeyRow {
    pub request_hash: String,
    pub status: KeyStatus,
    pub locked_until: Timestamp,
    pub expires_at: Timestamp,
    pub claim_id: uuid::Uuid,
}

impl State {
    /// Writes an event to the outbox: PENDING, due at once.
    pub fn enqueue(&mut self, event: Event) {
        let id = self.seq.outbox();
        self.outbox.insert(
            id,
            OutboxRow {
                id,
                status: OutboxStatus::Pending,
                attempts: 0,
                last_error: None,
                next_attempt_at: event.occurred_at,
                created_at: event.occurred_at,
                delivered_at: None,
                log: Vec::new(),
                event,
            },
        );
    }
}
