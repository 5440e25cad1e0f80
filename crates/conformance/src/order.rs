//! `OrderStore`: the store runs the decision it is given on the snapshot it read under
//! lock and writes the whole plan or nothing; stock never below zero, a coupon used by
//! one order, an order paid once, refunds never above the total, the `Idempotency-Key`
//! completed with the work (or the work rolled back with `ClaimLost`).

use crate::fixtures::{
    adjust, at_once, balance_of, charge, claim, coupon, coupon_for, history_of, limited_product,
    now, order_completion, orders, place, place_with, product, refund_of, stock_of, CouponSpec,
};
use crate::Stores;
use ::balance::{
    plan_open_charge, ChargeAmount, HistoryKind, NewCharge, OpenChargeError, PaymentMethod,
};
use ::coupon::{Discount, DiscountType, StoredStatus, Unusable};
use ::order::plan::{plan_cancel, Cancellation, Moment};
use ::order::{
    CancelOrderError, CancelReason, OrderFilter, OrderService, OrderStatus, PayOrderError,
    PaymentStatus, PlaceOrder, PlaceOrderError, RefundOrderError,
};
use ::outbox::OutboxEntry;
use futures::future::join_all;
use kernel::testing::{oid, pid, uid};
use kernel::{Actor, BeginOutcome, FixedClock, PageRequest};
use std::sync::Arc;
use std::time::Duration;

/// The outbox rows, in write order.
async fn events(s: &Stores) -> Vec<OutboxEntry> {
    s.outbox
        .list(None, PageRequest::new(100, None).unwrap())
        .await
        .unwrap()
        .items
}

/// Invariant: the answer is what was written: the order reads back equal to it, its
/// stock is taken, its coupon is USED by it.
pub async fn a_placed_order_reads_back_as_answered(s: Stores) {
    let a = product(&s, 1_000, 10).await;
    let b = product(&s, 2_500, 10).await;
    let c = coupon_for(&s, &[1]).await;
    let svc = orders(&s);
    let placed = svc
        .place(place_with(1, &[(b, 2), (a, 3)], c, false), None)
        .await
        .unwrap();
    assert_eq!(placed.status, OrderStatus::Pending);
    assert_eq!(
        (
            placed.subtotal.won(),
            placed.discount.won(),
            placed.total.won()
        ),
        (8_000, 800, 7_200)
    );
    assert_eq!(svc.get(placed.id).await.unwrap(), Some(placed.clone()));
    assert_eq!((stock_of(&s, a).await, stock_of(&s, b).await), (7, 8));
    let mine = s
        .coupons
        .user_coupons(uid(1), now(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        (mine.items[0].stored, mine.items[0].order_id),
        (StoredStatus::Used, Some(placed.id))
    );
    assert!(
        events(&s).await.is_empty(),
        "an unpaid order reports nothing"
    );
}

/// Invariant: a refused order changes nothing: no order, no stock taken, the coupon
/// still AVAILABLE, no money taken, nothing queued.
pub async fn a_refused_order_changes_nothing(s: Stores) {
    let a = product(&s, 1_000, 10).await;
    let b = product(&s, 1_000, 1).await;
    let c = coupon_for(&s, &[1]).await;
    charge(&s, 1, 1_000).await;
    let svc = orders(&s);
    let short = svc
        .place(place_with(1, &[(a, 2), (b, 2)], c, false), None)
        .await;
    assert!(
        matches!(&short, Err(PlaceOrderError::OutOfStock { product_ids }) if *product_ids == vec![b]),
        "{short:?}"
    );
    let unknown = svc
        .place(place(1, &[(a, 1), (pid(999_999), 1)], false), None)
        .await;
    assert!(
        matches!(&unknown, Err(PlaceOrderError::ProductNotFound { product_ids }) if *product_ids == vec![pid(999_999)]),
        "{unknown:?}"
    );
    let poor = svc.place(place_with(1, &[(a, 2)], c, true), None).await;
    assert!(
        matches!(poor, Err(PlaceOrderError::InsufficientBalance(_))),
        "{poor:?}"
    );
    assert_eq!((stock_of(&s, a).await, stock_of(&s, b).await), (10, 1));
    assert_eq!(balance_of(&s, 1).await, 1_000);
    assert!(svc
        .list_for_user(uid(1), PageRequest::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let mine = s
        .coupons
        .user_coupons(uid(1), now(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.items[0].stored, StoredStatus::Available);
    assert!(events(&s).await.is_empty());
}

/// Invariant: stock never goes below zero: of 64 concurrent orders of one unit of a
/// product with 20 in stock, exactly 20 are placed.
pub async fn concurrent_orders_never_oversell(s: Stores) {
    let p = product(&s, 1_000, 20).await;
    let svc = orders(&s);
    let answers = at_once(1..=64, |u| {
        let svc = svc.clone();
        async move { svc.place(place(u, &[(p, 1)], false), None).await }
    })
    .await;
    let (mut placed, mut short) = (0, 0);
    for answer in answers {
        match answer {
            Ok(_) => placed += 1,
            Err(PlaceOrderError::OutOfStock { product_ids }) => {
                assert_eq!(product_ids, vec![p]);
                short += 1;
            }
            Err(e) => panic!("unexpected: {e:#}"),
        }
    }
    assert_eq!((placed, short), (20, 44));
    assert_eq!(stock_of(&s, p).await, 0);
}

/// Invariant: while units remain no buyer is refused: 40 concurrent one-unit orders of
/// a product with exactly 40 are all placed (units held by other buyers' unfinished
/// orders never make an order out of stock), and the stock ends at 0.
pub async fn concurrent_buyers_are_never_refused_while_units_remain(s: Stores) {
    let p = product(&s, 1_000, 40).await;
    let svc = orders(&s);
    let answers = at_once(1..=40, |u| {
        let svc = svc.clone();
        async move { svc.place(place(u, &[(p, 1)], false), None).await }
    })
    .await;
    for answer in answers {
        if let Err(e) = answer {
            panic!("a buyer was refused while units remained: {e:#}");
        }
    }
    assert_eq!(stock_of(&s, p).await, 0);
}

/// Invariant: a purchase limit holds across concurrent orders of one user: of 20
/// concurrent one-unit orders under a limit of 3, exactly 3 are placed, the others are
/// `PurchaseLimitExceeded` and take nothing; another user is not affected.
pub async fn a_purchase_limit_holds_across_concurrent_orders_of_one_user(s: Stores) {
    let p = limited_product(&s, 1_000, 100, 3).await;
    let svc = orders(&s);
    let answers = at_once(0..20, |_| {
        let svc = svc.clone();
        async move { svc.place(place(7, &[(p, 1)], false), None).await }
    })
    .await;
    let (mut placed, mut limited) = (0, 0);
    for answer in answers {
        match answer {
            Ok(_) => placed += 1,
            Err(PlaceOrderError::PurchaseLimitExceeded { product_ids }) => {
                assert_eq!(product_ids, vec![p]);
                limited += 1;
            }
            Err(e) => panic!("unexpected: {e:#}"),
        }
    }
    assert_eq!((placed, limited), (3, 17));
    assert_eq!(stock_of(&s, p).await, 97);
    svc.place(place(8, &[(p, 3)], false), None).await.unwrap();
    assert_eq!(stock_of(&s, p).await, 94);
}

/// Invariant: a limit counts the units a user holds in pending and paid orders:
/// cancelled orders and refunded units stop counting, so the user may buy them again.
pub async fn cancelled_and_refunded_units_stop_counting_against_a_limit(s: Stores) {
    let p = limited_product(&s, 1_000, 100, 3).await;
    charge(&s, 9, 100_000).await;
    let svc = orders(&s);
    let paid = svc.place(place(9, &[(p, 2)], true), None).await.unwrap();
    let pending = svc.place(place(9, &[(p, 1)], false), None).await.unwrap();
    let over = svc.place(place(9, &[(p, 1)], false), None).await;
    assert!(
        matches!(over, Err(PlaceOrderError::PurchaseLimitExceeded { .. })),
        "{over:?}"
    );
    svc.cancel(Actor::User(uid(9)), pending.id, None)
        .await
        .unwrap();
    svc.place(place(9, &[(p, 1)], false), None).await.unwrap();
    svc.refund(Actor::Admin, paid.id, refund_of(p, 1), None)
        .await
        .unwrap();
    svc.place(place(9, &[(p, 1)], false), None).await.unwrap();
    let over = svc.place(place(9, &[(p, 1)], false), None).await;
    assert!(
        matches!(over, Err(PlaceOrderError::PurchaseLimitExceeded { .. })),
        "{over:?}"
    );
    assert_eq!(stock_of(&s, p).await, 97);
}

/// Invariant: no deadlock: concurrent orders and cancels touching the same products in
/// opposite line orders all complete (a deadlock would be an `Unexpected` error), and
/// the stock accounting stays exact.
pub async fn opposite_order_multi_line_orders_never_deadlock(s: Stores) {
    let a = product(&s, 100, 100_000).await;
    let b = product(&s, 100, 100_000).await;
    let c = product(&s, 100, 100_000).await;
    let svc = orders(&s);
    let (tasks, rounds) = (16, 4);
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let items = if i % 2 == 0 {
                    vec![(a, 1), (b, 2), (c, 3)]
                } else {
                    vec![(c, 3), (b, 2), (a, 1)]
                };
                for round in 0..rounds {
                    let order = svc
                        .place(place(i + 1, &items, false), None)
                        .await
                        .map_err(|e| format!("place, task {i} round {round}: {e:#}"))?;
                    if round % 2 == 0 {
                        svc.cancel(Actor::Admin, order.id, None)
                            .await
                            .map_err(|e| format!("cancel, task {i} round {round}: {e:#}"))?;
                    }
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    let errors: Vec<String> = join_all(handles)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().err())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let kept = tasks * rounds / 2;
    assert_eq!(stock_of(&s, a).await, 100_000 - kept);
    assert_eq!(stock_of(&s, b).await, 100_000 - 2 * kept);
    assert_eq!(stock_of(&s, c).await, 100_000 - 3 * kept);
}

/// Invariant: an order is paid at most once: of 8 concurrent payments, one succeeds,
/// the money is taken once (one PAYMENT row) and one `order.paid` is queued.
pub async fn an_order_is_paid_at_most_once(s: Stores) {
    let p = product(&s, 1_000, 10).await;
    charge(&s, 1, 10_000).await;
    let svc = orders(&s);
    let pending = svc.place(place(1, &[(p, 1)], false), None).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.pay(Actor::User(uid(1)), pending.id, None).await })
        })
        .collect();
    let mut paid = 0;
    for t in join_all(tasks).await {
        match t.unwrap() {
            Ok(order) => {
                paid += 1;
                assert_eq!(order.payment.unwrap().status, PaymentStatus::Paid);
            }
            Err(PayOrderError::InvalidState(OrderStatus::Paid)) => {}
            Err(e) => panic!("unexpected: {e:#}"),
        }
    }
    assert_eq!(paid, 1);
    assert_eq!(balance_of(&s, 1).await, 9_000);
    let payments: Vec<_> = history_of(&s, 1)
        .await
        .into_iter()
        .filter(|h| h.kind == HistoryKind::Payment)
        .collect();
    assert_eq!(payments.len(), 1);
    assert_eq!(
        (payments[0].amount, payments[0].order_id),
        (-1_000, Some(pending.id))
    );
    let queued = events(&s).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].event_type.as_str(), queued[0].aggregate_id),
        ("order.paid", pending.id.get())
    );
    let refused = svc.pay(Actor::User(uid(1)), oid(999_999), None).await;
    assert!(
        matches!(refused, Err(PayOrderError::NotFound)),
        "{refused:?}"
    );
}

/// Invariant: a coupon is used by at most one order: of 8 concurrent orders with the
/// same coupon, one is placed; the others are refused `ALREADY_USED` and take nothing.
pub async fn a_coupon_is_used_by_at_most_one_order(s: Stores) {
    let p = product(&s, 1_000, 100).await;
    let c = coupon_for(&s, &[1]).await;
    let svc = orders(&s);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { svc.place(place_with(1, &[(p, 1)], c, false), None).await })
        })
        .collect();
    let mut placed = 0;
    for t in join_all(tasks).await {
        match t.unwrap() {
            Ok(order) => {
                placed += 1;
                assert_eq!(order.discount.won(), 100);
            }
            Err(PlaceOrderError::CouponNotUsable(Unusable::AlreadyUsed)) => {}
            Err(e) => panic!("unexpected: {e:#}"),
        }
    }
    assert_eq!(placed, 1);
    assert_eq!(stock_of(&s, p).await, 99);
}

/// Invariant: cancelling a paid order gives back its stock, its coupon (usable again)
/// and its money (a REFUND row), marks the payment REFUNDED and queues
/// `order.cancelled` with the order as the API shows it; a pending order's cancel
/// queues nothing; a cancelled order cannot be cancelled again.
pub async fn a_cancelled_order_gives_back_stock_coupon_and_money(s: Stores) {
    let p = product(&s, 2_000, 10).await;
    let c = coupon_for(&s, &[1]).await;
    charge(&s, 1, 10_000).await;
    let svc = orders(&s);
    let paid = svc
        .place(place_with(1, &[(p, 3)], c, true), None)
        .await
        .unwrap();
    assert_eq!(paid.total.won(), 5_400);
    assert_eq!(balance_of(&s, 1).await, 4_600);
    let cancelled = svc
        .cancel(Actor::User(uid(1)), paid.id, None)
        .await
        .unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.cancel_reason, Some(CancelReason::UserRequest));
    assert_eq!(
        cancelled.payment.as_ref().unwrap().status,
        PaymentStatus::Refunded
    );
    assert_eq!(svc.get(paid.id).await.unwrap(), Some(cancelled.clone()));
    assert_eq!(stock_of(&s, p).await, 10);
    assert_eq!(balance_of(&s, 1).await, 10_000);
    let again = svc
        .place(place_with(1, &[(p, 1)], c, false), None)
        .await
        .unwrap();
    assert_eq!(again.coupon_id, Some(c), "the coupon is usable again");
    svc.cancel(Actor::User(uid(1)), again.id, None)
        .await
        .unwrap();
    let twice = svc.cancel(Actor::User(uid(1)), again.id, None).await;
    assert!(
        matches!(
            twice,
            Err(CancelOrderError::InvalidState(OrderStatus::Cancelled))
        ),
        "{twice:?}"
    );
    let queued = events(&s).await;
    let kinds: Vec<&str> = queued.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["order.paid", "order.cancelled"]);
    let body = s
        .outbox
        .get(queued[1].event_id)
        .await
        .unwrap()
        .unwrap()
        .payload;
    assert_eq!(body["order"], serde_json::to_value(&cancelled).unwrap());
    assert_eq!(body["event_type"], "order.cancelled");
}

/// Invariant: the `Idempotency-Key` record is written with the work: the first request
/// that completes the claim commits, and a second one holding the same claim rolls its
/// whole work back (`ClaimLost`): no second order, no second payment, no stock taken twice.
pub async fn a_claim_is_completed_once_with_the_work_and_a_second_completion_rolls_back(s: Stores) {
    let p = product(&s, 1_000, 10).await;
    charge(&s, 2, 10_000).await;
    let claim = claim(&s, "user:2", "order-1").await;
    let svc = orders(&s);
    let first = svc
        .place(
            place(2, &[(p, 2)], true),
            Some(order_completion(claim.clone())),
        )
        .await
        .unwrap();
    match s.keys.begin("user:2", "order-1", "hash").await.unwrap() {
        BeginOutcome::Replay(stored) => {
            assert_eq!(stored.body, first.id.get().to_string().into_bytes())
        }
        other => panic!("the key completed with the order, got {other:?}"),
    }
    let err = svc
        .place(place(2, &[(p, 2)], true), Some(order_completion(claim)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlaceOrderError::Unexpected(e) if e.is::<kernel::ClaimLost>()),
        "{err:?}"
    );
    assert_eq!(stock_of(&s, p).await, 8, "stock taken once");
    assert_eq!(balance_of(&s, 2).await, 8_000, "paid once");
    let page = svc
        .list_for_user(uid(2), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "one order");
    assert_eq!(events(&s).await.len(), 1, "one event");
}

/// Invariant (API.md): concurrent refunds and a cancel of one order never give back
/// more than its total; every unit returns to stock exactly once.
pub async fn concurrent_refunds_and_a_cancel_never_refund_more_than_the_total(s: Stores) {
    let p = product(&s, 333, 30).await;
    charge(&s, 3, 100_000).await;
    let svc = orders(&s);
    let paid = svc.place(place(3, &[(p, 20)], true), None).await.unwrap();
    assert_eq!(paid.total.won(), 6_660);
    let refunds: Vec<_> = (0..20)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                svc.refund(Actor::Admin, paid.id, refund_of(p, 1), None)
                    .await
            })
        })
        .collect();
    let cancel = {
        let svc = svc.clone();
        tokio::spawn(async move { svc.cancel(Actor::Admin, paid.id, None).await })
    };
    for r in join_all(refunds).await {
        let r = r.unwrap();
        assert!(
            matches!(
                r,
                Ok(_)
                    | Err(RefundOrderError::InvalidState(_))
                    | Err(RefundOrderError::ExceedsOrder { .. })
            ),
            "{r:?}"
        );
    }
    let cancelled = cancel.await.unwrap();
    assert!(
        matches!(cancelled, Ok(_) | Err(CancelOrderError::InvalidState(_))),
        "{cancelled:?}"
    );
    let given_back: i64 = history_of(&s, 3)
        .await
        .iter()
        .filter(|h| h.kind == HistoryKind::Refund)
        .map(|h| h.amount)
        .sum();
    assert_eq!(given_back, 6_660, "exactly the total came back");
    assert_eq!(balance_of(&s, 3).await, 100_000);
    assert_eq!(stock_of(&s, p).await, 30, "every unit back once");
    let order = svc.get(paid.id).await.unwrap().unwrap();
    assert!(order.refunded_total <= order.total);
}

/// Invariant (API.md): every payment and every refund writes its history row, also
/// when the amount is 0 (an order made free by a coupon).
pub async fn a_free_order_writes_payment_and_refund_rows_of_zero(s: Stores) {
    let p = product(&s, 5_000, 10).await;
    let free = coupon(
        &s,
        CouponSpec {
            discount: Discount::new(DiscountType::Percent, 100).unwrap(),
            issue_to: vec![4],
            ..CouponSpec::default()
        },
    )
    .await;
    let svc = orders(&s);
    let order = svc
        .place(place_with(4, &[(p, 1)], free, true), None)
        .await
        .unwrap();
    assert_eq!((order.total.won(), order.status), (0, OrderStatus::Paid));
    svc.cancel(Actor::User(uid(4)), order.id, None)
        .await
        .unwrap();
    let rows: Vec<(HistoryKind, i64)> = history_of(&s, 4)
        .await
        .iter()
        .map(|h| (h.kind, h.amount))
        .collect();
    assert_eq!(
        rows,
        vec![(HistoryKind::Refund, 0), (HistoryKind::Payment, 0)]
    );
}

/// Invariant (API.md): money and stock given back are never refused, even past their
/// caps; charges and restocks are then refused until they are below again.
pub async fn money_and_stock_given_back_may_pass_their_caps(s: Stores) {
    let p = product(&s, 10_000, 1_000_000_000).await;
    for _ in 0..100 {
        charge(&s, 5, 10_000_000).await;
    }
    let svc = orders(&s);
    let paid = svc.place(place(5, &[(p, 1)], true), None).await.unwrap();
    charge(&s, 5, 10_000).await; // back to exactly 1,000,000,000
    adjust(&s, p, 1).await.unwrap();
    let cancelled = svc
        .cancel(Actor::User(uid(5)), paid.id, None)
        .await
        .unwrap();
    assert_eq!(cancelled.payment.unwrap().status, PaymentStatus::Refunded);
    assert_eq!(balance_of(&s, 5).await, 1_000_010_000);
    assert_eq!(stock_of(&s, p).await, 1_000_000_001);
    let one = ChargeAmount::try_from(1).unwrap();
    let refused = s
        .balances
        .open_charge(
            NewCharge {
                user_id: uid(5),
                amount: one,
                method: PaymentMethod::try_from("card".to_string()).unwrap(),
                now: now(),
                claim_id: None,
            },
            Box::new(move |snap| plan_open_charge(snap, one)),
        )
        .await;
    assert!(matches!(refused, Err(OpenChargeError::LimitExceeded(_))));
    assert!(adjust(&s, p, 1).await.is_err());
    assert!(adjust(&s, p, -2).await.is_ok());
}

/// Invariant: a partial refund and the cancel after it give back exactly what was paid
/// and return each unit once; refunded units stop counting as sold; a cancelled order
/// cannot be refunded.
pub async fn a_refund_then_a_cancel_return_everything_once(s: Stores) {
    let p = product(&s, 1_000, 10).await;
    let q = product(&s, 500, 10).await;
    charge(&s, 6, 100_000).await;
    let svc = orders(&s);
    let paid = svc
        .place(place(6, &[(p, 3), (q, 2)], true), None)
        .await
        .unwrap();
    let refund = svc
        .refund(Actor::User(uid(6)), paid.id, refund_of(p, 2), None)
        .await
        .unwrap();
    assert_eq!(refund.amount.won(), 2_000);
    let sellers = svc.best_sellers(1, 10).await.unwrap();
    let sold = |id| {
        sellers
            .iter()
            .find(|s| s.product.id == id)
            .unwrap()
            .sold_quantity
    };
    assert_eq!(
        (sold(p), sold(q)),
        (1, 2),
        "refunded units no longer count as sold"
    );
    let order = svc.get(paid.id).await.unwrap().unwrap();
    assert_eq!(order.refunds, vec![refund.clone()]);
    assert_eq!(order.refunded_total.won(), 2_000);
    svc.cancel(Actor::User(uid(6)), paid.id, None)
        .await
        .unwrap();
    assert_eq!(balance_of(&s, 6).await, 100_000);
    assert_eq!((stock_of(&s, p).await, stock_of(&s, q).await), (10, 10));
    assert!(svc.best_sellers(1, 10).await.unwrap().is_empty());
    let err = svc
        .refund(Actor::User(uid(6)), paid.id, refund_of(q, 1), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RefundOrderError::InvalidState(OrderStatus::Cancelled)
    ));
    let kinds: Vec<String> = events(&s).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(kinds, ["order.paid", "order.refunded", "order.cancelled"]);
}

/// Invariant: an order from the cart orders exactly the cart's lines (read with the
/// order's snapshot) and, paid at once, drops them from the cart; an empty cart is refused.
pub async fn ordering_from_the_cart_takes_its_lines(s: Stores) {
    let a = product(&s, 1_000, 10).await;
    let b = product(&s, 300, 10).await;
    let cart_qty = |v| ::order::cart::CartQuantity::try_from(v).unwrap();
    s.carts
        .set_quantity(uid(1), b, cart_qty(1), now())
        .await
        .unwrap();
    s.carts
        .set_quantity(uid(1), a, cart_qty(2), now())
        .await
        .unwrap();
    charge(&s, 1, 10_000).await;
    let svc = orders(&s);
    let order = svc
        .place(PlaceOrder::from_cart(uid(1), None, true), None)
        .await
        .unwrap();
    let ordered: Vec<_> = order
        .items
        .iter()
        .map(|l| (l.product_id, l.quantity.get()))
        .collect();
    assert_eq!(ordered, vec![(a, 2), (b, 1)]);
    assert_eq!(order.total.won(), 2_300);
    assert!(s.carts.lines(uid(1)).await.unwrap().is_empty());
    let empty = svc
        .place(PlaceOrder::from_cart(uid(1), None, false), None)
        .await;
    assert!(
        matches!(empty, Err(PlaceOrderError::EmptyCart)),
        "{empty:?}"
    );
}

/// Invariant: expiry lists the PENDING orders past `expires_at`, oldest first, and
/// cancels each under lock as EXPIRED (stock back); an order not due, or paid, is not
/// expired.
pub async fn expiry_cancels_only_due_pending_orders(s: Stores) {
    let p = product(&s, 1_000, 10).await;
    charge(&s, 1, 10_000).await;
    let svc = orders(&s);
    let first = svc.place(place(1, &[(p, 1)], false), None).await.unwrap();
    let second = svc.place(place(1, &[(p, 2)], false), None).await.unwrap();
    let paid = svc.place(place(1, &[(p, 3)], true), None).await.unwrap();
    assert!(s.orders.due_for_expiry(now(), 10).await.unwrap().is_empty());
    let later = first.expires_at.max(second.expires_at) + chrono::Duration::seconds(1);
    assert_eq!(
        s.orders.due_for_expiry(later, 10).await.unwrap(),
        vec![first.id, second.id]
    );
    assert_eq!(
        s.orders.due_for_expiry(later, 1).await.unwrap(),
        vec![first.id]
    );
    let moment = Moment {
        now: now(),
        event_id: uuid::Uuid::new_v4(),
    };
    let not_due = s
        .orders
        .cancel(
            first.id,
            Box::new(move |snap| plan_cancel(Cancellation::Expiry, snap, moment)),
            None,
        )
        .await;
    assert!(
        matches!(not_due, Err(CancelOrderError::NotDue)),
        "{not_due:?}"
    );
    let sweeper = OrderService::new(
        s.orders.clone(),
        Arc::new(FixedClock(later)),
        Duration::from_secs(900),
    );
    assert_eq!(sweeper.expire_due(10).await.unwrap(), 2);
    let expired = svc.get(first.id).await.unwrap().unwrap();
    assert_eq!(
        (expired.status, expired.cancel_reason),
        (OrderStatus::Cancelled, Some(CancelReason::Expired))
    );
    assert_eq!(
        stock_of(&s, p).await,
        7,
        "the expired orders' units are back"
    );
    assert_eq!(
        svc.get(paid.id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
    assert_eq!(sweeper.expire_due(10).await.unwrap(), 0);
}

/// Invariant: a user's orders and the admin search come newest first, page by page,
/// matching every filter given.
pub async fn orders_are_listed_and_searched_newest_first(s: Stores) {
    let p = product(&s, 100, 100).await;
    charge(&s, 1, 10_000).await;
    let svc = orders(&s);
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(
            svc.place(place(1, &[(p, 1)], i == 1), None)
                .await
                .unwrap()
                .id,
        );
    }
    let theirs = svc
        .place(place(2, &[(p, 1)], false), None)
        .await
        .unwrap()
        .id;
    let first = svc
        .list_for_user(uid(1), PageRequest::new(2, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        [mine[2], mine[1]]
    );
    let rest = svc
        .list_for_user(uid(1), PageRequest::new(2, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        [mine[0]]
    );
    assert_eq!(rest.next, None);
    let search = |filter: OrderFilter| {
        let svc = svc.clone();
        async move {
            svc.search(filter, PageRequest::default())
                .await
                .unwrap()
                .items
                .iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search(OrderFilter::default()).await,
        [theirs, mine[2], mine[1], mine[0]]
    );
    assert_eq!(
        search(OrderFilter {
            status: Some(OrderStatus::Paid),
            ..OrderFilter::default()
        })
        .await,
        [mine[1]]
    );
    assert_eq!(
        search(OrderFilter {
            status: Some(OrderStatus::Pending),
            user_id: Some(uid(1)),
            ..OrderFilter::default()
        })
        .await,
        [mine[2], mine[0]]
    );
    let hour = chrono::Duration::hours(1);
    assert!(search(OrderFilter {
        created_from: Some(now() + hour),
        ..OrderFilter::default()
    })
    .await
    .is_empty());
    assert_eq!(
        search(OrderFilter {
            created_from: Some(now() - hour),
            created_to: Some(now() + hour),
            user_id: Some(uid(2)),
            ..OrderFilter::default()
        })
        .await,
        [theirs]
    );
    // With a created range the search runs in creation-time order; its pages still
    // continue from an order id, with nothing repeated or skipped.
    let range = OrderFilter {
        created_from: Some(now() - hour),
        created_to: Some(now() + hour),
        ..OrderFilter::default()
    };
    let first = svc
        .search(range.clone(), PageRequest::new(3, None).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        [theirs, mine[2], mine[1]]
    );
    let rest = svc
        .search(range, PageRequest::new(3, first.next).unwrap())
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        [mine[0]]
    );
    assert_eq!(rest.next, None);
}
