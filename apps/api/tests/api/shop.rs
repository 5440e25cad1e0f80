//! Steps the tests of refunds, admin order search, ordering from the cart and coupon
//! reasons share: place, pay, cancel, refund, and read back what a client can see
//! (order, stock, balance, history, coupons, outbox) through the API.

use crate::helpers::{Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// `POST /orders` as `user`.
pub async fn place(app: &TestApp, user: i64, body: Value) -> Reply {
    app.post("/api/v1/orders", Some(&app.user_token(user)), &body)
        .await
}

/// `[{"product_id", "quantity"}]` of `(product, quantity)` pairs.
pub fn lines(units: &[(i64, i64)]) -> Value {
    units
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect()
}

/// Places and pays (`pay_now`) an order of `units` for `user`, with `coupon` if given;
/// panics unless 201 PAID. Returns the `Order`.
pub async fn place_paid(
    app: &TestApp,
    user: i64,
    units: &[(i64, i64)],
    coupon: Option<i64>,
) -> Value {
    let mut body = json!({"user_id": user, "items": lines(units), "pay_now": true});
    if let Some(c) = coupon {
        body["coupon_id"] = json!(c);
    }
    let r = place(app, user, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "PAID", "{}", r.body);
    r.body
}

/// Places a PENDING order of `units` for `user`; panics unless 201. Returns the `Order`.
pub async fn place_pending(app: &TestApp, user: i64, units: &[(i64, i64)]) -> Value {
    let r = place(app, user, json!({"user_id": user, "items": lines(units)})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

/// `POST /orders/{order}/refunds` with `token` (None: no token).
pub async fn refund(app: &TestApp, token: Option<&str>, order: i64, body: &Value) -> Reply {
    app.post(&format!("/api/v1/orders/{order}/refunds"), token, body)
        .await
}

/// A refund body: `units` and no reason.
pub fn refund_of(units: &[(i64, i64)]) -> Value {
    json!({"items": lines(units)})
}

/// `POST /orders/{order}/cancel` with `token`.
pub async fn cancel(app: &TestApp, token: &str, order: i64) -> Reply {
    app.request(
        Method::POST,
        &format!("/api/v1/orders/{order}/cancel"),
        Some(token),
        None,
    )
    .await
}

/// `POST /orders/{order}/payment` with `token`.
pub async fn pay(app: &TestApp, token: &str, order: i64) -> Reply {
    app.request(
        Method::POST,
        &format!("/api/v1/orders/{order}/payment"),
        Some(token),
        None,
    )
    .await
}

/// The order as an admin reads it; panics unless 200.
pub async fn order_of(app: &TestApp, order: i64) -> Value {
    let r = app
        .get(&format!("/api/v1/orders/{order}"), Some(&app.admin_token()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Every order of `user`, newest first.
pub async fn orders_of(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/orders"),
        Some(&app.user_token(user)),
        100,
    )
    .await
}

pub async fn stock_of(app: &TestApp, product: i64) -> i64 {
    app.product(product).await["stock"].as_i64().expect("stock")
}

pub async fn balance_of(app: &TestApp, user: i64) -> i64 {
    let r = app
        .get(
            &format!("/api/v1/users/{user}/balance"),
            Some(&app.user_token(user)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["balance"].as_i64().expect("balance")
}

/// The user's balance history, newest first.
pub async fn history_of(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/balance/history"),
        Some(&app.user_token(user)),
        100,
    )
    .await
}

/// `(kind, amount)` of the history rows of one order, oldest first.
pub async fn ledger_of(app: &TestApp, user: i64, order: i64) -> Vec<(String, i64)> {
    let mut rows: Vec<(String, i64)> = history_of(app, user)
        .await
        .into_iter()
        .filter(|h| h["order_id"] == order)
        .map(|h| {
            (
                h["kind"].as_str().expect("kind").to_string(),
                h["amount"].as_i64().expect("amount"),
            )
        })
        .collect();
    rows.reverse();
    rows
}

/// The `UserCoupon` of `coupon` among `user`'s coupons, if they own it.
pub async fn user_coupon(app: &TestApp, user: i64, coupon: i64) -> Option<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/coupons"),
        Some(&app.user_token(user)),
        100,
    )
    .await
    .into_iter()
    .find(|c| c["coupon"]["id"] == coupon)
}

/// A coupon valid now (PERCENT or FIXED `value`, no cap, no minimum), given to `users`.
pub async fn coupon_for(app: &TestApp, kind: &str, value: i64, users: &[i64]) -> i64 {
    crate::helpers::create_coupon(
        app,
        json!({"discount_type": kind, "discount_value": value, "issue_to": users}),
    )
    .await["id"]
        .as_i64()
        .expect("a coupon id")
}

/// `event_type`s of the outbox events of `order`, in the order they were written, as
/// the admin outbox list shows them.
pub async fn events_of(app: &TestApp, order: i64) -> Vec<String> {
    app.get_all("/api/v1/admin/outbox", Some(&app.admin_token()), 100)
        .await
        .into_iter()
        .filter(|e| e["order_id"] == order)
        .map(|e| e["event_type"].as_str().expect("event_type").to_string())
        .collect()
}

/// `product_ids` of a problem, sorted.
pub fn product_ids(r: &Reply) -> Vec<i64> {
    let mut ids: Vec<i64> = r.body["product_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no product_ids: {}", r.body))
        .iter()
        .map(|v| v.as_i64().expect("an id"))
        .collect();
    ids.sort_unstable();
    ids
}

/// The fields `errors` names.
pub fn fields(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {}", r.body))
        .iter()
        .map(|e| e["field"].as_str().expect("a field").to_string())
        .collect()
}

/// Asserts a 422 VALIDATION_ERROR that names `field` (among others it may name).
#[track_caller]
pub fn assert_names_field(r: &Reply, field: &str) {
    r.assert_problem(422, "VALIDATION_ERROR");
    assert!(
        fields(r).iter().any(|f| f == field),
        "expected {field} among the fields: {}",
        r.body
    );
}

/// The `id`s of a list of objects.
pub fn ids(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|o| o["id"].as_i64().expect("an id"))
        .collect()
}
