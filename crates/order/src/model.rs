//! Orders, their lines, refunds and the commands that create them.

use chrono::{DateTime, Utc};
use kernel::{CouponId, Money, OrderId, ProductId, Quantity, RefundId, UserId};
use serde::{Deserialize, Serialize};

/// An order has 1..=50 lines.
pub const MAX_LINES: usize = 50;
/// A line orders 1..=1000 units.
pub const MAX_LINE_QUANTITY: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
/// Where an order is in its life: PENDING until paid or cancelled, PAID, CANCELLED.
pub enum OrderStatus {
    /// Placed, waiting to be paid until `expires_at`.
    Pending,
    /// Paid from the balance (partial refunds keep it PAID).
    Paid,
    /// Cancelled on request or expired; final.
    Cancelled,
}

impl OrderStatus {
    /// The wire form: `PENDING`, `PAID` or `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Paid => "PAID",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// The status of a wire form, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(OrderStatus::Pending),
            "PAID" => Some(OrderStatus::Paid),
            "CANCELLED" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
/// Why an order was cancelled.
pub enum CancelReason {
    /// Its owner or an admin asked.
    UserRequest,
    /// It was not paid before `expires_at`.
    Expired,
}

impl CancelReason {
    /// The wire form: `USER_REQUEST` or `EXPIRED`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::UserRequest => "USER_REQUEST",
            CancelReason::Expired => "EXPIRED",
        }
    }

    /// The reason of a wire form, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "USER_REQUEST" => Some(CancelReason::UserRequest),
            "EXPIRED" => Some(CancelReason::Expired),
            _ => None,
        }
    }
}

/// One requested line of a new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRequest {
    /// The product.
    pub product_id: ProductId,
    /// How many units (1..=1000 in an order).
    pub quantity: Quantity,
}

/// A product as priced at the moment of ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedProduct {
    /// The product.
    pub id: ProductId,
    /// Its name now.
    pub name: String,
    /// Its price now.
    pub unit_price: Money,
}

/// A field of a place-order request that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The field, as the request names it (`items[2].quantity`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// What a new order orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Items {
    /// These lines (1..=50, distinct products, 1..=1000 units each).
    Lines(Vec<LineRequest>),
    /// The lines of the user's cart at the moment of ordering.
    FromCart,
}

/// A validated request to place an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    user_id: UserId,
    items: Items,
    coupon_id: Option<CouponId>,
    pay_now: bool,
}

/// Checks the lines of an order: 1..=50 lines, distinct products, 1..=1000 units a line.
/// Names every offending field (`items`, `items[i].quantity`, `items[i].product_id`).
pub fn check_lines(lines: &[LineRequest]) -> Result<(), Vec<InvalidField>> {
    let mut problems = Vec::new();
    if lines.is_empty() || lines.len() > MAX_LINES {
        problems.push(InvalidField {
            field: "items".into(),
            message: format!("an order has 1 to {MAX_LINES} lines, got {}", lines.len()),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        if line.quantity.get() > MAX_LINE_QUANTITY {
            problems.push(InvalidField {
                field: format!("items[{i}].quantity"),
                message: format!("must be between 1 and {MAX_LINE_QUANTITY}"),
            });
        }
        if !seen.insert(line.product_id) {
            problems.push(InvalidField {
                field: format!("items[{i}].product_id"),
                message: format!("product {} appears more than once", line.product_id),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

impl PlaceOrder {
    /// An order of these lines ([`check_lines`] decides what is acceptable).
    pub fn new(
        user_id: UserId,
        lines: Vec<LineRequest>,
        coupon_id: Option<CouponId>,
        pay_now: bool,
    ) -> Result<Self, Vec<InvalidField>> {
        check_lines(&lines)?;
        Ok(Self {
            user_id,
            items: Items::Lines(lines),
            coupon_id,
            pay_now,
        })
    }

    /// An order of the user's cart lines (checked when the cart is read, under lock).
    pub fn from_cart(user_id: UserId, coupon_id: Option<CouponId>, pay_now: bool) -> Self {
        Self {
            user_id,
            items: Items::FromCart,
            coupon_id,
            pay_now,
        }
    }

    /// Who orders.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }
    /// What is ordered.
    pub fn items(&self) -> &Items {
        &self.items
    }
    /// The requested lines (empty when ordering from the cart).
    pub fn lines(&self) -> &[LineRequest] {
        match &self.items {
            Items::Lines(lines) => lines,
            Items::FromCart => &[],
        }
    }
    /// Whether the lines are the cart's.
    pub fn from_cart_lines(&self) -> bool {
        matches!(self.items, Items::FromCart)
    }
    /// The coupon to use, if any.
    pub fn coupon_id(&self) -> Option<CouponId> {
        self.coupon_id
    }
    /// Pay at once from the balance.
    pub fn pay_now(&self) -> bool {
        self.pay_now
    }
}

/// A line of a placed order, priced when it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: ProductId,
    /// Its name when the order was placed.
    pub name: String,
    /// Its price when the order was placed.
    pub unit_price: Money,
    /// How many units.
    pub quantity: Quantity,
    /// `unit_price × quantity`.
    pub subtotal: Money,
}

pub use payment::{OrderPayment, PaymentStatus};

/// Units of one product given back by a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RefundItem {
    /// The product.
    pub product_id: ProductId,
    /// How many units.
    pub quantity: Quantity,
}

/// A partial refund of a paid order, serialised as API.md's `Refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    /// Its id.
    pub id: RefundId,
    /// The refunded order.
    pub order_id: OrderId,
    /// The units given back (ascending product id).
    pub items: Vec<RefundItem>,
    /// The money given back to the balance.
    pub amount: Money,
    /// Why, as the caller said (at most 200 characters).
    pub reason: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An order, serialised exactly as API.md's `Order` (also the `order` of outbound events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Its id.
    pub id: OrderId,
    /// Who ordered it.
    pub user_id: UserId,
    /// PENDING, PAID or CANCELLED.
    pub status: OrderStatus,
    /// The lines, in the order asked for.
    pub items: Vec<OrderLine>,
    /// The sum of the lines' subtotals.
    pub subtotal: Money,
    /// What the coupon took off (never more than the subtotal).
    pub discount: Money,
    /// `subtotal - discount`: what is paid.
    pub total: Money,
    /// The coupon used, if any.
    pub coupon_id: Option<CouponId>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When an unpaid order expires.
    pub expires_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    pub cancel_reason: Option<CancelReason>,
    /// The payment (PAID, or REFUNDED once all of it went back).
    pub payment: Option<OrderPayment>,
    /// Partial refunds, oldest first.
    pub refunds: Vec<Refund>,
    /// What the partial refunds gave back so far.
    pub refunded_total: Money,
}

impl Order {
    /// Units of each line not refunded yet (same order as `items`).
    pub fn unrefunded(&self) -> Vec<(ProductId, u32)> {
        self.items
            .iter()
            .map(|line| {
                let refunded: u32 = self
                    .refunds
                    .iter()
                    .flat_map(|r| r.items.iter())
                    .filter(|i| i.product_id == line.product_id)
                    .map(|i| i.quantity.get())
                    .sum();
                (
                    line.product_id,
                    line.quantity.get().saturating_sub(refunded),
                )
            })
            .collect()
    }
}

/// Units of a product sold in paid, not cancelled, orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    /// The product (as it is now).
    pub product: stock::Product,
    /// Units sold in paid orders, refunded units left out.
    pub sold_quantity: i64,
}
