//! Orders and payment: every status and code of "Orders and payment" in API.md, with
//! the numbers checked, and the races that must not break stock, money or coupons.

use crate::helpers::{spawn_app, spawn_app_with, spawn_on, Reply, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn product(app: &TestApp, name: &str, price: i64, stock: i64) -> i64 {
    let r = app
        .post(
            "/api/v1/admin/products",
            Some(&app.admin_token()),
            &json!({"name": name, "price": price, "stock": stock}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn stock_of(app: &TestApp, id: i64) -> i64 {
    app.get(&format!("/api/v1/products/{id}"), None).await.body["stock"]
        .as_i64()
        .unwrap()
}

/// A coupon valid now, issued to `users`.
async fn coupon(app: &TestApp, kind: &str, value: i64, min_order: i64, users: &[i64]) -> i64 {
    let r = app
        .post(
            "/api/v1/admin/coupons",
            Some(&app.admin_token()),
            &json!({
                "name": format!("{kind} {value}"), "discount_type": kind, "discount_value": value,
                "min_order_amount": min_order, "total_quantity": null,
                "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2999-01-01T00:00:00Z",
                "issue_to": users,
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn coupon_status(app: &TestApp, user: i64, coupon: i64) -> Value {
    let all = app
        .get_all(
            &format!("/api/v1/users/{user}/coupons"),
            Some(&app.user_token(user)),
            100,
        )
        .await;
    all.into_iter()
        .find(|c| c["coupon"]["id"] == coupon)
        .expect("the user owns the coupon")
}

async fn balance_of(app: &TestApp, user: i64) -> i64 {
    app.get(
        &format!("/api/v1/users/{user}/balance"),
        Some(&app.user_token(user)),
    )
    .await
    .body["balance"]
        .as_i64()
        .unwrap()
}

async fn history_of(app: &TestApp, user: i64) -> Vec<Value> {
    app.get_all(
        &format!("/api/v1/users/{user}/balance/history"),
        Some(&app.user_token(user)),
        100,
    )
    .await
}

async fn place(app: &TestApp, user: i64, body: Value) -> Reply {
    app.post("/api/v1/orders", Some(&app.user_token(user)), &body)
        .await
}

async fn pay(app: &TestApp, user: i64, order: i64) -> Reply {
    app.request(
        Method::POST,
        &format!("/api/v1/orders/{order}/payment"),
        Some(&app.user_token(user)),
        None,
    )
    .await
}

async fn cancel(app: &TestApp, user: i64, order: i64) -> Reply {
    app.request(
        Method::POST,
        &format!("/api/v1/orders/{order}/cancel"),
        Some(&app.user_token(user)),
        None,
    )
    .await
}

async fn outbox_events(app: &TestApp, order: i64) -> Vec<String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let pool = app.pool();
    let mut conn = pool.get().await.unwrap();
    #[derive(QueryableByName)]
    struct E {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_type: String,
    }
    let rows: Vec<E> =
        diesel::sql_query("SELECT event_type FROM outbox_events WHERE order_id = $1 ORDER BY id")
            .bind::<diesel::sql_types::BigInt, _>(order)
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|e| e.event_type).collect()
}

#[tokio::test]
async fn placing_reserves_stock_prices_lines_and_saves_a_pending_order() {
    let app = spawn_app().await;
    let a = product(&app, "Apple", 1_200, 10).await;
    let b = product(&app, "Pear", 800, 5).await;
    let r = place(&app, 1, json!({"user_id": 1, "items": [{"product_id": a, "quantity": 3}, {"product_id": b, "quantity": 2}]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/orders/{id}").as_str())
    );
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(r.body["user_id"], 1);
    assert_eq!(r.body["subtotal"], 3 * 1_200 + 2 * 800);
    assert_eq!(r.body["discount"], 0);
    assert_eq!(r.body["total"], 5_200);
    assert_eq!(r.body["items"][0]["name"], "Apple");
    assert_eq!(r.body["items"][0]["unit_price"], 1_200);
    assert_eq!(r.body["items"][0]["subtotal"], 3_600);
    assert_eq!(r.body["payment"], Value::Null);
    assert_eq!(r.body["coupon_id"], Value::Null);
    let created =
        chrono::DateTime::parse_from_rfc3339(r.body["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, chrono::Duration::seconds(900));
    assert_eq!((stock_of(&app, a).await, stock_of(&app, b).await), (7, 3));
    let got = app
        .get(&format!("/api/v1/orders/{id}"), Some(&app.user_token(1)))
        .await;
    assert_eq!(got.body, r.body);
}

#[tokio::test]
async fn fixed_and_percent_coupons_discount_and_are_used_by_the_order() {
    let app = spawn_app().await;
    let p = product(&app, "Lamp", 9_999, 10).await;
    let fixed = coupon(&app, "FIXED", 3_000, 0, &[2]).await;
    let percent = coupon(&app, "PERCENT", 15, 0, &[2]).await;
    let r = place(
        &app,
        2,
        json!({"user_id": 2, "items": [{"product_id": p, "quantity": 1}], "coupon_id": fixed}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["discount"].as_i64(), r.body["total"].as_i64()),
        (Some(3_000), Some(6_999))
    );
    let order = r.body["id"].as_i64().unwrap();
    let owned = coupon_status(&app, 2, fixed).await;
    assert_eq!(owned["status"], "USED");
    assert_eq!(owned["order_id"], order);
    // 15% of 19,998 = 2,999.7 -> 2,999
    let r = place(
        &app,
        2,
        json!({"user_id": 2, "items": [{"product_id": p, "quantity": 2}], "coupon_id": percent}),
    )
    .await;
    assert_eq!(
        (r.body["discount"].as_i64(), r.body["total"].as_i64()),
        (Some(2_999), Some(16_999))
    );
    // a used coupon cannot be used again
    let r = place(
        &app,
        2,
        json!({"user_id": 2, "items": [{"product_id": p, "quantity": 1}], "coupon_id": fixed}),
    )
    .await;
    r.assert_problem(409, "COUPON_NOT_USABLE");
    assert_eq!(stock_of(&app, p).await, 7);
}

#[tokio::test]
async fn a_fixed_discount_never_exceeds_the_subtotal() {
    let app = spawn_app().await;
    let p = product(&app, "Gum", 500, 10).await;
    let big = coupon(&app, "FIXED", 100_000, 0, &[3]).await;
    let r = place(&app, 3, json!({"user_id": 3, "items": [{"product_id": p, "quantity": 2}], "coupon_id": big, "pay_now": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (
            r.body["subtotal"].as_i64(),
            r.body["discount"].as_i64(),
            r.body["total"].as_i64()
        ),
        (Some(1_000), Some(1_000), Some(0))
    );
    assert_eq!(r.body["status"], "PAID");
    assert_eq!(balance_of(&app, 3).await, 0);
}

#[tokio::test]
async fn unusable_and_unknown_coupons_refuse_the_order_and_reserve_nothing() {
    let app = spawn_app().await;
    let p = product(&app, "Book", 10_000, 5).await;
    let not_mine = coupon(&app, "FIXED", 1_000, 0, &[9]).await;
    let minimum = coupon(&app, "FIXED", 1_000, 50_000, &[4]).await;
    let body =
        |c: i64| json!({"user_id": 4, "items": [{"product_id": p, "quantity": 1}], "coupon_id": c});
    place(&app, 4, body(not_mine))
        .await
        .assert_problem(409, "COUPON_NOT_USABLE");
    place(&app, 4, body(minimum))
        .await
        .assert_problem(409, "COUPON_NOT_USABLE");
    place(&app, 4, body(999_999))
        .await
        .assert_problem(404, "COUPON_NOT_FOUND");
    assert_eq!(stock_of(&app, p).await, 5);
    assert_eq!(coupon_status(&app, 4, minimum).await["status"], "AVAILABLE");
    let orders = app
        .get_all("/api/v1/users/4/orders", Some(&app.user_token(4)), 10)
        .await;
    assert!(orders.is_empty());
}

// Invariant: one short line means nothing is reserved, and every short product is named.
#[tokio::test]
async fn unknown_and_short_products_are_named_and_nothing_is_reserved() {
    let app = spawn_app().await;
    let a = product(&app, "A", 100, 5).await;
    let b = product(&app, "B", 100, 1).await;
    let c = product(&app, "C", 100, 0).await;
    let r = place(&app, 1, json!({"user_id": 1, "items": [{"product_id": a, "quantity": 5}, {"product_id": b, "quantity": 2}, {"product_id": c, "quantity": 1}]})).await;
    r.assert_problem(409, "OUT_OF_STOCK");
    let mut short: Vec<i64> = r.body["product_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    short.sort_unstable();
    assert_eq!(short, vec![b, c]);
    assert_eq!(stock_of(&app, a).await, 5);
    let r = place(&app, 1, json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1}, {"product_id": 777_777, "quantity": 1}, {"product_id": 888_888, "quantity": 1}]})).await;
    r.assert_problem(404, "PRODUCT_NOT_FOUND");
    let mut missing: Vec<i64> = r.body["product_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    missing.sort_unstable();
    assert_eq!(missing, vec![777_777, 888_888]);
    assert_eq!(stock_of(&app, a).await, 5);
}

#[tokio::test]
async fn invalid_orders_are_422_and_other_users_are_403() {
    let app = spawn_app().await;
    let a = product(&app, "A", 100, 5).await;
    let many: Vec<Value> = (1..=51)
        .map(|i| json!({"product_id": i, "quantity": 1}))
        .collect();
    for body in [
        json!({"user_id": 1, "items": []}),
        json!({"user_id": 1, "items": many}),
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 0}]}),
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1001}]}),
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1}, {"product_id": a, "quantity": 2}]}),
        json!({"user_id": 1, "items": [{"product_id": 0, "quantity": 1}]}),
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1}], "coupon_id": -1}),
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": "1"}]}),
        json!({"user_id": 1}),
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1}], "pay_now": "yes"}),
    ] {
        place(&app, 1, body.clone())
            .await
            .assert_problem(422, "VALIDATION_ERROR");
    }
    place(
        &app,
        1,
        json!({"user_id": 2, "items": [{"product_id": a, "quantity": 1}]}),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
    app.post(
        "/api/v1/orders",
        None,
        &json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1}]}),
    )
    .await
    .assert_problem(401, "UNAUTHORIZED");
    assert_eq!(stock_of(&app, a).await, 5);
}

// Invariant: paying debits exactly the total once, empties the paid products from the cart
// and queues one order.paid event, all in one step.
#[tokio::test]
async fn paying_debits_the_balance_clears_the_cart_and_queues_the_event() {
    let app = spawn_app().await;
    let a = product(&app, "A", 2_000, 5).await;
    let b = product(&app, "B", 700, 5).await;
    app.charge(5, 10_000).await;
    for (p, q) in [(a, 2), (b, 1)] {
        let r = app
            .request(
                Method::PUT,
                &format!("/api/v1/users/5/cart/items/{p}"),
                Some(&app.user_token(5)),
                Some(&json!({"quantity": q})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let order = place(
        &app,
        5,
        json!({"user_id": 5, "items": [{"product_id": a, "quantity": 2}]}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap();
    let r = pay(&app, 5, order).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "PAID");
    assert!(r.body["paid_at"].is_string());
    assert_eq!(r.body["payment"]["amount"], 4_000);
    assert_eq!(r.body["payment"]["status"], "PAID");
    assert_eq!(balance_of(&app, 5).await, 6_000);
    let history = history_of(&app, 5).await;
    assert_eq!(history[0]["kind"], "PAYMENT");
    assert_eq!(history[0]["amount"], -4_000);
    assert_eq!(history[0]["balance_after"], 6_000);
    assert_eq!(history[0]["order_id"], order);
    let cart = app
        .get("/api/v1/users/5/cart", Some(&app.user_token(5)))
        .await;
    let in_cart: Vec<i64> = cart.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["product_id"].as_i64().unwrap())
        .collect();
    assert_eq!(in_cart, vec![b]);
    assert_eq!(outbox_events(&app, order).await, vec!["order.paid"]);
    // paying twice is refused and charges nothing
    pay(&app, 5, order)
        .await
        .assert_problem(409, "INVALID_ORDER_STATE");
    assert_eq!(balance_of(&app, 5).await, 6_000);
}

#[tokio::test]
async fn without_enough_balance_the_order_stays_pending_until_charged() {
    let app = spawn_app().await;
    let a = product(&app, "A", 5_000, 5).await;
    app.charge(6, 4_999).await;
    let order = place(
        &app,
        6,
        json!({"user_id": 6, "items": [{"product_id": a, "quantity": 1}]}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap();
    let r = pay(&app, 6, order).await;
    r.assert_problem(409, "INSUFFICIENT_BALANCE");
    let got = app
        .get(&format!("/api/v1/orders/{order}"), Some(&app.user_token(6)))
        .await;
    assert_eq!(got.body["status"], "PENDING");
    assert_eq!(balance_of(&app, 6).await, 4_999);
    assert!(outbox_events(&app, order).await.is_empty());
    app.charge(6, 1).await;
    assert_eq!(pay(&app, 6, order).await.body["status"], "PAID");
    assert_eq!(balance_of(&app, 6).await, 0);
}

// Invariant: pay_now without enough balance creates nothing: no order, no reservation, coupon unused.
#[tokio::test]
async fn pay_now_is_all_or_nothing() {
    let app = spawn_app().await;
    let a = product(&app, "A", 3_000, 5).await;
    let c = coupon(&app, "FIXED", 500, 0, &[7]).await;
    app.charge(7, 2_000).await;
    let body = json!({"user_id": 7, "items": [{"product_id": a, "quantity": 1}], "coupon_id": c, "pay_now": true});
    place(&app, 7, body.clone())
        .await
        .assert_problem(409, "INSUFFICIENT_BALANCE");
    assert_eq!(stock_of(&app, a).await, 5);
    assert_eq!(coupon_status(&app, 7, c).await["status"], "AVAILABLE");
    assert!(app
        .get_all("/api/v1/users/7/orders", Some(&app.user_token(7)), 10)
        .await
        .is_empty());
    assert_eq!(balance_of(&app, 7).await, 2_000);
    app.charge(7, 500).await;
    let r = place(&app, 7, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["total"].as_i64()),
        (Some("PAID"), Some(2_500))
    );
    assert_eq!(balance_of(&app, 7).await, 0);
    assert_eq!(stock_of(&app, a).await, 4);
}

// Invariant: cancelling returns stock and coupon; a paid order is refunded exactly once.
#[tokio::test]
async fn cancelling_compensates_and_refunds_paid_orders() {
    let app = spawn_app().await;
    let a = product(&app, "A", 1_000, 10).await;
    let c = coupon(&app, "FIXED", 100, 0, &[8]).await;
    app.charge(8, 5_000).await;
    let pending = place(
        &app,
        8,
        json!({"user_id": 8, "items": [{"product_id": a, "quantity": 3}], "coupon_id": c}),
    )
    .await;
    let pending = pending.body["id"].as_i64().unwrap();
    let r = cancel(&app, 8, pending).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["cancel_reason"].as_str()),
        (Some("CANCELLED"), Some("USER_REQUEST"))
    );
    assert!(r.body["cancelled_at"].is_string());
    assert_eq!(stock_of(&app, a).await, 10);
    assert_eq!(coupon_status(&app, 8, c).await["status"], "AVAILABLE");
    assert!(
        outbox_events(&app, pending).await.is_empty(),
        "an unpaid cancellation is not reported"
    );
    cancel(&app, 8, pending)
        .await
        .assert_problem(409, "INVALID_ORDER_STATE");
    pay(&app, 8, pending)
        .await
        .assert_problem(409, "INVALID_ORDER_STATE");

    let paid = place(&app, 8, json!({"user_id": 8, "items": [{"product_id": a, "quantity": 2}], "coupon_id": c, "pay_now": true})).await;
    assert_eq!(paid.body["total"], 1_900);
    let paid = paid.body["id"].as_i64().unwrap();
    assert_eq!(balance_of(&app, 8).await, 3_100);
    let r = cancel(&app, 8, paid).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["payment"]["status"], "REFUNDED");
    assert!(r.body["payment"]["refunded_at"].is_string());
    assert_eq!(balance_of(&app, 8).await, 5_000);
    assert_eq!(stock_of(&app, a).await, 10);
    assert_eq!(coupon_status(&app, 8, c).await["status"], "AVAILABLE");
    let history = history_of(&app, 8).await;
    assert_eq!(
        (history[0]["kind"].as_str(), history[0]["amount"].as_i64()),
        (Some("REFUND"), Some(1_900))
    );
    assert_eq!(history[0]["order_id"], paid);
    assert_eq!(
        history
            .iter()
            .map(|h| h["amount"].as_i64().unwrap())
            .sum::<i64>(),
        5_000
    );
    assert_eq!(
        outbox_events(&app, paid).await,
        vec!["order.paid", "order.cancelled"]
    );
}

#[tokio::test]
async fn orders_are_visible_to_their_owner_and_admins_only() {
    let app = spawn_app().await;
    let a = product(&app, "A", 100, 10).await;
    let order = place(
        &app,
        1,
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 1}]}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/orders/{order}");
    app.get(&path, Some(&app.user_token(2)))
        .await
        .assert_problem(403, "FORBIDDEN");
    pay(&app, 2, order).await.assert_problem(403, "FORBIDDEN");
    cancel(&app, 2, order)
        .await
        .assert_problem(403, "FORBIDDEN");
    app.get(&path, None)
        .await
        .assert_problem(401, "UNAUTHORIZED");
    assert_eq!(
        app.get(&path, Some(&app.admin_token())).await.status,
        StatusCode::OK
    );
    app.get("/api/v1/orders/987654", Some(&app.user_token(1)))
        .await
        .assert_problem(404, "ORDER_NOT_FOUND");
    app.get("/api/v1/orders/abc", Some(&app.user_token(1)))
        .await
        .assert_problem(400, "VALIDATION_ERROR");
    pay(&app, 1, 987_654)
        .await
        .assert_problem(404, "ORDER_NOT_FOUND");
    app.get("/api/v1/users/1/orders", Some(&app.user_token(2)))
        .await
        .assert_problem(403, "FORBIDDEN");
}

#[tokio::test]
async fn a_users_orders_are_listed_newest_first_in_pages() {
    let app = spawn_app().await;
    let a = product(&app, "A", 100, 100).await;
    let mut ids = Vec::new();
    for q in 1..=5 {
        ids.push(
            place(
                &app,
                1,
                json!({"user_id": 1, "items": [{"product_id": a, "quantity": q}]}),
            )
            .await
            .body["id"]
                .as_i64()
                .unwrap(),
        );
    }
    place(
        &app,
        2,
        json!({"user_id": 2, "items": [{"product_id": a, "quantity": 1}]}),
    )
    .await;
    let all = app
        .get_all("/api/v1/users/1/orders", Some(&app.user_token(1)), 2)
        .await;
    let listed: Vec<i64> = all.iter().map(|o| o["id"].as_i64().unwrap()).collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert_eq!(all[0]["items"][0]["quantity"], 5);
}

#[tokio::test]
async fn an_order_past_its_deadline_cannot_be_paid() {
    let app = spawn_app_with(|s| s.orders.pending_ttl_seconds = 1).await;
    let a = product(&app, "A", 100, 10).await;
    app.charge(1, 1_000).await;
    let order = place(
        &app,
        1,
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 4}]}),
    )
    .await;
    let order = order.body["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    pay(&app, 1, order)
        .await
        .assert_problem(409, "ORDER_EXPIRED");
    assert_eq!(balance_of(&app, 1).await, 1_000);
    let got = app
        .get(&format!("/api/v1/orders/{order}"), Some(&app.user_token(1)))
        .await;
    assert_eq!(got.body["status"], "PENDING", "no sweep runs in this app");
}

// Invariant: an expired order gives back its stock and coupon, like a cancellation.
#[tokio::test]
async fn the_server_cancels_expired_orders_and_returns_stock_and_coupon() {
    let app = spawn_app_with(|s| {
        s.orders.pending_ttl_seconds = 1;
        s.orders.expiry_sweep_seconds = 1;
        s.jobs.enabled = true;
    })
    .await;
    let a = product(&app, "A", 100, 10).await;
    let c = coupon(&app, "FIXED", 10, 0, &[1]).await;
    let order = place(
        &app,
        1,
        json!({"user_id": 1, "items": [{"product_id": a, "quantity": 4}], "coupon_id": c}),
    )
    .await;
    let order = order.body["id"].as_i64().unwrap();
    assert_eq!(stock_of(&app, a).await, 6);
    assert_eq!(coupon_status(&app, 1, c).await["status"], "USED");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = app
            .get(&format!("/api/v1/orders/{order}"), Some(&app.user_token(1)))
            .await;
        if got.body["status"] == "CANCELLED" {
            assert_eq!(got.body["cancel_reason"], "EXPIRED");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the order was not expired in time: {}",
            got.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stock_of(&app, a).await, 10);
    assert_eq!(coupon_status(&app, 1, c).await["status"], "AVAILABLE");
    pay(&app, 1, order)
        .await
        .assert_problem(409, "INVALID_ORDER_STATE");
    assert!(
        outbox_events(&app, order).await.is_empty(),
        "an unpaid expiry is not reported"
    );
}

/// Runs `n` requests with at most 32 in flight.
async fn concurrently<F, Fut>(n: usize, f: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    use futures::StreamExt;
    futures::stream::iter((0..n).map(f))
        .buffer_unordered(32)
        .collect()
        .await
}

fn count(replies: &[Reply], status: u16) -> usize {
    replies
        .iter()
        .filter(|r| r.status.as_u16() == status)
        .count()
}

/// 100 users race `pay_now` for a product with stock 20, through `apps` in turn.
async fn race_for_stock(apps: &[&TestApp]) {
    let first = apps[0];
    let p = product(first, "Limited", 1_000, 20).await;
    concurrently(100, |u| first.charge(u as i64 + 1, 1_000)).await;
    let replies = concurrently(100, |u| {
        let app = apps[u % apps.len()];
        let user = u as i64 + 1;
        async move { place(app, user, json!({"user_id": user, "items": [{"product_id": p, "quantity": 1}], "pay_now": true})).await }
    })
    .await;
    let odd: Vec<_> = replies
        .iter()
        .filter(|r| ![201, 409].contains(&r.status.as_u16()))
        .map(|r| (r.status, r.body.clone()))
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    assert_eq!(count(&replies, 201), 20);
    assert_eq!(count(&replies, 409), 80);
    assert!(replies
        .iter()
        .filter(|r| r.status == 409)
        .all(|r| r.body["code"] == "OUT_OF_STOCK"));
    assert_eq!(stock_of(first, p).await, 0);
    let paid: i64 = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["total"].as_i64().unwrap())
        .sum();
    assert_eq!(paid, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_never_oversells_when_100_users_race_for_20_units() {
    let app = spawn_app().await;
    race_for_stock(&[&app]).await;
}

/// One user with 10,000 fires 25 concurrent 1,000-won pay_now orders through `apps`.
async fn race_for_balance(apps: &[&TestApp]) {
    let first = apps[0];
    let p = product(first, "Cheap", 1_000, 100).await;
    first.charge(4242, 10_000).await;
    let replies = concurrently(25, |i| {
        let app = apps[i % apps.len()];
        async move { place(app, 4242, json!({"user_id": 4242, "items": [{"product_id": p, "quantity": 1}], "pay_now": true})).await }
    })
    .await;
    assert_eq!(count(&replies, 201), 10);
    assert_eq!(count(&replies, 409), 15);
    assert!(replies
        .iter()
        .filter(|r| r.status == 409)
        .all(|r| r.body["code"] == "INSUFFICIENT_BALANCE"));
    assert_eq!(balance_of(first, 4242).await, 0);
    let history = history_of(first, 4242).await;
    assert_eq!(
        history
            .iter()
            .map(|h| h["amount"].as_i64().unwrap())
            .sum::<i64>(),
        0
    );
    assert_eq!(
        history.iter().filter(|h| h["kind"] == "PAYMENT").count(),
        10
    );
    // failed pay_now orders reserved nothing
    assert_eq!(stock_of(first, p).await, 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balance_never_goes_negative_under_25_concurrent_pay_now_orders() {
    let app = spawn_app().await;
    race_for_balance(&[&app]).await;
}

/// 10 concurrent cancels of one paid order through `apps`.
async fn race_to_cancel(apps: &[&TestApp]) {
    let first = apps[0];
    let p = product(first, "Refundable", 3_000, 5).await;
    first.charge(4343, 3_000).await;
    let order = place(
        first,
        4343,
        json!({"user_id": 4343, "items": [{"product_id": p, "quantity": 1}], "pay_now": true}),
    )
    .await;
    let order = order.body["id"].as_i64().unwrap();
    let replies = concurrently(10, |i| cancel(apps[i % apps.len()], 4343, order)).await;
    assert_eq!(count(&replies, 200), 1);
    assert_eq!(count(&replies, 409), 9);
    assert_eq!(balance_of(first, 4343).await, 3_000);
    let refunds = history_of(first, 4343)
        .await
        .into_iter()
        .filter(|h| h["kind"] == "REFUND")
        .count();
    assert_eq!(refunds, 1);
    assert_eq!(stock_of(first, p).await, 5);
    assert_eq!(
        outbox_events(first, order).await,
        vec!["order.paid", "order.cancelled"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_is_refunded_once_under_10_concurrent_cancels() {
    let app = spawn_app().await;
    race_to_cancel(&[&app]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_races_hold_across_two_instances_on_one_database() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), |_| {}).await;
    race_for_stock(&[&one, &two]).await;
    race_for_balance(&[&one, &two]).await;
    race_to_cancel(&[&one, &two]).await;
}

#[tokio::test]
async fn popular_products_count_units_of_paid_not_cancelled_orders() {
    let app = spawn_app().await;
    let a = product(&app, "A", 100, 100).await;
    let b = product(&app, "B", 100, 100).await;
    let c = product(&app, "C", 100, 100).await;
    app.charge(1, 100_000).await;
    let buy = |p: i64, q: i64, pay_now: bool| {
        let app = &app;
        async move {
            let r = place(app, 1, json!({"user_id": 1, "items": [{"product_id": p, "quantity": q}], "pay_now": pay_now})).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_i64().unwrap()
        }
    };
    buy(a, 5, true).await;
    buy(b, 3, true).await;
    buy(b, 3, true).await;
    buy(c, 50, false).await; // pending: not sold
    let cancelled = buy(c, 40, true).await;
    cancel(&app, 1, cancelled).await;
    let r = app
        .get("/api/v1/products/popular?days=3&limit=5", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    let got: Vec<(i64, i64)> = items
        .iter()
        .map(|i| {
            (
                i["product"]["id"].as_i64().unwrap(),
                i["sold_quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(b, 6), (a, 5)]);
    assert_eq!(items[0]["product"]["name"], "B");
    let r = app
        .get("/api/v1/products/popular?days=3&limit=1", None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    for bad in ["days=0", "days=31", "limit=0", "limit=101", "days=x"] {
        app.get(&format!("/api/v1/products/popular?{bad}"), None)
            .await
            .assert_problem(400, "VALIDATION_ERROR");
    }
}
