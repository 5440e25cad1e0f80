//! Ports of the order domain.

use crate::model::*;
use async_trait::async_trait;
use kernel::{Money, OrderId, Page, PageRequest, ProductId, Timestamp, UserId};

#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    #[error("no such products: {product_ids:?}")]
    ProductNotFound { product_ids: Vec<ProductId> },
    #[error("not enough stock for products {product_ids:?}")]
    OutOfStock { product_ids: Vec<ProductId> },
    #[error("no such coupon")]
    CouponNotFound,
    #[error("the coupon cannot be used for this order")]
    CouponNotUsable,
    #[error("the balance {balance} does not cover {required}")]
    InsufficientBalance { balance: Money, required: Money },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CancelOrderError {
    #[error("no such order")]
    NotFound,
    #[error("a {} order cannot be cancelled", .0.as_str())]
    InvalidState(OrderStatus),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Persistence of orders. Every method is one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Places an order, all or nothing. MUST, in one transaction:
    /// reserve every line (stock never below zero; NotFound names every unknown product
    /// and OutOfStock every short one, and then nothing is reserved), mark the coupon
    /// USED for this order (NotFound / NotUsable otherwise), price the lines with
    /// [`crate::rules::price_lines`] and [`crate::rules::totals`], save the order PENDING
    /// with `expires_at`; and when `pay_now` is set, pay it exactly as
    /// `payment::PaymentStore::pay` does (InsufficientBalance: nothing at all is created).
    async fn place(&self, order: NewOrder) -> Result<Order, PlaceOrderError>;

    /// Cancels an order under a row lock, as [`crate::rules::plan_cancel`] decides: returns
    /// its stock and coupon; for a PAID order also refunds the total (history REFUND),
    /// marks the payment REFUNDED and queues an `order.cancelled` event. MUST refund at
    /// most once, whatever the number of concurrent cancels.
    async fn cancel(
        &self,
        id: OrderId,
        reason: CancelReason,
        now: Timestamp,
    ) -> Result<Order, CancelOrderError>;

    /// Cancels as EXPIRED up to `batch` PENDING orders whose `expires_at` is not after
    /// `now`, with the same compensation as `cancel`. MUST skip orders locked by others
    /// (several instances sweep at once) and return the ids it cancelled.
    async fn expire_due(&self, now: Timestamp, batch: i64) -> anyhow::Result<Vec<OrderId>>;

    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>>;

    /// Who placed the order (one cheap read, for authorisation before acting on it).
    async fn owner(&self, id: OrderId) -> anyhow::Result<Option<UserId>>;

    /// The user's orders, newest first (descending id).
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Order>>;

    /// Units sold per product in orders PAID at or after `since` and not cancelled, most
    /// first, ties by ascending product id.
    async fn best_sellers(&self, since: Timestamp, limit: i64)
        -> anyhow::Result<Vec<ProductSales>>;
}
