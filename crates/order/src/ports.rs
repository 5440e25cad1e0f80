//! Ports of the order domain: the errors of its use cases and the store that runs them.

use crate::model::*;
use crate::plan::{OrderPlan, OrderSnapshot, PlaceSnapshot};
use async_trait::async_trait;
use kernel::{Completion, OrderId, Page, PageRequest, ProductId, Timestamp, UserId};

/// Why an order was not placed. Nothing was created or changed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceOrderError {
    /// These products do not exist (every one of them).
    #[error("no such products: {product_ids:?}")]
    ProductNotFound {
        /// The unknown products, ascending id.
        product_ids: Vec<ProductId>,
    },
    /// These products have fewer units than ordered (every one of them).
    #[error("not enough stock for products {product_ids:?}")]
    OutOfStock {
        /// The short products, ascending id.
        product_ids: Vec<ProductId>,
    },
    /// The user would hold more units of these products than their `max_per_user`.
    #[error("the purchase limit of products {product_ids:?} would be passed")]
    PurchaseLimitExceeded {
        /// The limited products, ascending id.
        product_ids: Vec<ProductId>,
    },
    /// No such coupon.
    #[error("no such coupon")]
    CouponNotFound,
    /// The coupon exists but cannot be used for this order, for this reason.
    #[error("the coupon cannot be used for this order: {0}")]
    CouponNotUsable(coupon::Unusable),
    /// With `pay_now`, the balance does not cover the total.
    #[error(transparent)]
    InsufficientBalance(balance::InsufficientBalance),
    /// Ordering from the cart, and the cart is empty.
    #[error("the cart is empty")]
    EmptyCart,
    /// Ordering from the cart, and its lines are not an acceptable order (more than
    /// 50 lines).
    #[error("the cart's lines are not an acceptable order")]
    InvalidCart(Vec<InvalidField>),
    /// The store failed (or another request with the same `Idempotency-Key` completed
    /// first: [`kernel::ClaimLost`] inside).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why an order was not paid. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum PayOrderError {
    /// No such order.
    #[error("no such order")]
    NotFound,
    /// The caller may not act on this order.
    #[error("this order belongs to another user")]
    Forbidden,
    /// Only a PENDING order can be paid.
    #[error("a {} order cannot be paid", .0.as_str())]
    InvalidState(OrderStatus),
    /// The order passed its `expires_at`.
    #[error("the order expired")]
    Expired,
    /// The balance does not cover the total; the order stays PENDING.
    #[error(transparent)]
    InsufficientBalance(balance::InsufficientBalance),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why an order was not cancelled. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum CancelOrderError {
    /// No such order.
    #[error("no such order")]
    NotFound,
    /// The caller may not act on this order.
    #[error("this order belongs to another user")]
    Forbidden,
    /// A CANCELLED order (or, for expiry, a PAID one) cannot be cancelled.
    #[error("a {} order cannot be cancelled", .0.as_str())]
    InvalidState(OrderStatus),
    /// The expiry sweep found the order not past its `expires_at` (any more).
    #[error("the order is not due to expire")]
    NotDue,
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why part of an order was not refunded. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum RefundOrderError {
    /// No such order.
    #[error("no such order")]
    NotFound,
    /// The caller may not act on this order.
    #[error("this order belongs to another user")]
    Forbidden,
    /// Only a PAID order can be refunded.
    #[error("a {} order cannot be refunded", .0.as_str())]
    InvalidState(OrderStatus),
    /// More units than ordered and not yet refunded, or products not in the order.
    #[error("the refund exceeds the order for products {product_ids:?}")]
    ExceedsOrder {
        /// The offending products.
        product_ids: Vec<ProductId>,
    },
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The decision a store calls to place an order (normally [`crate::plan::plan_place`]).
pub type PlaceDecision =
    Box<dyn FnOnce(&PlaceSnapshot) -> Result<OrderPlan, PlaceOrderError> + Send>;
/// A decision on an existing order, refusing with `E`.
pub type OrderDecision<E> = Box<dyn FnOnce(&OrderSnapshot) -> Result<OrderPlan, E> + Send>;
/// The decision a store calls to pay an order (normally [`crate::plan::plan_pay`]).
pub type PayDecision = OrderDecision<PayOrderError>;
/// The decision a store calls to cancel an order (normally [`crate::plan::plan_cancel`]).
pub type CancelDecision = OrderDecision<CancelOrderError>;
/// The decision a store calls to refund part of an order (normally
/// [`crate::plan::plan_refund`]).
pub type RefundDecision = OrderDecision<RefundOrderError>;

/// Filters of the admin order search; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only this user's orders.
    pub user_id: Option<UserId>,
    /// Created at or after (inclusive).
    pub created_from: Option<Timestamp>,
    /// Created before (exclusive).
    pub created_to: Option<Timestamp>,
}

impl OrderFilter {
    /// Whether a creation-time bound is given: the search then runs in creation-time
    /// order (see [`OrderStore::search`]).
    pub fn has_created_range(&self) -> bool {
        self.created_from.is_some() || self.created_to.is_some()
    }
}

/// Persistence of orders.
///
/// Each use case is ONE transaction in which the store: locks and reads what the
/// decision needs, in the lock order every store shares so none can deadlock (the order
/// row; then product rows by ascending id; then the user coupon row; then the balance
/// row); calls the decision it is given with that snapshot; and writes the
/// [`OrderPlan`] the decision returns, all of it (order and lines, stock, coupon,
/// balance and its history row, payment, refund, units sold, cart, outbox event) plus
/// the request's `Idempotency-Key` record when a completion is given, then commits. A
/// refusal commits nothing. The answer is the plan's, not read back.
///
/// Guarantees every store MUST keep, whatever the number of concurrent calls across
/// processes: stock never below zero; a balance never below zero; a coupon used by at
/// most one order; an order paid at most once and refunded at most its total; the
/// completion recorded only if its claim is still in progress (otherwise the whole
/// transaction is rolled back and `Unexpected(ClaimLost)` returned).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Places an order. Reads under lock: the products of the command's lines (or of
    /// the user's cart lines, which it also reads, with `from_cart`), the user's copy of
    /// the coupon and the coupon's definition, and with `pay_now` the user's balance; it
    /// allocates the order's (and payment's) id.
    async fn place(
        &self,
        command: PlaceOrder,
        decide: PlaceDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PlaceOrderError>;

    /// Pays an order. Reads under lock the order (`NotFound` when missing) and its
    /// owner's balance.
    async fn pay(
        &self,
        id: OrderId,
        decide: PayDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, PayOrderError>;

    /// Cancels an order. Reads under lock the order (`NotFound` when missing), its
    /// products, its coupon and its owner's balance.
    async fn cancel(
        &self,
        id: OrderId,
        decide: CancelDecision,
        completion: Option<Completion<Order>>,
    ) -> Result<Order, CancelOrderError>;

    /// Refunds part of an order. Reads under lock the order (`NotFound` when missing),
    /// its products and its owner's balance; allocates the refund's id. Answers the new
    /// refund (the plan's `refund`).
    async fn refund(
        &self,
        id: OrderId,
        decide: RefundDecision,
        completion: Option<Completion<Refund>>,
    ) -> Result<Refund, RefundOrderError>;

    /// Up to `limit` PENDING orders whose `expires_at` is not after `now`, oldest first
    /// (a plain read: the expiry sweep then cancels each, deciding under lock).
    async fn due_for_expiry(&self, now: Timestamp, limit: i64) -> anyhow::Result<Vec<OrderId>>;

    /// An order, with its lines, payment and refunds.
    async fn get(&self, id: OrderId) -> anyhow::Result<Option<Order>>;

    /// The user's orders, newest first (descending id).
    async fn list_for_user(&self, user: UserId, page: PageRequest) -> anyhow::Result<Page<Order>>;

    /// Orders matching every filter given, newest first: descending id, or, when a
    /// created range is given ([`OrderFilter::has_created_range`]), descending
    /// `(created_at, id)` (the same order but for orders placed in the same instant by
    /// concurrent transactions), so that an index on the creation time serves a range
    /// anywhere in the history. The cursor is an order id either way. MUST stay fast on
    /// millions of orders (an index serves each filter).
    async fn search(&self, filter: OrderFilter, page: PageRequest) -> anyhow::Result<Page<Order>>;

    /// Units sold per product in orders PAID at or after `since` and not cancelled,
    /// refunded units left out, most first, ties by ascending product id.
    async fn best_sellers(&self, since: Timestamp, limit: i64)
        -> anyhow::Result<Vec<ProductSales>>;
}
