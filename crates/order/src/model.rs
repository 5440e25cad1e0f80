use chrono::{DateTime, Utc};
use kernel::{CouponId, Money, OrderId, ProductId, Quantity, Timestamp, UserId};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Paid,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Paid => "PAID",
            PaymentStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PAID" => Some(PaymentStatus::Paid),
            "REFUNDED" => Some(PaymentStatus::Refunded),
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

/// A validated request to place an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    user_id: UserId,
    lines: Vec<LineRequest>,
    coupon_id: Option<CouponId>,
    pay_now: bool,
}

impl PlaceOrder {
    /// 1..=50 lines, distinct products, 1..=1000 units a line.
    pub fn new(
        user_id: UserId,
        lines: Vec<LineRequest>,
        coupon_id: Option<CouponId>,
        pay_now: bool,
    ) -> Result<Self, Vec<InvalidField>> {
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
            Ok(Self {
                user_id,
                lines,
                coupon_id,
                pay_now,
            })
        } else {
            Err(problems)
        }
    }

    pub fn user_id(&self) -> UserId {
        self.user_id
    }
    pub fn lines(&self) -> &[LineRequest] {
        &self.lines
    }
    pub fn coupon_id(&self) -> Option<CouponId> {
        self.coupon_id
    }
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

/// The payment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderPayment {
    pub id: i64,
    pub amount: Money,
    pub status: PaymentStatus,
    pub paid_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
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
}

/// A new order as the store must save it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub command: PlaceOrder,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Units of a product sold in paid, not cancelled, orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    pub product: stock::Product,
    pub sold_quantity: i64,
}
