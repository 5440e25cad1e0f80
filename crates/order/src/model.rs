use chrono::{DateTime, Utc};
use kernel::{CouponId, Money, OrderId, ProductId, Quantity, RefundId, UserId};
use serde::{Deserialize, Serialize};

/// An order has 1..=50 lines.
pub const MAX_LINES: usize = 50;
/// A line orders 1..=1000 units.
pub const MAX_LINE_QUANTITY: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Paid,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Paid => "PAID",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

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
pub enum CancelReason {
    UserRequest,
    Expired,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::UserRequest => "USER_REQUEST",
            CancelReason::Expired => "EXPIRED",
        }
    }

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
    pub product_id: ProductId,
    pub quantity: Quantity,
}

/// A product as priced at the moment of ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedProduct {
    pub id: ProductId,
    pub name: String,
    pub unit_price: Money,
}

/// A field of a place-order request that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub field: String,
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
    pub product_id: ProductId,
    pub name: String,
    pub unit_price: Money,
    pub quantity: Quantity,
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
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub subtotal: Money,
    pub discount: Money,
    pub total: Money,
    pub coupon_id: Option<CouponId>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
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
    pub product: stock::Product,
    pub sold_quantity: i64,
}
