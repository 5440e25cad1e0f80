//! The order use cases as pure decisions: each takes the command, a snapshot of the
//! state its store read under lock, and the moment, and returns the whole plan of what
//! the use case does (an [`OrderPlan`]) or the reason it refuses. No I/O: a store of any
//! kind loads and locks the snapshot, calls the decision, and writes the plan.
//!
//! A refusal returns no plan, so it changes nothing.

use crate::events::{EventType, OutboundEvent};
use crate::model::*;
use crate::ports::{CancelOrderError, PayOrderError, PlaceOrderError, RefundOrderError};
use crate::rules::{cancel_effect, check_payable, price_lines, totals, CancelEffect, NotPayable};
use balance::BalanceChange;
use kernel::{Actor, Money, OrderId, ProductId, RefundId, Timestamp};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A product as its store read it when an order is placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSnapshot {
    /// The product.
    pub id: ProductId,
    /// Its name now (copied onto the order line).
    pub name: String,
    /// Its price now (the order keeps it).
    pub price: Money,
    /// The slots of its stock this order holds (locked): enough to cover the ordered
    /// quantity when the product has that many units in all, otherwise every slot (so
    /// their sum is the product's exact stock and a refusal is exact).
    pub slots: Vec<stock::Slot>,
    /// Its purchase limit, if any.
    pub max_per_user: Option<stock::PurchaseLimit>,
    /// With a limit: the units of it the ordering user holds in PENDING and PAID
    /// orders, refunded units left out (read under a lock that serialises the user's
    /// orders); 0 without a limit.
    pub held: i64,
}

/// The coupon an order asks to use, as its store read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponSnapshot {
    /// The user's copy (locked), `None` when the user does not own the coupon. Its
    /// `coupon` is the definition.
    pub owned: Option<coupon::UserCoupon>,
}

/// What placing an order needs, read under lock in the lock order (products by
/// ascending id, then the user's coupon, then the balance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceSnapshot {
    /// The ordered products that exist (locked). Products that do not exist are absent.
    pub products: Vec<ProductSnapshot>,
    /// The user's cart lines, read only when ordering from the cart.
    pub cart: Vec<LineRequest>,
    /// The coupon asked for: `None` when none was asked for or no such coupon exists.
    pub coupon: Option<CouponSnapshot>,
    /// With `pay_now`, the user's balance (locked); `None` when the user has no balance
    /// row (a balance of zero) or the order is not paid now.
    pub balance: Option<Money>,
    /// The id the new order gets (allocated by the store).
    pub order_id: OrderId,
    /// The id its payment gets with `pay_now` (allocated by the store).
    pub payment_id: i64,
}

/// What paying, cancelling or refunding an order needs, read under lock in the lock
/// order (the order, its products by ascending id, its coupon, the owner's balance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSnapshot {
    /// The order as it is (lines, payment, refunds), locked.
    pub order: Order,
    /// The row id of the user coupon this order uses, if any (locked).
    pub user_coupon_id: Option<i64>,
    /// For each product of the order, one slot of its stock (locked), into which units
    /// given back go.
    pub slots: Vec<(ProductId, stock::Slot)>,
    /// The owner's balance (locked); `None` when the owner has no balance row.
    pub balance: Option<Money>,
    /// The id a new payment gets (allocated by the store).
    pub payment_id: i64,
    /// The id a new refund gets (allocated by the store).
    pub refund_id: RefundId,
}

/// When and under which event id a use case happens (chosen by the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Now.
    pub now: Timestamp,
    /// The id of the outbound event, if the use case queues one.
    pub event_id: Uuid,
}

/// How the order row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderWrite {
    /// A new order: the row and its lines.
    Insert,
    /// An existing order whose status was `from` when it was read (a store SHOULD guard
    /// the update with it).
    Update {
        /// The status the decision saw.
        from: OrderStatus,
    },
}

/// Units taken from (negative) or given back to (positive) one slot of a product's
/// stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StockChange {
    /// The product.
    pub product_id: ProductId,
    /// The slot.
    pub slot: i16,
    /// The signed change.
    pub delta: i64,
}

/// What happens to the coupon an order uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponChange {
    /// The user coupon (row id) becomes USED by the order.
    Use {
        /// The user coupon row.
        user_coupon_id: i64,
    },
    /// The user coupon (row id) becomes AVAILABLE again.
    Restore {
        /// The user coupon row.
        user_coupon_id: i64,
    },
}

/// Units of a product this order counts as sold (for popular products) after the use
/// case: `quantity` 0 removes the product's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleChange {
    /// The product.
    pub product_id: ProductId,
    /// Units sold after the change.
    pub quantity: i64,
    /// When the order was paid.
    pub paid_at: Timestamp,
}

/// Every effect of one order use case. A store writes all of it in one transaction, or
/// nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPlan {
    /// When the use case happens (every row it writes carries this time).
    pub at: Timestamp,
    /// The order after the use case: what the answer shows and the event carries. Its
    /// `payment` is the payment row as it must be (inserted or updated).
    pub order: Order,
    /// Insert or update the order row.
    pub write: OrderWrite,
    /// Stock taken or given back, ascending (product, slot).
    pub stock: Vec<StockChange>,
    /// The coupon used or restored.
    pub coupon: Option<CouponChange>,
    /// The balance change and its history row.
    pub balance: Option<BalanceChange>,
    /// A new partial refund.
    pub refund: Option<Refund>,
    /// Units sold (popular products) after the change, per product.
    pub sales: Vec<SaleChange>,
    /// Products that leave the user's cart.
    pub cart_removal: Vec<ProductId>,
    /// The event queued for the data platform.
    pub event: Option<OutboundEvent>,
}

fn event(
    moment: Moment,
    kind: EventType,
    order: &Order,
    refund: Option<&Refund>,
) -> Result<OutboundEvent, serde_json::Error> {
    let body = serde_json::to_value(order)?;
    Ok(match refund {
        Some(r) => OutboundEvent::refunded(
            moment.event_id,
            order.id.get(),
            moment.now,
            body,
            serde_json::to_value(r)?,
        ),
        None => OutboundEvent::new(moment.event_id, kind, order.id.get(), moment.now, body),
    })
}

/// Units given back to the slot the snapshot holds for each product.
fn give_back(
    snapshot: &OrderSnapshot,
    units: impl Iterator<Item = (ProductId, i64)>,
) -> Result<Vec<StockChange>, String> {
    units
        .map(|(product_id, quantity)| {
            let (_, slot) = snapshot
                .slots
                .iter()
                .find(|(p, _)| *p == product_id)
                .ok_or_else(|| format!("no slot of product {product_id} held"))?;
            let change = stock::give_back_to_slot(*slot, quantity);
            Ok(StockChange {
                product_id,
                slot: change.index,
                delta: change.delta,
            })
        })
        .collect()
}

fn unexpected<E: From<anyhow::Error>>(what: impl std::fmt::Display) -> E {
    E::from(anyhow::anyhow!("{what}"))
}

fn sold(order: &Order, paid_at: Timestamp) -> Vec<SaleChange> {
    let mut sales: BTreeMap<ProductId, i64> = BTreeMap::new();
    for (product, units) in order.unrefunded() {
        *sales.entry(product).or_default() += i64::from(units);
    }
    sales
        .into_iter()
        .map(|(product_id, quantity)| SaleChange {
            product_id,
            quantity,
            paid_at,
        })
        .collect()
}

/// Placing an order (API.md, Orders): every line's product exists and is in stock (all
/// or nothing; every unknown product named, else every short one); the lines are
/// priced at today's prices; the coupon, if any, must be usable (its discount never
/// exceeds the subtotal); the order is saved PENDING until `expires_at`. With
/// `pay_now` it is paid at once as [`plan_pay`] would, and without enough balance
/// nothing at all is created.
pub fn plan_place(
    command: &PlaceOrder,
    snapshot: &PlaceSnapshot,
    moment: Moment,
    expires_at: Timestamp,
) -> Result<OrderPlan, PlaceOrderError> {
    let lines: Vec<LineRequest> = match command.items() {
        Items::Lines(lines) => lines.clone(),
        Items::FromCart if snapshot.cart.is_empty() => return Err(PlaceOrderError::EmptyCart),
        Items::FromCart => {
            let lines = snapshot.cart.clone();
            check_lines(&lines).map_err(PlaceOrderError::InvalidCart)?;
            lines
        }
    };
    let missing: Vec<ProductId> = {
        let mut ids: Vec<ProductId> = lines
            .iter()
            .map(|l| l.product_id)
            .filter(|id| !snapshot.products.iter().any(|p| p.id == *id))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    if !missing.is_empty() {
        return Err(PlaceOrderError::ProductNotFound {
            product_ids: missing,
        });
    }
    let mut over_limit: Vec<ProductId> = lines
        .iter()
        .filter_map(|l| {
            let p = snapshot.products.iter().find(|p| p.id == l.product_id)?;
            let limit = p.max_per_user?;
            (p.held + i64::from(l.quantity.get()) > limit.get()).then_some(p.id)
        })
        .collect();
    if !over_limit.is_empty() {
        over_limit.sort();
        return Err(PlaceOrderError::PurchaseLimitExceeded {
            product_ids: over_limit,
        });
    }
    let reserve: Vec<stock::ReserveLine> = lines
        .iter()
        .map(|l| stock::ReserveLine {
            product_id: l.product_id,
            quantity: l.quantity,
        })
        .collect();
    let available: Vec<stock::Available> = snapshot
        .products
        .iter()
        .map(|p| stock::Available {
            product_id: p.id,
            stock: stock::units_in(&p.slots),
        })
        .collect();
    let reservation = stock::plan_reservation(&reserve, &available).map_err(|e| match e {
        stock::ReserveError::NotFound { product_ids } => {
            PlaceOrderError::ProductNotFound { product_ids }
        }
        stock::ReserveError::OutOfStock { product_ids } => {
            PlaceOrderError::OutOfStock { product_ids }
        }
    })?;
    let priced: Vec<PricedProduct> = snapshot
        .products
        .iter()
        .map(|p| PricedProduct {
            id: p.id,
            name: p.name.clone(),
            unit_price: p.price,
        })
        .collect();
    let (items, subtotal) = price_lines(&lines, &priced).map_err(unexpected::<PlaceOrderError>)?;
    let user = command.user_id();
    let order_id = snapshot.order_id;

    let (discount, coupon) = match command.coupon_id() {
        None => (Money::ZERO, None),
        Some(_) => {
            let asked = snapshot
                .coupon
                .as_ref()
                .ok_or(PlaceOrderError::CouponNotFound)?;
            let owned = asked.owned.as_ref();
            let decision = coupon::decide_use(owned, user, order_id, subtotal, moment.now)
                .map_err(PlaceOrderError::CouponNotUsable)?;
            let user_coupon_id = owned
                .map(|o| o.id)
                .ok_or_else(|| unexpected::<PlaceOrderError>("a usable coupon nobody owns"))?;
            (
                decision.discount(),
                Some(CouponChange::Use { user_coupon_id }),
            )
        }
    };
    let t = totals(subtotal, discount);
    let mut order = Order {
        id: order_id,
        user_id: user,
        status: OrderStatus::Pending,
        items,
        subtotal: t.subtotal,
        discount: t.discount,
        total: t.total,
        coupon_id: command.coupon_id(),
        created_at: moment.now,
        expires_at,
        paid_at: None,
        cancelled_at: None,
        cancel_reason: None,
        payment: None,
        refunds: Vec::new(),
        refunded_total: Money::ZERO,
    };
    let mut stock = Vec::new();
    for r in &reservation {
        let product = snapshot
            .products
            .iter()
            .find(|p| p.id == r.product_id)
            .ok_or_else(|| unexpected::<PlaceOrderError>("a reserved product not read"))?;
        let taken = stock::take_from_slots(&product.slots, r.quantity).ok_or_else(|| {
            unexpected::<PlaceOrderError>("the held slots do not cover a reservation")
        })?;
        stock.extend(taken.into_iter().map(|c| StockChange {
            product_id: r.product_id,
            slot: c.index,
            delta: c.delta,
        }));
    }
    let mut plan = OrderPlan {
        at: moment.now,
        order: order.clone(),
        write: OrderWrite::Insert,
        stock,
        coupon,
        balance: None,
        refund: None,
        sales: Vec::new(),
        cart_removal: Vec::new(),
        event: None,
    };
    if command.pay_now() {
        let paid = payment::pay(
            user,
            order_id,
            order.total,
            snapshot.balance,
            snapshot.payment_id,
            moment.now,
        )
        .map_err(PlaceOrderError::InsufficientBalance)?;
        order.status = OrderStatus::Paid;
        order.paid_at = Some(moment.now);
        order.payment = Some(paid.payment);
        plan.balance = Some(paid.change);
        plan.sales = sold(&order, moment.now);
        plan.cart_removal = order.items.iter().map(|l| l.product_id).collect();
        plan.event = Some(
            event(moment, EventType::OrderPaid, &order, None)
                .map_err(unexpected::<PlaceOrderError>)?,
        );
        plan.order = order;
    }
    Ok(plan)
}

/// Paying a PENDING order from its owner's balance (API.md, Orders): only the owner or
/// an admin; the order must be PENDING and not past `expires_at`; the balance must
/// cover the total (without it nothing changes and the order stays PENDING). The total
/// is debited (history PAYMENT, also for 0), the payment recorded, the order PAID, the
/// ordered products leave the cart, and `order.paid` is queued.
pub fn plan_pay(
    actor: Actor,
    snapshot: &OrderSnapshot,
    moment: Moment,
) -> Result<OrderPlan, PayOrderError> {
    let current = &snapshot.order;
    if !actor.may_act_for(current.user_id) {
        return Err(PayOrderError::Forbidden);
    }
    check_payable(current.status, current.expires_at, moment.now).map_err(|e| match e {
        NotPayable::Expired => PayOrderError::Expired,
        NotPayable::InvalidState(s) => PayOrderError::InvalidState(s),
    })?;
    let paid = payment::pay(
        current.user_id,
        current.id,
        current.total,
        snapshot.balance,
        snapshot.payment_id,
        moment.now,
    )
    .map_err(PayOrderError::InsufficientBalance)?;
    let mut order = current.clone();
    order.status = OrderStatus::Paid;
    order.paid_at = Some(moment.now);
    order.payment = Some(paid.payment);
    let event =
        event(moment, EventType::OrderPaid, &order, None).map_err(unexpected::<PayOrderError>)?;
    Ok(OrderPlan {
        at: moment.now,
        write: OrderWrite::Update {
            from: current.status,
        },
        stock: Vec::new(),
        coupon: None,
        balance: Some(paid.change),
        refund: None,
        sales: sold(&order, moment.now),
        cart_removal: order.items.iter().map(|l| l.product_id).collect(),
        event: Some(event),
        order,
    })
}

/// Why an order is being cancelled, and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The owner or an admin asked.
    Request(Actor),
    /// The expiry sweep: only a PENDING order whose `expires_at` has passed.
    Expiry,
}

/// Cancelling an order (API.md, Orders): a PENDING one gives its stock and its coupon
/// back; a PAID one also gives back to the balance what its partial refunds have not
/// (`total - refunded_total`, history REFUND, also for 0), returns only the units not
/// refunded yet, marks the payment REFUNDED, stops counting as sold and queues
/// `order.cancelled`. The expiry sweep cancels only PENDING orders past `expires_at`.
pub fn plan_cancel(
    cancellation: Cancellation,
    snapshot: &OrderSnapshot,
    moment: Moment,
) -> Result<OrderPlan, CancelOrderError> {
    let current = &snapshot.order;
    let reason = match cancellation {
        Cancellation::Request(actor) => {
            if !actor.may_act_for(current.user_id) {
                return Err(CancelOrderError::Forbidden);
            }
            CancelReason::UserRequest
        }
        Cancellation::Expiry => {
            if current.status == OrderStatus::Pending && moment.now < current.expires_at {
                return Err(CancelOrderError::NotDue);
            }
            CancelReason::Expired
        }
    };
    let effect =
        cancel_effect(current.status, reason).map_err(|e| CancelOrderError::InvalidState(e.0))?;
    let mut order = current.clone();
    order.status = OrderStatus::Cancelled;
    order.cancelled_at = Some(moment.now);
    order.cancel_reason = Some(reason);
    let mut stock = give_back(
        snapshot,
        order
            .unrefunded()
            .into_iter()
            .filter(|(_, units)| *units > 0)
            .map(|(p, u)| (p, i64::from(u))),
    )
    .map_err(unexpected::<CancelOrderError>)?;
    stock.sort();
    let coupon = snapshot
        .user_coupon_id
        .map(|user_coupon_id| CouponChange::Restore { user_coupon_id });
    let mut plan = OrderPlan {
        at: moment.now,
        order: order.clone(),
        write: OrderWrite::Update {
            from: current.status,
        },
        stock,
        coupon,
        balance: None,
        refund: None,
        sales: Vec::new(),
        cart_removal: Vec::new(),
        event: None,
    };
    if effect == CancelEffect::ReleaseAndRefund {
        let paid = current
            .payment
            .as_ref()
            .ok_or_else(|| unexpected::<CancelOrderError>("a PAID order without a payment"))?;
        let rest = current
            .total
            .checked_sub(current.refunded_total)
            .unwrap_or(Money::ZERO);
        let change = payment::give_back_to_balance(
            current.user_id,
            current.id,
            None,
            rest,
            snapshot.balance,
        )
        .map_err(unexpected::<CancelOrderError>)?;
        order.payment = Some(payment::fully_refunded(paid, moment.now));
        plan.balance = Some(change);
        plan.sales = current
            .items
            .iter()
            .map(|l| SaleChange {
                product_id: l.product_id,
                quantity: 0,
                paid_at: current.paid_at.unwrap_or(moment.now),
            })
            .collect();
        plan.event = Some(
            event(moment, EventType::OrderCancelled, &order, None)
                .map_err(unexpected::<CancelOrderError>)?,
        );
        plan.order = order;
    }
    Ok(plan)
}

/// A validated request to refund part of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    items: Vec<RefundItem>,
    reason: Option<String>,
}

/// The most characters a refund reason may have.
pub const MAX_REFUND_REASON: usize = 200;

impl RefundRequest {
    /// 1..=50 lines of distinct products, 1..=1000 units each; a reason that passes the
    /// shared text rule ([`kernel::check_text`], at most 200 characters); a blank reason
    /// is no reason. Names every offending field.
    pub fn new(
        items: Vec<RefundItem>,
        reason: Option<String>,
    ) -> Result<RefundRequest, Vec<InvalidField>> {
        let lines: Vec<LineRequest> = items
            .iter()
            .map(|i| LineRequest {
                product_id: i.product_id,
                quantity: i.quantity,
            })
            .collect();
        let mut problems = check_lines(&lines).err().unwrap_or_default();
        // an empty text box is no reason, not a bad one
        let reason = reason.filter(|r| !r.trim().is_empty());
        if let Some(r) = &reason {
            if let Err(e) = kernel::check_text(r, MAX_REFUND_REASON) {
                problems.push(InvalidField {
                    field: "reason".into(),
                    message: e.to_string(),
                });
            }
        }
        if problems.is_empty() {
            let mut items = items;
            items.sort_by_key(|i| i.product_id);
            Ok(RefundRequest { items, reason })
        } else {
            Err(problems)
        }
    }

    /// The units to refund, ascending product id.
    pub fn items(&self) -> &[RefundItem] {
        &self.items
    }

    /// Why.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

/// Refunding part of a PAID order (API.md, Orders): only the owner or an admin; every
/// product must be in the order with at least that many units not refunded yet
/// (otherwise [`RefundOrderError::ExceedsOrder`] names them). The units go back to
/// stock and stop counting as sold; the amount ([`payment::refund_amount`]) goes back to
/// the balance (history REFUND); the payment becomes REFUNDED once every unit is
/// refunded (the order stays PAID); the coupon stays used; `order.refunded` is queued.
pub fn plan_refund(
    actor: Actor,
    request: &RefundRequest,
    snapshot: &OrderSnapshot,
    moment: Moment,
) -> Result<OrderPlan, RefundOrderError> {
    let current = &snapshot.order;
    if !actor.may_act_for(current.user_id) {
        return Err(RefundOrderError::Forbidden);
    }
    if current.status != OrderStatus::Paid {
        return Err(RefundOrderError::InvalidState(current.status));
    }
    let left: BTreeMap<ProductId, u32> = current.unrefunded().into_iter().collect();
    let exceeding: Vec<ProductId> = request
        .items()
        .iter()
        .filter(|i| {
            left.get(&i.product_id)
                .is_none_or(|l| i.quantity.get() > *l)
        })
        .map(|i| i.product_id)
        .collect();
    if !exceeding.is_empty() {
        return Err(RefundOrderError::ExceedsOrder {
            product_ids: exceeding,
        });
    }
    let mut value = Money::ZERO;
    for item in request.items() {
        let line = current
            .items
            .iter()
            .find(|l| l.product_id == item.product_id)
            .ok_or_else(|| unexpected::<RefundOrderError>("a refunded product not in the order"))?;
        value = line
            .unit_price
            .checked_mul(item.quantity)
            .and_then(|v| value.checked_add(v))
            .map_err(unexpected::<RefundOrderError>)?;
    }
    let units_left: u64 = left.values().map(|u| u64::from(*u)).sum();
    let refunding: u64 = request
        .items()
        .iter()
        .map(|i| u64::from(i.quantity.get()))
        .sum();
    let last = refunding == units_left;
    let amount = payment::refund_amount(
        current.total,
        current.subtotal,
        current.refunded_total,
        value,
        last,
    );
    let change = payment::give_back_to_balance(
        current.user_id,
        current.id,
        Some(snapshot.refund_id),
        amount,
        snapshot.balance,
    )
    .map_err(unexpected::<RefundOrderError>)?;
    let refund = Refund {
        id: snapshot.refund_id,
        order_id: current.id,
        items: request.items().to_vec(),
        amount,
        reason: request.reason().map(str::to_string),
        created_at: moment.now,
    };
    let mut order = current.clone();
    order.refunds.push(refund.clone());
    order.refunded_total = current
        .refunded_total
        .checked_add(amount)
        .map_err(unexpected::<RefundOrderError>)?;
    if last {
        let paid = current
            .payment
            .as_ref()
            .ok_or_else(|| unexpected::<RefundOrderError>("a PAID order without a payment"))?;
        order.payment = Some(payment::fully_refunded(paid, moment.now));
    }
    let paid_at = current.paid_at.unwrap_or(moment.now);
    let sales = sold(&order, paid_at);
    let mut stock = give_back(
        snapshot,
        request
            .items()
            .iter()
            .map(|i| (i.product_id, i64::from(i.quantity.get()))),
    )
    .map_err(unexpected::<RefundOrderError>)?;
    stock.sort();
    let event = event(moment, EventType::OrderRefunded, &order, Some(&refund))
        .map_err(unexpected::<RefundOrderError>)?;
    Ok(OrderPlan {
        at: moment.now,
        write: OrderWrite::Update {
            from: current.status,
        },
        stock,
        coupon: None,
        balance: Some(change),
        refund: Some(refund),
        sales,
        cart_removal: Vec::new(),
        event: Some(event),
        order,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
