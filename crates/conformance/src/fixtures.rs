//! What the tests build their cases from, through the ports only.

use crate::Stores;
use ::balance::{
    plan_approve, plan_open_charge, ChargeAmount, GatewayTransactionId, HistoryEntry, NewCharge,
    PaymentMethod,
};
use ::coupon::{CouponName, Discount, DiscountType, NewCoupon, ValidityWindow};
use ::order::plan::RefundRequest;
use ::order::{LineRequest, Order, OrderService, PlaceOrder, RefundItem};
use ::stock::{NewProduct, Price, ProductName, PurchaseLimit, StockDelta, StockLevel};
use kernel::testing::{qty, uid};
use kernel::{
    BeginOutcome, Clock, CouponId, IdempotencyClaim, Money, PageRequest, ProductId, Quantity,
    SystemClock, Timestamp,
};
use std::sync::Arc;
use std::time::Duration;

/// Now, on the wall clock (what the stores record is what the tests give them).
pub fn now() -> Timestamp {
    SystemClock.now()
}

/// A product with this price and stock.
pub async fn product(s: &Stores, price: i64, stock: i64) -> ProductId {
    s.stock
        .create(
            NewProduct {
                name: ProductName::try_from("tea".to_string()).expect("a name"),
                price: Price::try_from(price).expect("a price"),
                stock: StockLevel::try_from(stock).expect("a stock level"),
                max_per_user: None,
            },
            now(),
        )
        .await
        .expect("creating a product")
        .id
}

/// A product with this price and stock that one user may hold at most `limit` units of.
pub async fn limited_product(s: &Stores, price: i64, stock: i64, limit: i64) -> ProductId {
    s.stock
        .create(
            NewProduct {
                name: ProductName::try_from("drop".to_string()).expect("a name"),
                price: Price::try_from(price).expect("a price"),
                stock: StockLevel::try_from(stock).expect("a stock level"),
                max_per_user: Some(PurchaseLimit::try_from(limit).expect("a limit")),
            },
            now(),
        )
        .await
        .expect("creating a product")
        .id
}

/// Restocks (`delta` > 0) or writes off (`delta` < 0) as the stock service does: the
/// store holds every slot and the domain's [`::stock::plan_adjust`] decides.
pub async fn adjust(
    s: &Stores,
    id: ProductId,
    delta: i64,
) -> Result<::stock::Product, ::stock::AdjustStockError> {
    let delta = StockDelta::try_from(delta).expect("a delta");
    s.stock
        .adjust(
            id,
            Box::new(move |slots| ::stock::plan_adjust(slots, delta)),
            now(),
        )
        .await
}

/// The product's stock now.
pub async fn stock_of(s: &Stores, id: ProductId) -> i64 {
    s.stock
        .get(id)
        .await
        .expect("reading a product")
        .expect("the product exists")
        .stock
}

/// A new charge of `amount` for `user`.
pub fn new_charge(user: i64, amount: i64, claim_id: Option<uuid::Uuid>) -> NewCharge {
    NewCharge {
        user_id: uid(user),
        amount: ChargeAmount::try_from(amount).expect("a charge amount"),
        method: PaymentMethod::try_from("card".to_string()).expect("a method"),
        now: now(),
        claim_id,
    }
}

/// Charges `amount` to the user's balance: opens and approves it with the domain's
/// decisions, as the charge service does.
pub async fn charge(s: &Stores, user: i64, amount: i64) {
    let c = new_charge(user, amount, None);
    let amount = c.amount;
    let opened = s
        .balances
        .open_charge(c, Box::new(move |snap| plan_open_charge(snap, amount)))
        .await
        .expect("opening a charge");
    let tx = GatewayTransactionId(format!("tx-{}", opened.id));
    s.balances
        .approve_charge(
            opened.id,
            Box::new(move |c, b| plan_approve(c, b, tx)),
            None,
            now(),
        )
        .await
        .expect("approving a charge");
}

/// The user's balance in won.
pub async fn balance_of(s: &Stores, user: i64) -> i64 {
    s.balances
        .balance(uid(user))
        .await
        .expect("reading a balance")
        .won()
}

/// The user's history, newest first.
pub async fn history_of(s: &Stores, user: i64) -> Vec<HistoryEntry> {
    s.balances
        .history(uid(user), PageRequest::new(100, None).expect("a page"))
        .await
        .expect("reading history")
        .items
}

/// The order use cases over the store (the store runs the domain's decisions).
pub fn orders(s: &Stores) -> OrderService {
    OrderService::new(
        s.orders.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(900),
    )
}

/// Order lines of (product, units).
pub fn lines(items: &[(ProductId, i64)]) -> Vec<LineRequest> {
    items
        .iter()
        .map(|(p, q)| LineRequest {
            product_id: *p,
            quantity: qty(*q),
        })
        .collect()
}

/// An order of these lines by `user`.
pub fn place(user: i64, items: &[(ProductId, i64)], pay_now: bool) -> PlaceOrder {
    PlaceOrder::new(uid(user), lines(items), None, pay_now).expect("an acceptable order")
}

/// An order of these lines with a coupon.
pub fn place_with(
    user: i64,
    items: &[(ProductId, i64)],
    coupon: CouponId,
    pay_now: bool,
) -> PlaceOrder {
    PlaceOrder::new(uid(user), lines(items), Some(coupon), pay_now).expect("an acceptable order")
}

/// A refund of `units` of `product`.
pub fn refund_of(product: ProductId, units: i64) -> RefundRequest {
    RefundRequest::new(
        vec![RefundItem {
            product_id: product,
            quantity: Quantity::try_from(units).expect("units"),
        }],
        None,
    )
    .expect("an acceptable refund")
}

/// What a test coupon is.
pub struct CouponSpec {
    /// The discount.
    pub discount: Discount,
    /// `total_quantity` (`None`: unlimited).
    pub total: Option<i64>,
    /// The window.
    pub from: Timestamp,
    /// The window's end.
    pub until: Timestamp,
    /// The minimum subtotal.
    pub min_order: i64,
    /// Users issued to at creation.
    pub issue_to: Vec<i64>,
}

impl Default for CouponSpec {
    /// 10% off, unlimited, valid from an hour ago for a day, no minimum, nobody issued.
    fn default() -> Self {
        Self {
            discount: Discount::new(DiscountType::Percent, 10).expect("a discount"),
            total: None,
            from: now() - chrono::Duration::hours(1),
            until: now() + chrono::Duration::days(1),
            min_order: 0,
            issue_to: Vec::new(),
        }
    }
}

/// A coupon as `spec` says, created now.
pub async fn coupon(s: &Stores, spec: CouponSpec) -> CouponId {
    let new = NewCoupon::new(
        CouponName::try_from("Welcome".to_string()).expect("a name"),
        spec.discount,
        Money::try_from(spec.min_order).expect("a minimum"),
        spec.total.map(|t| Quantity::try_from(t).expect("a total")),
        ValidityWindow::new(spec.from, spec.until).expect("a window"),
        spec.issue_to.into_iter().map(uid).collect(),
    )
    .expect("an acceptable coupon");
    s.coupons
        .create(new, now())
        .await
        .expect("creating a coupon")
        .id
}

/// A coupon as [`CouponSpec::default`] says, issued at creation to `users`.
pub async fn coupon_for(s: &Stores, users: &[i64]) -> CouponId {
    coupon(
        s,
        CouponSpec {
            issue_to: users.to_vec(),
            ..CouponSpec::default()
        },
    )
    .await
}

/// Takes a fresh claim on `key` for `caller`, as the edge does before the work.
pub async fn claim(s: &Stores, caller: &str, key: &str) -> IdempotencyClaim {
    match s
        .keys
        .begin(caller, key, "hash")
        .await
        .expect("claiming a key")
    {
        BeginOutcome::Claimed(claim_id) => kernel::testing::claim(caller, key, claim_id),
        other => panic!("a fresh key is claimed, got {other:?}"),
    }
}

/// A completion answering 201 with the order's id.
pub fn order_completion(claim: IdempotencyClaim) -> kernel::Completion<Order> {
    kernel::testing::completion(claim, 201, |o: &Order| o.id.get().to_string().into_bytes())
}

/// Runs `task(input)` for each input as a task of its own, all at once (a race); the
/// answers in input order.
pub async fn at_once<I, T, F, Fut>(inputs: I, task: F) -> Vec<T>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = inputs.into_iter().map(|i| tokio::spawn(task(i))).collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("the task ran to its end"))
        .collect()
}
