//! The decisions of `plan.rs`: every refusal, every effect, and the invariants as
//! properties (money conserved, stock never negative, refunds never above the total).

use super::*;
use crate::events::EventType;
use balance::{HistoryKind, InsufficientBalance};
use chrono::TimeZone;
use coupon::{
    Coupon, CouponName, Discount, DiscountType, StoredStatus, Unusable, UserCoupon,
    UserCouponStatus, ValidityWindow,
};
use kernel::testing::{pid, won as m};
use kernel::{CouponId, Quantity, UserId};
use proptest::prelude::*;

fn t(min: u32) -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, 9, min, 0)
        .unwrap()
}
fn q(v: i64) -> Quantity {
    Quantity::try_from(v).unwrap()
}
fn user() -> UserId {
    UserId::try_from(5).unwrap()
}
fn other() -> UserId {
    UserId::try_from(6).unwrap()
}
fn oid() -> OrderId {
    OrderId::try_from(100).unwrap()
}
fn line(p: i64, n: i64) -> LineRequest {
    LineRequest {
        product_id: pid(p),
        quantity: q(n),
    }
}
fn product(id: i64, price: i64, stock: i64) -> ProductSnapshot {
    ProductSnapshot {
        id: pid(id),
        name: format!("p{id}"),
        price: m(price),
        slots: vec![stock::Slot {
            index: 0,
            units: stock,
        }],
        max_per_user: None,
        held: 0,
    }
}
fn moment(min: u32) -> Moment {
    Moment {
        now: t(min),
        event_id: Uuid::from_u128(7),
    }
}
fn coupon_def(discount: Discount, min_order: i64) -> Coupon {
    Coupon {
        id: CouponId::try_from(3).unwrap(),
        name: CouponName::try_from("drop".to_string()).unwrap(),
        discount,
        min_order_amount: m(min_order),
        total_quantity: None,
        issued_quantity: 1,
        window: ValidityWindow::new(t(0), t(50)).unwrap(),
        active: true,
    }
}
fn owned(discount: Discount, stored: StoredStatus) -> UserCoupon {
    UserCoupon {
        id: 77,
        coupon: coupon_def(discount, 0),
        user_id: user(),
        stored,
        status: UserCouponStatus::Available,
        issued_at: t(0),
        used_at: None,
        order_id: None,
    }
}
fn snapshot(products: Vec<ProductSnapshot>) -> PlaceSnapshot {
    PlaceSnapshot {
        products,
        cart: vec![],
        coupon: None,
        balance: None,
        order_id: oid(),
        payment_id: 900,
    }
}
fn place(lines: Vec<LineRequest>, coupon: Option<i64>, pay_now: bool) -> PlaceOrder {
    PlaceOrder::new(
        user(),
        lines,
        coupon.map(|c| CouponId::try_from(c).unwrap()),
        pay_now,
    )
    .unwrap()
}

#[test]
fn placing_prices_the_lines_reserves_stock_and_saves_pending() {
    let plan = plan_place(
        &place(vec![line(2, 3), line(1, 1)], None, false),
        &snapshot(vec![product(1, 1_000, 5), product(2, 250, 3)]),
        moment(1),
        t(16),
    )
    .unwrap();
    let o = &plan.order;
    assert_eq!(o.status, OrderStatus::Pending);
    assert_eq!(
        (o.subtotal, o.discount, o.total),
        (m(1_750), m(0), m(1_750))
    );
    assert_eq!(o.items[0].product_id, pid(2));
    assert_eq!(o.items[0].subtotal, m(750));
    assert_eq!(o.expires_at, t(16));
    assert_eq!(plan.write, OrderWrite::Insert);
    assert_eq!(
        plan.stock,
        vec![
            StockChange {
                product_id: pid(1),
                slot: 0,
                delta: -1
            },
            StockChange {
                product_id: pid(2),
                slot: 0,
                delta: -3
            }
        ]
    );
    assert!(plan.balance.is_none() && plan.event.is_none() && plan.coupon.is_none());
    assert!(plan.cart_removal.is_empty() && plan.sales.is_empty());
}

#[test]
fn placing_names_every_unknown_product_before_any_short_one() {
    let cmd = place(vec![line(1, 9), line(4, 1), line(3, 1)], None, false);
    let err = plan_place(&cmd, &snapshot(vec![product(1, 10, 1)]), moment(1), t(16));
    assert!(
        matches!(err, Err(PlaceOrderError::ProductNotFound { product_ids }) if product_ids == vec![pid(3), pid(4)])
    );
    let err = plan_place(
        &cmd,
        &snapshot(vec![
            product(1, 10, 1),
            product(3, 10, 0),
            product(4, 10, 1),
        ]),
        moment(1),
        t(16),
    );
    assert!(
        matches!(err, Err(PlaceOrderError::OutOfStock { product_ids }) if product_ids == vec![pid(1), pid(3)])
    );
}

#[test]
fn a_limited_product_refuses_what_would_pass_the_users_limit() {
    let mut limited = product(1, 1_000, 50);
    limited.max_per_user = Some(stock::PurchaseLimit::try_from(3).unwrap());
    limited.held = 2;
    let snap = snapshot(vec![limited]);
    assert!(plan_place(
        &place(vec![line(1, 1)], None, false),
        &snap,
        moment(1),
        t(16)
    )
    .is_ok());
    let err = plan_place(
        &place(vec![line(1, 2)], None, false),
        &snap,
        moment(1),
        t(16),
    );
    assert!(
        matches!(err, Err(PlaceOrderError::PurchaseLimitExceeded { product_ids }) if product_ids == vec![pid(1)])
    );
}

#[test]
fn an_order_combines_the_slots_it_holds() {
    let mut p = product(1, 100, 0);
    p.slots = vec![
        stock::Slot { index: 2, units: 1 },
        stock::Slot { index: 5, units: 3 },
    ];
    let plan = plan_place(
        &place(vec![line(1, 4)], None, false),
        &snapshot(vec![p.clone()]),
        moment(1),
        t(16),
    )
    .unwrap();
    assert_eq!(
        plan.stock
            .iter()
            .map(|c| (c.slot, c.delta))
            .collect::<Vec<_>>(),
        vec![(2, -1), (5, -3)]
    );
    // five units: every slot is held and their sum (4) is the exact stock
    assert!(matches!(
        plan_place(
            &place(vec![line(1, 5)], None, false),
            &snapshot(vec![p]),
            moment(1),
            t(16)
        ),
        Err(PlaceOrderError::OutOfStock { .. })
    ));
}

#[test]
fn a_usable_coupon_discounts_the_order_and_is_used() {
    let mut snap = snapshot(vec![product(1, 1_000, 5)]);
    snap.coupon = Some(CouponSnapshot {
        owned: Some(owned(Discount::Fixed(m(300)), StoredStatus::Available)),
    });
    let plan = plan_place(
        &place(vec![line(1, 2)], Some(3), false),
        &snap,
        moment(1),
        t(16),
    )
    .unwrap();
    assert_eq!(
        (plan.order.subtotal, plan.order.discount, plan.order.total),
        (m(2_000), m(300), m(1_700))
    );
    assert_eq!(plan.coupon, Some(CouponChange::Use { user_coupon_id: 77 }));
    assert_eq!(plan.order.coupon_id, Some(CouponId::try_from(3).unwrap()));
}

#[test]
fn a_coupon_that_does_not_exist_or_cannot_be_used_refuses_the_order() {
    let cmd = place(vec![line(1, 1)], Some(3), false);
    let snap = snapshot(vec![product(1, 1_000, 5)]);
    assert!(matches!(
        plan_place(&cmd, &snap, moment(1), t(16)),
        Err(PlaceOrderError::CouponNotFound)
    ));
    let mut not_owned = snap.clone();
    not_owned.coupon = Some(CouponSnapshot { owned: None });
    assert!(matches!(
        plan_place(&cmd, &not_owned, moment(1), t(16)),
        Err(PlaceOrderError::CouponNotUsable(Unusable::NotOwned))
    ));
    let mut used = snap.clone();
    used.coupon = Some(CouponSnapshot {
        owned: Some(owned(Discount::Fixed(m(1)), StoredStatus::Used)),
    });
    assert!(matches!(
        plan_place(&cmd, &used, moment(1), t(16)),
        Err(PlaceOrderError::CouponNotUsable(Unusable::AlreadyUsed))
    ));
    // the window ended at minute 50
    let mut late = snap;
    late.coupon = Some(CouponSnapshot {
        owned: Some(owned(Discount::Fixed(m(1)), StoredStatus::Available)),
    });
    assert!(matches!(
        plan_place(&cmd, &late, moment(55), t(59)),
        Err(PlaceOrderError::CouponNotUsable(Unusable::Expired))
    ));
}

#[test]
fn a_deactivated_coupon_refuses_the_order_with_its_reason() {
    let mut snap = snapshot(vec![product(1, 1_000, 5)]);
    let mut copy = owned(Discount::Fixed(m(100)), StoredStatus::Available);
    copy.coupon.active = false;
    snap.coupon = Some(CouponSnapshot { owned: Some(copy) });
    let err = plan_place(
        &place(vec![line(1, 1)], Some(3), false),
        &snap,
        moment(1),
        t(16),
    );
    assert!(matches!(
        err,
        Err(PlaceOrderError::CouponNotUsable(Unusable::Inactive))
    ));
}

#[test]
fn paying_now_pays_in_the_same_plan_and_queues_order_paid() {
    let mut snap = snapshot(vec![product(1, 1_000, 5)]);
    snap.balance = Some(m(5_000));
    let plan = plan_place(
        &place(vec![line(1, 2)], None, true),
        &snap,
        moment(1),
        t(16),
    )
    .unwrap();
    let o = &plan.order;
    assert_eq!(o.status, OrderStatus::Paid);
    assert_eq!(o.paid_at, Some(t(1)));
    let payment = o.payment.as_ref().unwrap();
    assert_eq!((payment.id, payment.amount), (900, m(2_000)));
    let change = plan.balance.as_ref().unwrap();
    assert_eq!(change.before, Some(m(5_000)));
    assert_eq!(change.after(), m(3_000));
    assert_eq!(
        (
            change.entry.kind,
            change.entry.amount,
            change.entry.order_id
        ),
        (HistoryKind::Payment, -2_000, Some(oid()))
    );
    assert_eq!(plan.cart_removal, vec![pid(1)]);
    assert_eq!(plan.sales[0].quantity, 2);
    let event = plan.event.as_ref().unwrap();
    assert_eq!(event.event_type, EventType::OrderPaid);
    assert_eq!(event.body["order"], serde_json::to_value(o).unwrap());
    assert_eq!(event.body["order"]["status"], "PAID");
}

#[test]
fn paying_now_without_enough_balance_creates_nothing() {
    let mut snap = snapshot(vec![product(1, 1_000, 5)]);
    snap.balance = Some(m(1_999));
    let err = plan_place(
        &place(vec![line(1, 2)], None, true),
        &snap,
        moment(1),
        t(16),
    );
    assert!(matches!(
        err,
        Err(PlaceOrderError::InsufficientBalance(InsufficientBalance { balance, required }))
            if balance == m(1_999) && required == m(2_000)
    ));
    snap.balance = None; // never charged: zero
    assert!(plan_place(
        &place(vec![line(1, 1)], None, true),
        &snap,
        moment(1),
        t(16)
    )
    .is_err());
}

#[test]
fn ordering_from_the_cart_takes_its_lines_and_refuses_an_empty_cart() {
    let cmd = PlaceOrder::from_cart(user(), None, false);
    let mut snap = snapshot(vec![product(1, 100, 5), product(2, 10, 5)]);
    assert!(matches!(
        plan_place(&cmd, &snap, moment(1), t(16)),
        Err(PlaceOrderError::EmptyCart)
    ));
    snap.cart = vec![line(1, 2), line(2, 1)];
    let plan = plan_place(&cmd, &snap, moment(1), t(16)).unwrap();
    assert_eq!(plan.order.total, m(210));
    assert_eq!(plan.order.items.len(), 2);
}

fn placed(total_lines: Vec<(i64, i64, i64)>, discount: i64) -> Order {
    let items: Vec<OrderLine> = total_lines
        .iter()
        .map(|(p, price, n)| OrderLine {
            product_id: pid(*p),
            name: format!("p{p}"),
            unit_price: m(*price),
            quantity: q(*n),
            subtotal: m(price * n),
        })
        .collect();
    let subtotal: i64 = total_lines.iter().map(|(_, price, n)| price * n).sum();
    Order {
        id: oid(),
        user_id: user(),
        status: OrderStatus::Pending,
        items,
        subtotal: m(subtotal),
        discount: m(discount),
        total: m(subtotal - discount),
        coupon_id: None,
        created_at: t(0),
        expires_at: t(15),
        paid_at: None,
        cancelled_at: None,
        cancel_reason: None,
        payment: None,
        refunds: vec![],
        refunded_total: Money::ZERO,
    }
}

fn order_snapshot(order: Order, balance: Option<i64>) -> OrderSnapshot {
    let slots = order
        .items
        .iter()
        .map(|l| (l.product_id, stock::Slot { index: 3, units: 0 }))
        .collect();
    OrderSnapshot {
        order,
        user_coupon_id: None,
        slots,
        balance: balance.map(m),
        payment_id: 901,
        refund_id: RefundId::try_from(31).unwrap(),
    }
}

fn paid_snapshot(lines: Vec<(i64, i64, i64)>, discount: i64, balance: i64) -> OrderSnapshot {
    let snap = order_snapshot(placed(lines, discount), Some(balance));
    let plan = plan_pay(Actor::User(user()), &snap, moment(1)).unwrap();
    let mut paid = snap;
    paid.order = plan.order;
    paid.balance = Some(plan.balance.unwrap().after());
    paid
}

#[test]
fn paying_debits_the_total_and_marks_the_order_paid() {
    let snap = order_snapshot(placed(vec![(1, 500, 2)], 100), Some(1_000));
    let plan = plan_pay(Actor::User(user()), &snap, moment(2)).unwrap();
    assert_eq!(plan.order.status, OrderStatus::Paid);
    assert_eq!(
        plan.write,
        OrderWrite::Update {
            from: OrderStatus::Pending
        }
    );
    assert_eq!(plan.balance.as_ref().unwrap().after(), m(100));
    assert_eq!(plan.order.payment.as_ref().unwrap().amount, m(900));
    assert_eq!(
        plan.event.as_ref().unwrap().event_type,
        EventType::OrderPaid
    );
    assert!(plan.stock.is_empty() && plan.coupon.is_none());
}

#[test]
fn paying_refuses_strangers_expired_unpayable_and_uncovered_orders() {
    let snap = order_snapshot(placed(vec![(1, 500, 2)], 0), Some(1_000));
    assert!(matches!(
        plan_pay(Actor::User(other()), &snap, moment(2)),
        Err(PayOrderError::Forbidden)
    ));
    assert!(plan_pay(Actor::Admin, &snap, moment(2)).is_ok());
    assert!(matches!(
        plan_pay(Actor::Admin, &snap, moment(15)),
        Err(PayOrderError::Expired)
    ));
    let poor = order_snapshot(placed(vec![(1, 500, 2)], 0), Some(999));
    assert!(matches!(
        plan_pay(Actor::Admin, &poor, moment(2)),
        Err(PayOrderError::InsufficientBalance(_))
    ));
    let paid = paid_snapshot(vec![(1, 500, 2)], 0, 5_000);
    assert!(matches!(
        plan_pay(Actor::Admin, &paid, moment(2)),
        Err(PayOrderError::InvalidState(OrderStatus::Paid))
    ));
}

// Invariant (API.md): a free order (100% coupon) is paid and refunded with ledger rows
// of 0, also for a user who has no balance row.
#[test]
fn a_free_order_writes_payment_and_refund_rows_of_zero() {
    let snap = order_snapshot(placed(vec![(1, 500, 1)], 500), None);
    let plan = plan_pay(Actor::User(user()), &snap, moment(2)).unwrap();
    let row = plan.balance.as_ref().unwrap();
    assert_eq!(
        (row.entry.kind, row.entry.amount, row.before),
        (HistoryKind::Payment, 0, None)
    );
    let mut paid = snap;
    paid.order = plan.order;
    let cancel = plan_cancel(Cancellation::Request(Actor::User(user())), &paid, moment(3)).unwrap();
    let row = cancel.balance.unwrap();
    assert_eq!((row.entry.kind, row.entry.amount), (HistoryKind::Refund, 0));
}

#[test]
fn cancelling_a_pending_order_gives_stock_and_coupon_back_and_no_money() {
    let mut snap = order_snapshot(placed(vec![(2, 100, 1), (1, 500, 2)], 0), Some(0));
    snap.user_coupon_id = Some(77);
    let plan = plan_cancel(Cancellation::Request(Actor::User(user())), &snap, moment(2)).unwrap();
    assert_eq!(plan.order.status, OrderStatus::Cancelled);
    assert_eq!(plan.order.cancel_reason, Some(CancelReason::UserRequest));
    assert_eq!(
        plan.stock,
        vec![
            StockChange {
                product_id: pid(1),
                slot: 3,
                delta: 2
            },
            StockChange {
                product_id: pid(2),
                slot: 3,
                delta: 1
            }
        ]
    );
    assert_eq!(
        plan.coupon,
        Some(CouponChange::Restore { user_coupon_id: 77 })
    );
    assert!(plan.balance.is_none() && plan.event.is_none());
}

#[test]
fn cancelling_a_paid_order_refunds_it_and_queues_order_cancelled() {
    let snap = paid_snapshot(vec![(1, 500, 2)], 0, 5_000);
    let plan = plan_cancel(Cancellation::Request(Actor::Admin), &snap, moment(5)).unwrap();
    let change = plan.balance.as_ref().unwrap();
    assert_eq!(change.entry.amount, 1_000);
    assert_eq!(change.after(), m(5_000));
    let payment = plan.order.payment.as_ref().unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!(payment.refunded_at, Some(t(5)));
    assert_eq!(plan.sales[0].quantity, 0);
    assert_eq!(
        plan.event.as_ref().unwrap().event_type,
        EventType::OrderCancelled
    );
}

#[test]
fn cancelling_refuses_strangers_and_cancelled_orders_and_expiry_waits_for_the_deadline() {
    let snap = order_snapshot(placed(vec![(1, 500, 2)], 0), None);
    assert!(matches!(
        plan_cancel(
            Cancellation::Request(Actor::User(other())),
            &snap,
            moment(2)
        ),
        Err(CancelOrderError::Forbidden)
    ));
    assert!(matches!(
        plan_cancel(Cancellation::Expiry, &snap, moment(14)),
        Err(CancelOrderError::NotDue)
    ));
    let expired = plan_cancel(Cancellation::Expiry, &snap, moment(15)).unwrap();
    assert_eq!(expired.order.cancel_reason, Some(CancelReason::Expired));
    let mut gone = snap;
    gone.order = expired.order;
    assert!(matches!(
        plan_cancel(Cancellation::Request(Actor::Admin), &gone, moment(16)),
        Err(CancelOrderError::InvalidState(OrderStatus::Cancelled))
    ));
    let paid = paid_snapshot(vec![(1, 500, 2)], 0, 5_000);
    assert!(matches!(
        plan_cancel(Cancellation::Expiry, &paid, moment(30)),
        Err(CancelOrderError::InvalidState(OrderStatus::Paid))
    ));
}

fn refund_of(items: Vec<(i64, i64)>) -> RefundRequest {
    RefundRequest::new(
        items
            .into_iter()
            .map(|(p, n)| RefundItem {
                product_id: pid(p),
                quantity: q(n),
            })
            .collect(),
        Some("damaged".into()),
    )
    .unwrap()
}

#[test]
fn a_partial_refund_gives_back_its_share_and_the_units() {
    // subtotal 3,000 (1,000 + 2 x 1,000), discount 300: total 2,700
    let snap = paid_snapshot(vec![(1, 1_000, 1), (2, 1_000, 2)], 300, 10_000);
    let plan = plan_refund(
        Actor::User(user()),
        &refund_of(vec![(2, 1)]),
        &snap,
        moment(3),
    )
    .unwrap();
    let refund = plan.refund.as_ref().unwrap();
    assert_eq!(refund.amount, m(900));
    assert_eq!(refund.reason.as_deref(), Some("damaged"));
    assert_eq!(plan.order.refunded_total, m(900));
    assert_eq!(plan.order.refunds, vec![refund.clone()]);
    assert_eq!(plan.order.status, OrderStatus::Paid);
    assert_eq!(
        plan.order.payment.as_ref().unwrap().status,
        PaymentStatus::Paid
    );
    assert_eq!(
        plan.stock,
        vec![StockChange {
            product_id: pid(2),
            slot: 3,
            delta: 1
        }]
    );
    let change = plan.balance.as_ref().unwrap();
    assert_eq!(
        (
            change.entry.kind,
            change.entry.amount,
            change.entry.refund_id
        ),
        (HistoryKind::Refund, 900, Some(snap.refund_id))
    );
    // units sold after: product 1 still 1, product 2 now 1
    assert_eq!(
        plan.sales.iter().map(|s| s.quantity).collect::<Vec<_>>(),
        vec![1, 1]
    );
    let event = plan.event.unwrap();
    assert_eq!(event.event_type, EventType::OrderRefunded);
    assert_eq!(event.body["refund"]["amount"], 900);
}

#[test]
fn the_last_refund_takes_the_rest_and_marks_the_payment_refunded() {
    let mut snap = paid_snapshot(vec![(1, 1_000, 3)], 1_000, 10_000);
    let mut back = 0;
    for _ in 0..3 {
        let plan = plan_refund(Actor::Admin, &refund_of(vec![(1, 1)]), &snap, moment(3)).unwrap();
        back += plan.refund.as_ref().unwrap().amount.won();
        snap.order = plan.order;
    }
    assert_eq!(back, 2_000);
    assert_eq!(snap.order.refunded_total, m(2_000));
    assert_eq!(
        snap.order.payment.as_ref().unwrap().status,
        PaymentStatus::Refunded
    );
    assert!(matches!(
        plan_refund(Actor::Admin, &refund_of(vec![(1, 1)]), &snap, moment(4)),
        Err(RefundOrderError::ExceedsOrder { .. })
    ));
}

#[test]
fn refunds_refuse_unpaid_orders_strangers_and_more_than_ordered() {
    let pending = order_snapshot(placed(vec![(1, 1_000, 1)], 0), Some(0));
    assert!(matches!(
        plan_refund(Actor::Admin, &refund_of(vec![(1, 1)]), &pending, moment(2)),
        Err(RefundOrderError::InvalidState(OrderStatus::Pending))
    ));
    let paid = paid_snapshot(vec![(1, 1_000, 2)], 0, 5_000);
    assert!(matches!(
        plan_refund(
            Actor::User(other()),
            &refund_of(vec![(1, 1)]),
            &paid,
            moment(2)
        ),
        Err(RefundOrderError::Forbidden)
    ));
    let err = plan_refund(
        Actor::Admin,
        &refund_of(vec![(1, 3), (9, 1)]),
        &paid,
        moment(2),
    );
    assert!(
        matches!(err, Err(RefundOrderError::ExceedsOrder { product_ids }) if product_ids == vec![pid(1), pid(9)])
    );
}

#[test]
fn cancelling_after_partial_refunds_returns_only_the_rest() {
    let snap = paid_snapshot(vec![(1, 1_000, 2), (2, 500, 2)], 0, 10_000);
    let first = plan_refund(Actor::Admin, &refund_of(vec![(1, 1)]), &snap, moment(3)).unwrap();
    let mut after = snap.clone();
    after.order = first.order;
    after.balance = Some(first.balance.unwrap().after());
    let plan = plan_cancel(Cancellation::Request(Actor::Admin), &after, moment(4)).unwrap();
    assert_eq!(plan.balance.as_ref().unwrap().entry.amount, 2_000);
    assert_eq!(
        plan.stock,
        vec![
            StockChange {
                product_id: pid(1),
                slot: 3,
                delta: 1
            },
            StockChange {
                product_id: pid(2),
                slot: 3,
                delta: 2
            }
        ]
    );
    // the user ends where they started: 10,000 - 3,000 + 1,000 + 2,000
    assert_eq!(plan.balance.unwrap().after(), m(10_000));
}

#[test]
fn a_refund_request_names_its_bad_fields() {
    let too_long = RefundRequest::new(
        vec![RefundItem {
            product_id: pid(1),
            quantity: q(1),
        }],
        Some("x".repeat(201)),
    )
    .unwrap_err();
    assert_eq!(too_long[0].field, "reason");
    let empty = RefundRequest::new(vec![], None).unwrap_err();
    assert_eq!(empty[0].field, "items");
    let blank = RefundRequest::new(
        vec![RefundItem {
            product_id: pid(1),
            quantity: q(1),
        }],
        Some("  ".into()),
    )
    .unwrap();
    assert_eq!(blank.reason(), None, "a blank reason is no reason");
}

fn arb_lines() -> impl Strategy<Value = Vec<(i64, i64, i64)>> {
    // (price, quantity, stock) per product 1..=n
    proptest::collection::vec((1i64..=100_000, 1i64..=20, 0i64..=30), 1..=6)
}

proptest! {
    // Invariants of placing: stock never goes negative; an accepted order takes exactly
    // what it orders and its money adds up (total = subtotal - discount, the payment
    // debits exactly the total); a refusal names exactly the short products.
    #[test]
    fn placing_never_oversells_and_conserves_money(
        lines in arb_lines(),
        balance in 0i64..=5_000_000,
        pay_now in any::<bool>(),
        fixed_off in 0i64..=50_000,
    ) {
        let products: Vec<ProductSnapshot> = lines.iter().enumerate()
            .map(|(i, (price, _, stock))| product(i as i64 + 1, *price, *stock)).collect();
        let request: Vec<LineRequest> = lines.iter().enumerate()
            .map(|(i, (_, n, _))| line(i as i64 + 1, *n)).collect();
        let mut snap = snapshot(products);
        snap.balance = Some(m(balance));
        let coupon = if fixed_off > 0 {
            snap.coupon = Some(CouponSnapshot {
                owned: Some(owned(Discount::new(DiscountType::Fixed, fixed_off).unwrap(), StoredStatus::Available)),
            });
            Some(3)
        } else { None };
        let cmd = place(request, coupon, pay_now);
        let short: Vec<ProductId> = lines.iter().enumerate()
            .filter(|(_, (_, n, stock))| n > stock).map(|(i, _)| pid(i as i64 + 1)).collect();
        match plan_place(&cmd, &snap, moment(1), t(16)) {
            Ok(plan) => {
                prop_assert!(short.is_empty());
                for change in &plan.stock {
                    let before = stock::units_in(&snap.products.iter().find(|p| p.id == change.product_id).unwrap().slots);
                    prop_assert!(before + change.delta >= 0);
                }
                let ordered: i64 = lines.iter().map(|(_, n, _)| n).sum();
                prop_assert_eq!(-plan.stock.iter().map(|c| c.delta).sum::<i64>(), ordered);
                let o = &plan.order;
                prop_assert_eq!(o.total.won(), o.subtotal.won() - o.discount.won());
                prop_assert!(o.discount <= o.subtotal);
                match &plan.balance {
                    Some(change) => {
                        prop_assert!(pay_now);
                        prop_assert_eq!(change.after().won(), balance - o.total.won());
                        prop_assert_eq!(change.entry.amount, -o.total.won());
                    }
                    None => prop_assert!(!pay_now),
                }
            }
            Err(PlaceOrderError::OutOfStock { product_ids }) => prop_assert_eq!(product_ids, short),
            Err(PlaceOrderError::InsufficientBalance(e)) => {
                prop_assert!(pay_now && short.is_empty());
                prop_assert!(e.required.won() > balance);
            }
            Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
        }
    }

    // Invariant: whatever sequence of partial refunds and a final cancel, the user gets
    // back exactly what they paid, never more, and every unit returns to stock once.
    #[test]
    fn refunds_and_cancel_give_back_exactly_what_was_paid(
        lines in proptest::collection::vec((1i64..=100_000, 1i64..=5), 1..=4),
        discount_percent in 0i64..=100,
        picks in proptest::collection::vec((0usize..4, 1i64..=5), 0..8),
    ) {
        let order_lines: Vec<(i64, i64, i64)> = lines.iter().enumerate()
            .map(|(i, (price, n))| (i as i64 + 1, *price, *n)).collect();
        let subtotal: i64 = lines.iter().map(|(p, n)| p * n).sum();
        let discount = subtotal * discount_percent / 100;
        let start = 10_000_000i64;
        let mut snap = paid_snapshot(order_lines.clone(), discount, start);
        let total = snap.order.total.won();
        let mut returned_units = 0i64;
        let mut balance = snap.balance.unwrap().won();
        for (which, units) in picks {
            let (product, _, _) = order_lines[which % order_lines.len()];
            match plan_refund(Actor::Admin, &refund_of(vec![(product, units)]), &snap, moment(3)) {
                Ok(plan) => {
                    let change = plan.balance.clone().unwrap();
                    prop_assert_eq!(change.before.unwrap().won(), balance);
                    balance = change.after().won();
                    returned_units += plan.stock.iter().map(|c| c.delta).sum::<i64>();
                    snap.order = plan.order;
                    snap.balance = Some(change.after());
                    prop_assert!(snap.order.refunded_total.won() <= total);
                }
                Err(RefundOrderError::ExceedsOrder { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
            }
        }
        if snap.order.payment.as_ref().unwrap().status == PaymentStatus::Paid {
            let plan = plan_cancel(Cancellation::Request(Actor::Admin), &snap, moment(4)).unwrap();
            returned_units += plan.stock.iter().map(|c| c.delta).sum::<i64>();
            balance = plan.balance.unwrap().after().won();
        }
        prop_assert_eq!(balance, start);
        let ordered: i64 = lines.iter().map(|(_, n)| n).sum();
        prop_assert_eq!(returned_units, ordered);
    }
}
