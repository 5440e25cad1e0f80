//! Drops (issue 11): one product and one coupon that everybody wants at once, and
//! purchase limits, each race run across two server instances on one database.

use crate::helpers::{create_coupon, issue_coupon, spawn_app, spawn_on, Reply, TestApp};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

async fn place(app: &TestApp, user: i64, product: i64, quantity: i64) -> Reply {
    app.post(
        "/api/v1/orders",
        Some(&app.user_token(user)),
        &json!({"user_id": user, "items": [{"product_id": product, "quantity": quantity}], "pay_now": true}),
    )
    .await
}

async fn stock_of(app: &TestApp, product: i64) -> i64 {
    app.product(product).await["stock"].as_i64().unwrap()
}

/// What one buyer saw: each answer's status, when its request left and when it came
/// back.
#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    sent: Instant,
    answered: Instant,
}

// Invariants: 64 buyers through two instances sell exactly the 1,000 units, never more,
// and nobody is told OUT_OF_STOCK while units remain: every OUT_OF_STOCK came back after
// the last successful order was sent (the stock only goes down, so before that moment at
// least one unit was left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_buyers_sell_exactly_a_thousand_units_and_no_false_out_of_stock() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), |_| {}).await;
    let p = one.product_id("Drop", 100, 1_000).await;
    futures::stream::iter(1..=64)
        .for_each_concurrent(16, |u| {
            let one = &one;
            async move {
                assert_eq!(one.charge(u, 1_000_000).await.status, 201);
            }
        })
        .await;
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::new(Mutex::new(Vec::new()));
    futures::stream::iter(1..=64i64)
        .for_each_concurrent(64, |u| {
            let app = if u % 2 == 0 { &one } else { &two };
            let answers = answers.clone();
            async move {
                loop {
                    let sent = Instant::now();
                    let r = place(app, u, p, 1).await;
                    let status = r.status.as_u16();
                    answers.lock().await.push(Answer {
                        status,
                        sent,
                        answered: Instant::now(),
                    });
                    match status {
                        201 => continue,
                        409 if r.body["code"] == "OUT_OF_STOCK" => break,
                        other => panic!("buyer {u}: {other} {}", r.body),
                    }
                }
            }
        })
        .await;
    let answers = answers.lock().await.clone();
    let sold = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(sold, 1_000, "exactly every unit sold");
    assert_eq!(stock_of(&one, p).await, 0);
    let last_sale_sent = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.sent)
        .max()
        .unwrap();
    let false_refusals = answers
        .iter()
        .filter(|a| a.status == 409 && a.answered < last_sale_sent)
        .count();
    assert_eq!(
        false_refusals, 0,
        "OUT_OF_STOCK answered while units remained"
    );
}

// Invariant: restocks and write-offs running during the race keep the sum exact:
// units sold + units left = units created + restocked - written off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restocks_and_write_offs_during_a_drop_keep_the_stock_exact() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), |_| {}).await;
    let p = one.product_id("Drop", 10, 300).await;
    for u in 1..=32 {
        one.charge(u, 1_000_000).await;
    }
    let admin = one.admin_token();
    let buyers = futures::stream::iter(1..=32i64)
        .map(|u| {
            let app = if u % 2 == 0 { &one } else { &two };
            async move {
                let mut units = 0;
                for _ in 0..20 {
                    let r = place(app, u, p, 1 + u % 2).await;
                    match r.status.as_u16() {
                        201 => units += 1 + u % 2,
                        409 => {}
                        other => panic!("{other} {}", r.body),
                    }
                }
                units
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<i64>>();
    let admin_changes = futures::stream::iter(0..20)
        .map(|i| {
            let app = if i % 2 == 0 { &one } else { &two };
            let admin = admin.clone();
            async move {
                let delta = if i % 2 == 0 { 25 } else { -20 };
                let r = app
                    .post(
                        &format!("/api/v1/admin/products/{p}/stock"),
                        Some(&admin),
                        &json!({"delta": delta}),
                    )
                    .await;
                match r.status.as_u16() {
                    200 => delta,
                    409 => 0,
                    other => panic!("{other} {}", r.body),
                }
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<i64>>();
    let (sold, changed) = futures::join!(buyers, admin_changes);
    let sold: i64 = sold.into_iter().sum();
    let changed: i64 = changed.into_iter().sum();
    let left = stock_of(&one, p).await;
    assert!(left >= 0);
    assert_eq!(
        sold + left,
        300 + changed,
        "sold {sold}, left {left}, changed {changed}"
    );
}

// Invariant: 300 users race for a coupon of 100 through two instances: exactly 100 own
// it, each once, and its issued_quantity says 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_users_race_for_a_hundred_coupons() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), |_| {}).await;
    let coupon = create_coupon(&one, json!({"total_quantity": 100})).await["id"]
        .as_i64()
        .unwrap();
    let replies: Vec<Reply> = futures::stream::iter(1..=300i64)
        .map(|u| {
            let app = if u % 2 == 0 { &one } else { &two };
            async move { issue_coupon(app, coupon, u).await }
        })
        .buffer_unordered(48)
        .collect()
        .await;
    let issued = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(issued, 100);
    assert!(replies
        .iter()
        .filter(|r| r.status != 201)
        .all(|r| r.status == 409 && r.body["code"] == "COUPON_SOLD_OUT"));
    let c = one
        .get(
            &format!("/api/v1/coupons/{coupon}"),
            Some(&one.admin_token()),
        )
        .await;
    assert_eq!(c.body["issued_quantity"], 100);
}

// Invariant (API.md, max_per_user): one user firing 20 concurrent orders through two
// instances at a limit of 3 ends up holding exactly 3 units; the others get 409
// PURCHASE_LIMIT_EXCEEDED with the product named, and changed nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_with_twenty_concurrent_orders_holds_exactly_the_limit() {
    let one = spawn_app().await;
    let two = spawn_on(one.db.clone(), |_| {}).await;
    let r = one
        .post(
            "/api/v1/admin/products",
            Some(&one.admin_token()),
            &json!({"name": "Limited drop", "price": 100, "stock": 1_000, "max_per_user": 3}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["max_per_user"], 3);
    let p = r.body["id"].as_i64().unwrap();
    one.charge(7, 100_000).await;
    let replies: Vec<Reply> = futures::stream::iter(0..20)
        .map(|i| {
            let app = if i % 2 == 0 { &one } else { &two };
            async move {
                let body = if i % 3 == 0 {
                    json!({"user_id": 7, "items": [{"product_id": p, "quantity": 1}]})
                } else {
                    json!({"user_id": 7, "items": [{"product_id": p, "quantity": 1}], "pay_now": true})
                };
                app.post("/api/v1/orders", Some(&app.user_token(7)), &body)
                    .await
            }
        })
        .buffer_unordered(20)
        .collect()
        .await;
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 3);
    for r in replies.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "PURCHASE_LIMIT_EXCEEDED");
        assert_eq!(r.body["product_ids"], json!([p]));
    }
    assert_eq!(stock_of(&one, p).await, 997);
    // a cancelled order frees its units for the limit; refunded units do too
    let orders = one
        .get("/api/v1/users/7/orders", Some(&one.user_token(7)))
        .await;
    let first = orders.body["items"][0]["id"].as_i64().unwrap();
    let cancelled = one
        .post(
            &format!("/api/v1/orders/{first}/cancel"),
            Some(&one.user_token(7)),
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(place(&one, 7, p, 1).await.status, 201);
    place(&two, 7, p, 1)
        .await
        .assert_problem(409, "PURCHASE_LIMIT_EXCEEDED");
    // another user has a limit of their own
    one.charge(8, 100_000).await;
    assert_eq!(place(&two, 8, p, 3).await.status, 201);
}

// PATCH changes name, price and limit; placed orders keep their prices; null removes
// the limit; unknown products are 404; bad values 422 naming the field.
#[tokio::test]
async fn an_admin_patches_a_product_and_placed_orders_keep_their_prices() {
    let app = spawn_app().await;
    let p = app.product_id("Old name", 1_000, 10).await;
    app.charge(1, 100_000).await;
    let placed = place(&app, 1, p, 1).await;
    assert_eq!(placed.status, 201);
    let admin = app.admin_token();
    let patch = |body: serde_json::Value, id: i64| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.request(
                reqwest::Method::PATCH,
                &format!("/api/v1/admin/products/{id}"),
                Some(&admin),
                Some(&body),
            )
            .await
        }
    };
    let r = patch(
        json!({"name": "New name", "price": 2_500, "max_per_user": 5}),
        p,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            &r.body["name"],
            &r.body["price"],
            &r.body["max_per_user"],
            &r.body["stock"]
        ),
        (&json!("New name"), &json!(2_500), &json!(5), &json!(9))
    );
    let order = placed.body["id"].as_i64().unwrap();
    let kept = app
        .get(&format!("/api/v1/orders/{order}"), Some(&app.user_token(1)))
        .await;
    assert_eq!(kept.body["items"][0]["unit_price"], 1_000);
    assert_eq!(kept.body["items"][0]["name"], "Old name");
    let unchanged = patch(json!({}), p).await;
    assert_eq!(unchanged.body, r.body, "an empty object changes nothing");
    let unlimited = patch(json!({"max_per_user": null}), p).await;
    assert_eq!(unlimited.body["max_per_user"], serde_json::Value::Null);
    assert_eq!(unlimited.body["price"], 2_500);
    patch(json!({"price": 1}), 999_999)
        .await
        .assert_problem(404, "PRODUCT_NOT_FOUND");
    for (body, field) in [
        (json!({"max_per_user": 0}), "max_per_user"),
        (json!({"max_per_user": 1001}), "max_per_user"),
        (json!({"price": 0}), "price"),
        (json!({"name": " "}), "name"),
        (json!({"stock": 5}), "stock"),
    ] {
        let r = patch(body.clone(), p).await;
        r.assert_problem(422, "VALIDATION_ERROR");
        assert!(
            r.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}: {}",
            r.body
        );
    }
    app.request(
        reqwest::Method::PATCH,
        &format!("/api/v1/admin/products/{p}"),
        Some(&app.user_token(1)),
        Some(&json!({"price": 5})),
    )
    .await
    .assert_problem(403, "FORBIDDEN");
}
