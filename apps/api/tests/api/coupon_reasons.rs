//! The `reason` of 409 `COUPON_NOT_USABLE` through `POST /orders` (API.md, Coupons;
//! issue 13): each reason, and a refused order changes nothing.

use crate::helpers::{create_coupon, spawn_app, TestApp};
use crate::shop::{balance_of, orders_of, place, stock_of, user_coupon};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PRICE: i64 = 10_000;
const USER: i64 = 1;

struct Setup {
    app: TestApp,
    product: i64,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let product = app.product_id("Speaker", PRICE, 20).await;
    app.charge(USER, 100_000).await;
    Setup { app, product }
}

fn order(product: i64, quantity: i64, coupon: i64) -> Value {
    json!({"user_id": USER, "items": [{"product_id": product, "quantity": quantity}],
           "coupon_id": coupon, "pay_now": true})
}

async fn coupon(app: &TestApp, overrides: Value) -> i64 {
    create_coupon(app, overrides).await["id"].as_i64().unwrap()
}

async fn issued_quantity(app: &TestApp, coupon: i64) -> i64 {
    let r = app
        .get(
            &format!("/api/v1/coupons/{coupon}"),
            Some(&app.user_token(USER)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["issued_quantity"].as_i64().unwrap()
}

/// Places a pay-now order of `quantity` units with `coupon` and asserts 409
/// COUPON_NOT_USABLE with `reason`, and that nothing changed: stock, balance, the
/// user's orders, the coupon's owners, and what the user's coupon shows.
async fn assert_refused(s: &Setup, coupon: i64, quantity: i64, reason: &str) {
    let app = &s.app;
    let before = (
        stock_of(app, s.product).await,
        balance_of(app, USER).await,
        orders_of(app, USER).await.len(),
        issued_quantity(app, coupon).await,
        user_coupon(app, USER, coupon).await,
    );
    let r = place(app, USER, order(s.product, quantity, coupon)).await;
    r.assert_problem(409, "COUPON_NOT_USABLE");
    assert_eq!(r.body["reason"], reason, "{}", r.body);
    let after = (
        stock_of(app, s.product).await,
        balance_of(app, USER).await,
        orders_of(app, USER).await.len(),
        issued_quantity(app, coupon).await,
        user_coupon(app, USER, coupon).await,
    );
    assert_eq!(after, before, "{reason}: something changed");
}

// Invariant: a coupon the user does not own is NOT_OWNED, and it is not issued to them
// by the attempt.
#[tokio::test]
async fn a_coupon_of_another_user_is_not_owned() {
    let s = setup().await;
    let c = coupon(&s.app, json!({"issue_to": [9]})).await;
    assert_refused(&s, c, 1, "NOT_OWNED").await;
    assert!(user_coupon(&s.app, USER, c).await.is_none());
}

// Invariant: a coupon used by another order is ALREADY_USED and stays with that order.
#[tokio::test]
async fn a_coupon_used_by_another_order_is_already_used() {
    let s = setup().await;
    let c = coupon(&s.app, json!({"issue_to": [USER]})).await;
    let first = place(&s.app, USER, order(s.product, 1, c)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_refused(&s, c, 1, "ALREADY_USED").await;
    let owned = user_coupon(&s.app, USER, c).await.unwrap();
    assert_eq!(owned["status"], "USED");
    assert_eq!(owned["order_id"], first.body["id"]);
}

// Invariant: a deactivated coupon is INACTIVE; the user still owns it, AVAILABLE.
#[tokio::test]
async fn a_deactivated_coupon_is_inactive() {
    let s = setup().await;
    let c = coupon(&s.app, json!({"issue_to": [USER]})).await;
    let r = s
        .app
        .post(
            &format!("/api/v1/admin/coupons/{c}/deactivate"),
            Some(&s.app.admin_token()),
            &json!(null),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_refused(&s, c, 1, "INACTIVE").await;
    let owned = user_coupon(&s.app, USER, c).await.unwrap();
    assert_eq!(owned["status"], "AVAILABLE");
    assert_eq!(owned["coupon"]["active"], false);
}

// Invariant: a coupon whose window has not started is NOT_YET_VALID; it stays AVAILABLE.
#[tokio::test]
async fn a_coupon_before_its_window_is_not_yet_valid() {
    let s = setup().await;
    let now = chrono::Utc::now();
    let c = coupon(
        &s.app,
        json!({"issue_to": [USER],
               "valid_from": (now + chrono::Duration::days(1)).to_rfc3339(),
               "valid_until": (now + chrono::Duration::days(2)).to_rfc3339()}),
    )
    .await;
    assert_refused(&s, c, 1, "NOT_YET_VALID").await;
    assert_eq!(
        user_coupon(&s.app, USER, c).await.unwrap()["status"],
        "AVAILABLE"
    );
}

// Invariant: a coupon whose window has ended is EXPIRED; it is not used by the attempt.
#[tokio::test]
async fn a_coupon_after_its_window_is_expired() {
    let s = setup().await;
    let c = coupon(
        &s.app,
        json!({"issue_to": [USER],
               "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2020-02-01T00:00:00Z"}),
    )
    .await;
    assert_refused(&s, c, 1, "EXPIRED").await;
    let owned = user_coupon(&s.app, USER, c).await.unwrap();
    assert_eq!(owned["status"], "EXPIRED");
    assert_eq!(
        (owned["used_at"].clone(), owned["order_id"].clone()),
        (Value::Null, Value::Null)
    );
}

// Invariant: a subtotal below min_order_amount is BELOW_MIN_ORDER_AMOUNT; a subtotal
// of exactly the minimum is enough.
#[tokio::test]
async fn a_subtotal_below_the_minimum_is_below_min_order_amount() {
    let s = setup().await;
    let above = coupon(
        &s.app,
        json!({"issue_to": [USER], "min_order_amount": 2 * PRICE + 1}),
    )
    .await;
    assert_refused(&s, above, 2, "BELOW_MIN_ORDER_AMOUNT").await;
    assert_eq!(
        user_coupon(&s.app, USER, above).await.unwrap()["status"],
        "AVAILABLE"
    );
    let exact = coupon(
        &s.app,
        json!({"issue_to": [USER], "min_order_amount": 2 * PRICE}),
    )
    .await;
    let r = place(&s.app, USER, order(s.product, 2, exact)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["discount"], 2 * PRICE / 10);
}
