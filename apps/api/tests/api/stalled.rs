//! What the OpenAPI document says of every operation on the database (503
//! `SERVICE_UNAVAILABLE`, see `contract::every_operation_on_the_database_documents_503_service_unavailable`),
//! held for the operations issue 13 added: with the database stalled they answer 503
//! within the bound, change nothing, and a retry with the same `Idempotency-Key` does
//! the work once the database is back.

use crate::helpers::{spawn_behind_proxy, Reply};
use crate::shop::{balance_of, order_of, place_paid, stock_of};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

// Invariant: a refund, an admin search, an order from the cart and an order read answer
// 503 SERVICE_UNAVAILABLE while the database does not answer, within the configured
// bound; nothing is half done, and the refund retried with its key refunds once.
#[tokio::test]
async fn refunds_search_and_cart_orders_answer_503_while_the_database_stalls() {
    let (app, proxy) = spawn_behind_proxy().await;
    let token = app.user_token(1);
    let a = app.product_id("A", 1_000, 10).await;
    app.charge(1, 10_000).await;
    let order = place_paid(&app, 1, &[(a, 3)], None).await;
    let id = order["id"].as_i64().unwrap();
    let r = app
        .put(
            &format!("/api/v1/users/1/cart/items/{a}"),
            Some(&token),
            &json!({"quantity": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let refund_body = json!({"items": [{"product_id": a, "quantity": 1}]});
    let refund_path = format!("/api/v1/orders/{id}/refunds");
    let refund = || {
        app.send(
            Method::POST,
            &refund_path,
            Some(&token),
            Some(&refund_body),
            &[("Idempotency-Key", "refund-while-stalled")],
        )
    };

    proxy.stall();
    let started = Instant::now();
    let admin = app.admin_token();
    let cart_order = json!({"user_id": 1, "from_cart": true, "pay_now": true});
    let order_path = format!("/api/v1/orders/{id}");
    let (refunded, searched, from_cart, read): (Reply, Reply, Reply, Reply) = tokio::join!(
        refund(),
        app.get("/api/v1/admin/orders?status=PAID", Some(&admin)),
        app.post("/api/v1/orders", Some(&token), &cart_order),
        app.get(&order_path, Some(&token)),
    );
    let took = started.elapsed();
    for r in [&refunded, &searched, &from_cart, &read] {
        r.assert_problem(503, "SERVICE_UNAVAILABLE");
    }
    assert!(took < Duration::from_millis(3_500), "took {took:?}");

    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    let again = loop {
        let r = refund().await;
        if !r.status.is_server_error() {
            break r;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    let replayed = refund().await;
    assert_eq!(replayed.body, again.body);
    let got = order_of(&app, id).await;
    assert_eq!(got["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(got["refunded_total"], 1_000);
    assert_eq!(balance_of(&app, 1).await, 8_000);
    assert_eq!(stock_of(&app, a).await, 8);
    let orders = app
        .get_all("/api/v1/users/1/orders", Some(&token), 100)
        .await;
    assert_eq!(orders.len(), 1, "the order from the cart was not placed");
    drop(proxy);
}
